/**
 * How a node of a region keeps the documents it has loaded up to date with what its sibling
 * nodes append to the region's shared store. The store's log is the truth; hints only say when
 * to look (core's node-messages.ts).
 *
 * Each loaded document has a cursor: every entry of the document numbered at or below it is in
 * the loaded document. Entries above it that are in it already — this node's own appends, and
 * siblings' updates that rode in their hint — are `held`, so that reading the log past them does
 * not hand them to the clients twice. The cursor moves only by reading the log, which the store
 * numbers without holes in commit order, so whatever a hint failed to bring (lost, too large,
 * late) is found by the next read: on a hint without its update, on every poll, and when Redis
 * comes back. A lost hint therefore delays an update by at most one poll and never loses it.
 */
import { type DocStore, diffUpdate, isEmptyUpdate } from '@georelay/core'
import type { Logger, RelayMetrics } from '../observability/index.js'

/** The loaded documents, as the follower sees them. */
export interface FollowedDocs {
  /** Hands an update that is durable in the store to the loaded document, which fans it out. */
  apply(docName: string, update: Uint8Array): void
  /** The loaded document's state vector; null when it is not loaded (any more). */
  stateVector(docName: string): Promise<Uint8Array | null>
}

export interface LogFollowerOptions {
  store: DocStore
  docs: FollowedDocs
  metrics: RelayMetrics
  logger: Logger
  /** Entries per read of the log (default 1000). */
  readLimit?: number
}

/** Why the log is read: a hint that did not carry its update, the poll, Redis back after a loss. */
export type ReadReason = 'hint' | 'poll' | 'redis'

interface Followed {
  cursor: number
  held: Set<number>
  /** A hint named an entry above the cursor that is not held. */
  behind: boolean
}

export class LogFollower {
  private readonly followed = new Map<string, Followed>()
  private readonly readLimit: number
  private reading: Promise<void> | null = null
  /** What the next read covers, once the one running ends: every document, or those behind. */
  private next: { reason: ReadReason, all: boolean } | null = null
  private closed = false

  constructor (private readonly options: LogFollowerOptions) {
    this.readLimit = options.readLimit ?? 1000
  }

  /** Documents followed now. */
  get size (): number {
    return this.followed.size
  }

  /** A document was loaded holding every entry up to `cursor`. */
  track (docName: string, cursor: number): void {
    this.followed.set(docName, { cursor, held: new Set(), behind: false })
  }

  untrack (docName: string): void {
    this.followed.delete(docName)
  }

  /** This node appended entry `seq` to the document: the loaded document has it. */
  stored (docName: string, seq: number): void {
    const doc = this.followed.get(docName)
    if (doc !== undefined && seq > doc.cursor) doc.held.add(seq)
  }

  /**
   * A sibling says entry `seq` of the document is in the log; `update` is the entry when the
   * hint carried it. Returns whether the loaded document took something.
   */
  hinted (docName: string, seq: number, update: Uint8Array | null): boolean {
    const doc = this.followed.get(docName)
    if (doc === undefined || seq <= doc.cursor || doc.held.has(seq)) return false
    if (update === null) {
      doc.behind = true
      void this.read('hint', false)
      return false
    }
    doc.held.add(seq)
    this.options.docs.apply(docName, update)
    this.options.metrics.siblingUpdates.inc({ path: 'hint' })
    return true
  }

  /** Reads a document's entries above its cursor now (just subscribed: what came before). */
  refresh (docName: string): void {
    const doc = this.followed.get(docName)
    if (doc === undefined) return
    doc.behind = true
    void this.read('hint', false)
  }

  /** Reads every followed document's entries above its cursor: the poll, or Redis back after a loss. */
  catchUp (reason: 'poll' | 'redis'): Promise<void> {
    return this.read(reason, true)
  }

  /** Resolves once no read is running or waiting. */
  async settled (): Promise<void> {
    while (this.reading !== null) await this.reading
  }

  close (): void {
    this.closed = true
    this.followed.clear()
  }

  private read (reason: ReadReason, all: boolean): Promise<void> {
    if (this.closed) return Promise.resolve()
    if (this.reading !== null) {
      // One read at a time; what asked meanwhile is read right after, widened to all if any asked so.
      this.next = { reason: this.next?.reason ?? reason, all: all || (this.next?.all ?? false) }
      return this.reading
    }
    this.reading = this.readLoop(reason, all).finally(() => {
      this.reading = null
      const next = this.next
      this.next = null
      if (next !== null) void this.read(next.reason, next.all)
    })
    return this.reading
  }

