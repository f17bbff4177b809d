/**
 * One socket of the SDK on `ws://HOST:PORT/v1/mux`: many documents, each a DocSession whose
 * frames travel wrapped in `sync` messages. A failure of one document is answered with an
 * `error` for that document, which is then closed; only a frame that is not a mux message
 * closes the socket.
 */
import type { RawData, WebSocket } from 'ws'
import {
  type AckLevel, CloseCode, MUX_PROTOCOL_VERSION, type MuxMessage, ProtocolError, type RegionEndpoint, closeReason, decodeFrame,
  decodeMuxMessage, encodeMuxMessage, validateUpdate,
} from '@georelay/core'
import { describeFailure, toBytes } from './client-connection.js'
import { parseRequestPath } from './doc-path.js'
import type { DocRegistry } from './doc-registry.js'
import { DocSession, type SessionPlacement, everywhere, validateMessages } from './doc-session.js'
import type { Logger } from './logger.js'
import type { RelayMetrics } from './metrics.js'
import type { WriteAcks } from './write-acks.js'
import { AuthError, type Grants } from './auth.js'
import { type Expiry, expiryTimer } from './token-expiry.js'
import { type ConnectionLimits, closeOverrun } from './connection-limits.js'

export interface MuxContext {
  registry: DocRegistry
  metrics: RelayMetrics
  logger: Logger
  acks: WriteAcks
  maxDocs: number
  region: string
  regions: () => RegionEndpoint[]
  placement?: SessionPlacement
  /** The regions a document's `majority` and `all` count (default: every region). */
  allowedRegions?: (docName: string) => string[]
  /** What the socket's token allows (default: everything), and how to check a new token. */
  grants?: Grants
  verify?: (token: string) => Promise<Grants>
  limits?: ConnectionLimits
}

interface OpenDoc {
  session: DocSession
  ack: AckLevel
  regions: string[] | undefined
}

export class MuxConnection {
  private readonly docs = new Map<number, OpenDoc>()
  /** Documents just sent elsewhere: what the client sent for them before it knew is dropped. */
  private readonly moved = new Set<number>()
  private closed = false
  /** Closed for a limit: what still arrives is ignored. */
  private cut = false
  /** Bound once: looking labels up on every frame is a measurable share of fan-out. */
  private readonly bytesOut: { inc(value: number): void }
  private grants: Grants | null
  private expiry: Expiry | null = null
  /** Messages that came after an `auth` whose token is still being checked: they run under it. */
  private waiting: MuxMessage[] | null = null

  constructor (private readonly ws: WebSocket, private readonly ctx: MuxContext) {
    ctx.metrics.connections.inc({ endpoint: 'mux' })
    this.bytesOut = ctx.metrics.bytesOut.labels({ target: 'client' })
    this.grants = ctx.grants ?? null
    this.armExpiry()
    ws.on('message', (data, isBinary) => this.receive(data, isBinary))
    ws.on('close', () => this.onClose())
    ws.on('error', err => ctx.logger.log('debug', 'mux socket error', { error: err.message }))
    this.send({ type: 'welcome', version: MUX_PROTOCOL_VERSION, region: ctx.region, regions: ctx.regions() })
  }

  close (code: number, reason: string): void {
    if (this.ws.readyState === this.ws.OPEN || this.ws.readyState === this.ws.CONNECTING) this.ws.close(code, closeReason(reason))
  }

  private send (message: MuxMessage): void {
    if (this.ws.readyState !== this.ws.OPEN) return
    const frame = encodeMuxMessage(message)
    this.ws.send(frame)
    this.bytesOut.inc(frame.length)
    const overrun = this.ctx.limits?.checkBuffer(this.ws)
    if (overrun != null) this.overrun(overrun.code, overrun.reason)
  }

  private overrun (code: string, reason: string): void {
    if (this.cut) return
    this.cut = true
    this.ctx.metrics.rejected.inc({ code })
    this.ctx.logger.log('info', 'client over a limit; closing its socket', { code })
    closeOverrun(this.ws, closeReason(reason))
  }

