/**
 * This relay's link to one peer region, the dialer's side of the peer protocol: it dials the
 * peer with the mesh secret, waits for the peer's `welcome` (its marks) and `policy` (its
 * rules), then streams the log (log-pump.ts) and catches the peer up by state vector where the
 * log cannot (catch-up.ts). A dropped link is dialled again with full-jitter backoff and
 * resumes from the acknowledged marks.
 */
import WebSocket from 'ws'
import { CloseCode, type PeerMessage, fullJitter } from '@georelay/core'
import { CatchUp } from './catch-up.js'
import { type LinkContext, isControl } from './link-context.js'
import { LogPump } from './log-pump.js'
import { PeerSocket } from './peer-socket.js'

/** How a lost peer is dialled again (full jitter, so relays that lost each other do not all come back in one wave). */
const REDIAL = { baseMs: 100, maxMs: 5000 }

/**
 * Compression of peer links, with the context kept across messages. Every message is deflated,
 * small ones too: a lone keystroke's batch or an ack is mostly what the messages before it said
 * (measured: a one-keystroke batch 52.9 → 23.1 bytes on the wire, an ack 19 → 9).
 */
export const PEER_DEFLATE = { threshold: 0, serverNoContextTakeover: false, clientNoContextTakeover: false } as const

export type LinkStatus = 'down' | 'connecting' | 'up'

/**
 * Why a link is down, as a kind: what /v1/regions shows (the words, which may hold addresses,
 * go to the log only).
 */
export type LinkErrorKind =
  | 'refused-secret' | 'refused-region' | 'refused' | 'unreachable' | 'timeout' | 'protocol' | 'wrong-region' | 'replication' | 'closed'
  /** This node of a region of several does not hold the mesh lease: the node that holds it dials. */
  | 'other-node'

const kindOfSocketError = (err: Error & { code?: string }): LinkErrorKind =>
  err.code === 'ECONNREFUSED' || err.code === 'ENOTFOUND' || err.code === 'EHOSTUNREACH' || err.code === 'ENETUNREACH' || err.code === 'EAI_AGAIN'
    ? 'unreachable'
    : /timed? ?out/i.test(err.message) ? 'timeout' : 'closed'

export class OutboundLink {
  status: LinkStatus = 'down'
  lastError: string | undefined
  /** The kind of `lastError`. */
  lastErrorKind: LinkErrorKind | undefined
  /** Round trip of the last answered ping. */
  rttMs: number | null = null
  private socket: PeerSocket | null = null
  private readonly pump: LogPump
  private readonly catchUp: CatchUp
  /** The HTTP status of a refused upgrade, until the close that follows it. */
  private refusedWith: number | null = null
  /** This side closed the link (a drop): its close code is ours, not a refusal. */
  private droppedByUs = false
  private reconnectTimer: NodeJS.Timeout | null = null
  private heartbeat: NodeJS.Timeout | null = null
  private attempts = 0
  private pingSentAt = 0
  /** The handshake is done once both the welcome and the peer's policy arrived. */
  private welcome: PeerMessage & { type: 'welcome' } | null = null
  private gotPolicy = false
  private closed = false
  /** Not dialling, until `start` again: another node of the region holds the mesh lease. */
  private suspended = false

  /** Which of `urls` the next dial uses: each close moves on to the next, so a dead node is left behind. */
  private urlIndex = 0
  /** Which of ctx.meshSecrets to dial with: the one the peer took last, else the next after a refusal. */
  private secretIndex = 0
  /** Secrets refused in a row: a refusal is an error only once every secret was refused. */
  private secretRefusals = 0

  /** `urls`: where the peer region is reached, its nodes' addresses when it is a region of several. */
  constructor (private readonly ctx: LinkContext, readonly region: string, private readonly urls: readonly string[]) {
    const updatesOut = ctx.metrics.peerUpdatesOut.labels({ peer: region })
    this.pump = new LogPump({
      up: () => this.status === 'up',
      send: message => this.send(message),
      catchUp: (origin, after) => this.catchUp.folded(origin, after),
      failed: err => this.drop(`replication failed: ${(err as Error).message}`, CloseCode.InternalError, 'replication'),
    }, {
      read: (origin, after, limit) => ctx.log.read(origin, after, limit),
      origins: () => ctx.originsFor(region),
      mayReceive: docName => ctx.placement.mayReceive(docName, region),
      batchWindowMs: ctx.timing.batchWindowMs,
      sent: entries => updatesOut.inc(entries),
    })
    this.catchUp = new CatchUp({
      peer: region,
      send: message => this.send(message),
      docsFoldedPast: (origin, after) => ctx.log.docsFoldedPast(origin, after),
      documents: ctx.documents,
      placement: ctx.placement,
      counted: () => ctx.metrics.catchUps.inc({ peer: region }),
      log: (message, fields) => ctx.logger.log('info', message, fields),
    })
  }

