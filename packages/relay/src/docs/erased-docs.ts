/**
 * The erased documents this relay knows of: read from the store at start, added as erasures
 * happen here or arrive from peers. A document is looked up here before it loads, so an erased
 * one is refused (4410) without reading the store.
 *
 * A region that was down while a document was erased learns of it from its peers when their
 * links come up. Until every peer has said which documents it knows erased (or `waitMs` passed,
 * for peers that are down too), loads wait: a returning region does not serve an erased
 * document in the moment before it hears of the erasure.
 */
import type { Tombstone } from '@georelay/core'

export interface ErasedDocsOptions {
  /** The regions whose word is awaited at start. */
  peers: readonly string[]
  /** How long loads wait at most for them. */
  waitMs: number
}

export class ErasedDocs {
  private readonly tombstones = new Map<string, Tombstone>()
  private readonly waitingFor: Set<string>
  private readonly ready: Promise<void>
  private release: () => void = () => {}
  private timer: NodeJS.Timeout | null = null

  constructor (known: readonly Tombstone[], { peers, waitMs }: ErasedDocsOptions) {
    for (const t of known) this.tombstones.set(t.docName, t)
    this.waitingFor = new Set(peers)
    this.ready = this.waitingFor.size === 0
      ? Promise.resolve()
      : new Promise(resolve => {
        this.release = resolve
        this.timer = setTimeout(() => this.done(), waitMs)
        this.timer.unref()
      })
  }

  has (docName: string): boolean {
    return this.tombstones.has(docName)
  }

  get (docName: string): Tombstone | undefined {
    return this.tombstones.get(docName)
  }

  /** Records a tombstone; false when the document was known erased already. */
  add (tombstone: Tombstone): boolean {
    if (this.tombstones.has(tombstone.docName)) return false
    this.tombstones.set(tombstone.docName, tombstone)
    return true
  }

  all (): Tombstone[] {
    return [...this.tombstones.values()]
  }

  get size (): number {
    return this.tombstones.size
  }

  /** Resolves once every peer said which documents it knows erased, or the wait is over. */
  settled (): Promise<void> {
    return this.ready
  }

  /** A peer sent its tombstones (all it may send this region). */
  heardFrom (peer: string): void {
    if (this.waitingFor.delete(peer) && this.waitingFor.size === 0) this.done()
  }

  private done (): void {
    if (this.timer !== null) clearTimeout(this.timer)
    this.timer = null
    this.waitingFor.clear()
    this.release()
  }
}
