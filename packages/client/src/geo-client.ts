/**
 * The SDK's entry point: one socket to the nearest region for any number of documents.
 *
 * It measures the round trip to every region and connects to the nearest. A closed socket, an
 * error, or silence past the heartbeat timeout moves it at once to the next-nearest region that
 * answers; when none does, it retries with jittered exponential backoff, so that thousands of
 * clients do not come back in one wave. It measures again from time to time and moves back to a
 * nearer region only when that one is clearly and steadily better. Edits go on locally
 * throughout; every session re-syncs by state vector after each move.
 */
import type * as Y from 'yjs'
import { ObservableV2 } from 'lib0/observable'
import {
  CloseCode, type MuxMessage, type RegionEndpoint, decodeMuxMessage, docNameProblem, encodeMuxMessage, fullJitter,
  isReservedName, parseMovedReason,
} from '@georelay/core'
import { createOfflineStore, type OfflineStoreSpec } from './create-offline-store.js'
import { GeoSession, type SessionOptions } from './geo-session.js'
import type { OfflineStore } from './offline-store.js'
import { checkRegions } from './client-options-check.js'
import { DEFAULT_FAILBACK, type FailbackRule, type Fetch, RegionPicker, type RegionSpec, httpUrlOf, nodesOf } from './region-picker.js'
import { OPEN, type SocketConstructor, type SocketLike, resolveWebSocket } from './websocket-impl.js'

export type RegionChangeReason = 'initial' | 'failover' | 'failback' | 'redirect'

export interface RegionChange {
  region: string
  /** The URL of the node in use now (a region of several nodes may change node, not region). */
  node: string
  previous: string | null
  reason: RegionChangeReason
}

export interface GeoClientEvents {
  /** The client now uses another region, and why. */
  region: (change: RegionChange) => void
  /** Every region failed: why (the last failure), and when the client tries again. */
  offline: (info: OfflineInfo) => void
  /**
   * The relay refused the client's token (4401: missing, expired, badly signed): the client
   * stops retrying until `setToken()` gives it another. `code` is 4401, the message the relay's.
   */
  error: (error: Error & { code: number }) => void
  /** Something went wrong that the client handles itself; for logs. */
  warning: (message: string) => void
}

export interface OfflineInfo {
  /** The last failure, in words (a close code and reason, or a connection error). */
  reason: string
  /** How long until the next attempt, in ms. */
  retryInMs: number
  /** When the next attempt is (ms since the epoch). */
  retryAt: number
}

export interface GeoClientOptions {
  /**
   * The regions and their relays' URLs (`{ name, url }`, or `{ name, urls }` for a region of
   * several nodes, whose other nodes are tried before another region); or give `discoveryUrl`.
   */
  regions?: RegionSpec[]
  /** Any relay's URL (ws:// or http://): its /v1/regions lists every region. */
  discoveryUrl?: string
  token?: string
  /** Where pending edits wait for acknowledgement (default 'memory'). */
  offline?: OfflineStoreSpec
  WebSocket?: SocketConstructor
  fetch?: Fetch
  /** How often the client pings the relay (default 1000 ms)… */
  heartbeatMs?: number
  /** …and how long a silent relay is given before the client moves (default 2500 ms). */
  heartbeatTimeoutMs?: number
  /** How often round trips are measured again for failback (default 30 s; 0: never). */
  probeIntervalMs?: number
  failback?: Partial<FailbackRule>
  /** Retry backoff when every region is down (full jitter between 0 and the ceiling). */
  backoff?: { baseMs?: number, maxMs?: number }
  /** A failover waits a random 0…this many ms, to spread clients out (default 250). */
  failoverJitterMs?: number
  /**
   * A region to use whenever it answers, instead of the nearest: the others are for failover,
   * and the client moves back to it at the next measurement after it returns.
   */
  preferRegion?: string
}

/** A redirect back to a region that redirected this client within this long is a loop. */
const REDIRECT_LOOP_MS = 10_000

/** Where a 4307 close sends the client (its reason is `REGION URL : words`). */
const movedTo = (reason: string): RegionEndpoint | null => {
  const moved = parseMovedReason(reason)
  return moved === null ? null : { name: moved.region, url: moved.url }
}