  start (): void {
    this.suspended = false
    if (this.lastErrorKind === 'other-node') this.lastErrorKind = undefined
    if (this.socket === null && this.reconnectTimer === null && !this.closed) this.connect()
  }

  /** Stops dialling and drops the link, until `start`: another node took over the region's links. */
  suspend (): void {
    if (this.suspended || this.closed) return
    this.suspended = true
    this.lastError = 'another node of this region holds the mesh lease and dials this peer'
    this.lastErrorKind = 'other-node'
    if (this.reconnectTimer !== null) clearTimeout(this.reconnectTimer)
    this.reconnectTimer = null
    this.attempts = 0
    this.pump.stop()
    this.droppedByUs = true
    this.socket?.close(CloseCode.GoingAway, 'this node no longer holds the region\'s mesh lease')
    this.socket?.terminate()
  }

  /** The peer's durable marks, from its welcome and acks. */
  get peerHave (): Readonly<Record<string, number>> {
    return this.pump.peerHave
  }

  /** When the peer was last heard on this link. */
  get lastHeardAt (): number {
    return this.socket?.lastHeard ?? 0
  }

  send (message: PeerMessage): boolean {
    return this.socket?.send(message) ?? false
  }

  /** There is more in the log: stream it (see LogPump.schedule). */
  schedulePump (delayMs?: number): void {
    this.pump.schedule(delayMs)
  }

  /**
   * The peer just dialled us, so it is up again: waiting out a backoff grown while it was down
   * would leave its missed entries unsent for seconds. Dial now if a redial is pending.
   */
  redialNow (): void {
    if (this.closed || this.suspended || this.reconnectTimer === null) return
    clearTimeout(this.reconnectTimer)
    this.reconnectTimer = null
    this.attempts = 0
    this.connect()
  }

  close (): void {
    this.closed = true
    if (this.reconnectTimer !== null) clearTimeout(this.reconnectTimer)
    this.pump.stop()
    this.socket?.close(CloseCode.GoingAway, 'relay shutting down')
    this.socket?.terminate()
  }

  private connect (): void {
    this.status = 'connecting'
    const { ctx } = this
    const url = this.urls[this.urlIndex % this.urls.length] as string
    const ws = new WebSocket(`${url.replace(/\/$/, '')}/v1/peer`, {
      headers: { authorization: `Bearer ${ctx.meshSecrets[this.secretIndex % ctx.meshSecrets.length] ?? ''}`, 'x-georelay-region': ctx.region },
      perMessageDeflate: ctx.timing.compress === false ? false : PEER_DEFLATE,
      handshakeTimeout: ctx.timing.linkTimeoutMs,
      maxPayload: ctx.maxPayload,
    })
    const socket = new PeerSocket(ws, this.region, ctx.metrics, {
      message: message => this.handle(message),
      malformed: reason => this.drop(`malformed message from the peer: ${reason}`, CloseCode.MalformedMessage, 'protocol'),
    })
    this.socket = socket
    // A relay refuses a link before the upgrade (401 wrong secret, 403 not a peer there).
    ws.on('unexpected-response', (_req, res) => {
      this.refusedWith = res.statusCode ?? 0
      res.resume()
      ws.terminate()
    })
    ws.on('pong', () => {
      if (this.pingSentAt !== 0) this.rttMs = Date.now() - this.pingSentAt
      this.pingSentAt = 0
    })
    ws.on('open', () => {
      this.send({ type: 'policy', rules: ctx.placement.canonical })
      this.heartbeat = setInterval(() => {
        if (Date.now() - socket.lastHeard > ctx.timing.linkTimeoutMs) return this.drop('the peer went silent past the link timeout', CloseCode.InternalError, 'timeout')
        this.pingSentAt = Date.now()
        ws.ping()
      }, ctx.timing.heartbeatMs)
    })
    ws.on('close', (code, reason) => this.onClose(socket, code, reason.toString()))
    ws.on('error', err => {
      if (this.suspended) return
      this.lastError = err.message
      this.lastErrorKind = kindOfSocketError(err)
    })
  }

