/**
 * A region relay: one HTTP server whose upgrades are the client endpoint, and whose plain
 * requests are the HTTP endpoints. `Relay.start` resolves once it listens; `close` drains.
 */
import http from 'node:http'
import type { AddressInfo } from 'node:net'
import type { Duplex } from 'node:stream'
import { WebSocket, WebSocketServer } from 'ws'
import { CloseCode, type DocStore, MemoryStore, SqliteStore, closeReason } from '@georelay/core'
import { AuthError, Authenticator, type Grants, tokenOf } from './auth.js'
import { ClientConnection } from './client-connection.js'
import { CLOSE_HANDSHAKE_MS } from './client-socket.js'
import { ConnectionLimits } from './connection-limits.js'
import { BucketsByKey } from './token-bucket.js'
import { type RelayConfig, dataDirOf } from './config.js'
import { parseRequestPath } from './doc-path.js'
import { DocRegistry } from './doc-registry.js'
import { handleHttp, type RegionInfo } from './http-endpoints.js'
import { throttledLogger } from './log-throttle.js'
import { Mesh } from './mesh.js'
import { MuxConnection } from './mux-connection.js'
import type { SessionPlacement } from './doc-session.js'
import { Placement } from './placement.js'
import { ReceiveBudget } from './receive-budget.js'
import { WriteAcks } from './write-acks.js'
import { PEER_DEFLATE } from './peer-link.js'
import { ReplicationLog } from './replication-log.js'
import { type Logger, stderrLogger } from './logger.js'
import { createRelayMetrics, type RelayMetrics } from './metrics.js'

/**
 * ws closes an over-long message with 1009 and a text frame that is not UTF-8 with 1007 on its
 * own; georelay's contract is 4413 and 4400 with a reason (DESIGN 4.5). ws lets a server choose
 * its socket class, so the mapping lives here.
 */
class RelaySocket extends WebSocket {
  static maxMessageBytes = 0
  override close (code?: number, data?: string | Buffer): void {
    if (code === 1009) return super.close(CloseCode.MessageTooLarge, `message too large: the limit is ${(this.constructor as typeof RelaySocket).maxMessageBytes} bytes`)
    // ws's own answer to a text frame that is not UTF-8; no text frame is part of the protocol.
    if (code === 1007) return super.close(CloseCode.MalformedMessage, 'text frames are not part of the protocol: send binary frames')
    super.close(code, data)
  }
}

const socketClassFor = (maxMessageBytes: number): typeof WebSocket =>
  class extends RelaySocket { static override maxMessageBytes = maxMessageBytes }

/**
 * Peer batches are capped at 512 KiB of updates, but one entry may be a whole large write and a
 * catch-up a whole document, which replicated writes can grow past maxDocumentBytes.
 */
const peerMaxPayload = (config: RelayConfig): number => Math.max(64 * 1024 * 1024, config.limits.maxMessageBytes, 2 * config.limits.maxDocumentBytes)
/** Authenticated peer sockets open at once: a few, and per configured peer its link, a replacement and some half-open. */
const PEER_SOCKETS_BASE = 8
const PEER_SOCKETS_PER_PEER = 4
/** Bytes that may wait for a document to load, beyond the one message being handled. */
const PENDING_SLACK_BYTES = 1024 * 1024

/** How long a drain waits for clients to finish the close handshake. */
const DRAIN_GRACE_MS = 2000
/** How often client sockets are pinged; one missed answer and the socket is cut. */
const CLIENT_KEEPALIVE_MS = 30_000

export interface RelayOptions {
  config: RelayConfig
  /** Defaults to the store the configuration names, opened in its data directory. */
  store?: DocStore
  logger?: Logger
}

const refuseUpgrade = (socket: Duplex, status: number, text: string, reason: string): void => {
  socket.end(`HTTP/1.1 ${status} ${text}\r\nContent-Type: text/plain\r\nConnection: close\r\n\r\n${reason}\n`)
  // Nothing more is read from a refused socket, and it does not linger.
  socket.once('finish', () => socket.destroy())
  setTimeout(() => socket.destroy(), CLOSE_HANDSHAKE_MS).unref()
}

/** A request's path without its query (which may hold a token), for logs. */
const pathOf = (url: string | undefined): string => (url ?? '/').split('?')[0] as string

