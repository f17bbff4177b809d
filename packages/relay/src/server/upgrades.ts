/**
 * Every WebSocket upgrade of the relay's port, routed and admitted: peer links (`/v1/peer`,
 * checked on the request itself), the SDK's `/v1/mux`, and stock y-websocket clients on
 * `/<document>`. Client tokens are checked before the upgrade completes; a refusal completes it
 * only to say why in a close code, and the socket is cut if it does not close promptly. Also
 * here: the keepalive of client sockets and the relay-wide receive budget every socket draws on.
 */
import type http from 'node:http'
import type { Duplex } from 'node:stream'
import { type WebSocket, WebSocketServer } from 'ws'
import { CloseCode, closeReason } from '@georelay/core'
import { AuthError, type Authenticator, type Grants, tokenOf } from '../auth/index.js'
import { CLOSE_HANDSHAKE_MS, ClientConnection, HocuspocusConnection, MuxConnection, writeFramesDirectly } from '../clients/index.js'
import type { RelayConfig } from '../config/index.js'
import type { DocRegistry, SessionPlacement } from '../docs/index.js'
import { BucketsByKey, ConnectionLimits, ReceiveBudget } from '../limits/index.js'
import { type Mesh, PEER_DEFLATE } from '../mesh/index.js'
import type { Logger, RelayMetrics } from '../observability/index.js'
import type { Placement } from '../placement/index.js'
import type { WriteAcks } from '../replication/index.js'
import { type PathTarget, parseRequestPath } from './doc-path.js'
import { socketClassFor } from './relay-socket.js'

/**
 * Authenticated peer sockets open at once: a few, and per configured peer its link, a
 * replacement and some half-open.
 */
const PEER_SOCKETS_BASE = 8
const PEER_SOCKETS_PER_PEER = 4
/** Bytes that may wait for a document to load, beyond the one message being handled. */
const PENDING_SLACK_BYTES = 1024 * 1024
/** How long a drain waits for clients to finish the close handshake. */
const DRAIN_GRACE_MS = 2000
/** How often client sockets are pinged; one missed answer and the socket is cut. */
const CLIENT_KEEPALIVE_MS = 30_000
/** How often SDK sockets are told how stale this region is (when it changed). */
const STALENESS_TICK_MS = 1000
/** How often Hocuspocus sockets are looked at (a keepalive after 10 s of quiet; the provider waits 30 s). */
const HOCUSPOCUS_TICK_MS = 2_500

/**
 * Peer batches are capped at 512 KiB of updates, but one entry may be a whole large write and a
 * catch-up a whole document, which replicated writes can grow past maxDocumentBytes.
 */
export const peerMaxPayload = (config: RelayConfig): number =>
  Math.max(64 * 1024 * 1024, config.limits.maxMessageBytes, 2 * config.limits.maxDocumentBytes)

export interface UpgradeContext {
  config: RelayConfig
  metrics: RelayMetrics
  logger: Logger
  /** For lines any client can cause at will (refused tokens). */
  refusalLog: Logger
  authenticator: Authenticator
  mesh: Mesh
  documents: DocRegistry
  acks: WriteAcks
  placement: Placement
  sessionPlacement: SessionPlacement
  /** Every region's public URL, this one first. */
  endpoints(): { name: string, url: string }[]
  logName(name: string): string
}

const refuseUpgrade = (socket: Duplex, status: number, text: string, reason: string): void => {
  socket.end(`HTTP/1.1 ${status} ${text}\r\nContent-Type: text/plain\r\nConnection: close\r\n\r\n${reason}\n`)
  // Nothing more is read from a refused socket, and it does not linger.
  socket.once('finish', () => socket.destroy())
  setTimeout(() => socket.destroy(), CLOSE_HANDSHAKE_MS).unref()
}

export class UpgradeRouter {
  private readonly wss: WebSocketServer
  private readonly peerWss: WebSocketServer
  private readonly perAddress: BucketsByKey
  private readonly receiveBudget: ReceiveBudget
  private readonly connections = new Set<ClientConnection | MuxConnection | HocuspocusConnection>()
  private readonly hocuspocus = new Set<HocuspocusConnection>()
  private readonly muxes = new Set<MuxConnection>()
  private readonly stalenessTicks: NodeJS.Timeout
  /** Client sockets that answered the last ping (or sent anything since). */
  private readonly alive = new WeakSet<WebSocket>()
  private readonly keepalive: NodeJS.Timeout
  private readonly hocuspocusTicks: NodeJS.Timeout
  private peerSockets = 0
  private draining = false

