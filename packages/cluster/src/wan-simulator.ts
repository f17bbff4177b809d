/**
 * A simulated WAN between regions, for `georelay cluster`, tests and benchmarks. Relays of different regions talk
 * over TCP (WebSocket); in tests they all listen on 127.0.0.1, so each cross-region connection is routed
 * through a userspace TCP proxy here, which delays, jitters, stalls or holds each direction of a
 * region pair independently. There is no tc/netem on the machines that run the tests, and a
 * byte-stream proxy needs no knowledge of the protocol on top.
 *
 * The model is a TCP connection seen from the application: bytes are never lost or reordered,
 * only late. A cut holds bytes (as a partition does while TCP keeps retransmitting) instead of
 * closing anything, so peers find out the way they would in production: through their own
 * heartbeats and timeouts.
 */
import { EventEmitter } from 'node:events'
import net from 'node:net'
import { performance } from 'node:perf_hooks'

export interface LossConditions {
  /** Chance, per chunk, that it is "lost" and has to be retransmitted. */
  probability: number
  /** How much later a lost chunk arrives (and everything behind it, since TCP delivers in order). */
  stallMs: number
}

export interface LinkConditions {
  /** One-way delay: no byte is delivered sooner than this after it reached the link. */
  delayMs: number
  /** Extra delay per chunk, uniform in [0, jitterMs). It never reorders bytes. */
  jitterMs?: number
  loss?: LossConditions
}

export interface DirectionOptions {
  /** Only the a → b direction; by default b → a as well. */
  oneWay?: boolean
}

export interface WanSimulatorOptions {
  /** Delay of every direction whose conditions were never set (default 0). */
  defaultDelayMs?: number
  /** Seed of the jitter and loss draws, so that a run can be replayed (default 1). */
  seed?: number
  /** Keep a copy of every byte sent over each direction, for `capture()` (default false). */
  capture?: boolean
  /**
   * Bytes one direction of one connection may have pending (delayed, held, or not yet written
   * to the receiver) before the proxy stops reading from the sender, which then sees ordinary
   * TCP back-pressure. Bounds memory during a long cut. Default 16 MiB.
   */
  maxPendingBytes?: number
}

/** Where a link forwards: a relay's address (host default 127.0.0.1). */
export interface LinkTarget {
  host?: string
  port: number
}

export interface LinkEndpoint {
  host: string
  port: number
  /** `ws://host:port`, for peers that speak WebSocket. */
  url: string
}

export interface DirectionStats {
  from: string
  to: string
  cut: boolean
  /** Bytes that entered the link from `from`. */
  bytesSent: number
  /** Bytes written to the receiver in `to`. */
  bytesDelivered: number
  /** Writes to the receiver; chunks that fall due together are written one after the other. */
  chunksDelivered: number
  /** Bytes waiting out their delay, jitter or stall. */
  bytesInFlight: number
  /** Bytes held by a cut, delivered after `heal`. */
  bytesHeld: number
  /** Bytes thrown away because the receiving socket closed before they were due. */
  bytesDropped: number
  /** Chunks that drew a loss and were stalled. */
  chunksStalled: number
}

/**
 * Events, for event-driven waits in tests (`waitUntil([on(sim, 'deliver')], ...)`):
 * `send` bytes entered a link, `deliver` bytes were written to the receiver, `connection` a TCP
 * connection was accepted by the proxy of `link(from, to)`, `disconnect` both of its sockets closed.
 */
export interface WanEvents {
  send: [from: string, to: string, bytes: number]
  deliver: [from: string, to: string, bytes: number]
  connection: [from: string, to: string]
  disconnect: [from: string, to: string]
}

const LOOPBACK = '127.0.0.1'
const DEFAULT_MAX_PENDING_BYTES = 16 * 1024 * 1024

/** mulberry32: tiny, fast, and good enough to spread jitter; not for anything else. */
const prng = (seed: number): (() => number) => {
  let state = seed >>> 0
  return () => {
    state = (state + 0x6d2b79f5) >>> 0
    let t = state
    t = Math.imul(t ^ (t >>> 15), t | 1)
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61)
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296
  }
}

/** FNV-1a, so that each direction draws from its own stream: traffic on one pair doesn't shift another's. */
const hash = (seed: number, text: string): number => {
  let h = (0x811c9dc5 ^ seed) >>> 0
  for (let i = 0; i < text.length; i++) h = Math.imul(h ^ text.charCodeAt(i), 0x01000193) >>> 0
  return h
}