const defaultFetch: Fetch = (url, init) => (globalThis.fetch as unknown as Fetch)(url, init)

export class GeoClient extends ObservableV2<GeoClientEvents> {
  /** The region in use (null while none). */
  region: string | null = null
  /** Every node the client knows, one entry each (a region of several nodes has several). */
  regions: RegionEndpoint[] = []
  /** The URL of the node in use (null while none). */
  node: string | null = null
  readonly ready: Promise<void>
  private picker!: RegionPicker
  private store!: OfflineStore
  private WebSocketImpl!: SocketConstructor
  private socket: SocketLike | null = null
  private readonly sessions = new Map<string, GeoSession>()
  private readonly byId = new Map<number, GeoSession>()
  private nextDocId = 1
  private closed = false
  private attempt = 0
  private lastHeard = 0
  private heartbeat: ReturnType<typeof setInterval> | null = null
  private prober: ReturnType<typeof setInterval> | null = null
  private retry: ReturnType<typeof setTimeout> | null = null
  private nonce = 0
  /** The largest message the relay in use takes (0: it did not say). */
  private maxMessageBytes = 0
  /** The mux protocol of the relay in use (from its welcome). */
  private relayVersion = 0
  private readonly options: Required<Pick<GeoClientOptions, 'heartbeatMs' | 'heartbeatTimeoutMs' | 'probeIntervalMs' | 'failoverJitterMs'>> & { backoff: { baseMs: number, maxMs: number } }

  /** The token sent when connecting (`setToken` replaces it). */
  private token: string | undefined
  /** When each region last redirected this client away, to tell a redirect loop. */
  private readonly redirectedAway = new Map<string, number>()
  /** The last dial's failure, for the `offline` event. */
  private lastFailure = 'no region answered'
  /** The token was refused (4401): nothing is dialled until setToken(). */
  private waitingForToken = false

  constructor (private readonly init: GeoClientOptions) {
    super()
    this.token = init.token
    if ((init.regions === undefined || init.regions.length === 0) && init.discoveryUrl === undefined) {
      throw new Error('GeoClient needs `regions` ([{ name, url }]) or a `discoveryUrl`')
    }
    if (init.regions !== undefined) checkRegions(init.regions)
    this.options = {
      heartbeatMs: init.heartbeatMs ?? 1000,
      heartbeatTimeoutMs: init.heartbeatTimeoutMs ?? 2500,
      probeIntervalMs: init.probeIntervalMs ?? 30_000,
      failoverJitterMs: init.failoverJitterMs ?? 250,
      backoff: { baseMs: init.backoff?.baseMs ?? 250, maxMs: init.backoff?.maxMs ?? 10_000 },
    }
    this.ready = this.start()
    this.ready.catch(err => this.emit('warning', [`client start failed: ${(err as Error).message}`]))
  }

  /**
   * Opens a document: binds `doc` to it for as long as the session lives. Only one session per
   * name per client.
   */
  open (name: string, doc: Y.Doc, options: SessionOptions = {}): GeoSession {
    if (this.closed) throw new Error('this GeoClient is closed')
    if (this.sessions.has(name)) throw new Error(`"${name}" is already open on this client: use its session, or close it first`)
    // The relay would refuse it (4400); saying it here names the call that was wrong.
    const problem = docNameProblem(name) ?? (isReservedName(name) ? `"${name}" is reserved for the relay's endpoints` : null)
    if (problem !== null) throw new TypeError(`open(${JSON.stringify(name)}): ${problem} (docs/protocol.md, document names)`)
    const session = new GeoSession(
      name, doc, this.nextDocId++, this.storeProxy, s => this.forget(s), options, () => this.region,
    )
    this.sessions.set(name, session)
    this.byId.set(session.docId, session)
    if (this.socket !== null && this.region !== null) {
      void session.attach(m => this.send(m), this.maxMessageBytes, this.relayVersion)
    }
    return session
  }

