/**
 * One socket of an unchanged `@hocuspocus/provider` (3.x or 4.x, as Tiptap uses it) on
 * `ws://HOST:PORT/v1/hocuspocus`: many documents, each authenticated by the token in its own
 * Auth message and served by a DocSession, as the other endpoints' documents are.
 *
 * What the provider expects, and how the relay meets it:
 * - A document's frames that arrive before its Auth message wait (bounded); once the token is
 *   checked the provider hears `authenticated` with its scope, or `permission-denied` with a
 *   reason — also for a document of other regions, whose reason starts `REGION URL : ` like a
 *   4307's (the provider emits `authenticationFailed` with it; an app opens a provider there).
 * - Its sync step 1 is answered with step 2, then the relay's own step 1 (which the provider
 *   answers with its step 2); each sync step 2 and update is answered with SyncStatus once it is
 *   durable here (applied) or refused (read-only, too large), which is how the provider counts
 *   its unsynced changes.
 * - The provider drops a socket on which nothing arrived for 30 s, and the relay does not echo a
 *   client's own awareness: a socket sent nothing for 10 s gets a Ping (4.x answers Pong) or,
 *   for 3.x, which knows no Ping, a frame for the document "" (no provider has it), ignored.
 * - A failure of one document is told with a Close message for it; the socket and the other
 *   documents stay. Only a frame that is not a Hocuspocus message closes the socket (4400).
 * - Stateless messages are accepted and dropped: Hocuspocus gives them meaning only through
 *   server hooks, which a relay does not run (awareness crosses regions; use it for signals).
 */
import type { WebSocket } from 'ws'
import {
  CloseCode, type HocuspocusMessage, PING_FRAME, PONG_FRAME, ProtocolError, type YMessage, addressFrame, closeReason,
  decodeHocuspocusMessage, docNameProblem, encodeHocuspocusKey, encodeHocuspocusMessage, hocuspocusDocName,
  isReservedName, movedReason,
} from '@georelay/core'
import { AuthError, type Expiry, type Grants, expiryTimer } from '../auth/index.js'
import type { DocRegistry, SessionPlacement } from '../docs/index.js'
import { DocSession, validateMessages } from '../docs/index.js'
import type { ConnectionLimits } from '../limits/index.js'
import type { Logger, RelayMetrics } from '../observability/index.js'
import { describeFailure } from './client-failure.js'
import { ClientSocket } from './client-socket.js'

/** Checking a token (a signature) costs more than a small message. */
const AUTH_COST = 16
/** Messages of one document that may wait for its Auth. */
const MAX_WAITING_MESSAGES = 1000
/** How long a socket may stay open without any document authenticated. */
export const HOCUSPOCUS_AUTH_TIMEOUT_MS = 30_000
/** A socket that was sent nothing for this long gets a keepalive (the provider gives up at 30 s). */
export const HOCUSPOCUS_QUIET_MS = 10_000

export const HOCUSPOCUS_PATH = '/v1/hocuspocus'

/** For 3.x, which knows no Ping: a frame for the document "", which no provider has, so it is ignored. */
const NO_DOCUMENT_FRAME = encodeHocuspocusMessage({ type: 'sync-status', key: '', applied: true })

export interface HocuspocusContext {
  registry: DocRegistry
  metrics: RelayMetrics
  logger: Logger
  /** For lines any client can cause at will (refused tokens). */
  refusalLog: Logger
  placement?: SessionPlacement
  verify: (token: string | null) => Promise<Grants>
  maxDocs: number
  limits?: ConnectionLimits
  /** Bytes that may wait for a document: before its Auth, and while it loads. */
  maxPendingBytes: number
  logName?: (name: string) => string
}

type DocState =
  /** Its Auth has not arrived, or is being checked: its messages wait. */
  | { kind: 'waiting', messages: HocuspocusMessage[], bytes: number }
  | { kind: 'open', session: DocSession, expiry: Expiry | null, keyBytes: Uint8Array }
  /** The relay refused or closed it: what the provider sends for it is dropped until a new Auth. */
  | { kind: 'closed' }

const sizeOf = (message: HocuspocusMessage): number => {
  if (message.type !== 'y') return 1
  const m = message.message
  return 'update' in m ? m.update.length : 'stateVector' in m ? m.stateVector.length : 1
}

export class HocuspocusConnection {
  private readonly docs = new Map<string, DocState>()
  private readonly socket: ClientSocket
  private readonly openedAt = Date.now()
  private authenticatedOnce = false
  /** A 4.x provider said its version: it answers Ping. */
  private pings = false
  private lastSentAt = Date.now()
  /** The last frame addressed and the bytes it became: a broadcast sends the same frame to every client. */
  private lastFrame: { frame: Uint8Array, keyBytes: Uint8Array, out: Uint8Array } | null = null