export class Relay {
  readonly metrics: RelayMetrics
  readonly mesh: Mesh
  readonly acks: WriteAcks
  /** Where documents may live and which region writes them. */
  readonly placement: Placement
  private readonly authenticator: Authenticator
  private readonly perAddress: BucketsByKey
  private readonly receiveBudget: ReceiveBudget
  /** For lines any client can cause at will (refused tokens, names). */
  private readonly refusalLog: Logger
  private peerSockets = 0
  private readonly sessionPlacement: SessionPlacement
  /** Documents in memory; emits 'loaded' and 'released'. */
  readonly documents: DocRegistry
  private readonly connections = new Set<ClientConnection | MuxConnection>()
  private draining = false
  private closing: Promise<void> | null = null

  private constructor (
    readonly config: RelayConfig,
    readonly store: DocStore,
    readonly log: ReplicationLog,
    private readonly logger: Logger,
    private readonly server: http.Server,
    private readonly wss: WebSocketServer,
    private readonly peerWss: WebSocketServer,
  ) {
    this.metrics = createRelayMetrics(config.region)
    this.authenticator = Authenticator.create(config.auth)
    this.perAddress = new BucketsByKey(config.limits.messagesPerSecondPerAddress)
    this.refusalLog = throttledLogger(logger)
    this.receiveBudget = new ReceiveBudget(config.limits.maxReceivingBytes, reason => {
      this.metrics.rejected.inc({ code: 'ERR_TOO_SLOW' })
      this.refusalLog.log('info', 'cut a socket whose large message crawled while others waited', { reason })
    }, stats => {
      this.metrics.receivingBytes.set(stats.drawn)
      this.metrics.receiveWaits.set(stats.waiting)
    })
    this.placement = new Placement(config.region, [config.region, ...config.peers.map(p => p.region)], config.namespaces, logger,
      (peer, agreement) => this.metrics.policyMismatch.set({ peer }, agreement === 'mismatch' ? 1 : 0))
    this.sessionPlacement = {
      route: docName => this.placement.route(docName),
      urlOf: region => this.endpoints().find(e => e.name === region)?.url ?? '',
      onRoles: (docName, listener) => {
        // Only active-passive documents change writers; the others need no listener.
        if (this.placement.resolve(docName).mode !== 'active-passive') return () => {}
        this.placement.on('roles', listener)
        return () => this.placement.off('roles', listener)
      },
    }
    this.documents = new DocRegistry({
      log,
      metrics: this.metrics,
      logger,
      idleMs: config.idleReleaseMs,
      awarenessSink: (doc, update) => this.mesh.publishAwareness(doc, update),
      maxDocumentBytes: config.limits.maxDocumentBytes,
      fanoutWindowMs: config.fanoutWindowMs,
      presence: config.limits.presence,
      logName: name => this.logName(name),
    })
    this.mesh = new Mesh({
      region: config.region,
      peers: config.peers,
      meshSecret: config.meshSecret,
      timing: config.replication,
      log,
      registry: this.documents,
      metrics: this.metrics,
      logger,
      placement: this.placement,
      maxPayload: peerMaxPayload(config),
    })
    const regions = [config.region, ...config.peers.map(p => p.region)]
    this.acks = new WriteAcks({
      regions: () => regions,
      heldUpTo: region => this.mesh.heldUpTo(region),
      subscribe: listener => {
        this.mesh.on('acknowledged', listener)
        this.mesh.on('change', listener)
        return () => {
          this.mesh.off('acknowledged', listener)
          this.mesh.off('change', listener)
        }
      },
    })
    wss.on('connection', ws => {
      this.alive.add(ws)
      ws.on('pong', () => this.alive.add(ws))
    })
  }

  /**
   * How a document's name may appear in this relay's logs: a name its rules keep out of this
   * region is itself restricted data (DESIGN 5, residency), so it never does.
   */
  logName (name: string): string {
    return this.placement.allowsHere(name) ? name : '(restricted)'
  }