  private receive (data: RawData, isBinary: boolean): void {
    if (this.closed || this.cut) return
    const overrun = this.ctx.limits?.admit()
    if (overrun != null) return this.overrun(overrun.code, overrun.reason)
    let message: MuxMessage
    try {
      if (!isBinary) throw new ProtocolError('ERR_TEXT_FRAME', 'text frames are not part of the protocol: send binary frames')
      message = decodeMuxMessage(toBytes(data))
    } catch (err) {
      const { code, reason, metric } = describeFailure(err)
      this.ctx.metrics.rejected.inc({ code: metric })
      return this.close(code, reason)
    }
    if (this.waiting !== null) this.waiting.push(message)
    else this.dispatch(message)
  }

  private dispatch (message: MuxMessage): void {
    try {
      this.handle(message)
    } catch (err) {
      if ('docId' in message) this.failDoc(message.docId, err)
      else this.close(CloseCode.MalformedMessage, (err as Error).message)
    }
  }

  private handle (message: MuxMessage): void {
    switch (message.type) {
      case 'open': return this.open(message.docId, message.docName, message.ack)
      case 'close':
        this.moved.delete(message.docId)
        return this.closeDoc(message.docId)
      case 'sync': {
        if (this.moved.has(message.docId)) return
        const doc = this.docOf(message.docId)
        const messages = decodeFrame(message.payload)
        validateMessages(messages)
        return doc.session.receive(messages)
      }
      case 'write': {
        if (this.moved.has(message.docId)) return
        const doc = this.docOf(message.docId)
        validateUpdate(message.update)
        const { docId, writeId } = message
        return doc.session.write(message.update, seq => {
          // A document that failed meanwhile acknowledges nothing more: an ack covers every
          // earlier write, and one of those may be the write that failed.
          if (this.docs.get(docId) !== doc) return
          this.send({ type: 'ack', docId, writeId, level: 'local' })
          if (doc.ack === 'local') return
          for (const level of doc.ack === 'all' ? ['majority', 'all'] as const : ['majority'] as const) {
            this.ctx.acks.whenDurable(seq, level, doc, () => {
              if (this.docs.get(docId) === doc) this.send({ type: 'ack', docId, writeId, level })
            }, doc.regions)
          }
        })
      }
      case 'ping': return this.send({ type: 'pong', nonce: message.nonce })
      case 'auth': return this.refresh(message.token)
      default: throw new ProtocolError('ERR_UNEXPECTED_MESSAGE', `${message.type} goes from relay to client, not the other way`)
    }
  }

  private docOf (docId: number): OpenDoc {
    const doc = this.docs.get(docId)
    if (doc === undefined) throw new ProtocolError('ERR_UNEXPECTED_MESSAGE', `document ${docId} is not open on this socket: send open first`)
    return doc
  }

