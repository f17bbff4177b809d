/**
 * The relay's view of its store as a replication log. Every write, whatever its origin, goes
 * through here: it is appended durably, then announced, so peer links wake up and stream it.
 *
 * Origins are region names on the wire and in memory; the store writes this region's own
 * entries under LOCAL_ORIGIN. `appendedUpTo` is the receive-side deduplication mark: an
 * origin's entries reach a relay over contiguous streams (see peer-messages.ts), so an entry
 * numbered at or below the mark is already held and is skipped.
 */
import { EventEmitter } from 'node:events'
import { type DocStore, LOCAL_ORIGIN, type Marks, type OriginRead } from '@georelay/core'
import { LocalWriteTimes } from './local-write-times.js'

export interface ReplicationLogEvents {
  /** An entry of `origin` was appended durably. */
  append: [origin: string]
  /** All of `origin` up to `seq` is now durable here. */
  have: [origin: string, seq: number]
  /** This process appended `update` to `docName` durably as local entry `seq` (any origin). */
  stored: [docName: string, seq: number, update: Uint8Array]
}

export class ReplicationLog extends EventEmitter<ReplicationLogEvents> {
  private readonly appended = new Map<string, number>()
  private readonly have = new Map<string, number>()
  /**
   * Origins whose replicated append failed: nothing more of them is stored or recorded until
   * a peer link starts over from the durable marks, or later appends could raise the
   * duplicate mark past the hole.
   */
  private readonly poisoned = new Set<string>()
  private lastLocal = 0
  /** Append times of local entries no peer has acknowledged yet; null without peers. */
  private readonly localTimes: LocalWriteTimes | null

  private constructor (
    readonly region: string,
    readonly store: DocStore,
    trackLag: boolean,
    private readonly shared: boolean,
  ) {
    super()
    this.localTimes = trackLag ? new LocalWriteTimes() : null
  }

  /**
   * `trackLag`: keep append times for replication lag (only relays with peers need them).
   * `shared`: other nodes of the region append to the same store (see `refresh`).
   */
  static async open (
    region: string,
    store: DocStore,
    { trackLag = true, shared = false }: { trackLag?: boolean, shared?: boolean } = {},
  ): Promise<ReplicationLog> {
    const log = new ReplicationLog(region, store, trackLag, shared)
    for (const [origin, seq] of Object.entries(await store.readHave())) {
      log.have.set(origin, seq)
      log.appended.set(origin, seq)
    }
    // Every sequence number so far counts: replicated entries take numbers too, which only
    // makes peers ask for entries after a higher mark that they then find none of.
    log.lastLocal = await store.lastSeq()
    return log
  }

  private toStoreOrigin (origin: string): string {
    return origin === this.region ? LOCAL_ORIGIN : origin
  }

  /** Appends a write made in this region (by a client, or a catch-up from a peer). */
  async appendLocal (docName: string, update: Uint8Array): Promise<number> {
    const seq = await this.store.append(docName, update)
    if (seq > this.lastLocal) this.lastLocal = seq
    this.localTimes?.add(seq, Date.now())
    this.emit('stored', docName, seq, update)
    this.emit('append', this.region)
    return seq
  }

  /**
   * Appends an entry replicated from `origin`, unless it is already held. Must be called in
   * the order entries arrive on a link. Returns the append, or null when skipped.
   */
  appendReplicated (docName: string, update: Uint8Array, origin: string, originSeq: number): Promise<number> | null {
    if (origin === this.region || originSeq <= (this.appended.get(origin) ?? 0)) return null
    if (this.poisoned.has(origin)) return Promise.reject(new Error(`an earlier append of ${origin}'s entries failed; waiting for the link to start over`))
    this.appended.set(origin, originSeq)
    const append = this.store.append(docName, update, { region: origin, seq: originSeq })
    return append.then(seq => {
      this.emit('stored', docName, seq, update)
      this.emit('append', origin)
      return seq
    }, err => {
      // Not stored: the sender must send it again, so stop skipping what is not durable.
      this.appended.set(origin, this.have.get(origin) ?? 0)
      this.poisoned.add(origin)
      throw err
    })
  }

  /**
   * Raises the marks to what the store holds, for a store the region's nodes share: a sibling
   * may have stored a peer's entries, or appended local ones, since this process last looked.
   */
  async refresh (): Promise<void> {
    if (!this.shared) return
    const [have, last] = await Promise.all([this.store.readHave(), this.store.lastSeq()])
    for (const [origin, seq] of Object.entries(have)) {
      if (seq > (this.have.get(origin) ?? 0)) this.have.set(origin, seq)
      if (seq > (this.appended.get(origin) ?? 0) && !this.poisoned.has(origin)) this.appended.set(origin, seq)
    }
    if (last > this.lastLocal) this.lastLocal = last
  }

  /** Records that all of `origin` up to `seq` is durable here. */
  async recordHave (origin: string, seq: number): Promise<void> {
    if (origin === this.region || this.poisoned.has(origin) || seq <= (this.have.get(origin) ?? 0)) return
    await this.store.writeHave(origin, seq)
    if (seq > (this.have.get(origin) ?? 0)) this.have.set(origin, seq)
    if (seq > (this.appended.get(origin) ?? 0)) this.appended.set(origin, seq)
    this.emit('have', origin, seq)
  }

  /** A peer link starts over from the durable marks: what was poisoned can be stored again. */
  startOver (): void {
    for (const origin of this.poisoned) this.appended.set(origin, this.have.get(origin) ?? 0)
    this.poisoned.clear()
  }

  /** This relay's durable marks, its own region included. */
  marks (): Marks {
    return { ...Object.fromEntries(this.have), [this.region]: this.lastLocal }
  }

  get lastLocalSeq (): number {
    return this.lastLocal
  }

  /** How many local entries after `acked` a peer still lacks (of those written since start). */
  pendingCount (acked: number): number {
    return this.localTimes?.countAfter(acked) ?? 0
  }

  /** When the local entry after `acked` was appended (undefined when none is pending). */
  pendingSince (acked: number): number | undefined {
    return this.localTimes?.since(acked)
  }

  /** Forgets append times every peer has acknowledged. */
  forgetTimesUpTo (seq: number): void {
    this.localTimes?.forgetUpTo(seq)
  }

  read (origin: string, after: number, limit: number): Promise<OriginRead> {
    return this.store.readOrigin(this.toStoreOrigin(origin), after, limit)
  }

  docsFoldedPast (origin: string, after: number): Promise<string[]> {
    return this.store.docsFoldedPast(this.toStoreOrigin(origin), after)
  }
}
