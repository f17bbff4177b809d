import type { OfflineStore, PendingWrite } from './offline-store.js'

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

/**
 * Pending writes kept in this process only: nothing survives a crash or a reload, so it suits
 * tests and sessions whose edits may be lost with the page.
 */
export class MemoryOfflineStore implements OfflineStore {
  private readonly docs = new Map<string, Map<number, Uint8Array>>()
  private closed = false

  async load(docName: string): Promise<PendingWrite[]> {
    this.checkOpen()
    checkDocName(docName)
    const writes = this.docs.get(docName)
    if (writes === undefined) return []
    // Copies, so that a caller mutating what it loaded cannot change what is kept.
    return [...writes].sort(([a], [b]) => a - b).map(([writeId, update]) => ({ writeId, update: new Uint8Array(update) }))
  }

  async put(docName: string, write: PendingWrite): Promise<void> {
    this.checkOpen()
    checkPut(docName, write)
    let writes = this.docs.get(docName)
    if (writes === undefined) this.docs.set(docName, writes = new Map())
    // A copy: the caller may reuse its buffer, or pass a view into a larger one. Not `.slice()`,
    // which on a Node Buffer returns a view.
    writes.set(write.writeId, new Uint8Array(write.update))
  }

  async remove(docName: string, upToWriteId: number): Promise<void> {
    this.checkOpen()
    checkRemove(docName, upToWriteId)
    const writes = this.docs.get(docName)
    if (writes === undefined) return
    for (const writeId of writes.keys()) if (writeId <= upToWriteId) writes.delete(writeId)
    if (writes.size === 0) this.docs.delete(docName)
  }

  async close(): Promise<void> {
    this.closed = true
    this.docs.clear()
  }

  private checkOpen(): void {
    if (this.closed) throw closedError('MemoryOfflineStore')
  }
}
