/**
 * One document of a GeoClient. It keeps the application's Y.Doc in step with the relay in use,
 * sends each local edit as an acknowledged write, keeps it in the offline store until the
 * relay acknowledges it at the session's level, and survives any number of region changes:
 * after each (re)attach it re-syncs by state vector and sends its pending writes again.
 */
import * as Y from 'yjs'
import * as awarenessProtocol from 'y-protocols/awareness'
import { ObservableV2 } from 'lib0/observable'
import {
  ACK_LEVELS, type AckLevel, CloseCode, MUX_PROTOCOL_VERSION, type MuxMessage, type OpenAck, type YMessage,
  decodeFrame, encodeFrame, fullJitter,
} from '@georelay/core'
import type { OfflineStore, PendingWrite } from './offline-store.js'

/** `stale`: synced, but the region is further behind another region than `maxStalenessMs`. */
export type SessionStatus = 'offline' | 'syncing' | 'pending' | 'synced' | 'stale'

export interface SessionEvents {
  /** The status changed: offline (no relay), syncing, pending (writes not yet durable at the level), synced. */
  status: (status: SessionStatus) => void
  /** A write was acknowledged at a level. */
  ack: (writeId: number, level: AckLevel) => void
  /**
   * The relay refused this document or a write. 4403 (the token does not allow it, or allows
   * reading only), 4413 (the document is at its size limit), 4410 (it was deleted: nothing of
   * it is served or stored any more) and 4307 (it lives in a region this client cannot move to,
   * see GeoClient) are not retried: the session waits for a new token (`client.setToken`).
   * Others are retried after a growing pause.
   */
  error: (error: Error & { code: number }) => void
  /** The acknowledgement level in force became known or changed (the namespace's default, told by the relay). */
  ackLevel: (level: AckLevel) => void
  /** The relay told how far behind its region is on the document's other regions. */
  staleness: (staleness: Readonly<Record<string, RegionLag>>) => void
}

/** How far behind the region in use is on one other region's writes, as its relay knows it. */
export interface RegionLag {
  /** How long it has lacked the oldest of that region's writes it lacks (0: none), in ms. */
  lagMs: number
  /** How many of that region's entries it lacks. */
  pending: number
}

export interface RefreshOptions {
  /** Every write acknowledged at this level anywhere before the call is then here (default `majority`). */
  level?: AckLevel
  /** How long to wait for the regions it must hear from (default 10 s). */
  timeoutMs?: number
}

/** Relays before this mux protocol know no `default` level and no strong reads. */
const DEFAULT_ACK_PROTOCOL = 3
/** A strong read's answer may lag its timeout by the relay's round trip. */
const REFRESH_SLACK_MS = 5000

export interface SessionOptions {
  /** The acknowledgement level of flush(); without it, the namespace's (`ack` of its rule; `local` if none). */
  ack?: AckLevel
  /** How long flush() waits before it rejects (default 30 s). */
  flushTimeoutMs?: number
  /**
   * Bounded staleness: `synced` waits, and `status` is `stale`, while the region in use is
   * further behind any other region of the document than this (default: no bound).
   */
  maxStalenessMs?: number
}

/** Something the session sends mux messages through (the client's current socket). */
export type Outbox = (message: MuxMessage) => void

const REMOTE = Symbol('georelay-remote')
/**
 * Refusals a retry cannot fix (see the error event); 4307 is a redirect the client cannot follow
 * (GeoClient's redirect loop).
 */
const NOT_RETRIED: readonly number[] = [CloseCode.Forbidden, CloseCode.MessageTooLarge, CloseCode.Gone, CloseCode.Moved]
/** How a document the relay closed after an error is opened again. */
const REOPEN = { baseMs: 500, maxMs: 30_000 }
/** Room for a mux message's own fields around an update. */
const MUX_OVERHEAD_BYTES = 32

const sizeOf = (bytes: number): string => bytes < 1024 * 1024 ? `${Math.round(bytes / 1024)} KB` : `${(bytes / 1024 / 1024).toFixed(1)} MB`

