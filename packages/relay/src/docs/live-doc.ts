/**
 * A document while clients use it. The relay keeps it as encoded Yjs updates, never as a
 * `Y.Doc`: answering a sync needs only the merged state, its state vector and `diffUpdate`.
 * Every write is appended durably before anyone else sees it.
 */
import { CloseCode, encodeFrame, mergeUpdates, stateVectorOf } from '@georelay/core'
import type { RelayMetrics } from '../observability/index.js'
import { DEFAULT_PRESENCE_LIMITS, Presence, type PresenceLimits } from './presence.js'
import type { ReplicationLog } from '../replication/index.js'
import { RelayRefusal } from './relay-refusal.js'

/** Someone a document sends frames to: a client socket. */
export interface DocClient {
  readonly id: number
  send(frame: Uint8Array): void
  /** The document was erased: the client's session ends with this refusal (4410). */
  erased?(refusal: Error): void
}

/** Where a document's local awareness changes go beyond this relay (the mesh). */
export type AwarenessSink = (docName: string, update: Uint8Array) => void

/**
 * The state is kept as the merged base, then merged chunks, then the latest updates. Past
 * MAX_UNMERGED updates they are merged into a chunk (cheap: small updates among themselves);
 * past MAX_CHUNKS chunks everything is merged into the base (costly for a large document, so
 * rarely: merging a big base on every few hundred writes stalled acknowledgements).
 */
const MAX_UNMERGED = 64
const MAX_CHUNKS = 32
/** Updates merged into one broadcast at most (merging is superlinear). */
const MAX_BROADCAST_MERGE = 256

export interface LiveDocOptions {
  log: ReplicationLog
  metrics: RelayMetrics
  awarenessSink?: AwarenessSink
  /** A document's stored size past which client writes are refused. */
  maxBytes?: number
  /** After a broadcast, later updates gather this long before the next (0: once per turn). */
  fanoutWindowMs?: number
  presence?: PresenceLimits
  /** A write of this region's was stored (webhooks). */
  onWrite?: (docName: string, seq: number) => void
}

export class LiveDoc {
  readonly clients = new Set<DocClient>()
  /** Ephemeral presence; never stored. */
  readonly presence: Presence
  /** Grows with every update taken in: an answer computed at one version holds until the next. */
  version = 0
  /** Whether the cost of loading this document was charged to a client already. */
  loadCharged = false
  private readonly log: ReplicationLog
  private readonly metrics: RelayMetrics
  private readonly awarenessSink: AwarenessSink
  private readonly maxBytes: number
  private readonly fanoutWindowMs: number
  private readonly onWrite: ((docName: string, seq: number) => void) | undefined
  private parts: Uint8Array[]
  /** How many of `parts` after the base are merged chunks (the rest are single updates). */
  private chunks = 0
  /** At least the merged state's size (the parts' sum), exact right after a merge. */
  private bytes: number
  private stateVectorCache: Uint8Array | null = null
  private writesInFlight = 0
  /** Bytes of writes still being appended: they count against the size limit already. */
  private bytesInFlight = 0
  /** Durable updates waiting for this turn's broadcast, with the client each came from. */
  private outgoing: { update: Uint8Array, from: DocClient | null }[] = []
  private broadcastTimer: NodeJS.Immediate | NodeJS.Timeout | null = null
  private lastBroadcastAt = -Infinity

  constructor (readonly name: string, state: Uint8Array, options: LiveDocOptions) {
    this.log = options.log
    this.metrics = options.metrics
    this.awarenessSink = options.awarenessSink ?? (() => {})
    this.maxBytes = options.maxBytes ?? Number.POSITIVE_INFINITY
    this.fanoutWindowMs = options.fanoutWindowMs ?? 0
    this.onWrite = options.onWrite
    this.parts = [state]
    this.bytes = state.length
    this.presence = new Presence(options.presence ?? DEFAULT_PRESENCE_LIMITS)
  }

  /** About the size of the merged state (at least it; exact right after a merge). */
  get byteSize (): number {
    return this.bytes
  }

  private mergeRecent (): void {
    if (this.chunks >= MAX_CHUNKS) {
      this.state()
      return
    }
    const settled = 1 + this.chunks
    this.parts = [...this.parts.slice(0, settled), mergeUpdates(this.parts.slice(settled))]
    this.chunks++
  }

  /** Everything durable of the document, as one update. */
  state (): Uint8Array {
    if (this.parts.length > 1) {
      this.parts = [mergeUpdates(this.parts)]
      this.chunks = 0
      this.bytes = (this.parts[0] as Uint8Array).length
    }
    return this.parts[0] as Uint8Array
  }

  stateVector (): Uint8Array {
    this.stateVectorCache ??= stateVectorOf(this.state())
    return this.stateVectorCache
  }

  /** True while an append is in flight: the document must not be released yet. */
  get busy (): boolean {
    return this.writesInFlight > 0
  }

