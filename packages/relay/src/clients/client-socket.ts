/**
 * The socket plumbing every client endpoint shares (y-websocket, mux): frames are handled one
 * at a time under the socket's limits, sends check for a slow reader, and a close is final the
 * moment the relay decides it — nothing received afterwards takes effect, and a peer that does
 * not finish the close handshake promptly is cut.
 */
import type { RawData, WebSocket } from 'ws'
import { CloseCode, ProtocolError, closeReason } from '@georelay/core'
import type { ConnectionLimits, Overrun } from '../limits/index.js'
import type { Logger } from '../observability/index.js'
import type { RelayMetrics } from '../observability/index.js'
import { type ReadGate, gateOf } from '../limits/index.js'
import { describeFailure } from './client-failure.js'
import { frameWriterOf } from './ws-frame.js'

/** How long a closed socket has to answer the close frame before it is cut. */
export const CLOSE_HANDSHAKE_MS = 1000

export type Endpoint = 'y-websocket' | 'mux' | 'hocuspocus'

export interface ClientSocketOptions {
  endpoint: Endpoint
  metrics: RelayMetrics
  logger: Logger
  limits?: ConnectionLimits | null
}

export interface FrameHandler {
  /** A binary frame arrived; what it throws goes to `fail`. */
  frame(bytes: Uint8Array): void
  fail(err: unknown): void
  /** The socket is done (the relay decided to close it, or it closed); called once. */
  finished(): void
}

/** Why work on a frame stops being taken: the socket's rate, or something it must wait for. */
export type HandlingHold = 'rate' | 'auth'

export const toBytes = (data: RawData): Uint8Array => {
  const buffer = Array.isArray(data) ? Buffer.concat(data) : Buffer.isBuffer(data) ? data : Buffer.from(data)
  return new Uint8Array(buffer.buffer, buffer.byteOffset, buffer.byteLength)
}

export class ClientSocket {
  private closing = false
  private done = false
  private readonly inbox: Uint8Array[] = []
  private readonly holds = new Set<HandlingHold>()
  private rateTimer: NodeJS.Timeout | null = null
  private readonly gate: ReadGate
  /** Bound once: looking labels up on every frame is a measurable share of fan-out. */
  private readonly bytesOut: { inc(value: number): void }
  private readonly limits: ConnectionLimits | null
  private readonly write: (payload: Uint8Array) => void

  constructor (
    readonly ws: WebSocket,
    private readonly options: ClientSocketOptions,
    private readonly handler: FrameHandler,
  ) {
    this.limits = options.limits ?? null
    this.gate = gateOf(ws)
    this.write = frameWriterOf(ws)
    this.bytesOut = options.metrics.bytesOut.labels({ target: 'client' })
    options.metrics.connections.inc({ endpoint: options.endpoint })
    ws.on('message', (data, isBinary) => this.receive(data, isBinary))
    ws.on('close', () => this.finish())
    ws.on('error', err => options.logger.log('debug', 'client socket error', { endpoint: options.endpoint, error: err.message }))
  }

  /** True once the relay decided to close this socket (or it closed). */
  get closed (): boolean {
    return this.closing || this.done
  }

  send (frame: Uint8Array): void {
    if (this.closed || this.ws.readyState !== this.ws.OPEN) return
    this.write(frame)
    this.bytesOut.inc(frame.length)
    const overrun = this.limits?.checkBuffer(this.ws)
    if (overrun != null) this.overrun(overrun)
  }

  /**
   * Charges work done for this socket (see message-cost.ts). Over its rate, the socket is not
   * read until the debt is paid; over it for too long, it is closed with 4429.
   */
  charge (cost: number): void {
    if (this.limits === null || this.closed || cost <= 0) return
    const verdict = this.limits.charge(cost)
    if ('overrun' in verdict) return this.overrun(verdict.overrun)
    if (verdict.waitMs > 0 && this.rateTimer === null) {
      this.options.metrics.throttled.inc({ endpoint: this.options.endpoint })
      this.hold('rate')
      this.rateTimer = setTimeout(() => this.payDebt(), verdict.waitMs)
      this.rateTimer.unref()
    }
  }

  /** Stops taking frames (and reading the socket) until `release`. */
  hold (reason: HandlingHold): void {
    this.holds.add(reason)
    this.gate.hold(reason === 'rate' ? 'rate' : 'auth')
  }

  release (reason: HandlingHold): void {
    if (!this.holds.delete(reason)) return
    this.gate.release(reason === 'rate' ? 'rate' : 'auth')
    this.drain()
  }

  /** The relay decided to close: from now on nothing this socket sent is handled. */
  close (code: number, reason: string): void {
    if (this.closing) return
    this.closing = true
    this.dropInbox()
    if (this.ws.readyState === this.ws.OPEN || this.ws.readyState === this.ws.CONNECTING) {
      this.ws.close(code, closeReason(reason))
    }
    setTimeout(() => this.ws.terminate(), CLOSE_HANDSHAKE_MS).unref()
    this.finish()
  }

  /** The socket broke the protocol (or the relay failed it): counted, and closed with the failure's code and words. */
  fail (err: unknown): void {
    if (this.closed) return
    const { code, reason, metric } = describeFailure(err)
    this.options.metrics.rejected.inc({ code: metric })
    this.close(code, reason)
  }

  /** Frames that were waiting (the socket was over its rate) are not handled once it closes. */
  private dropInbox (): void {
    if (this.inbox.length > 0) this.options.metrics.droppedAfterClose.inc(this.inbox.length)
    this.inbox.length = 0
  }

  private overrun (overrun: Overrun): void {
    if (this.closed) return
    this.options.metrics.rejected.inc({ code: overrun.code })
    this.options.logger.log('info', 'client over a limit; closing its socket', { code: overrun.code, endpoint: this.options.endpoint })
    this.close(CloseCode.RateLimited, overrun.reason)
  }

  private receive (data: RawData, isBinary: boolean): void {
    if (this.closed) {
      this.options.metrics.droppedAfterClose.inc()
      return
    }
    if (!isBinary) return this.handler.fail(new ProtocolError('ERR_TEXT_FRAME', 'text frames are not part of the protocol: send binary frames'))
    this.inbox.push(toBytes(data))
    this.drain()
  }

  private drain (): void {
    while (this.inbox.length > 0 && this.holds.size === 0 && !this.closed) {
      const frame = this.inbox.shift() as Uint8Array
      try {
        this.handler.frame(frame)
      } catch (err) {
        this.handler.fail(err)
      }
    }
  }

  private payDebt (): void {
    this.rateTimer = null
    if (this.closed) return
    const more = this.limits?.debtMs() ?? 0
    if (more > 0) {
      this.rateTimer = setTimeout(() => this.payDebt(), more)
      this.rateTimer.unref()
      return
    }
    this.release('rate')
  }

  private finish (): void {
    if (this.done) return
    this.done = true
    this.dropInbox()
    if (this.rateTimer !== null) clearTimeout(this.rateTimer)
    this.limits?.release()
    this.options.metrics.connections.dec({ endpoint: this.options.endpoint })
    try {
      this.handler.finished()
    } catch (err) {
      this.options.logger.log('error', 'cleanup of a closed client failed', { endpoint: this.options.endpoint, error: String((err as Error)?.stack ?? err) })
    }
  }
}
