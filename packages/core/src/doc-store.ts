/**
 * Where a relay keeps documents. Per document: an append-only log of updates plus a compacted
 * snapshot. Every appended update gets a sequence number from one counter shared by all the
 * documents of a store, so "everything after N" is a single cursor (what replication resumes
 * from). Compaction folds the log up to some sequence number into the snapshot; appends that
 * race with it get higher numbers and stay in the log, so none is ever lost.
 *
 * Every store must pass the conformance suite in `packages/core/test/doc-store-conformance.ts`.
 */
export interface LogEntry {
  readonly seq: number
  readonly update: Uint8Array
}

export interface StoredDoc {
  /** Merge of every update folded so far; null when the document was never compacted. */
  readonly snapshot: Uint8Array | null
  /** Highest sequence number folded into the snapshot (0 when none). */
  readonly snapshotSeq: number
  /** Updates appended after the snapshot, by increasing sequence number. */
  readonly log: readonly LogEntry[]
}

export interface CompactionThresholds {
  /** Compact once a document's log holds this many updates… */
  readonly updates: number
  /** …or this many bytes, whichever comes first. */
  readonly bytes: number
}

export const DEFAULT_COMPACTION: CompactionThresholds = { updates: 500, bytes: 1 << 20 }

export interface DocStore {
  /** Appends an update to a document's log; resolves with its sequence number once durable. */
  append(docName: string, update: Uint8Array): Promise<number>
  /** The document as stored: snapshot and log. An unknown document is empty, not an error. */
  read(docName: string): Promise<StoredDoc>
  /** Folds the whole current log into the snapshot now. Appends during compaction are kept. */
  compact(docName: string): Promise<void>
  /** Names of every stored document. */
  listDocs(): Promise<string[]>
  /** Finishes pending appends and compactions, then releases the store. */
  close(): Promise<void>
}

export type StoreErrorCode = 'ERR_STORE_CLOSED' | 'ERR_STORE_FULL' | 'ERR_STORE_IO'

export class StoreError extends Error {
  constructor (readonly code: StoreErrorCode, message: string, options?: { cause?: unknown }) {
    super(message, options)
    this.name = 'StoreError'
  }
}

export const storeClosed = (): StoreError =>
  new StoreError('ERR_STORE_CLOSED', 'the document store is closed; open a new one to write')