const validate = (c: Partial<LinkConditions>): void => {
  const nonNegative = (name: string, value: number | undefined): void => {
    if (value !== undefined && !(Number.isFinite(value) && value >= 0)) throw new RangeError(`${name} must be a finite number ≥ 0, got ${value}`)
  }
  nonNegative('delayMs', c.delayMs)
  nonNegative('jitterMs', c.jitterMs)
  if (c.loss) {
    nonNegative('loss.stallMs', c.loss.stallMs)
    if (!(c.loss.probability >= 0 && c.loss.probability <= 1)) throw new RangeError(`loss.probability must be in [0, 1], got ${c.loss.probability}`)
  }
}

/** State of one direction of a region pair, shared by every connection that carries it. */
class Direction {
  conditions: LinkConditions
  cut = false
  readonly random: () => number
  readonly pipes = new Set<Pipe>()
  readonly captured: Buffer[] | null
  /** The same bytes, per connection (in the order connections started). */
  readonly capturedByConnection: Buffer[][] | null
  bytesSent = 0
  bytesDelivered = 0
  chunksDelivered = 0
  bytesInFlight = 0
  bytesHeld = 0
  bytesDropped = 0
  chunksStalled = 0

  constructor (readonly from: string, readonly to: string, conditions: LinkConditions, seed: number, capture: boolean) {
    this.conditions = conditions
    this.random = prng(hash(seed, `${from}\u0000${to}`))
    this.captured = capture ? [] : null
    this.capturedByConnection = capture ? [] : null
  }

  /** Time the next chunk may be delivered: never before the previous one, so jitter can't reorder. */
  releaseTime (previous: number, now: number): number {
    const { delayMs, jitterMs = 0, loss } = this.conditions
    let at = now + delayMs
    if (jitterMs > 0) at += jitterMs * this.random()
    if (loss && loss.probability > 0 && this.random() < loss.probability) {
      at += loss.stallMs
      this.chunksStalled++
    }
    return Math.max(previous, at)
  }

  stats (): DirectionStats {
    const {
      from, to, cut, bytesSent, bytesDelivered, chunksDelivered, bytesInFlight, bytesHeld, bytesDropped, chunksStalled,
    } = this
    return {
      from, to, cut, bytesSent, bytesDelivered, chunksDelivered, bytesInFlight, bytesHeld, bytesDropped, chunksStalled,
    }
  }
}

/** `at === null`: held by a cut, not yet scheduled. `end` is a FIN, `close` the sender being gone. */
interface Item {
  kind: 'data' | 'end' | 'close'
  data: Buffer | null
  at: number | null
}

/** One direction of one proxied connection: an ordered queue from `src` to `dst`. */
class Pipe {
  private queue: Item[] = []
  private head = 0
  private lastAt = -Infinity
  private timer: NodeJS.Timeout | undefined
  private pendingBytes = 0
  private paused = false
  /** A FIN or close of the sender has been queued; nothing more will come from it. */
  private terminated = false
  /** Finished or abandoned: the queue is empty for good. */
  private done = false
  /** Listeners of 'deliver' may heal or cut, which flushes again: let the outer loop carry on. */
  private flushing = false
  private readonly captured: Buffer[] | null

  constructor (
    readonly dir: Direction,
    readonly src: net.Socket,
    private readonly dst: net.Socket,
    private readonly sim: SimulatorContext,
  ) {
    dir.pipes.add(this)
    this.captured = dir.capturedByConnection === null ? null : []
    if (this.captured !== null) dir.capturedByConnection?.push(this.captured)
    src.on('data', (chunk: Buffer) => this.push(chunk))
    src.on('end', () => this.terminate('end'))
    dst.on('drain', () => this.maybeResume())
  }

  push (data: Buffer): void {
    if (this.done || this.terminated) return
    const dir = this.dir
    dir.bytesSent += data.length
    dir.captured?.push(data)
    this.captured?.push(data)
    this.pendingBytes += data.length
    this.enqueue({ kind: 'data', data, at: null })
    this.sim.emit('send', dir.from, dir.to, data.length)
    if (!this.paused && this.pendingBytes + this.dst.writableLength > this.sim.maxPendingBytes) {
      this.paused = true
      this.src.pause()
    }
    this.flush()
  }

