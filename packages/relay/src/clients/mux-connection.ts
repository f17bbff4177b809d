/**
 * One socket of the SDK on `ws://HOST:PORT/v1/mux`: many documents, each a DocSession whose
 * frames travel wrapped in `sync` messages. A failure of one document is answered with an
 * `error` for that document, which is then closed; only a frame that is not a mux message
 * closes the socket. Every message is charged what it costs (message-cost.ts).
 */
import type { WebSocket } from 'ws'
import {
  type AckLevel, CloseCode, type RegionStaleness, MUX_PROTOCOL_VERSION, type MuxMessage, type OpenAck, ProtocolError,
  type RegionEndpoint, decodeFrame, decodeMuxMessage, docNameProblem, encodeFrame, encodeMuxMessage, isReservedName,
  validateUpdate,
} from '@georelay/core'
import { AuthError, type Grants } from '../auth/index.js'
import { describeFailure } from './client-failure.js'
import { ClientSocket } from './client-socket.js'
import type { ConnectionLimits } from '../limits/index.js'
import type { DocRegistry } from '../docs/index.js'
import { DocSession, type SessionPlacement, validateMessages } from '../docs/index.js'
import type { Logger } from '../observability/index.js'
import { coalesceQuestions, costOfBytes } from '../limits/index.js'
import type { RelayMetrics } from '../observability/index.js'
import { type Expiry, expiryTimer } from '../auth/index.js'
import type { StrongReadResult } from '../mesh/index.js'
import type { WriteAcks } from '../replication/index.js'

/** Checking a token (a signature) costs more than a small message. */
const AUTH_COST = 16
/** A strong read asks other regions: priced like a token check. */
const REFRESH_COST = 16
/** How long a strong read may wait at most, whatever the client asks. */
const MAX_REFRESH_TIMEOUT_MS = 60_000

export interface MuxContext {
  registry: DocRegistry
  metrics: RelayMetrics
  logger: Logger
  /** For refusals a client can repeat at will (a document its token does not allow): throttled. */
  refusalLog?: Logger
  acks: WriteAcks
  maxDocs: number
  /** The largest frame the relay takes, told to the client in the welcome. */
  maxMessageBytes: number
  region: string
  regions: () => RegionEndpoint[]
  placement?: SessionPlacement
  /** The regions a document's `majority` and `all` count (default: every region). */
  allowedRegions?: (docName: string) => string[]
  /** The `ack` of a document's namespace rule, for an `open` that asks for the default. */
  defaultAck?: (docName: string) => AckLevel
  /** How far behind this region is on each other region's writes (mesh.ts, staleness). */
  staleness?: () => RegionStaleness[]
  /** A strong read of a document (mesh/strong-read.ts). */
  strongRead?: (docName: string, level: AckLevel, timeoutMs: number) => Promise<StrongReadResult>
  /** What the socket's token allows (default: everything), and how to check a new token. */
  grants?: Grants
  verify?: (token: string) => Promise<Grants>
  limits?: ConnectionLimits
  /** Bytes that may wait while a document loads. */
  maxPendingBytes?: number
}

interface OpenDoc {
  session: DocSession
  ack: AckLevel
  regions: string[] | undefined
  /** The staleness last sent for it, as compared (lags rounded to 100 ms). */
  staleness: string
}

/** Lags are told in steps of this: a document behind by a steady amount is not told every second. */
const STALENESS_STEP_MS = 100

export class MuxConnection {
  private readonly docs = new Map<number, OpenDoc>()
  /**
   * Documents the relay closed (redirected, refused): what the client sent for them before it
   * knew is dropped without an answer. Bounded by maxDocs, oldest forgotten first.
   */
  private readonly gone = new Set<number>()
  private readonly socket: ClientSocket
  private grants: Grants | null
  private expiry: Expiry | null = null

  constructor (ws: WebSocket, private readonly ctx: MuxContext) {
    this.grants = ctx.grants ?? null
    this.socket = new ClientSocket(ws, { endpoint: 'mux', metrics: ctx.metrics, logger: ctx.logger, limits: ctx.limits ?? null }, {
      frame: bytes => this.frame(bytes),
      fail: err => this.socket.fail(err),
      finished: () => this.finished(),
    })
    this.armExpiry()
    this.send({ type: 'welcome', version: MUX_PROTOCOL_VERSION, region: ctx.region, regions: ctx.regions(), maxMessageBytes: ctx.maxMessageBytes })
  }

  close (code: number, reason: string): void {
    this.socket.close(code, reason)
  }

  private send (message: MuxMessage): void {
    this.socket.send(encodeMuxMessage(message))
  }