  constructor (private readonly ctx: UpgradeContext) {
    const { config, metrics } = ctx
    this.wss = new WebSocketServer({
      noServer: true,
      maxPayload: config.limits.maxMessageBytes,
      perMessageDeflate: false,
      WebSocket: socketClassFor(config.limits.maxMessageBytes),
    })
    // Peer links compress (zlib, context kept across messages): Yjs updates repeat client ids
    // and document names, and update-level merging alone barely shrinks keystroke runs.
    const peerPayload = peerMaxPayload(config)
    this.peerWss = new WebSocketServer({
      noServer: true,
      perMessageDeflate: config.replication.compress ? PEER_DEFLATE : false,
      maxPayload: peerPayload,
      WebSocket: socketClassFor(peerPayload),
    })
    this.perAddress = new BucketsByKey(config.limits.messagesPerSecondPerAddress)
    this.receiveBudget = new ReceiveBudget(config.limits.maxReceivingBytes, reason => {
      metrics.rejected.inc({ code: 'ERR_TOO_SLOW' })
      ctx.refusalLog.log('info', 'cut a socket whose large message crawled while others waited', { reason })
    }, stats => {
      metrics.receivingBytes.set(stats.drawn)
      metrics.receiveWaits.set(stats.waiting)
    })
    this.wss.on('connection', ws => {
      this.alive.add(ws)
      ws.on('pong', () => this.alive.add(ws))
    })
    this.keepalive = setInterval(() => this.checkClients(), CLIENT_KEEPALIVE_MS)
    this.keepalive.unref()
    this.hocuspocusTicks = setInterval(() => { for (const c of this.hocuspocus) c.tick() }, HOCUSPOCUS_TICK_MS)
    this.hocuspocusTicks.unref()
    this.stalenessTicks = setInterval(() => {
      if (this.muxes.size === 0 || ctx.config.peers.length === 0) return
      const staleness = ctx.mesh.staleness()
      for (const mux of this.muxes) mux.tellStaleness(staleness)
    }, STALENESS_TICK_MS)
    this.stalenessTicks.unref()
  }

  handle (req: http.IncomingMessage, socket: Duplex, head: Buffer): void {
    if (this.draining) return refuseUpgrade(socket, 503, 'Service Unavailable', 'relay shutting down; connect to another region')
    const target = parseRequestPath(req.url ?? '/')
    if (target.kind === 'reserved' && target.path === 'v1/peer') return this.upgradePeer(req, socket, head)
    if (target.kind === 'invalid') {
      this.ctx.metrics.rejected.inc({ code: 'ERR_BAD_NAME' })
      // A close with the reason, not an HTTP 400: a stock provider shows a close's reason, and
      // only "Unexpected server response: 400" for a refused upgrade.
      return this.refuseClient(req, socket, head, CloseCode.MalformedMessage, target.reason)
    }
    if (target.kind === 'reserved' && target.path !== 'v1/mux' && target.path !== 'v1/hocuspocus') return refuseUpgrade(socket, 404, 'Not Found', `/${target.path} is reserved and not a WebSocket endpoint of this relay`)
    // Hocuspocus providers authenticate each document in its own Auth message, not the socket.
    if (target.kind === 'reserved' && target.path === 'v1/hocuspocus') return this.acceptClient(req, socket, head, target, null)
    this.ctx.authenticator.verify(tokenOf(req.url ?? '/')).then(
      grants => this.acceptClient(req, socket, head, target, grants),
      err => this.acceptClient(req, socket, head, target, err instanceof AuthError ? err : new AuthError('ERR_TOKEN', 'the token could not be checked')),
    )
  }

  /**
   * Stops taking upgrades, closes every client with 1001 and gives them a moment to finish the
   * close handshake; the rest, and every peer socket, are cut.
   */
  async drain (): Promise<void> {
    this.draining = true
    clearInterval(this.keepalive)
    clearInterval(this.hocuspocusTicks)
    clearInterval(this.stalenessTicks)
    this.receiveBudget.close()
    for (const ws of this.peerWss.clients) ws.terminate()
    const allClosed = Promise.all([...this.wss.clients].map(ws => new Promise(resolve => {
      if (ws.readyState === ws.CLOSED) resolve(null)
      else ws.once('close', resolve)
    })))
    for (const connection of this.connections) connection.close(CloseCode.GoingAway, 'relay shutting down; reconnect, possibly to another region')
    let timer: NodeJS.Timeout | undefined
    await Promise.race([allClosed, new Promise(resolve => { timer = setTimeout(resolve, DRAIN_GRACE_MS) })])
    clearTimeout(timer)
    for (const ws of this.wss.clients) ws.terminate()
  }

  /**
   * A client that vanished without closing (NAT timeout, a sleeping laptop) would hold its
   * document and presence forever: ping every client, and cut those that did not answer the
   * previous ping (a socket sending a large message counts as answering while bytes arrive).
   */
  private checkClients (): void {
    for (const ws of this.wss.clients) {
      if (!this.alive.has(ws)) {
        ws.terminate()
        continue
      }
      this.alive.delete(ws)
      ws.ping()
    }
  }