  /** Closes every session and the socket. Pending edits stay in the offline store. */
  async close (): Promise<void> {
    if (this.closed) return
    this.closed = true
    for (const session of [...this.sessions.values()]) session.close()
    this.stopTimers()
    const socket = this.socket
    this.socket = null
    socket?.close(CloseCode.Normal, 'client closed')
    await this.ready.catch(() => {})
    await this.store?.close()
  }

  /** The offline store is created asynchronously; sessions wait for it through this. */
  private readonly storeProxy: OfflineStore = {
    load: async name => (await this.storeReady).load(name),
    put: async (name, write) => (await this.storeReady).put(name, write),
    remove: async (name, upTo) => (await this.storeReady).remove(name, upTo),
    close: async () => {},
  }

  private storeReady!: Promise<OfflineStore>

  private async start (): Promise<void> {
    this.storeReady = createOfflineStore(this.init.offline ?? 'memory')
    this.store = await this.storeReady
    this.WebSocketImpl = await resolveWebSocket(this.init.WebSocket)
    this.regions = this.init.regions === undefined
      ? await this.discover(this.init.discoveryUrl as string)
      : nodesOf(this.init.regions)
    this.picker = new RegionPicker(
      this.regions,
      this.init.fetch ?? defaultFetch,
      { ...DEFAULT_FAILBACK, ...this.init.failback },
      this.init.preferRegion ?? null,
    )
    await this.picker.measure()
    if (this.closed) return
    this.connectFrom(this.picker.ranked(), null, 'initial')
    if (this.options.probeIntervalMs > 0) {
      this.prober = setInterval(() => { void this.probe() }, this.options.probeIntervalMs)
    }
  }

  private async discover (url: string): Promise<RegionEndpoint[]> {
    const res = await (this.init.fetch ?? defaultFetch)(httpUrlOf(url, '/v1/regions'))
    if (!res.ok) throw new Error(`discovery at ${url} failed: /v1/regions did not answer 200`)
    type Listed = { name: string, url: string, nodes?: { url: string }[] }
    const body = JSON.parse(await res.text()) as { regions?: Listed[] }
    if (!Array.isArray(body.regions) || body.regions.length === 0) throw new Error(`discovery at ${url} returned no regions`)
    // A region of several nodes lists them: each is a place to fail over to before another region.
    return body.regions.flatMap(r => Array.isArray(r.nodes) && r.nodes.length > 0
      ? r.nodes.map(n => ({ name: r.name, url: n.url }))
      : [{ name: r.name, url: r.url }])
  }

  /**
   * Tries nodes in order until one welcomes the client. `failed` is the node that just failed:
   * its region's other nodes come first (a node died, not the region), then the other regions,
   * and the failed node last, not away, since it may be the only one left.
   */
  private connectFrom (order: RegionEndpoint[], failed: RegionEndpoint | null, reason: RegionChangeReason): void {
    const candidates = failed === null
      ? order
      : [
        ...order.filter(r => r.name === failed.name && r.url !== failed.url),
        ...order.filter(r => r.name !== failed.name),
        ...order.filter(r => r.url === failed.url),
      ]
    const tryAt = (i: number): void => {
      if (this.closed) return
      const region = candidates[i]
      if (region === undefined) return this.backOff()
      this.dial(region, reason, () => tryAt(i + 1))
    }
    tryAt(0)
  }