  constructor (ws: WebSocket, private readonly ctx: HocuspocusContext) {
    this.socket = new ClientSocket(ws, { endpoint: 'hocuspocus', metrics: ctx.metrics, logger: ctx.logger, limits: ctx.limits ?? null }, {
      frame: bytes => this.frame(bytes),
      fail: err => this.socket.fail(err),
      finished: () => this.finished(),
    })
  }

  close (code: number, reason: string): void {
    this.socket.close(code, reason)
  }

  /**
   * Called every few seconds: keeps a quiet socket inside the provider's 30 s message timeout,
   * and closes one that never authenticated a document.
   */
  tick (now = Date.now()): void {
    if (this.socket.closed) return
    if (!this.authenticatedOnce && now - this.openedAt >= HOCUSPOCUS_AUTH_TIMEOUT_MS) {
      this.ctx.metrics.rejected.inc({ code: 'ERR_AUTH_TIMEOUT' })
      return this.close(CloseCode.Unauthenticated, `no document was authenticated within ${HOCUSPOCUS_AUTH_TIMEOUT_MS / 1000} s: send an Auth message first`)
    }
    if (this.authenticatedOnce && now - this.lastSentAt >= HOCUSPOCUS_QUIET_MS) {
      this.send(this.pings ? PING_FRAME : NO_DOCUMENT_FRAME)
    }
  }

  private send (bytes: Uint8Array): void {
    this.lastSentAt = Date.now()
    this.socket.send(bytes)
  }

  private sendMessage (message: HocuspocusMessage): void {
    this.send(encodeHocuspocusMessage(message))
  }

  private sendFrame (keyBytes: Uint8Array, frame: Uint8Array): void {
    const last = this.lastFrame
    if (last !== null && last.frame === frame && last.keyBytes === keyBytes) return this.send(last.out)
    const out = addressFrame(keyBytes, frame)
    this.lastFrame = { frame, keyBytes, out }
    this.send(out)
  }

  private frame (bytes: Uint8Array): void {
    let message: HocuspocusMessage
    try {
      message = decodeHocuspocusMessage(bytes)
    } catch (err) {
      return this.socket.fail(err)
    }
    switch (message.type) {
      case 'ping':
        this.socket.charge(1)
        return this.send(PONG_FRAME)
      case 'pong':
        return this.socket.charge(1)
      case 'token':
        this.socket.charge(AUTH_COST)
        return this.authenticate(message.key, message.token, message.version)
      case 'permission-denied': case 'authenticated': case 'sync-status':
        this.socket.charge(1)
        return this.failDoc(message.key, new ProtocolError('ERR_UNEXPECTED_MESSAGE', `${message.type} goes from relay to provider, not the other way`))
      case 'close':
        this.socket.charge(1)
        return this.closeDoc(message.key, null)
      case 'stateless':
        this.socket.charge(1)
        this.ctx.metrics.rejected.inc({ code: 'ERR_STATELESS_IGNORED' })
        return
      case 'y':
        return this.deliver(message.key, message.message, message)
    }
  }

  /** A sync or awareness message: to its open document, or waiting for its Auth. */
  private deliver (key: string, yMessage: YMessage, message: HocuspocusMessage): void {
    const state = this.docs.get(key) ?? this.startWaiting(key)
    if (state === null) return
    switch (state.kind) {
      case 'closed':
        this.ctx.metrics.droppedAfterClose.inc()
        return this.socket.charge(1)
      case 'waiting': {
        this.socket.charge(1)
        state.bytes += sizeOf(message)
        state.messages.push(message)
        if (state.messages.length > MAX_WAITING_MESSAGES || state.bytes > this.ctx.maxPendingBytes) {
          this.ctx.metrics.rejected.inc({ code: 'ERR_TOO_MUCH_PENDING' })
          this.close(CloseCode.RateLimited, `too much arrived for "${hocuspocusDocName(key)}" before its Auth message: authenticate first`)
        }
        return
      }
      case 'open':
        try {
          const messages = [yMessage]
          validateMessages(messages)
          this.socket.charge(state.session.costOf(messages))
          if (!this.socket.closed) state.session.receive(messages)
        } catch (err) {
          this.failDoc(key, err)
        }
    }
  }

  private startWaiting (key: string): DocState | null {
    if (this.docs.size >= this.ctx.maxDocs) {
      this.ctx.metrics.rejected.inc({ code: 'ERR_TOO_MANY_DOCS' })
      this.close(CloseCode.RateLimited, `at most ${this.ctx.maxDocs} documents per connection (limits.maxDocsPerConnection)`)
      return null
    }
    const state: DocState = { kind: 'waiting', messages: [], bytes: 0 }
    this.docs.set(key, state)
    return state
  }