  /** The sender half-closed (`end`) or is gone (`close`): pass that on, behind the bytes before it. */
  terminate (kind: 'end' | 'close'): void {
    if (this.done) return
    if (kind === 'close') {
      // A FIN still waiting in the queue becomes the close, at the same place in the stream.
      const last = this.queue[this.queue.length - 1]
      if (this.terminated && last && this.queue.length > this.head && last.kind === 'end') {
        last.kind = 'close'
        return
      }
    } else if (this.terminated) return
    this.terminated = true
    this.enqueue({ kind, data: null, at: null })
    this.flush()
  }

  /** The receiver is gone: nothing queued can be delivered any more. */
  abandon (): void {
    if (this.done) return
    this.done = true
    clearTimeout(this.timer)
    this.timer = undefined
    for (let i = this.head; i < this.queue.length; i++) {
      const item = this.queue[i] as Item
      if (!item.data) continue
      this.account(item, -1)
      this.dir.bytesDropped += item.data.length
    }
    this.queue = []
    this.head = 0
    this.pendingBytes = 0
    this.dir.pipes.delete(this)
  }

  /** Schedules what a cut held, from now on, with the conditions of now. */
  release (): void {
    if (this.done || this.dir.cut) return
    const now = performance.now()
    for (let i = this.head; i < this.queue.length; i++) {
      const item = this.queue[i] as Item
      if (item.at !== null) continue
      this.account(item, -1)
      item.at = this.lastAt = this.dir.releaseTime(this.lastAt, now)
      this.account(item, +1)
    }
    this.flush()
  }

  private enqueue (item: Item): void {
    if (!this.dir.cut) item.at = this.lastAt = this.dir.releaseTime(this.lastAt, performance.now())
    this.account(item, +1)
    this.queue.push(item)
  }

  private account (item: Item, sign: 1 | -1): void {
    if (!item.data) return
    if (item.at === null) this.dir.bytesHeld += sign * item.data.length
    else this.dir.bytesInFlight += sign * item.data.length
  }

  /** Delivers everything due, then sleeps until the next item is; release times never decrease. */
  private flush (): void {
    if (this.done || this.timer || this.flushing) return
    this.flushing = true
    try {
      this.flushDue()
    } finally {
      this.flushing = false
    }
    if (this.done) return
    if (this.head > 1024 && this.head * 2 > this.queue.length) {
      this.queue = this.queue.slice(this.head)
      this.head = 0
    }
    this.maybeResume()
  }

  private flushDue (): void {
    const now = performance.now()
    while (this.head < this.queue.length) {
      const item = this.queue[this.head] as Item
      if (item.at === null) break
      if (item.at > now) {
        // Timers may fire up to a millisecond early; flush re-checks rather than deliver early.
        this.timer = setTimeout(() => {
          this.timer = undefined
          this.flush()
        }, Math.max(1, Math.ceil(item.at - now)))
        break
      }
      this.head++
      this.deliver(item)
      if (this.done) return
    }
  }

  private deliver (item: Item): void {
    const dst = this.dst
    if (item.data) {
      this.account(item, -1)
      this.pendingBytes -= item.data.length
      this.dir.bytesDelivered += item.data.length
      this.dir.chunksDelivered++
      if (!dst.destroyed) dst.write(item.data)
      this.sim.emit('deliver', this.dir.from, this.dir.to, item.data.length)
    } else if (item.kind === 'end') {
      if (!dst.destroyed) dst.end()
    } else {
      // Let what is already written reach the receiver, then close it like the sender was.
      this.done = true
      this.dir.pipes.delete(this)
      if (!dst.destroyed) dst.destroySoon()
    }
  }

  private maybeResume (): void {
    if (this.paused && this.pendingBytes + this.dst.writableLength <= this.sim.maxPendingBytes / 2) {
      this.paused = false
      this.src.resume()
    }
  }
}

/** What a pipe needs of its simulator. */
interface SimulatorContext {
  readonly maxPendingBytes: number
  emit<K extends keyof WanEvents>(event: K, ...args: WanEvents[K]): boolean
}

interface Connection {
  client: net.Socket
  upstream: net.Socket
  pipes: [Pipe, Pipe]
}