  /** Opens a socket to `region`; `next` runs if it fails before the welcome. */
  private dial (region: RegionEndpoint, reason: RegionChangeReason, next: () => void): void {
    const url = `${region.url.replace(/\/+$/, '')}/v1/mux${this.token === undefined ? '' : `?token=${encodeURIComponent(this.token)}`}`
    let socket: SocketLike
    try {
      socket = new this.WebSocketImpl(url)
    } catch (err) {
      this.emit('warning', [`cannot open ${url}: ${(err as Error).message}`])
      return next()
    }
    socket.binaryType = 'arraybuffer'
    let welcomed = false
    // A relay that accepts TCP but never welcomes is as good as down.
    const giveUp = setTimeout(() => { if (!welcomed) socket.close(4000, 'no welcome in time') }, this.options.heartbeatTimeoutMs)
    socket.onmessage = event => {
      let message: MuxMessage
      try {
        message = decodeMuxMessage(new Uint8Array(event.data as ArrayBuffer))
      } catch (err) {
        this.emit('warning', [`malformed message from ${region.name}: ${(err as Error).message}`])
        return
      }
      this.lastHeard = Date.now()
      if (message.type === 'welcome' && !welcomed) {
        welcomed = true
        clearTimeout(giveUp)
        const node = { name: message.region, url: region.url }
        this.relayVersion = message.version
        return this.adopt(socket, node, reason, message.regions, message.maxMessageBytes)
      }
      if (socket === this.socket) this.handle(message)
    }
    socket.onclose = event => {
      clearTimeout(giveUp)
      const moved = event.code === CloseCode.Moved ? movedTo(event.reason) : null
      if (moved !== null && (socket === this.socket || !welcomed)) return this.redirect(moved, socket)
      // Another region would refuse the same token: say so once and wait for a new one.
      const ours = socket === this.socket || !welcomed
      if (event.code === CloseCode.Unauthenticated && ours) return this.refusedToken(region, event.reason)
      const how = welcomed ? 'closed the connection' : 'refused the connection'
      this.lastFailure = `${region.name} (${region.url}) ${how} (${event.code}${event.reason === '' ? '' : `: ${event.reason}`})`
      if (!welcomed) return next()
      if (socket !== this.socket) return
      this.lost(`${region.name} closed the connection (${event.code}${event.reason === '' ? '' : `: ${event.reason}`})`)
    }
    socket.onerror = () => {}
  }

  /** A welcomed socket becomes the client's socket; the previous one (failback) is closed. */
  private adopt (
    socket: SocketLike,
    node: RegionEndpoint,
    reason: RegionChangeReason,
    regions: RegionEndpoint[],
    maxMessageBytes: number,
  ): void {
    if (this.closed) return socket.close(CloseCode.Normal, 'client closed')
    const previousSocket = this.socket
    const previous = this.region
    const region = node.name
    this.socket = socket
    this.region = region
    this.node = node.url
    this.maxMessageBytes = maxMessageBytes
    this.attempt = 0
    if (regions.length > 0) this.mergeRegions(regions)
    for (const session of this.sessions.values()) {
      session.detach()
      void session.attach(m => this.send(m), maxMessageBytes, this.relayVersion)
    }
    if (previousSocket !== null) previousSocket.close(CloseCode.Normal, `moving to ${region}`)
    this.startHeartbeat()
    this.emit('region', [{ region, node: node.url, previous, reason }])
  }

  private mergeRegions (regions: RegionEndpoint[]): void {
    for (const r of regions) if (!this.regions.some(k => k.name === r.name)) this.regions.push(r)
    this.picker.regions = this.regions
  }

  private handle (message: MuxMessage): void {
    switch (message.type) {
      case 'pong': return
      case 'redirect': {
        // Sent back to a region that just sent us away: this document and another open one
        // live in different regions, and one socket cannot serve both.
        const now = Date.now()
        const sentAwayAt = this.redirectedAway.get(message.region)
        if (sentAwayAt !== undefined && now - sentAwayAt < REDIRECT_LOOP_MS) {
          return this.byId.get(message.docId)?.receive({
            type: 'error',
            docId: message.docId,
            code: CloseCode.Moved,
            reason: `it lives in ${message.region}, but this client's other documents keep it in ${this.region ?? 'another region'}; open it with a second GeoClient`,
          })
        }
        if (this.region !== null) this.redirectedAway.set(this.region, now)
        return this.redirect({ name: message.region, url: message.url }, this.socket)
      }
      default:
        if ('docId' in message) this.byId.get(message.docId)?.receive(message)
    }
  }

