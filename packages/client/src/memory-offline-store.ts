import { checkDocName, checkPut, checkRemove, closedError, type OfflineStore, type PendingWrite } from './offline-store.js'

/**
 * Pending writes kept in this process only: nothing survives a crash or a reload, so it suits
 * tests and sessions whose edits may be lost with the page.
 */
export class MemoryOfflineStore implements OfflineStore {
  private readonly docs = new Map<string, Map<number, Uint8Array>>()
  private closed = false

  async load (docName: string): Promise<PendingWrite[]> {
    this.checkOpen()
    checkDocName(docName)
    const writes = this.docs.get(docName)
    if (writes === undefined) return []
    // Copies, so that a caller mutating what it loaded cannot change what is kept.
    return [...writes]
      .sort(([a], [b]) => a - b)
      .map(([writeId, update]) => ({ writeId, update: new Uint8Array(update) }))
  }

  async put (docName: string, write: PendingWrite): Promise<void> {
    this.checkOpen()
    checkPut(docName, write)
    let writes = this.docs.get(docName)
    if (writes === undefined) this.docs.set(docName, writes = new Map())
    // A copy: the caller may reuse its buffer, or pass a view into a larger one. Not `.slice()`,
    // which on a Node Buffer returns a view.
    writes.set(write.writeId, new Uint8Array(write.update))
  }

  async remove (docName: string, upToWriteId: number): Promise<void> {
    this.checkOpen()
    checkRemove(docName, upToWriteId)
    const writes = this.docs.get(docName)
    if (writes === undefined) return
    for (const writeId of writes.keys()) if (writeId <= upToWriteId) writes.delete(writeId)
    if (writes.size === 0) this.docs.delete(docName)
  }

  async close (): Promise<void> {
    this.closed = true
    this.docs.clear()
  }

  private checkOpen (): void {
    if (this.closed) throw closedError('MemoryOfflineStore')
  }
}
