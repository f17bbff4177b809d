/**
 * Where a relay keeps documents. Per document: an append-only log of updates plus a compacted
 * snapshot. Every appended update gets a sequence number from one counter shared by all the
 * documents of a store, so "everything after N" is a single cursor (what replication resumes
 * from). Compaction folds the log up to some sequence number into the snapshot; appends that
 * race with it get higher numbers and stay in the log, so none is ever lost.
 *
 * Replication (relay to relay) reads the log by *origin*: every entry records the region that
 * first accepted it and that region's sequence number for it. Local writes have the origin
 * `LOCAL_ORIGIN` and their own sequence number. A receiver keeps, per origin, how far it holds
 * that origin's entries (`have`), so a link resumes from there after any interruption; when
 * compaction has folded entries a peer still lacks, `docsFoldedPast` names the documents to
 * bring up to date by state vector instead.
 *
 * Every store must pass the conformance suite of `@georelay/core/testing`.
 */
import type { Yield } from './updates.js'

/** The origin of entries written in this store's own region. */
export const LOCAL_ORIGIN = ''

/** Who first accepted an update: a region and that region's sequence number for it. */
export interface Origin {
  readonly region: string
  readonly seq: number
}

/** A log entry as replication reads it. */
export interface OriginEntry {
  readonly docName: string
  /** Sequence number at the origin (for local entries, the local sequence number). */
  readonly originSeq: number
  readonly update: Uint8Array
}

export interface OriginRead {
  /** Entries of one origin after a point, by increasing origin sequence number. */
  readonly entries: readonly OriginEntry[]
  /** Highest origin sequence number of that origin folded into any snapshot (0 when none). */
  readonly foldedUpTo: number
  /**
   * How many compactions since the store opened folded entries of that origin. `foldedUpTo`
   * is a maximum over documents, so it stays put when a later compaction folds lower entries
   * of another document; a reader that caught up at one generation must catch up again at
   * the next.
   */
  readonly foldGeneration: number
}

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

/** A log entry of some document, as a node of a region reads what the other nodes appended. */
export interface DocEntry {
  readonly docName: string
  readonly seq: number
  readonly update: Uint8Array
}

export interface SinceRead {
  /** Entries of the asked documents numbered above each one's cursor, by increasing seq. */
  readonly entries: readonly DocEntry[]
  /**
   * Asked documents whose snapshot folded entries numbered above their cursor: those entries
   * left the log, so the reader must read the document whole (`read`) instead.
   */
  readonly folded: readonly string[]
}

export interface CompactionThresholds {
  /** Compact once a document's log holds this many updates… */
  readonly updates: number
  /** …or this many bytes, whichever comes first. */
  readonly bytes: number
}

export const DEFAULT_COMPACTION: CompactionThresholds = { updates: 500, bytes: 1 << 20 }

/** Options every store takes; a store may add its own (SqliteStore: `synchronous`). */
/** An append waiting for a store's next group commit: what to write and whom to tell. */
export interface PendingAppend {
  docName: string
  update: Uint8Array
  origin: Origin | undefined
  resolve: (seq: number) => void
  reject: (err: unknown) => void
}

/**
 * A document erased for good (GDPR-style): when, and by which region's request. The store
 * keeps it after the document's data is gone, so that nothing can bring the document back.
 */
export interface Tombstone {
  readonly docName: string
  /** Milliseconds since the epoch, at the region that erased it first. */
  readonly at: number
  /** The region where the erasure was asked for. */
  readonly origin: string
}

export interface StoreOptions {
  compaction?: CompactionThresholds
  /** How compaction yields between merge batches (tests inject a scheduler here). */
  pause?: Yield
  /** Called when a background compaction fails; the log is kept and retried on later appends. */
  onCompactionError?: (docName: string, err: unknown) => void
}

export interface DocStore {
  /**
   * Appends an update to a document's log; resolves with its local sequence number once
   * durable. `origin` is the region that first accepted it (omitted: this region).
   */
  append(docName: string, update: Uint8Array, origin?: Origin): Promise<number>
  /** The document as stored: snapshot and log. An unknown document is empty, not an error. */
  read(docName: string): Promise<StoredDoc>
  /** Folds the whole current log into the snapshot now. Appends during compaction are kept. */
  compact(docName: string): Promise<void>
  /**
   * Entries of one origin (`LOCAL_ORIGIN` for this region's own) with an origin sequence
   * number above `after`, at most `limit` of them, read together with that origin's folded
   * mark in one consistent view.
   */
  readOrigin(origin: string, after: number, limit: number): Promise<OriginRead>
  /** Documents whose snapshot holds entries of `origin` numbered above `after`. */
  docsFoldedPast(origin: string, after: number): Promise<string[]>
  /**
   * For each document of `cursors`, its entries numbered above its cursor, whatever their
   * origin: at most `limit` in all, by increasing seq (so each document's are a prefix of what
   * it has), and the documents whose snapshot folded some, in one consistent view. How a node
   * of a region follows what the region's other nodes write to a shared store.
   */
  readSince(cursors: ReadonlyMap<string, number>, limit: number): Promise<SinceRead>
  /** Per origin region, how far this store durably holds its entries (the receiver's cursors). */
  readHave(): Promise<Record<string, number>>
  /** Records that every entry of `origin` up to `seq` is durable here (never moves back). */
  writeHave(origin: string, seq: number): Promise<void>
  /** The highest local sequence number ever given (0 for a new store), compacted or not. */
  lastSeq(): Promise<number>
  /**
   * Names of every stored document, or of those that begin with `prefix`: a store with an
   * index on names answers that from a range of it, so listing one namespace does not cost a
   * walk over the whole store.
   */
  listDocs(prefix?: string): Promise<string[]>
  /**
   * Erases a document: its log entries and snapshot are deleted (appends made before the call
   * included) and the tombstone is kept, in one transaction. Later appends of the document are
   * refused with ERR_DOC_ERASED and compactions of it store nothing. Erasing twice keeps the
   * first tombstone.
   */
  erase(tombstone: Tombstone): Promise<void>
  /** Every tombstone this store keeps. */
  readErased(): Promise<Tombstone[]>
  /** Finishes pending appends and compactions, then releases the store. */
  close(): Promise<void>
  /**
   * False while the store cannot be reached (a database down): writes are refused with
   * ERR_STORE_UNAVAILABLE, and the relay reports itself not ready. Embedded stores, which
   * cannot be unreachable, leave it out.
   */
  readonly available?: boolean
}

/**
 * CLOSED: the store was closed. FULL: its disk is full. IO: a write or read failed. UNAVAILABLE:
 * its database cannot be reached now (it recovers by itself). SCHEMA: the data was written by a
 * newer version. DOC_ERASED: an append of a document that was erased.
 */
export type StoreErrorCode =
  | 'ERR_STORE_CLOSED' | 'ERR_STORE_FULL' | 'ERR_STORE_IO' | 'ERR_STORE_UNAVAILABLE' | 'ERR_STORE_SCHEMA' | 'ERR_DOC_ERASED'

export class StoreError extends Error {
  constructor (readonly code: StoreErrorCode, message: string, options?: { cause?: unknown }) {
    super(message, options)
    this.name = 'StoreError'
  }
}

export const storeClosed = (): StoreError =>
  new StoreError('ERR_STORE_CLOSED', 'the document store is closed; open a new one to write')

export const docErased = (docName: string): StoreError =>
  new StoreError('ERR_DOC_ERASED', `"${docName}" was erased: nothing more is stored under its name`)