  /**
   * A peer's link: the secret and region are checked on the upgrade request, so a socket
   * without them is refused with an HTTP status and never inflates a frame.
   */
  private upgradePeer (req: http.IncomingMessage, socket: Duplex, head: Buffer): void {
    const { mesh, metrics, config, logger } = this.ctx
    const admitted = mesh.admit(req)
    if ('status' in admitted) return refuseUpgrade(socket, admitted.status, admitted.status === 401 ? 'Unauthorized' : 'Forbidden', admitted.reason)
    if (this.peerSockets >= PEER_SOCKETS_BASE + PEER_SOCKETS_PER_PEER * config.peers.length) {
      metrics.peerRefused.inc({ reason: 'busy' })
      return refuseUpgrade(socket, 503, 'Service Unavailable', 'too many peer sockets open; retry later')
    }
    this.peerSockets++
    socket.once('close', () => { this.peerSockets-- })
    this.peerWss.handleUpgrade(req, socket, head, ws => {
      // Before anything else: a protocol violation on a socket without an 'error' listener
      // would throw and take the whole relay down.
      ws.on('error', err => logger.log('debug', 'peer socket error', { error: err.message }))
      this.receiveBudget.track(ws, socket)
      mesh.accept(ws, admitted.region)
    })
  }

  /** Completes the upgrade only to say why not, then cuts the socket if it does not close promptly. */
  private refuseClient (req: http.IncomingMessage, socket: Duplex, head: Buffer, code: number, reason: string): void {
    this.wss.handleUpgrade(req, socket, head, ws => {
      ws.on('error', () => {})
      ws.on('message', () => this.ctx.metrics.droppedAfterClose.inc())
      ws.close(code, closeReason(reason))
      setTimeout(() => ws.terminate(), CLOSE_HANDSHAKE_MS).unref()
    })
  }

  private limitsFor (req: http.IncomingMessage): ConnectionLimits {
    return new ConnectionLimits(this.ctx.config.limits, this.perAddress, req.socket.remoteAddress ?? 'unknown')
  }

  private acceptClient (
    req: http.IncomingMessage,
    socket: Duplex,
    head: Buffer,
    target: PathTarget,
    grants: Grants | AuthError | null,
  ): void {
    const { config, metrics, logger } = this.ctx
    if (socket.destroyed) return
    if (this.draining) return refuseUpgrade(socket, 503, 'Service Unavailable', 'relay shutting down; connect to another region')
    if (this.connections.size >= config.limits.maxConnections) {
      metrics.rejected.inc({ code: 'ERR_TOO_MANY_CONNECTIONS' })
      return this.refuseClient(req, socket, head, CloseCode.RateLimited, `this relay is full (limits.maxConnections ${config.limits.maxConnections}); try another region`)
    }
    if (grants instanceof AuthError) {
      metrics.rejected.inc({ code: grants.code })
      this.ctx.refusalLog.log('info', 'refused a client: authentication failed', { code: grants.code, address: req.socket.remoteAddress })
      return this.refuseClient(req, socket, head, CloseCode.Unauthenticated, grants.message)
    }
    if (target.kind === 'invalid') return
    if (target.kind === 'doc' && grants !== null && grants.access(target.name) === 'none') {
      metrics.rejected.inc({ code: 'ERR_FORBIDDEN' })
      return this.refuseClient(req, socket, head, CloseCode.Forbidden, `this token does not allow "${target.name}"`)
    }
    this.wss.handleUpgrade(req, socket, head, ws => {
      writeFramesDirectly(ws, socket)
      this.wss.emit('connection', ws, req)
      this.receiveBudget.track(ws, socket, () => this.alive.add(ws))
      const shared = {
        registry: this.ctx.documents,
        metrics,
        logger,
        placement: this.ctx.sessionPlacement,
        limits: this.limitsFor(req),
        maxPendingBytes: config.limits.maxMessageBytes + PENDING_SLACK_BYTES,
      }
      if (grants === null) {
        const connection = new HocuspocusConnection(ws, {
          ...shared,
          refusalLog: this.ctx.refusalLog,
          maxDocs: config.limits.maxDocsPerConnection,
          verify: token => this.ctx.authenticator.verify(token),
          logName: name => this.ctx.logName(name),
        })
        this.connections.add(connection)
        this.hocuspocus.add(connection)
        ws.once('close', () => {
          this.connections.delete(connection)
          this.hocuspocus.delete(connection)
        })
        return
      }
      const connection = target.kind === 'doc'
        ? new ClientConnection(ws, { ...shared, docName: target.name, grants, logName: name => this.ctx.logName(name) })
        : new MuxConnection(ws, {
          ...shared,
          refusalLog: this.ctx.refusalLog,
          acks: this.ctx.acks,
          maxDocs: config.limits.maxDocsPerConnection,
          maxMessageBytes: config.limits.maxMessageBytes,
          region: config.region,
          regions: () => this.ctx.endpoints(),
          allowedRegions: docName => this.ctx.placement.allowedRegions(docName),
          defaultAck: docName => this.ctx.placement.resolve(docName).ack,
          strongRead: (docName, level, timeoutMs) => this.ctx.mesh.strongReads.read(docName, level, timeoutMs),
          staleness: () => config.peers.length === 0 ? [] : this.ctx.mesh.staleness(),
          grants,
          verify: token => this.ctx.authenticator.verify(token),
        })
      this.connections.add(connection)
      if (connection instanceof MuxConnection) this.muxes.add(connection)
      ws.once('close', () => {
        this.connections.delete(connection)
        if (connection instanceof MuxConnection) this.muxes.delete(connection)
      })
    })
  }
}