  /** The relay says this client's documents live elsewhere: go there (with its known URL if any). */
  private redirect (target: RegionEndpoint, from: SocketLike | null): void {
    const known = this.regions.find(r => r.name === target.name) ?? target
    if (from === this.socket && from !== null) {
      this.socket = null
      this.stopHeartbeat()
      for (const session of this.sessions.values()) session.detach()
      from.close(CloseCode.Normal, `redirected to ${target.name}`)
    }
    this.dial(known, 'redirect', () => {
      this.emit('warning', [`redirected to ${known.name}, which did not answer; trying the others`])
      this.connectFrom(this.picker.ranked(), null, 'failover')
    })
  }

  /**
   * Replaces the token: sent at once on the socket in use (documents stay open; those the new
   * token allows again are reopened) and used for every later connection.
   */
  setToken (token: string): void {
    this.token = token
    this.send({ type: 'auth', token })
    for (const session of this.sessions.values()) session.tokenChanged()
    if (this.waitingForToken && !this.closed) {
      this.waitingForToken = false
      this.attempt = 0
      this.connectFrom(this.picker.ranked(), null, 'failover')
    }
  }

  /** The relay refused the token (4401): tell it, go offline, and dial again only with a new token. */
  private refusedToken (region: RegionEndpoint, reason: string): void {
    if (this.socket !== null) {
      this.socket = null
      this.stopHeartbeat()
    }
    for (const session of this.sessions.values()) session.detach()
    if (this.waitingForToken || this.closed) return
    this.waitingForToken = true
    this.lastFailure = `${region.name} refused the token (4401: ${reason})`
    this.emit('error', [Object.assign(new Error(`the relay refused this client's token: ${reason === '' ? 'unauthenticated' : reason}; call setToken() with a valid token (the client does not retry until then)`), { code: CloseCode.Unauthenticated })])
  }

  private send (message: MuxMessage): void {
    if (this.socket !== null && this.socket.readyState === OPEN) this.socket.send(encodeMuxMessage(message))
  }

  /** The socket in use died or went silent: move to the next region at once (with a little jitter). */
  private lost (why: string): void {
    const failed = this.region === null || this.node === null ? null : { name: this.region, url: this.node }
    this.socket = null
    this.stopHeartbeat()
    for (const session of this.sessions.values()) session.detach()
    this.emit('warning', [`lost ${failed === null ? 'the relay' : `${failed.name} (${failed.url})`}: ${why}`])
    if (this.closed) return
    const delay = Math.random() * this.options.failoverJitterMs
    this.retry = setTimeout(() => this.connectFrom(this.picker.ranked(), failed, 'failover'), delay)
  }

  private backOff (): void {
    if (this.waitingForToken) return
    const delay = fullJitter(this.attempt++, this.options.backoff)
    this.emit('offline', [{ reason: this.lastFailure, retryInMs: Math.round(delay), retryAt: Date.now() + Math.round(delay) }])
    this.retry = setTimeout(() => {
      this.picker.measure().then(() => this.connectFrom(this.picker.ranked(), null, 'failover'), () => this.backOff())
    }, delay)
  }

  private startHeartbeat (): void {
    this.stopHeartbeat()
    this.lastHeard = Date.now()
    this.heartbeat = setInterval(() => {
      if (this.socket === null) return
      if (Date.now() - this.lastHeard > this.options.heartbeatTimeoutMs) {
        const socket = this.socket
        this.lost(`no answer for ${this.options.heartbeatTimeoutMs} ms`)
        socket.close(4000, 'heartbeat timeout')
        return
      }
      this.send({ type: 'ping', nonce: ++this.nonce })
    }, this.options.heartbeatMs)
  }

  private stopHeartbeat (): void {
    if (this.heartbeat !== null) clearInterval(this.heartbeat)
    this.heartbeat = null
  }

  private stopTimers (): void {
    this.stopHeartbeat()
    if (this.prober !== null) clearInterval(this.prober)
    if (this.retry !== null) clearTimeout(this.retry)
  }

  private async probe (): Promise<void> {
    if (this.region === null || this.socket === null) return
    await this.picker.measure()
    const nearer = this.picker.failbackFrom(this.region)
    if (nearer !== null && !this.closed) this.dial(nearer, 'failback', () => {})
  }

  private forget (session: GeoSession): void {
    this.sessions.delete(session.name)
    this.byId.delete(session.docId)
  }
}