export class GeoSession extends ObservableV2<SessionEvents> {
  readonly awareness: awarenessProtocol.Awareness
  /** The level open() asked for (null: the namespace's default). */
  private readonly requested: AckLevel | null
  private level: AckLevel
  /** Whether `level` is the one in force (false until the relay told the namespace's default). */
  private levelKnown: boolean
  private relayVersion = MUX_PROTOCOL_VERSION
  private nextNonce = 1
  private readonly refreshes = new Map<number, (unreachable: string[] | null) => void>()
  private lags: Record<string, RegionLag> = {}
  private readonly maxStalenessMs: number | null
  /** Resolves once the first sync with a relay is done. */
  readonly synced: Promise<void>
  status: SessionStatus = 'offline'
  private resolveSynced!: () => void
  private outbox: Outbox | null = null
  /** The largest message the relay in use takes (0: it did not say). */
  private maxMessageBytes = 0
  /** Writes too large for the relay in use: kept, not sent, reported once each. */
  private readonly tooLarge = new Set<number>()
  private readonly pending = new Map<number, Uint8Array>()
  private nextWriteId = 1
  /** Highest write id acknowledged per level. */
  private readonly acked: Record<AckLevel, number> = { local: 0, majority: 0, all: 0 }
  private hasSynced = false
  /** Whether the sync with the relay in use is done (false again after each attach). */
  private syncedNow = false
  private closed = false
  private readonly ready: Promise<void>
  private readonly flushTimeoutMs: number
  private lastKept: Promise<void> = Promise.resolve()
  private retry: ReturnType<typeof setTimeout> | null = null
  private retries = 0
  /**
   * The relay refused with a code that a retry cannot fix, until a new token arrives: writes stay
   * pending and are not sent (each would be refused the same way).
   */
  private refusedWith: (Error & { code: number }) | null = null
  /**
   * The refusal answered the open (it came before the relay's step 2): the relay closed the
   * document, so later sockets do not open it again until a new token, and a socket already in
   * use here sends nothing more for it. A refused write (read-only) leaves the document open.
   */
  private refusedOpen = false
  /** The socket a document refused at open is kept for, to open it there once a new token comes. */
  private parked: Outbox | null = null
  private restored = false
  /** Local edits made before the restore finished. */
  private readonly early: Uint8Array[] = []

  constructor (
    readonly name: string,
    readonly doc: Y.Doc,
    readonly docId: number,
    private readonly store: OfflineStore,
    private readonly onClose: (session: GeoSession) => void,
    options: SessionOptions = {},
    /** The region of the relay in use (for messages). */
    private readonly regionInUse: () => string | null = () => null,
  ) {
    super()
    this.requested = options.ack ?? null
    this.level = options.ack ?? 'local'
    this.levelKnown = options.ack !== undefined
    this.flushTimeoutMs = options.flushTimeoutMs ?? 30_000
    this.maxStalenessMs = options.maxStalenessMs ?? null
    this.synced = new Promise(resolve => { this.resolveSynced = resolve })
    this.awareness = new awarenessProtocol.Awareness(doc)
    doc.on('update', this.onDocUpdate)
    this.awareness.on('update', this.onAwarenessUpdate)
    this.ready = this.restore()
  }

  /**
   * The acknowledgement level flush() waits for: the one open() asked for, else the namespace's
   * default as the relay told it (`local` until then, and with relays that do not tell).
   */
  get ackLevel (): AckLevel {
    return this.level
  }

  /**
   * Per other region of the document: how far behind the region in use is known to be on its
   * writes, as the relay last told it (every second while it changes).
   */
  get staleness (): Readonly<Record<string, RegionLag>> {
    return this.lags
  }

  /** The same as `ackLevel` (the name of earlier versions). */
  get ack (): AckLevel {
    return this.level
  }

