/**
 * A relay-wide bound on memory held by messages still arriving (a 10 MB paste is
 * stored, yet no client can grow the relay's memory without bound).
 *
 * ws buffers a message until its last byte is in, up to `limits.maxMessageBytes` per socket, so
 * many sockets each sending a large message would hold that many times over. Each socket counts
 * the bytes it received since its last whole message; what passes SMALL_BYTES draws on one pool
 * of `limits.maxReceivingBytes`. When the pool is spent, the sockets that draw further stop
 * being read (TCP pushes back on their senders) until earlier messages complete. The socket
 * that started its large message first is always read, so the pool never deadlocks; it may
 * take the pool past its size by at most one message. A large message that crawls while others
 * wait for the pool (below MIN_BYTES_PER_SECOND after GRACE_MS) is cut with 4413, so one slow
 * sender cannot starve the rest.
 */
import type { Duplex } from 'node:stream'
import type { WebSocket } from 'ws'
import { CloseCode } from '@georelay/core'
import { gateOf } from './read-gate.js'

/** Bytes of an arriving message that do not draw on the pool: small messages never wait. */
export const SMALL_BYTES = 256 * 1024
const MIN_BYTES_PER_SECOND = 64 * 1024
const GRACE_MS = 10_000
const CHECK_MS = 1000

class Arrival {
  partial = 0
  drawn = 0
  startedAt = 0
  waiting = false

  constructor (readonly ws: WebSocket) {}
}

export interface ReceiveBudgetStats {
  /** Bytes drawn from the pool now. */
  drawn: number
  /** Sockets not read now because the pool is spent. */
  waiting: number
}

export class ReceiveBudget {
  private drawn = 0
  /** Sockets with a large message arriving, in the order they started it. */
  private readonly large = new Set<Arrival>()
  private readonly waiting: Arrival[] = []
  private timer: NodeJS.Timeout | null = null

  constructor (
    private readonly capacity: number,
    private readonly onCut: (reason: string) => void = () => {},
    /** Called whenever the figures change (for metrics). */
    private readonly onStats: (stats: ReceiveBudgetStats) => void = () => {},
  ) {}

  get stats (): ReceiveBudgetStats {
    return { drawn: this.drawn, waiting: this.waiting.length }
  }

  /** Starts counting what arrives on `socket`, the raw stream under `ws`. */
  track (ws: WebSocket, socket: Duplex, onData: () => void = () => {}): void {
    const arrival = new Arrival(ws)
    socket.prependListener('data', (chunk: Buffer) => {
      onData()
      this.received(arrival, chunk.length)
    })
    ws.on('message', () => this.settle(arrival))
    ws.once('close', () => {
      this.settle(arrival)
      const at = this.waiting.indexOf(arrival)
      if (at !== -1) this.waiting.splice(at, 1)
    })
  }

  close (): void {
    if (this.timer !== null) clearInterval(this.timer)
    this.timer = null
  }

  private received (arrival: Arrival, bytes: number): void {
    arrival.partial += bytes
    const draw = Math.max(0, arrival.partial - SMALL_BYTES)
    if (draw === 0) return
    if (!this.large.has(arrival)) {
      this.large.add(arrival)
      arrival.startedAt = performance.now()
    }
    this.drawn += draw - arrival.drawn
    arrival.drawn = draw
    if (this.drawn > this.capacity && !arrival.waiting && this.first() !== arrival) {
      arrival.waiting = true
      this.waiting.push(arrival)
      gateOf(arrival.ws).hold('memory')
      if (this.timer === null) {
        this.timer = setInterval(() => this.checkCrawlers(), CHECK_MS)
        this.timer.unref()
      }
    }
    this.onStats(this.stats)
  }

  /** A message completed (or the socket closed): give its bytes back and let others go on. */
  private settle (arrival: Arrival): void {
    if (arrival.drawn === 0 && !arrival.waiting && !this.large.has(arrival)) return
    this.drawn -= arrival.drawn
    arrival.partial = 0
    arrival.drawn = 0
    this.large.delete(arrival)
    this.wake()
  }

  private first (): Arrival | undefined {
    return this.large.values().next().value
  }

  private wake (): void {
    const first = this.first()
    if (first?.waiting === true) this.resume(first)
    while (this.waiting.length > 0 && this.drawn < this.capacity) this.resume(this.waiting[0] as Arrival)
    if (this.waiting.length === 0 && this.timer !== null) {
      clearInterval(this.timer)
      this.timer = null
    }
    this.onStats(this.stats)
  }

  private resume (arrival: Arrival): void {
    arrival.waiting = false
    const at = this.waiting.indexOf(arrival)
    if (at !== -1) this.waiting.splice(at, 1)
    gateOf(arrival.ws).release('memory')
  }

  /** While others wait, the message holding them up must keep arriving at a useful rate. */
  private checkCrawlers (): void {
    const first = this.first()
    if (first === undefined || this.waiting.length === 0) return
    const elapsed = performance.now() - first.startedAt
    if (elapsed < GRACE_MS || first.partial / (elapsed / 1000) >= MIN_BYTES_PER_SECOND) return
    this.onCut(`a large message arrived at under ${MIN_BYTES_PER_SECOND / 1024} KiB/s while others waited`)
    if (first.ws.readyState === first.ws.OPEN) first.ws.close(CloseCode.MessageTooLarge, 'your message arrives too slowly while the relay is busy receiving others; send it again')
    first.ws.terminate()
    this.settle(first)
  }
}
