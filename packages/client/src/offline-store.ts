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

/**
 * Rejects arguments every store would otherwise mishandle in its own way (a NaN key is an error
 * in IndexedDB, a silent oddity in a file), so that all stores fail alike and early.
 * @internal shared by the stores of this package
 */
export const checkPut = (docName: unknown, write: PendingWrite): void => {
  checkDocName(docName)
  if (!Number.isSafeInteger(write.writeId) || write.writeId < 0) {
    throw new TypeError(`offline store: writeId must be a non-negative safe integer, got ${String(write.writeId)}`)
  }
  if (!(write.update instanceof Uint8Array)) {
    throw new TypeError(`offline store: update of write ${write.writeId} must be a Uint8Array`)
  }
}

/** @internal */
export const checkRemove = (docName: unknown, upToWriteId: number): void => {
  checkDocName(docName)
  if (typeof upToWriteId !== 'number' || Number.isNaN(upToWriteId)) {
    throw new TypeError(`offline store: upToWriteId must be a number, got ${String(upToWriteId)}`)
  }
}

/** @internal */
export const checkDocName = (docName: unknown): void => {
  if (typeof docName !== 'string') throw new TypeError(`offline store: docName must be a string, got ${typeof docName}`)
}

/** @internal */
export const closedError = (what: string): Error =>
  new Error(`${what} is closed; open a new store (or a new GeoClient) to keep using it`)