  static async start ({ config, store, logger = stderrLogger() }: RelayOptions): Promise<Relay> {
    const compaction = { updates: config.storage.compactAfterUpdates, bytes: config.storage.compactAfterBytes }
    const onCompactionError = (doc: string, err: unknown): void =>
      logger.log('error', 'compaction failed; the log is kept and compaction retried later', { doc, error: (err as Error).message })
    const docStore = store ?? (config.store === 'memory'
      ? new MemoryStore({ compaction, onCompactionError })
      : new SqliteStore(dataDirOf(config), { compaction, onCompactionError, synchronous: config.storage.synchronous }))
    const server = http.createServer()
    const wss = new WebSocketServer({
      noServer: true,
      maxPayload: config.limits.maxMessageBytes,
      perMessageDeflate: false,
      WebSocket: socketClassFor(config.limits.maxMessageBytes),
    })
    const peerPayload = peerMaxPayload(config)
    // Peer links compress (zlib, context kept across messages): Yjs updates repeat client ids
    // and document names, and update-level merging alone barely shrinks keystroke runs.
    const peerWss = new WebSocketServer({
      noServer: true,
      perMessageDeflate: config.replication.compress ? PEER_DEFLATE : false,
      maxPayload: peerPayload,
      WebSocket: socketClassFor(peerPayload),
    })
    // A relay without peers has no replication lag to report, so it keeps no write times.
    const log = await ReplicationLog.open(config.region, docStore, { trackLag: config.peers.length > 0 })
    const relay = new Relay(config, docStore, log, logger, server, wss, peerWss)
    server.on('request', (req, res) => {
      handleHttp(relay.httpContext(), req, res).catch(err => {
        logger.log('error', 'http handler failed', { path: pathOf(req.url), error: (err as Error).message })
        if (!res.headersSent) res.writeHead(500)
        res.end()
      })
    })
    server.on('upgrade', (req, socket, head) => relay.upgrade(req, socket, head))
    server.on('clientError', (_err, socket) => socket.destroy())
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject)
      server.listen(config.listen.port, config.listen.host, () => {
        server.off('error', reject)
        resolve()
      })
    })
    relay.boundPort = (server.address() as AddressInfo).port
    relay.keepalive = setInterval(() => relay.checkClients(), CLIENT_KEEPALIVE_MS)
    relay.keepalive.unref()
    logger.log('info', 'relay listening', { region: config.region, url: relay.url, store: config.store, peers: config.peers.length })
    if (config.auth.anonymous === 'none' && config.auth.jwtSecret === undefined && config.auth.jwksFile === undefined) {
      logger.log('warn', 'no client can connect: anonymous access is none and no token keys are set. Set auth.jwtSecret or auth.jwksFile, or --anonymous rw for open access', {})
    } else if (config.auth.anonymous !== 'none' && !['127.0.0.1', '::1', 'localhost'].includes(config.listen.host)) {
      logger.log('warn', `anonymous clients may ${config.auth.anonymous === 'rw' ? 'read and write' : 'read'} every document on a non-loopback address`, { host: config.listen.host })
    }
    relay.mesh.start()
    relay.placement.start(relay.mesh)
    return relay
  }

  private boundPort = 0
  private keepalive: NodeJS.Timeout | null = null
  /** Client sockets that answered the last ping. */
  private readonly alive = new WeakSet<WebSocket>()

  /**
   * A client that vanished without closing (NAT timeout, a sleeping laptop) would hold its
   * document and presence forever: ping every client, and cut those that did not answer the
   * previous ping.
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

  /** The port actually bound (useful with port 0); still known after close. */
  get port (): number {
    return this.boundPort
  }

  /** The ws:// URL this relay listens on. */
  get url (): string {
    const host = this.config.listen.host.includes(':') ? `[${this.config.listen.host}]` : this.config.listen.host
    return `ws://${host}:${this.port}`
  }

  get publicUrl (): string {
    return this.config.publicUrl ?? this.url
  }

  /** Number of documents held in memory. */
  get loadedDocuments (): number {
    return this.documents.size
  }

  /** Every region's public URL, this one first: what SDKs choose from. */
  endpoints (): { name: string, url: string }[] {
    return [
      { name: this.config.region, url: this.publicUrl },
      ...this.config.peers.map(p => ({ name: p.region, url: p.publicUrl ?? p.url })),
    ]
  }

  regionInfo (): RegionInfo {
    return {
      region: this.config.region,
      publicUrl: this.publicUrl,
      regions: [
        { name: this.config.region, url: this.publicUrl, self: true, state: 'up' },
        ...this.mesh.peerInfo().map(p => ({
          name: p.region,
          url: this.endpoints().find(e => e.name === p.region)?.url ?? p.url,
          self: false,
          state: p.state === 'up' ? 'up' as const : 'down' as const,
        })),
      ],
      peers: this.mesh.peerInfo(),
      policy: {
        digest: this.placement.digest,
        namespaces: this.placement.rules.map((rule, i) => ({
          match: rule.match,
          mode: rule.mode ?? 'active-active',
          ...(rule.mode === 'active-passive' ? { writer: this.placement.writerFor(i) ?? null } : {}),
        })),
      },
    }
  }

  /**
   * Drains: stops accepting, closes every client with 1001, lets in-flight appends finish,
   * closes the store. Safe to call more than once.
   */
  close (): Promise<void> {
    this.closing ??= this.drain()
    return this.closing
  }

  private async drain (): Promise<void> {
    this.draining = true
    if (this.keepalive !== null) clearInterval(this.keepalive)
    this.mesh.close()
    this.placement.close()
    this.acks.close()
    this.receiveBudget.close()
    for (const ws of this.peerWss.clients) ws.terminate()
    const stopped = new Promise<void>(resolve => this.server.close(() => resolve()))
    this.server.closeIdleConnections()
    const sockets = [...this.wss.clients]
    const allClosed = Promise.all(sockets.map(ws => new Promise(resolve => {
      if (ws.readyState === ws.CLOSED) resolve(null)
      else ws.once('close', resolve)
    })))
    for (const connection of this.connections) connection.close(CloseCode.GoingAway, 'relay shutting down; reconnect, possibly to another region')
    // Clients get a moment to answer the close handshake; the rest are cut.
    let timer: NodeJS.Timeout | undefined
    await Promise.race([allClosed, new Promise(resolve => { timer = setTimeout(resolve, DRAIN_GRACE_MS) })])
    clearTimeout(timer)
    for (const ws of this.wss.clients) ws.terminate()
    this.server.closeAllConnections()
    await stopped
    await this.store.close()
    await this.documents.closeAll()
    this.logger.log('info', 'relay stopped', { region: this.config.region })
  }

  private httpContext () {
    return {
      ready: () => !this.draining,
      registry: this.metrics.registry,
      regions: () => this.regionInfo(),
      http: this.config.http,
    }
  }

  private upgrade (req: http.IncomingMessage, socket: Duplex, head: Buffer): void {
    if (this.draining) return refuseUpgrade(socket, 503, 'Service Unavailable', 'relay shutting down; connect to another region')
    const target = parseRequestPath(req.url ?? '/')
    if (target.kind === 'reserved' && target.path === 'v1/peer') return this.upgradePeer(req, socket, head)
    if (target.kind === 'invalid') {
      this.metrics.rejected.inc({ code: 'ERR_BAD_NAME' })
      return refuseUpgrade(socket, 400, 'Bad Request', target.reason)
    }
    if (target.kind === 'reserved' && target.path !== 'v1/mux') return refuseUpgrade(socket, 404, 'Not Found', `/${target.path} is reserved and not a WebSocket endpoint of this relay`)
    // The token is checked before the upgrade completes, so no message can arrive unchecked;
    // a refusal still completes it, so that the client sees a close code and words.
    this.authenticator.verify(tokenOf(req.url ?? '/')).then(
      grants => this.acceptClient(req, socket, head, target, grants),
      err => this.acceptClient(req, socket, head, target, err instanceof AuthError ? err : new AuthError('ERR_TOKEN', 'the token could not be checked')),
    )
  }

  /**
   * A peer's link: the secret and region are checked on the upgrade request, so a socket
   * without them is refused with an HTTP status and never inflates a frame.
   */
  private upgradePeer (req: http.IncomingMessage, socket: Duplex, head: Buffer): void {
    const admitted = this.mesh.admit(req)
    if ('status' in admitted) return refuseUpgrade(socket, admitted.status, admitted.status === 401 ? 'Unauthorized' : 'Forbidden', admitted.reason)
    if (this.peerSockets >= PEER_SOCKETS_BASE + PEER_SOCKETS_PER_PEER * this.config.peers.length) {
      this.metrics.peerRefused.inc({ reason: 'busy' })
      return refuseUpgrade(socket, 503, 'Service Unavailable', 'too many peer sockets open; retry later')
    }
    this.peerSockets++
    socket.once('close', () => { this.peerSockets-- })
    this.peerWss.handleUpgrade(req, socket, head, ws => {
      // Before anything else: a protocol violation on a socket without an 'error' listener
      // would throw and take the whole relay down.
      ws.on('error', err => this.logger.log('debug', 'peer socket error', { error: err.message }))
      this.receiveBudget.track(ws, socket)
      this.mesh.accept(ws, admitted.region)
    })
  }

  /** Completes the upgrade only to say why not, then cuts the socket if it does not close promptly. */
  private refuseClient (req: http.IncomingMessage, socket: Duplex, head: Buffer, code: number, reason: string): void {
    this.wss.handleUpgrade(req, socket, head, ws => {
      ws.on('error', () => {})
      ws.on('message', () => this.metrics.droppedAfterClose.inc())
      ws.close(code, closeReason(reason))
      setTimeout(() => ws.terminate(), CLOSE_HANDSHAKE_MS).unref()
    })
  }

  private limitsFor (req: http.IncomingMessage): ConnectionLimits {
    return new ConnectionLimits(this.config.limits, this.perAddress, req.socket.remoteAddress ?? 'unknown')
  }

  private acceptClient (req: http.IncomingMessage, socket: Duplex, head: Buffer, target: ReturnType<typeof parseRequestPath>, grants: Grants | AuthError): void {
    if (socket.destroyed) return
    if (this.draining) return refuseUpgrade(socket, 503, 'Service Unavailable', 'relay shutting down; connect to another region')
    if (this.connections.size >= this.config.limits.maxConnections) {
      this.metrics.rejected.inc({ code: 'ERR_TOO_MANY_CONNECTIONS' })
      return this.refuseClient(req, socket, head, CloseCode.RateLimited, `this relay is full (limits.maxConnections ${this.config.limits.maxConnections}); try another region`)
    }
    if (grants instanceof AuthError) {
      this.metrics.rejected.inc({ code: grants.code })
      this.refusalLog.log('info', 'refused a client: authentication failed', { code: grants.code, address: req.socket.remoteAddress })
      return this.refuseClient(req, socket, head, CloseCode.Unauthenticated, grants.message)
    }
    if (target.kind === 'reserved') {
      return this.wss.handleUpgrade(req, socket, head, ws => {
        this.wss.emit('connection', ws, req)
        this.receiveBudget.track(ws, socket, () => this.alive.add(ws))
        const connection = new MuxConnection(ws, {
          registry: this.documents,
          metrics: this.metrics,
          logger: this.logger,
          acks: this.acks,
          maxDocs: this.config.limits.maxDocsPerConnection,
          maxMessageBytes: this.config.limits.maxMessageBytes,
          region: this.config.region,
          regions: () => this.endpoints(),
          placement: this.sessionPlacement,
          allowedRegions: docName => this.placement.allowedRegions(docName),
          grants,
          verify: token => this.authenticator.verify(token),
          limits: this.limitsFor(req),
          maxPendingBytes: this.config.limits.maxMessageBytes + PENDING_SLACK_BYTES,
        })
        this.connections.add(connection)
        ws.once('close', () => this.connections.delete(connection))
      })
    }
    if (target.kind !== 'doc') return
    if (grants.access(target.name) === 'none') {
      this.metrics.rejected.inc({ code: 'ERR_FORBIDDEN' })
      return this.refuseClient(req, socket, head, CloseCode.Forbidden, `this token does not allow "${target.name}"`)
    }
    this.wss.handleUpgrade(req, socket, head, ws => {
      this.wss.emit('connection', ws, req)
      this.receiveBudget.track(ws, socket, () => this.alive.add(ws))
      const connection = new ClientConnection(ws, {
        docName: target.name,
        registry: this.documents,
        metrics: this.metrics,
        logger: this.logger,
        placement: this.sessionPlacement,
        grants,
        limits: this.limitsFor(req),
        maxPendingBytes: this.config.limits.maxMessageBytes + PENDING_SLACK_BYTES,
        logName: name => this.logName(name),
      })
      this.connections.add(connection)
      ws.once('close', () => this.connections.delete(connection))
    })
  }

}