  /**
   * A strong read: resolves once this replica holds every update acknowledged at `level`
   * (default `majority`) anywhere before the call — the relay pulls what its region lacks from
   * enough other regions and sends it here first. Rejects after `timeoutMs` naming the regions
   * it could not hear from (a partition), or at once while offline.
   */
  refresh ({ level = 'majority', timeoutMs = 10_000 }: RefreshOptions = {}): Promise<void> {
    const outbox = this.outbox
    if (outbox === null || this.closed) return Promise.reject(new Error(`"${this.name}" is offline: a strong read needs a relay; wait for status 'synced'`))
    if (this.relayVersion < DEFAULT_ACK_PROTOCOL) return Promise.reject(new Error(`the relay in use speaks mux protocol ${this.relayVersion}, which has no strong reads: upgrade it`))
    const nonce = this.nextNonce++
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => finish(null), timeoutMs + REFRESH_SLACK_MS)
      const finish = (unreachable: string[] | null): void => {
        clearTimeout(timer)
        this.refreshes.delete(nonce)
        if (unreachable === null) return reject(new Error(`strong read of "${this.name}" at '${level}' got no answer from the relay within ${timeoutMs + REFRESH_SLACK_MS} ms`))
        if (unreachable.length === 0) return resolve()
        reject(Object.assign(new Error(`strong read of "${this.name}" at '${level}' timed out after ${timeoutMs} ms: no answer from ${unreachable.join(', ')}`), { unreachable }))
      }
      this.refreshes.set(nonce, finish)
      outbox({ type: 'refresh', docId: this.docId, nonce, level, timeoutMs })
    })
  }

  /** Every local edit so far is durable at the session's level; rejects after the timeout. */
  async flush (timeoutMs = this.flushTimeoutMs): Promise<void> {
    // Edits restored from the offline store count too, so wait until they are back.
    await this.ready
    const target = this.nextWriteId - 1
    const deadline = Date.now() + timeoutMs
    if (!this.levelKnown) await this.levelInForce(timeoutMs, target)
    const left = Math.max(0, deadline - Date.now())
    const level = this.level
    if (this.acked[level] >= target) return Promise.resolve()
    return new Promise((resolve, reject) => {
      const check = (): void => {
        if (this.acked[level] < target) return
        clearTimeout(timer)
        this.off('ack', check)
        resolve()
      }
      const timer = setTimeout(() => {
        this.off('ack', check)
        reject(new Error(`flush of "${this.name}" timed out after ${timeoutMs} ms: ${this.whereDurable(level, target)}`))
      }, left)
      this.on('ack', check)
    })
  }

  /**
   * Where the edits of a flush that timed out are, in regions: the relay in use has them or not,
   * how many regions the level needs, and which other regions the relay last heard of late (a
   * region it has no fresh word from cannot be counted).
   */
  private whereDurable (level: AckLevel, target: number): string {
    const missing = target - this.acked[level]
    const edits = `${missing} edit${missing === 1 ? '' : 's'}`
    const here = this.regionInUse() ?? 'the region in use'
    if (this.tooLarge.size > 0) {
      const n = this.tooLarge.size
      return `${n} edit${n === 1 ? ' is' : 's are'} larger than the relay takes in one message (the 4413 error): kept here, not sent, and waited for (status ${this.status})`
    }
    if (this.acked.local < target) {
      const why = this.refusedWith !== null ? `the relay refused them (${this.refusedWith.code}: see session.refusal)`
        : this.outbox === null ? 'no relay is reachable' : `the relay of ${here} has not stored them yet`
      return `${edits} not yet durable in any region: ${why} (status ${this.status}); they are kept here and sent again on the next connection`
    }
    const regions = Object.entries(this.lags)
    if (regions.length === 0) return `${edits} durable in ${here} only, not yet at '${level}'; check the other regions' health`
    const count = regions.length + 1
    const need = level === 'all' ? count : Math.floor(count / 2) + 1
    const rule = count === 2 && level === 'majority' ? ' (with two regions, majority is both)' : ''
    const seconds = (ms: number): string => ms < 1000 ? `${ms} ms` : `${(ms / 1000).toFixed(1)} s`
    const others = regions.map(([region, lag]) => lag.lagMs > 0 || lag.pending > 0 ? `${region} (no fresh word from it for ${seconds(lag.lagMs)})` : region)
    const waiting = need - 1 === others.length ? others.join(' and ') : `${need - 1} of ${others.join(', ')}`
    return `${edits} durable in 1 of the document's ${count} regions (${here}); '${level}' needs ${need}${rule}; waiting for ${waiting}`
  }

  /** Waits for the relay to tell the namespace's level (it does in answer to `open`). */
  private levelInForce (timeoutMs: number, target: number): Promise<void> {
    return new Promise((resolve, reject) => {
      const known = (): void => {
        clearTimeout(timer)
        this.off('ackLevel', known)
        resolve()
      }
      const timer = setTimeout(() => {
        this.off('ackLevel', known)
        const where = this.acked.local >= target ? `its edits are durable in ${this.regionInUse() ?? 'the region in use'}` : this.whereDurable('local', target)
        reject(new Error(`flush of "${this.name}" timed out after ${timeoutMs} ms: no relay has told the ack level of its namespace yet; ${where}`))
      }, timeoutMs)
      this.on('ackLevel', known)
    })
  }

  /** Resolves once every local edit so far is in the offline store (survives a crash here). */
  async whenKept (): Promise<void> {
    await this.ready // edits made before the restore finished are kept only after it
    await this.lastKept
  }

  /** Writes made but not yet acknowledged at the session's level. */
  get pendingWrites (): number {
    return this.pending.size
  }

  close (): void {
    if (this.closed) return
    this.closed = true
    this.doc.off('update', this.onDocUpdate)
    this.awareness.off('update', this.onAwarenessUpdate)
    awarenessProtocol.removeAwarenessStates(this.awareness, [this.doc.clientID], 'close')
    this.outbox?.({ type: 'close', docId: this.docId })
    // Its timer would keep a Node process alive.
    this.awareness.destroy()
    this.outbox = null
    this.cancelRetry()
    this.onClose(this)
  }

  /** Starts using a relay: open the document, sync, send presence and pending writes. */
  async attach (
    outbox: Outbox, maxMessageBytes = this.maxMessageBytes, relayVersion = this.relayVersion,
  ): Promise<void> {
    await this.ready
    if (this.closed) return
    if (this.refusedOpen) {
      this.parked = outbox
      return
    }
    this.outbox = outbox
    this.maxMessageBytes = maxMessageBytes
    this.relayVersion = relayVersion
    this.syncedNow = false
    this.setStatus('syncing')
    // A relay of protocol 2 knows no default: the session then uses local, as it always did.
    const ack: OpenAck = this.requested ?? (relayVersion >= DEFAULT_ACK_PROTOCOL ? 'default' : 'local')
    if (ack === 'local' && this.requested === null) this.setLevel('local')
    outbox({ type: 'open', docId: this.docId, docName: this.name, ack })
    this.sendFrame({ type: 'sync-step1', stateVector: Y.encodeStateVector(this.doc) })
    if (this.awareness.getLocalState() !== null) {
      this.sendFrame({ type: 'awareness', update: awarenessProtocol.encodeAwarenessUpdate(this.awareness, [this.doc.clientID]) })
    }
    if (this.refusedWith === null) for (const [writeId, update] of this.pending) this.sendWrite(writeId, update)
  }

  /** Why the relay refused this document or its writes (see the error event), until a new token. */
  get refusal (): (Error & { code: number }) | null {
    return this.refusedWith
  }

  /**
   * Sends a write unless it is larger than the relay takes in one message: then it stays in the
   * offline store (and in `pendingWrites`), and an error event says so and what to do, once.
   * Sending it would only get the socket closed, and every reconnect would send it again.
   */
  private sendWrite (writeId: number, update: Uint8Array): void {
    if (this.outbox === null || this.refusedWith !== null) return
    if (this.fits(update.length)) {
      this.tooLarge.delete(writeId)
      this.outbox({ type: 'write', docId: this.docId, writeId, update })
      return
    }
    if (this.tooLarge.has(writeId)) return
    // A relay that takes it later (its limit raised) gets it sent again on attach.
    this.tooLarge.add(writeId)
    this.emit('error', [Object.assign(new Error(
      `an edit of "${this.name}" is ${sizeOf(update.length)}, more than the ${sizeOf(this.maxMessageBytes)} the relay takes in one message ` +
      '(its limits.maxMessageBytes): it is kept in this client\'s offline store and not sent. Ask the relay\'s operator to raise ' +
      'limits.maxMessageBytes, or make such changes in smaller transactions.',
    ), { code: CloseCode.MessageTooLarge })])
  }

  private fits (bytes: number): boolean {
    return this.maxMessageBytes === 0 || bytes + MUX_OVERHEAD_BYTES <= this.maxMessageBytes
  }

  /** The client has a new token: a document it refused may be allowed now. */
  tokenChanged (): void {
    if (this.refusedWith === null) return
    this.refusedWith = null
    this.refusedOpen = false
    const outbox = this.outbox ?? this.parked
    this.parked = null
    if (outbox !== null && !this.closed) void this.attach(outbox)
  }

  /** The relay is gone; edits go on locally and wait. */
  detach (): void {
    this.outbox = null
    this.parked = null
    this.cancelRetry()
    if (!this.closed) this.setStatus('offline')
  }

  /** A mux message for this document from the relay. */
  receive (message: MuxMessage): void {
    if (this.closed) return
    switch (message.type) {
      case 'sync':
        for (const m of decodeFrame(message.payload)) this.handleFrame(m)
        return
      case 'ack':
        return this.acknowledge(message.writeId, message.level)
      case 'opened':
        return this.setLevel(message.ack)
      case 'refreshed':
        return this.refreshes.get(message.nonce)?.(message.unreachable)
      case 'staleness':
        this.lags = Object.fromEntries(message.regions.map(s => [s.region, { lagMs: s.lagMs, pending: s.pending }]))
        this.emit('staleness', [this.lags])
        this.settleSynced()
        return this.updateStatus()
      case 'error': {
        const error = Object.assign(new Error(`the relay refused document "${this.name}": ${message.reason} (${message.code})`), { code: message.code })
        this.emit('error', [error])
        if (!NOT_RETRIED.includes(message.code)) return this.retryLater()
        this.refusedWith = error
        if (!this.syncedNow) {
          this.refusedOpen = true
          this.parked = this.outbox
          this.outbox = null
        }
        return
      }
      default:
    }
  }

  private handleFrame (message: YMessage): void {
    switch (message.type) {
      case 'sync-step1': {
        const update = Y.encodeStateAsUpdate(this.doc, message.stateVector)
        // Too large for one message: the edits in it travel as pending writes (or are reported above).
        if (this.fits(update.length)) this.sendFrame({ type: 'sync-step2', update })
        else this.sendFrame({ type: 'sync-step2', update: Y.encodeStateAsUpdate(new Y.Doc()) })
        return
      }
      case 'sync-step2':
        Y.applyUpdate(this.doc, message.update, REMOTE)
        this.syncedNow = true
        this.retries = 0
        this.settleSynced()
        this.updateStatus()
        return
      case 'sync-update':
        Y.applyUpdate(this.doc, message.update, REMOTE)
        return
      case 'awareness':
        awarenessProtocol.applyAwarenessUpdate(this.awareness, message.update, REMOTE)
        return
      case 'query-awareness':
        this.sendFrame({ type: 'awareness', update: awarenessProtocol.encodeAwarenessUpdate(this.awareness, [...this.awareness.getStates().keys()]) })
        return
      case 'auth-denied':
        this.emit('error', [Object.assign(new Error(`access to "${this.name}" denied: ${message.reason}`), { code: CloseCode.Forbidden })])
    }
  }

  /**
   * The relay closed this document after an error (a refused update, a store that failed):
   * open it again on the same socket after a growing, jittered pause, so pending writes get
   * another chance without hammering the relay.
   */
  private retryLater (): void {
    const outbox = this.outbox
    if (outbox === null || this.closed) return
    this.cancelRetry()
    const delay = fullJitter(this.retries++, REOPEN)
    this.retry = setTimeout(() => {
      this.retry = null
      if (this.outbox === outbox && !this.closed) void this.attach(outbox)
    }, delay)
  }

  private cancelRetry (): void {
    if (this.retry !== null) clearTimeout(this.retry)
    this.retry = null
  }

  private sendFrame (message: YMessage): void {
    this.outbox?.({ type: 'sync', docId: this.docId, payload: encodeFrame(message) })
  }

  /**
   * Edits made in an earlier life of this client (a reload, a crash) come back first; edits
   * made meanwhile wait, so that write ids keep growing after the restored ones.
   */
  private async restore (): Promise<void> {
    try {
      await this.restoreFromStore()
    } catch (err) {
      this.emit('error', [Object.assign(new Error(`could not read pending edits from the offline store: ${(err as Error).message}`), { code: 0 })])
    }
    this.restored = true
    for (const update of this.early.splice(0)) this.record(update)
  }

  private async restoreFromStore (): Promise<void> {
    const writes: PendingWrite[] = await this.store.load(this.name)
    if (writes.length === 0) return
    Y.transact(this.doc, () => {
      for (const write of writes) Y.applyUpdate(this.doc, write.update, REMOTE)
    }, REMOTE)
    for (const write of writes) this.pending.set(write.writeId, write.update)
    this.nextWriteId = Math.max(this.nextWriteId, (writes[writes.length - 1] as PendingWrite).writeId + 1)
  }

  private readonly onDocUpdate = (update: Uint8Array, origin: unknown): void => {
    if (origin === REMOTE || this.closed) return
    if (!this.restored) {
      this.early.push(update)
      return
    }
    this.record(update)
  }

  private record (update: Uint8Array): void {
    const writeId = this.nextWriteId++
    this.pending.set(writeId, update)
    // Kept before it is sent: if the process dies right after sending, the edit survives.
    const kept = this.store.put(this.name, { writeId, update })
    this.lastKept = this.lastKept.then(() => kept).catch(() => {})
    kept.then(() => this.sendWrite(writeId, update), err => this.emit('error', [Object.assign(new Error(`the offline store failed; edits are kept in memory only: ${(err as Error).message}`), { code: 0 })]))
    this.updateStatus()
  }

  private readonly onAwarenessUpdate = (
    { added, updated, removed }: { added: number[], updated: number[], removed: number[] },
    origin: unknown,
  ): void => {
    if (origin === REMOTE) return
    const changed = [...added, ...updated, ...removed]
    this.sendFrame({ type: 'awareness', update: awarenessProtocol.encodeAwarenessUpdate(this.awareness, changed) })
  }

  private setLevel (level: AckLevel): void {
    const changed = level !== this.level || !this.levelKnown
    this.level = level
    this.levelKnown = true
    if (changed) this.emit('ackLevel', [level])
    this.updateStatus()
  }

  private acknowledge (writeId: number, level: AckLevel): void {
    // Acknowledgements of one level arrive in write order, so each covers the ones before it;
    // except a write too large to send, which no acknowledgement covers: it and what follows
    // stay kept (and count as not durable) until it is sent.
    const unsent = Math.min(...[...this.tooLarge].filter(id => this.pending.has(id)))
    const covered = Math.min(writeId, unsent - 1)
    for (const l of ACK_LEVELS.slice(0, ACK_LEVELS.indexOf(level) + 1)) this.acked[l] = Math.max(this.acked[l], covered)
    if (ACK_LEVELS.indexOf(level) >= ACK_LEVELS.indexOf(this.ack) && covered > 0) {
      for (const id of [...this.pending.keys()]) if (id <= covered) this.pending.delete(id)
      this.store.remove(this.name, covered).catch(() => {})
    }
    this.emit('ack', [writeId, level])
    this.updateStatus()
  }

  /** Whether the region in use is further behind another region than maxStalenessMs. */
  private get tooStale (): boolean {
    const max = this.maxStalenessMs
    return max !== null && Object.values(this.lags).some(lag => lag.lagMs > max)
  }

  /** `synced` resolves at the first sync done while the region is not too stale. */
  private settleSynced (): void {
    if (this.hasSynced || !this.syncedNow || this.tooStale) return
    this.hasSynced = true
    this.resolveSynced()
  }

  private updateStatus (): void {
    if (this.outbox === null) return this.setStatus('offline')
    if (!this.syncedNow) return this.setStatus('syncing')
    if (this.tooStale) return this.setStatus('stale')
    this.setStatus(this.pending.size > 0 ? 'pending' : 'synced')
  }

  private setStatus (status: SessionStatus): void {
    if (status === this.status) return
    this.status = status
    this.emit('status', [status])
  }
}