  /**
   * Checks a document's token. Nothing more is taken from the socket meanwhile, so the frames
   * that follow the Auth message run after it, in order.
   */
  private authenticate (key: string, token: string, version: string | null): void {
    if (version !== null) this.pings = true
    const current = this.docs.get(key)
    if (current === undefined) {
      if (this.startWaiting(key) === null) return
    } else if (current.kind !== 'waiting') {
      // A new token for a document starts it over (a provider re-attaching).
      this.closeDoc(key, { kind: 'waiting', messages: [], bytes: 0 })
    }
    this.socket.hold('auth')
    this.ctx.verify(token === '' ? null : token).then(
      grants => this.admit(key, grants),
      err => this.deny(key, err instanceof AuthError ? err : new AuthError('ERR_TOKEN', 'the token could not be checked')),
    ).finally(() => this.socket.release('auth'))
  }

  private deny (key: string, err: AuthError): void {
    if (this.socket.closed) return
    this.ctx.metrics.rejected.inc({ code: err.code })
    this.ctx.refusalLog.log('info', 'refused a Hocuspocus document: authentication failed', { code: err.code })
    const reason = err.code === 'ERR_TOKEN_MISSING' ? 'a token is required: give the provider a token (its `token` option)' : err.message
    this.refuse(key, reason)
  }

  /** The provider hears permission-denied; what it sends for the document is dropped until a new Auth. */
  private refuse (key: string, reason: string): void {
    this.docs.set(key, { kind: 'closed' })
    this.sendMessage({ type: 'permission-denied', key, reason })
  }

  private admit (key: string, grants: Grants): void {
    if (this.socket.closed) return
    const state = this.docs.get(key)
    const waiting = state?.kind === 'waiting' ? state.messages : []
    const docName = hocuspocusDocName(key)
    const problem = docNameProblem(docName) ?? (isReservedName(docName) ? `"${docName}" is a reserved name` : null)
    if (problem !== null) return this.refuse(key, problem)
    const access = grants.access(docName)
    if (access === 'none') {
      this.ctx.metrics.rejected.inc({ code: 'ERR_FORBIDDEN' })
      return this.refuse(key, `this token does not allow "${docName}"`)
    }
    const keyBytes = encodeHocuspocusKey(key)
    // Every update is answered with one of these: encoded once per document, not per update.
    const saved = encodeHocuspocusMessage({ type: 'sync-status', key, applied: true })
    const refused = encodeHocuspocusMessage({ type: 'sync-status', key, applied: false })
    let opened: DocState | undefined
    const isCurrent = (): boolean => opened !== undefined && this.docs.get(key) === opened
    let moved = false
    const session = new DocSession(docName, {
      registry: this.ctx.registry,
      placement: this.ctx.placement,
      maxPendingBytes: this.ctx.maxPendingBytes,
      syncStyle: 'hocuspocus',
      transport: {
        send: frame => { if (isCurrent()) this.sendFrame(keyBytes, frame) },
        fail: err => { if (isCurrent()) this.failDoc(key, err) },
        redirect: (region, url) => {
          moved = true
          if (isCurrent()) this.closeDoc(key, null)
          this.refuse(key, movedReason({ region, url: `${url}${HOCUSPOCUS_PATH}` }, `"${docName}" lives in ${region}: open it there`))
        },
        // The refusal itself reaches the provider as SyncStatus 0 (stored, below).
        refuseWrite: code => this.ctx.metrics.rejected.inc({ code }),
        stored: applied => { if (isCurrent()) this.send(applied ? saved : refused) },
        charge: cost => this.socket.charge(cost),
      },
    })
    session.readOnly = access === 'ro'
    if (moved) return
    const expiry = expiryTimer(grants, () => this.close(CloseCode.Unauthenticated, 'the token has expired: reconnect with a fresh one'))
    opened = { kind: 'open', session, expiry, keyBytes }
    this.docs.set(key, opened)
    this.authenticatedOnce = true
    this.sendMessage({ type: 'authenticated', key, scope: access === 'ro' ? 'readonly' : 'read-write' })
    for (const message of waiting) {
      if (message.type === 'y' && isCurrent()) this.deliver(key, message.message, message)
    }
  }

  /** Ends a document's session; `next` is what the key holds afterwards (null: nothing). */
  private closeDoc (key: string, next: DocState | null): void {
    const state = this.docs.get(key)
    if (state?.kind === 'open') {
      state.expiry?.cancel()
      state.session.close()
    }
    if (next === null) this.docs.delete(key)
    else this.docs.set(key, next)
  }

  /** One document failed: tell the provider with a Close for it, keep the others. */
  private failDoc (key: string, err: unknown): void {
    if (this.socket.closed) return
    const { reason, metric, level } = describeFailure(err)
    this.ctx.metrics.rejected.inc({ code: metric })
    this.ctx.logger.log(level, 'document refused on a Hocuspocus socket', {
      doc: this.ctx.logName?.(hocuspocusDocName(key)) ?? hocuspocusDocName(key), code: metric, reason,
    })
    this.closeDoc(key, { kind: 'closed' })
    this.sendMessage({ type: 'close', key, reason: closeReason(reason) })
  }

  private finished (): void {
    for (const key of [...this.docs.keys()]) this.closeDoc(key, null)
  }
}
