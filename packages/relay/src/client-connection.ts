/**
 * One socket of a stock y-websocket client on `ws://HOST:PORT/<docName>`: one document.
 *
 * A frame is decoded and validated whole as soon as it arrives: if any message in it is
 * malformed the socket closes with 4400 and nothing of the frame is stored or forwarded.
 */
import type { RawData, WebSocket } from 'ws'
import { CloseCode, ProtocolError, StoreError, closeReason, decodeFrame, encodeFrame } from '@georelay/core'
import type { Grants } from './auth.js'
import { type Expiry, expiryTimer } from './token-expiry.js'
import { type ConnectionLimits, closeOverrun } from './connection-limits.js'
import { DocSession, type SessionPlacement, everywhere, validateMessages } from './doc-session.js'
import { RelayRefusal } from './relay-refusal.js'
import type { DocRegistry } from './doc-registry.js'
import type { Logger } from './logger.js'
import type { RelayMetrics } from './metrics.js'

/** Close code for a failure of the relay itself: the client keeps its edits and resends later. */
export const CLOSE_INTERNAL_ERROR = 1011

export const toBytes = (data: RawData): Uint8Array => {
  const buffer = Array.isArray(data) ? Buffer.concat(data) : Buffer.isBuffer(data) ? data : Buffer.from(data)
  return new Uint8Array(buffer.buffer, buffer.byteOffset, buffer.byteLength)
}

/** What to tell a client about a failure, and what to count and log. */
export const describeFailure = (err: unknown): { code: number, reason: string, metric: string, level: 'info' | 'error' } => {
  if (err instanceof ProtocolError || err instanceof RelayRefusal) return { code: err.closeCode, reason: err.message, metric: err.code, level: 'info' }
  if (err instanceof StoreError && err.code === 'ERR_STORE_FULL') {
    return { code: CLOSE_INTERNAL_ERROR, reason: 'the relay\'s disk is full: your update is not stored; your client keeps it, retry later', metric: err.code, level: 'error' }
  }
  if (err instanceof StoreError) {
    return { code: CLOSE_INTERNAL_ERROR, reason: `the relay could not store your update (${err.code}); your client keeps it, reconnect later`, metric: err.code, level: 'error' }
  }
  return { code: CLOSE_INTERNAL_ERROR, reason: 'internal relay error; reconnect later', metric: 'ERR_INTERNAL', level: 'error' }
}

export class ClientConnection {
  private readonly session: DocSession
  private closed = false
  /** Closed for a limit: what still arrives is ignored. */
  private cut = false
  /** Bound once: looking labels up on every frame is a measurable share of fan-out. */
  private readonly bytesOut: { inc(value: number): void }
  private readonly expiry: Expiry | null

  constructor (
    private readonly ws: WebSocket,
    readonly docName: string,
    registry: DocRegistry,
    private readonly metrics: RelayMetrics,
    private readonly logger: Logger,
    placement: SessionPlacement = everywhere,
    grants: Grants | null = null,
    private readonly limits: ConnectionLimits | null = null,
  ) {
    metrics.connections.inc({ endpoint: 'y-websocket' })
    this.bytesOut = metrics.bytesOut.labels({ target: 'client' })
    this.expiry = expiryTimer(grants, () => this.close(CloseCode.Unauthenticated, 'the token has expired: reconnect with a fresh one'))
    this.session = new DocSession(docName, registry, {
      send: frame => this.send(frame),
      fail: err => this.fail(err),
      // The reason starts with "REGION URL", which the SDK reads; stock clients just see the words.
      redirect: (region, url) => this.close(CloseCode.Moved, `${region} ${url} : this document lives in ${region}`),
      // y-websocket's own answer to a refused write: an auth message, "permission denied".
      refuseWrite: (code, reason) => {
        metrics.rejected.inc({ code })
        this.send(encodeFrame({ type: 'auth-denied', reason }))
      },
    }, placement)
    this.session.readOnly = grants?.access(docName) === 'ro'
    ws.on('message', (data, isBinary) => this.receive(data, isBinary))
    ws.on('close', () => {
      if (this.closed) return
      this.closed = true
      this.expiry?.cancel()
      this.limits?.release()
      metrics.connections.dec({ endpoint: 'y-websocket' })
      try {
        this.session.close()
      } catch (err) {
        logger.log('error', 'cleanup of a closed client failed', { doc: docName, error: String((err as Error)?.stack ?? err) })
      }
    })
    ws.on('error', err => logger.log('debug', 'client socket error', { doc: docName, error: err.message }))
  }

  /** Closes the socket with a code and a reason in words. */
  close (code: number, reason: string): void {
    if (this.ws.readyState === this.ws.OPEN || this.ws.readyState === this.ws.CONNECTING) this.ws.close(code, closeReason(reason))
  }

  private send (frame: Uint8Array): void {
    if (this.ws.readyState !== this.ws.OPEN) return
    this.ws.send(frame)
    this.bytesOut.inc(frame.length)
    const overrun = this.limits?.checkBuffer(this.ws)
    if (overrun != null) this.overrun(overrun.code, overrun.reason)
  }

  private overrun (code: string, reason: string): void {
    if (this.cut) return
    this.cut = true
    this.metrics.rejected.inc({ code })
    this.logger.log('info', 'client over a limit; closing its socket', { code })
    closeOverrun(this.ws, closeReason(reason))
  }

  private receive (data: RawData, isBinary: boolean): void {
    if (this.closed || this.cut) return
    const overrun = this.limits?.admit()
    if (overrun != null) return this.overrun(overrun.code, overrun.reason)
    try {
      if (!isBinary) throw new ProtocolError('ERR_TEXT_FRAME', 'text frames are not part of the protocol: send binary frames')
      const messages = decodeFrame(toBytes(data))
      validateMessages(messages)
      this.session.receive(messages)
    } catch (err) {
      this.fail(err)
    }
  }

  private fail (err: unknown): void {
    const { code, reason, metric, level } = describeFailure(err)
    this.metrics.rejected.inc({ code: metric })
    this.logger.log(level, 'client failed; closing its socket', { doc: this.docName, code: metric, reason, ...(level === 'error' ? { error: String((err as Error)?.stack ?? err) } : {}) })
    this.close(code, reason)
  }
}