  private open (docId: number, docName: string, ack: AckLevel): void {
    // Opening an open document starts it over (a client re-attaching after an error).
    if (this.docs.has(docId)) this.closeDoc(docId)
    this.moved.delete(docId)
    const target = parseRequestPath('/' + encodeURIComponent(docName))
    if (target.kind !== 'doc') {
      return this.send({ type: 'error', docId, code: CloseCode.MalformedMessage, reason: target.kind === 'invalid' ? target.reason : `"${docName}" is a reserved name` })
    }
    const access = this.grants?.access(docName) ?? 'rw'
    if (access === 'none') {
      this.ctx.metrics.rejected.inc({ code: 'ERR_FORBIDDEN' })
      return this.send({ type: 'error', docId, code: CloseCode.Forbidden, reason: `this token does not allow "${docName}"` })
    }
    if (this.docs.size >= this.ctx.maxDocs) {
      this.ctx.metrics.rejected.inc({ code: 'ERR_TOO_MANY_DOCS' })
      return this.send({ type: 'error', docId, code: CloseCode.RateLimited, reason: `at most ${this.ctx.maxDocs} documents per connection (limits.maxDocsPerConnection): close some first` })
    }
    let doc: OpenDoc | undefined
    let moved = false
    const session = new DocSession(docName, this.ctx.registry, {
      send: payload => { if (doc !== undefined && this.docs.get(docId) === doc) this.send({ type: 'sync', docId, payload }) },
      fail: err => this.failDoc(docId, err),
      redirect: (region, url) => {
        moved = true
        this.moved.add(docId)
        if (doc !== undefined && this.docs.get(docId) === doc) this.closeDoc(docId)
        this.send({ type: 'redirect', docId, region, url })
      },
      refuseWrite: (code, reason) => {
        this.ctx.metrics.rejected.inc({ code })
        this.send({ type: 'error', docId, code: code === 'ERR_DOC_TOO_LARGE' ? CloseCode.MessageTooLarge : CloseCode.Forbidden, reason })
      },
    }, this.ctx.placement ?? everywhere)
    session.readOnly = access === 'ro'
    // A document that lives elsewhere was redirected while its session was made.
    if (moved) return
    doc = { ack, session, regions: this.ctx.allowedRegions?.(docName) }
    this.docs.set(docId, doc)
  }

  private closeDoc (docId: number): void {
    const doc = this.docs.get(docId)
    if (doc === undefined) return
    this.docs.delete(docId)
    this.ctx.acks.cancel(doc)
    doc.session.close()
  }

  /** One document failed: tell the client, close that document, keep the others. */
  private failDoc (docId: number, err: unknown): void {
    const { code, reason, metric, level } = describeFailure(err)
    this.ctx.metrics.rejected.inc({ code: metric })
    this.ctx.logger.log(level, 'document refused on a mux socket', { docId, code: metric, reason })
    this.closeDoc(docId)
    this.send({ type: 'error', docId, code, reason })
  }

  private armExpiry (): void {
    this.expiry?.cancel()
    this.expiry = expiryTimer(this.grants, () => this.close(CloseCode.Unauthenticated, 'the token has expired: reconnect with a fresh one'))
  }

  /** A new token for this socket: documents it no longer allows are closed, the others follow its access. */
  private refresh (token: string): void {
    const verify = this.ctx.verify
    if (verify === undefined) return
    this.waiting = []
    const resume = (): void => {
      const waiting = this.waiting ?? []
      this.waiting = null
      for (let i = 0; i < waiting.length && !this.closed; i++) {
        this.dispatch(waiting[i] as MuxMessage)
        // Another auth among them: the rest wait for it in turn.
        const again = this.waiting as MuxMessage[] | null
        if (again !== null) {
          again.push(...waiting.slice(i + 1))
          return
        }
      }
    }
    verify(token).then(grants => {
      if (this.closed) return
      this.grants = grants
      this.armExpiry()
      for (const [docId, doc] of [...this.docs]) {
        const access = grants.access(doc.session.docName)
        if (access === 'none') {
          this.closeDoc(docId)
          this.send({ type: 'error', docId, code: CloseCode.Forbidden, reason: `the new token does not allow "${doc.session.docName}"` })
        } else {
          doc.session.readOnly = access === 'ro'
        }
      }
      resume()
    }, err => {
      this.ctx.metrics.rejected.inc({ code: err instanceof AuthError ? err.code : 'ERR_TOKEN' })
      this.close(CloseCode.Unauthenticated, err instanceof AuthError ? err.message : 'the new token could not be checked')
    })
  }

  private onClose (): void {
    if (this.closed) return
    this.closed = true
    this.expiry?.cancel()
    this.ctx.limits?.release()
    this.ctx.metrics.connections.dec({ endpoint: 'mux' })
    for (const docId of [...this.docs.keys()]) this.closeDoc(docId)
  }
}
