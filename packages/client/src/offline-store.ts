/**
 * Where a client keeps its local writes until a relay acknowledges them at the session's level,
 * so that a crash, a reload or a long outage loses no edit. Keyed by document name, then by a
 * write id that only grows per document.
 */
export interface PendingWrite {
  readonly writeId: number
  readonly update: Uint8Array
}

export interface OfflineStore {
  /** Every pending write of a document, by increasing write id. */
  load(docName: string): Promise<PendingWrite[]>
  /** Keeps a write until `remove`; resolves once it would survive a crash of this process. */
  put(docName: string, write: PendingWrite): Promise<void>
  /** Forgets every write of the document with an id up to `upToWriteId` (acknowledged). */
  remove(docName: string, upToWriteId: number): Promise<void>
  close(): Promise<void>
}