  private async readLoop (reason: ReadReason, all: boolean): Promise<void> {
    let cursors = this.cursors(all)
    while (cursors.size > 0 && !this.closed) {
      this.options.metrics.siblingReads.inc({ reason })
      let full: boolean
      try {
        full = await this.readOnce(cursors)
      } catch (err) {
        // The store does not answer: these stay behind, and the poll reads them once it does.
        this.options.logger.log('warn', 'reading the shared log for sibling nodes\' writes failed', { error: (err as Error).message })
        this.markBehind(cursors.keys())
        return
      }
      // A full read may have left entries behind: read those documents again from their new cursors.
      if (!full) return
      this.markBehind(cursors.keys())
      cursors = this.cursors(false)
    }
  }

  /** The cursors of every followed document, or of those behind; they are no longer behind. */
  private cursors (all: boolean): Map<string, number> {
    const cursors = new Map<string, number>()
    for (const [name, doc] of this.followed) {
      if (!all && !doc.behind) continue
      doc.behind = false
      cursors.set(name, doc.cursor)
    }
    return cursors
  }

  private markBehind (names: Iterable<string>): void {
    for (const name of names) {
      const doc = this.followed.get(name)
      if (doc !== undefined) doc.behind = true
    }
  }

  /** One read of the log; true when it returned as many entries as asked (there may be more). */
  private async readOnce (cursors: Map<string, number>): Promise<boolean> {
    const read = await this.options.store.readSince(cursors, this.readLimit)
    // A folded document not brought up (its read failed, or it is unloading) must not have its
    // cursor moved past the fold by the entries below: it stays behind for the next read. One
    // failing document does not hold up the others.
    const stuck = new Set<string>()
    for (const name of read.folded) {
      const brought = await this.readWhole(name).catch((err: unknown) => {
        this.options.logger.log('warn', 'reading a compacted document for sibling nodes\' writes failed', { error: (err as Error).message })
        return false
      })
      if (!brought) stuck.add(name)
    }
    this.markBehind(stuck)
    for (const entry of read.entries) {
      const doc = this.followed.get(entry.docName)
      if (doc !== undefined && !stuck.has(entry.docName)) this.take(doc, entry.docName, entry.seq, entry.update)
    }
    for (const name of cursors.keys()) this.forgetHeld(name)
    return read.entries.length >= this.readLimit
  }

  /**
   * Compaction folded entries above the cursor: take what the snapshot has that the loaded
   * document lacks, then the log after it entry by entry. The snapshot is diffed alone, never
   * merged with the log: merging hundreds of entries on every fold stalled the event loop
   * (paced fan-out p99 210 ms with two nodes, 26 ms without compaction, in the bench).
   */
  private async readWhole (docName: string): Promise<boolean> {
    const stateVector = await this.options.docs.stateVector(docName)
    const doc = this.followed.get(docName)
    if (stateVector === null || doc === undefined) return false
    const stored = await this.options.store.read(docName)
    if (stored.snapshot !== null && stored.snapshotSeq > doc.cursor) {
      const missing = diffUpdate(stored.snapshot, stateVector)
      doc.cursor = stored.snapshotSeq
      if (!isEmptyUpdate(missing)) {
        this.options.docs.apply(docName, missing)
        this.options.metrics.siblingUpdates.inc({ path: 'log' })
      }
    }
    for (const entry of stored.log) this.take(doc, docName, entry.seq, entry.update)
    this.forgetHeld(docName)
    return true
  }

  /** An entry read from the log: into the document unless it is there already. */
  private take (doc: Followed, docName: string, seq: number, update: Uint8Array): void {
    if (seq <= doc.cursor) return
    doc.cursor = seq
    if (doc.held.delete(seq)) return
    this.options.docs.apply(docName, update)
    this.options.metrics.siblingUpdates.inc({ path: 'log' })
  }

  private forgetHeld (docName: string): void {
    const doc = this.followed.get(docName)
    if (doc === undefined) return
    for (const seq of doc.held) if (seq <= doc.cursor) doc.held.delete(seq)
  }
}