  private frame (bytes: Uint8Array): void {
    let message: MuxMessage
    try {
      message = decodeMuxMessage(bytes)
    } catch (err) {
      return this.socket.fail(err)
    }
    try {
      this.handle(message)
    } catch (err) {
      if ('docId' in message) this.failDoc(message.docId, err)
      else this.close(CloseCode.MalformedMessage, (err as Error).message)
    }
  }

  private handle (message: MuxMessage): void {
    switch (message.type) {
      case 'open':
        this.socket.charge(1)
        return this.open(message.docId, message.docName, message.ack)
      case 'close':
        this.socket.charge(1)
        this.gone.delete(message.docId)
        return this.closeDoc(message.docId)
      case 'sync': {
        if (this.gone.has(message.docId)) return this.socket.charge(1)
        const doc = this.docOf(message.docId)
        const decoded = decodeFrame(message.payload)
        validateMessages(decoded)
        const messages = coalesceQuestions(decoded)
        this.socket.charge(doc.session.costOf(messages))
        if (!this.socket.closed) doc.session.receive(messages)
        return
      }
      case 'write': {
        this.socket.charge(1 + costOfBytes(message.update.length))
        if (this.gone.has(message.docId) || this.socket.closed) return
        const doc = this.docOf(message.docId)
        validateUpdate(message.update)
        return this.write(doc, message.docId, message.writeId, message.update)
      }
      case 'ping':
        this.socket.charge(1)
        return this.send({ type: 'pong', nonce: message.nonce })
      case 'auth':
        this.socket.charge(AUTH_COST)
        return this.refresh(message.token)
      case 'refresh':
        this.socket.charge(REFRESH_COST)
        if (this.gone.has(message.docId)) return
        return this.strongRead(message.docId, this.docOf(message.docId), message)
      default: throw new ProtocolError('ERR_UNEXPECTED_MESSAGE', `${message.type} goes from relay to client, not the other way`)
    }
  }

  private write (doc: OpenDoc, docId: number, writeId: number, update: Uint8Array): void {
    // At a readable standby the writer says each level itself (mesh/write-forwarding.ts).
    const forwarded = doc.session.forwarding
      ? {
        level: doc.ack,
        durable: (level: AckLevel) => { if (this.docs.get(docId) === doc) this.send({ type: 'ack', docId, writeId, level }) },
      }
      : undefined
    doc.session.write(update, seq => {
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
    }, forwarded)
  }

  private docOf (docId: number): OpenDoc {
    const doc = this.docs.get(docId)
    if (doc === undefined) throw new ProtocolError('ERR_UNEXPECTED_MESSAGE', `document ${docId} is not open on this socket: send open first`)
    return doc
  }

  /** The relay is done with a document the client may still send for. */
  private forget (docId: number): void {
    this.gone.add(docId)
    if (this.gone.size > this.ctx.maxDocs) this.gone.delete(this.gone.values().next().value as number)
  }

  /** Answers `refreshed` once the read is done, after the updates it pulled (sent straight to this client). */
  private strongRead (docId: number, doc: OpenDoc, asked: { level: AckLevel, timeoutMs: number, nonce: number }): void {
    const { level, timeoutMs, nonce } = asked
    const read = this.ctx.strongRead
    if (read === undefined) return this.send({ type: 'refreshed', docId, nonce, unreachable: [] })
    read(doc.session.docName, level, Math.min(timeoutMs, MAX_REFRESH_TIMEOUT_MS)).then(({ updates, unreachable }) => {
      if (this.docs.get(docId) !== doc) return
      for (const update of updates) this.send({ type: 'sync', docId, payload: encodeFrame({ type: 'sync-update', update }) })
      this.send({ type: 'refreshed', docId, nonce, unreachable })
    }, err => this.failDoc(docId, err))
  }