  private handle (message: PeerMessage): void {
    if (isControl(message)) return this.ctx.control(message, this.region)
    switch (message.type) {
      case 'welcome':
        if (message.region !== this.region) return this.drop(`expected region ${this.region} but ${message.region} answered`, CloseCode.Forbidden, 'wrong-region')
        this.welcome = message
        this.socket?.peerSpeaks(message.version)
        return this.handshakeDone()
      case 'policy':
        this.ctx.placement.setPeerRules(this.region, message.rules)
        this.gotPolicy = true
        return this.handshakeDone()
      case 'ack':
        this.pump.acknowledge(message.have)
        this.ctx.acknowledged(this.region)
        return
      case 'sv-reply':
        return this.catchUp.reply(message.docs)
      default:
        return this.drop(`unexpected ${message.type} on an outbound link`, CloseCode.MalformedMessage, 'protocol')
    }
  }

  /** Nothing is streamed before the peer's rules are known: they decide what may go there. */
  private handshakeDone (): void {
    if (this.welcome === null || !this.gotPolicy || this.status === 'up') return
    this.status = 'up'
    this.attempts = 0
    this.secretRefusals = 0
    this.lastError = undefined
    this.lastErrorKind = undefined
    this.pump.start(this.welcome.have)
    this.ctx.linkChanged(this.region)
    this.catchUp.restricted().catch(err => this.drop(`reconciling restricted documents failed: ${(err as Error).message}`, CloseCode.InternalError, 'replication'))
  }

  private drop (reason: string, code: number = CloseCode.InternalError, kind: LinkErrorKind = 'closed'): void {
    this.lastError = reason
    this.lastErrorKind = kind
    this.droppedByUs = true
    this.ctx.logger.log('warn', 'peer link dropped', { peer: this.region, reason })
    this.socket?.close(code, reason)
    this.socket?.terminate()
  }

  private onClose (socket: PeerSocket, code: number, reason: string): void {
    if (this.socket !== socket) return
    this.socket = null
    if (this.heartbeat !== null) clearInterval(this.heartbeat)
    this.heartbeat = null
    const wasUp = this.status === 'up'
    this.status = 'down'
    this.welcome = null
    this.gotPolicy = false
    this.pingSentAt = 0
    this.pump.stop()
    this.catchUp.reset()
    // A peer refuses before the upgrade; one of an older version closed with 4401/4403 after it.
    const closedByPeer = code === CloseCode.Unauthenticated ? 401 : code === CloseCode.Forbidden ? 403 : null
    const closedWith = this.droppedByUs ? null : closedByPeer
    const refused = this.refusedWith ?? closedWith
    this.refusedWith = null
    this.droppedByUs = false
    // During a rotation a peer not rotated yet refuses the new secret: the previous ones are tried
    // at once, and it is a refusal only when the peer took none of them.
    const secrets = Math.max(1, this.ctx.meshSecrets.length)
    const nextSecret = refused === 401 && ++this.secretRefusals < secrets
    if (refused === 401) this.secretIndex = (this.secretIndex + 1) % secrets
    if (refused !== null && !nextSecret) {
      this.secretRefusals = 0
      this.lastErrorKind = refused === 401 ? 'refused-secret' : refused === 403 ? 'refused-region' : 'refused'
      this.lastError = `refused by ${this.region} (${refused}${reason === '' ? '' : `: ${reason}`})`
      this.ctx.refusalLog.log('error', 'peer refused the link; check meshSecret and peers on both sides', { peer: this.region, status: refused, kind: this.lastErrorKind })
    }
    if (wasUp) this.ctx.linkChanged(this.region)
    if (!nextSecret) this.urlIndex = (this.urlIndex + 1) % this.urls.length
    if (this.closed || this.suspended) return
    this.reconnectTimer = setTimeout(() => {
      this.reconnectTimer = null
      if (!this.closed) this.connect()
    }, nextSecret ? 0 : fullJitter(this.attempts++, REDIAL))
  }
}