  /**
   * Appends a client's update durably, then sends it to every other client (and, through
   * the log, to peer regions). Appends resolve in order, so clients see a writer's updates
   * in order.
   */
  async write (update: Uint8Array, from: DocClient | null): Promise<number> {
    // The sum of parts over-counts (merging shrinks it), so merge before refusing.
    const growth = this.bytesInFlight + update.length
    if (this.bytes + growth > this.maxBytes && this.state().length + growth > this.maxBytes) {
      throw new RelayRefusal('ERR_DOC_TOO_LARGE', CloseCode.MessageTooLarge, `"${this.name}" would grow past ${this.maxBytes} bytes (limits.maxDocumentBytes); it stays readable, this write is refused`)
    }
    this.writesInFlight++
    this.bytesInFlight += update.length
    const end = this.metrics.storeAppendSeconds.startTimer()
    let seq: number
    try {
      seq = await this.log.appendLocal(this.name, update)
    } catch (err) {
      this.metrics.storeErrors.inc({ op: 'append' })
      throw err
    } finally {
      this.writesInFlight--
      this.bytesInFlight -= update.length
      end()
    }
    this.metrics.updatesIn.inc({ source: 'client' })
    this.metrics.updateBytesIn.inc({ source: 'client' }, update.length)
    this.applyDurable(update, from)
    this.onWrite?.(this.name, seq)
    return seq
  }

  /**
   * Takes in an update already durable in the store (from a client or a peer) and sends it to
   * the clients. Updates that become durable in the same turn (one group commit) go out merged,
   * as one frame per client: sending is most of a relay's cost, so fewer, larger frames win.
   */
  applyDurable (update: Uint8Array, from: DocClient | null): void {
    this.parts.push(update)
    this.bytes += update.length
    this.version++
    this.stateVectorCache = null
    if (this.parts.length - 1 - this.chunks > MAX_UNMERGED) this.mergeRecent()
    this.outgoing.push({ update, from })
    if (this.broadcastTimer !== null) return
    // The first update after a quiet spell goes out this turn; a fast stream is sent once per window.
    const wait = this.lastBroadcastAt + this.fanoutWindowMs - performance.now()
    this.broadcastTimer = wait <= 0
      ? setImmediate(() => this.broadcastOutgoing())
      : setTimeout(() => this.broadcastOutgoing(), wait)
  }

  private broadcastOutgoing (): void {
    this.broadcastTimer = null
    this.lastBroadcastAt = performance.now()
    const batch = this.outgoing
    this.outgoing = []
    if (this.clients.size === 0) return
    for (let i = 0; i < batch.length; i += MAX_BROADCAST_MERGE) {
      const chunk = batch.slice(i, i + MAX_BROADCAST_MERGE)
      const first = (chunk[0] as { from: DocClient | null }).from
      // One sender: it has all of it already. Several: each gets the others' too, and its own
      // back, which Yjs ignores (the stock y-websocket server echoes every update anyway).
      const except = chunk.every(e => e.from === first) ? first : null
      const update = chunk.length === 1
        ? (chunk[0] as { update: Uint8Array }).update
        : mergeUpdates(chunk.map(e => e.update))
      const sent = this.broadcast(encodeFrame({ type: 'sync-update', update }), except)
      this.metrics.updatesOut.inc({ target: 'client' }, sent)
    }
  }

  /** Sends one frame to every client but `except`: encoded once, the same bytes for all. */
  broadcast (frame: Uint8Array, except: DocClient | null): number {
    let sent = 0
    for (const client of this.clients) {
      if (client !== except) {
        client.send(frame)
        sent++
      }
    }
    return sent
  }

  /**
   * Applies what a local client may change of an awareness update (see presence.ts) and passes
   * that on to the other clients and regions.
   */
  applyLocalAwareness (update: Uint8Array, from: DocClient): void {
    const applied = this.applyPresence(update, from)
    if (applied === null) return
    this.broadcast(encodeFrame({ type: 'awareness', update: applied }), from)
    this.awarenessSink(this.name, applied)
  }

  /** Applies an awareness update from another region's client. */
  applyRemoteAwareness (update: Uint8Array, region: string): void {
    const applied = this.applyPresence(update, region)
    if (applied !== null) this.broadcast(encodeFrame({ type: 'awareness', update: applied }), null)
  }

  private applyPresence (update: Uint8Array, owner: DocClient | string): Uint8Array | null {
    const refusedBefore = this.presence.refused
    const applied = this.presence.apply(update, owner)
    const refused = this.presence.refused - refusedBefore
    if (refused > 0) this.metrics.presenceRefused.inc(refused)
    return applied
  }

  /** A local client left: its presence goes, here and in other regions. */
  removeClient (client: DocClient): void {
    const update = this.presence.removeAll(client)
    if (update === null) return
    this.broadcast(encodeFrame({ type: 'awareness', update }), null)
    this.awarenessSink(this.name, update)
  }

  /** The awareness states of this region's own clients, as one update (null when none). */
  localAwareness (): Uint8Array | null {
    return this.presence.localUpdate()
  }

  /** Removes every awareness state a region's clients had set here. */
  forgetRegion (region: string): void {
    const update = this.presence.removeAll(region)
    if (update !== null) this.broadcast(encodeFrame({ type: 'awareness', update }), null)
  }

  destroy (): void {
    if (this.broadcastTimer !== null) {
      clearImmediate(this.broadcastTimer as NodeJS.Immediate)
      clearTimeout(this.broadcastTimer as NodeJS.Timeout)
    }
    this.outgoing = []
    this.presence.destroy()
  }
}