  private open (docId: number, docName: string, asked: OpenAck): void {
    // Opening an open document starts it over (a client re-attaching after an error).
    if (this.docs.has(docId)) this.closeDoc(docId)
    this.gone.delete(docId)
    const problem = docNameProblem(docName) ?? (isReservedName(docName) ? `"${docName}" is a reserved name` : null)
    if (problem !== null) {
      this.forget(docId)
      return this.send({ type: 'error', docId, code: CloseCode.MalformedMessage, reason: problem })
    }
    const access = this.grants?.access(docName) ?? 'rw'
    if (access === 'none') {
      this.ctx.metrics.rejected.inc({ code: 'ERR_FORBIDDEN' })
      this.forget(docId)
      const reason = `this token does not allow "${docName}"`
      ;(this.ctx.refusalLog ?? this.ctx.logger).log('info', 'document refused on a mux socket', { docId, code: 'ERR_FORBIDDEN', reason })
      return this.send({ type: 'error', docId, code: CloseCode.Forbidden, reason })
    }
    if (this.docs.size >= this.ctx.maxDocs) {
      this.ctx.metrics.rejected.inc({ code: 'ERR_TOO_MANY_DOCS' })
      this.forget(docId)
      return this.send({ type: 'error', docId, code: CloseCode.RateLimited, reason: `at most ${this.ctx.maxDocs} documents per connection (limits.maxDocsPerConnection): close some first` })
    }
    let doc: OpenDoc | undefined
    let moved = false
    const session = new DocSession(docName, {
      registry: this.ctx.registry,
      placement: this.ctx.placement,
      maxPendingBytes: this.ctx.maxPendingBytes,
      transport: {
        send: payload => { if (doc !== undefined && this.docs.get(docId) === doc) this.send({ type: 'sync', docId, payload }) },
        fail: err => this.failDoc(docId, err),
        redirect: (region, url) => {
          moved = true
          if (doc !== undefined && this.docs.get(docId) === doc) this.closeDoc(docId)
          this.forget(docId)
          this.send({ type: 'redirect', docId, region, url })
        },
        refuseWrite: (code, reason) => {
          this.ctx.metrics.rejected.inc({ code })
          this.send({ type: 'error', docId, code: code === 'ERR_DOC_TOO_LARGE' ? CloseCode.MessageTooLarge : CloseCode.Forbidden, reason })
        },
        charge: cost => this.socket.charge(cost),
      },
    })
    session.readOnly = access === 'ro'
    // A document that lives elsewhere was redirected while its session was made.
    if (moved) return
    const ack = asked === 'default' ? this.ctx.defaultAck?.(docName) ?? 'local' : asked
    doc = { ack, session, regions: this.ctx.allowedRegions?.(docName), staleness: '' }
    this.docs.set(docId, doc)
    if (asked === 'default') this.send({ type: 'opened', docId, ack })
    this.tellStaleness(this.ctx.staleness?.() ?? [])
  }

  /**
   * Tells each open document how far behind this region is on its other regions' writes, when
   * it changed (called as documents open, and every second by the router).
   */
  tellStaleness (all: readonly RegionStaleness[]): void {
    if (all.length === 0 || this.socket.closed) return
    for (const [docId, doc] of this.docs) {
      const regions = all.filter(s => doc.regions === undefined || doc.regions.includes(s.region))
      const key = regions.map(s => `${s.region}:${Math.ceil(s.lagMs / STALENESS_STEP_MS)}:${s.pending}`).join(',')
      if (key === doc.staleness) continue
      doc.staleness = key
      this.send({ type: 'staleness', docId, regions })
    }
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
    if (this.socket.closed) return
    const { code, reason, metric, level } = describeFailure(err)
    this.ctx.metrics.rejected.inc({ code: metric })
    this.ctx.logger.log(level, 'document refused on a mux socket', { docId, code: metric, reason })
    this.closeDoc(docId)
    this.forget(docId)
    this.send({ type: 'error', docId, code, reason })
  }

  private armExpiry (): void {
    this.expiry?.cancel()
    this.expiry = expiryTimer(this.grants, () => this.close(CloseCode.Unauthenticated, 'the token has expired: reconnect with a fresh one'))
  }

  /**
   * A new token for this socket: documents it no longer allows are closed, the others follow its
   * access. Nothing more is taken from the socket until the token is checked, so what the client
   * sends after `auth` runs under the new token.
   */
  private refresh (token: string): void {
    const verify = this.ctx.verify
    if (verify === undefined) return
    this.socket.hold('auth')
    verify(token).then(grants => {
      if (this.socket.closed) return
      this.grants = grants
      this.armExpiry()
      for (const [docId, doc] of [...this.docs]) {
        const access = grants.access(doc.session.docName)
        if (access === 'none') {
          this.closeDoc(docId)
          this.forget(docId)
          this.send({ type: 'error', docId, code: CloseCode.Forbidden, reason: `the new token does not allow "${doc.session.docName}"` })
        } else {
          doc.session.readOnly = access === 'ro'
        }
      }
      this.socket.release('auth')
    }, err => {
      this.ctx.metrics.rejected.inc({ code: err instanceof AuthError ? err.code : 'ERR_TOKEN' })
      this.close(CloseCode.Unauthenticated, err instanceof AuthError ? err.message : 'the new token could not be checked')
    })
  }

  private finished (): void {
    this.expiry?.cancel()
    for (const docId of [...this.docs.keys()]) this.closeDoc(docId)
  }
}