/**
 * TCP proxies between regions with per-direction conditions. Direction matters: the proxy of
 * `link(from, to, target)` carries connections that `from` opens towards `to`, so bytes client →
 * target go from → to and replies go to → from. Conditions, cuts and stats belong to a direction
 * of a region pair, whichever proxy the bytes take.
 */
export class WanSimulator extends EventEmitter<WanEvents> implements SimulatorContext {
  readonly maxPendingBytes: number
  private readonly defaultDelayMs: number
  private readonly seed: number
  private readonly captureEnabled: boolean
  private readonly directions = new Map<string, Direction>()
  private readonly partitioned = new Set<string>()
  private readonly servers = new Set<net.Server>()
  private readonly connections = new Set<Connection>()
  private closed = false

  constructor ({
    defaultDelayMs = 0,
    seed = 1,
    capture = false,
    maxPendingBytes = DEFAULT_MAX_PENDING_BYTES,
  }: WanSimulatorOptions = {}) {
    super()
    validate({ delayMs: defaultDelayMs })
    this.defaultDelayMs = defaultDelayMs
    this.seed = seed
    this.captureEnabled = capture
    this.maxPendingBytes = maxPendingBytes
  }

  /**
   * Opens a proxy on 127.0.0.1 and an ephemeral port that forwards to `target`; `from` connects
   * to it to reach `to`. Connections are accepted even while a direction is cut: a partition
   * doesn't refuse connections, it just never answers. A function `target` is asked at each
   * connection (so a link can exist before the port it leads to is chosen); while it answers
   * undefined, connections are reset as if nothing listened there.
   */
  async link (from: string, to: string, target: LinkTarget | (() => LinkTarget | undefined)): Promise<LinkEndpoint> {
    if (this.closed) throw new Error('WanSimulator is closed')
    const forward = this.direction(from, to)
    const reverse = this.direction(to, from)
    const server = net.createServer({ allowHalfOpen: true, noDelay: true }, client => {
      const to = typeof target === 'function' ? target() : target
      if (this.closed || to === undefined) {
        client.destroy()
        return
      }
      this.proxy(client, to, forward, reverse)
    })
    server.on('error', () => {})
    this.servers.add(server)
    server.once('close', () => this.servers.delete(server))
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject)
      server.listen(0, LOOPBACK, () => {
        server.off('error', reject)
        resolve()
      })
    })
    if (this.closed) {
      server.close()
      throw new Error('WanSimulator is closed')
    }
    const { port } = server.address() as net.AddressInfo
    return { host: LOOPBACK, port, url: `ws://${LOOPBACK}:${port}` }
  }

  /** Changes a → b (and b → a unless oneWay). Bytes already on the link keep their schedule. */
  setConditions (a: string, b: string, conditions: Partial<LinkConditions>, options: DirectionOptions = {}): void {
    validate(conditions)
    for (const dir of this.pair(a, b, options)) {
      const next = { ...dir.conditions }
      if (conditions.delayMs !== undefined) next.delayMs = conditions.delayMs
      if (conditions.jitterMs !== undefined) next.jitterMs = conditions.jitterMs
      if ('loss' in conditions) next.loss = conditions.loss
      dir.conditions = next
    }
  }

  /** Current conditions of the direction from → to. */
  conditions (from: string, to: string): LinkConditions {
    return { ...this.direction(from, to).conditions }
  }

  /**
   * Holds every byte that reaches a → b (and b → a unless oneWay) from now on, on open and new
   * connections alike. Bytes already in flight still arrive.
   */
  cut (a: string, b: string, options: DirectionOptions = {}): void {
    for (const dir of this.pair(a, b, options)) dir.cut = true
  }

  /** Ends a cut: held bytes leave now, in order, and take the link's current delay to arrive. */
  heal (a: string, b: string, options: DirectionOptions = {}): void {
    for (const dir of this.pair(a, b, options)) this.healDirection(dir)
  }

  /** Cuts both directions between `region` and every other region, including links made later. */
  partition (region: string): void {
    this.partitioned.add(region)
    for (const dir of this.directions.values()) if (dir.from === region || dir.to === region) dir.cut = true
  }

  /** Undoes `partition(region)`; pairs with another partitioned region stay cut. */
  healRegion (region: string): void {
    this.partitioned.delete(region)
    for (const dir of this.directions.values()) {
      if (dir.from !== region && dir.to !== region) continue
      const other = dir.from === region ? dir.to : dir.from
      if (!this.partitioned.has(other)) this.healDirection(dir)
    }
  }

  /** Heals every cut and partition. */
  healAll (): void {
    this.partitioned.clear()
    for (const dir of this.directions.values()) this.healDirection(dir)
  }

  /** Counters of every direction seen so far, or of one. */
  stats (): DirectionStats[]
  stats (from: string, to: string): DirectionStats
  stats (from?: string, to?: string): DirectionStats[] | DirectionStats {
    if (from !== undefined && to !== undefined) return this.direction(from, to).stats()
    return [...this.directions.values()].map(dir => dir.stats())
  }

  /** Proxied connections whose sockets are not both closed yet. */
  get openConnections (): number {
    return this.connections.size
  }

  /**
   * Every byte sent from → to so far, delivered or not, in the order it reached the link (bytes
   * of concurrent connections interleave). Needs `capture: true`.
   */
  capture (from: string, to: string): Buffer {
    if (!this.captureEnabled) throw new Error('WanSimulator: capture is off; construct with { capture: true }')
    return Buffer.concat(this.direction(from, to).captured ?? [])
  }

  /** What `capture` holds, one buffer per connection that carried this direction. Needs `capture: true`. */
  captureByConnection (from: string, to: string): Buffer[] {
    if (!this.captureEnabled) throw new Error('WanSimulator: capture is off; construct with { capture: true }')
    return (this.direction(from, to).capturedByConnection ?? []).map(chunks => Buffer.concat(chunks))
  }

  /** Closes every proxy and resets every proxied connection; pending bytes are dropped. */
  async close (): Promise<void> {
    this.closed = true
    const closing: Promise<unknown>[] = []
    for (const server of this.servers) {
      closing.push(new Promise(resolve => server.close(resolve)))
    }
    for (const { client, upstream, pipes } of this.connections) {
      for (const pipe of pipes) pipe.abandon()
      for (const socket of [client, upstream]) {
        if (!socket.closed) closing.push(new Promise(resolve => socket.once('close', resolve)))
        // A reset, not a FIN: a half-open peer would otherwise keep its end open. With both
        // halves ended already ('closed') there is nothing to reset, and a reset while the FIN
        // is still being written left the socket without a 'close' (close() then never ended).
        if (socket.destroyed) continue
        if (socket.connecting || socket.readyState === 'closed') socket.destroy()
        else socket.resetAndDestroy()
        // resetAndDestroy does nothing to a socket whose handle is gone though it is not
        // destroyed yet (its FIN still being written): then no 'close' would ever come.
        socket.destroy()
      }
    }
    await Promise.all(closing)
  }

  private proxy (client: net.Socket, target: LinkTarget, forward: Direction, reverse: Direction): void {
    const upstream = net.connect({
      host: target.host ?? LOOPBACK,
      port: target.port,
      allowHalfOpen: true,
      noDelay: true,
    })
    const pipes: [Pipe, Pipe] = [new Pipe(forward, client, upstream, this), new Pipe(reverse, upstream, client, this)]
    const connection: Connection = { client, upstream, pipes }
    this.connections.add(connection)
    // Errors (resets, refused connections) only ever end this connection, and do so through 'close'.
    for (const socket of [client, upstream]) {
      socket.on('error', () => {})
      socket.once('close', () => {
        for (const pipe of pipes) {
          if (this.closed) pipe.abandon()
          else if (pipe.src === socket) pipe.terminate('close')
          else pipe.abandon()
        }
        if (client.closed && upstream.closed && this.connections.delete(connection)) this.emit('disconnect', forward.from, forward.to)
      })
    }
    this.emit('connection', forward.from, forward.to)
  }

  private healDirection (dir: Direction): void {
    if (!dir.cut) return
    dir.cut = false
    for (const pipe of [...dir.pipes]) pipe.release()
  }

  private pair (a: string, b: string, { oneWay = false }: DirectionOptions): Direction[] {
    return oneWay ? [this.direction(a, b)] : [this.direction(a, b), this.direction(b, a)]
  }

  private direction (from: string, to: string): Direction {
    const key = JSON.stringify([from, to])
    let dir = this.directions.get(key)
    if (!dir) {
      dir = new Direction(from, to, { delayMs: this.defaultDelayMs }, this.seed, this.captureEnabled)
      dir.cut = this.partitioned.has(from) || this.partitioned.has(to)
      this.directions.set(key, dir)
    }
    return dir
  }
}
