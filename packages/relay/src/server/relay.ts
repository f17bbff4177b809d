/**
 * A region relay: one HTTP server whose upgrades are the WebSocket endpoints (upgrades.ts) and
 * whose plain requests are the HTTP endpoints (http-endpoints.ts). This is where the parts are
 * put together; `Relay.start` resolves once it listens, `close` drains.
 */
import { EventEmitter } from 'node:events'
import http from 'node:http'
import type { AddressInfo } from 'node:net'
import type { Duplex } from 'node:stream'
import os from 'node:os'
import type { Registry } from 'prom-client'
import type { AckLevel, DocStore, Tombstone } from '@georelay/core'
import { Authenticator } from '../auth/index.js'
import type { RelayConfig } from '../config/index.js'
import { DocRegistry, ErasedDocs, type SessionPlacement } from '../docs/index.js'
import { type ForwardReply, Mesh, type PeerInfo } from '../mesh/index.js'
import { type Logger, type RelayMetrics, createRelayMetrics, stderrLogger, throttledLogger } from '../observability/index.js'
import { Placement } from '../placement/index.js'
import { RegionNode } from '../region/index.js'
import { ReplicationLog, WriteAcks } from '../replication/index.js'
import { type RegionInfo, handleHttp } from './http-endpoints.js'
import { DocApi } from './doc-api.js'
import { Webhooks } from './webhooks.js'
import { openStore } from './open-store.js'
import { UpgradeRouter, peerMaxPayload } from './upgrades.js'

export interface RelayOptions {
  config: RelayConfig
  /** Defaults to the store the configuration names, opened in its data directory. */
  store?: DocStore
  logger?: Logger
}

export interface RelayEvents {
  /** What `peers()` says may have changed: a link came up or went down, a peer acknowledged. */
  peers: []
  /** A document was loaded from the store into memory. */
  loaded: [docName: string]
  /** An idle document was released from memory. */
  released: [docName: string]
  /** The store's database stopped (false) or started again (true) answering. */
  store: [available: boolean]
  /** A node of a region of several lost its Redis subscription (false) or has it again (true). */
  redis: [up: boolean]
  /** The region's list of live nodes changed (a region of several nodes). */
  nodes: []
}

/** `<hostname>-<pid>`: unique among a region's nodes unless two share a host and a pid namespace. */
const defaultNodeName = (): string => `${os.hostname().replace(/[^A-Za-z0-9._-]/g, '-').slice(0, 50)}-${process.pid}`

/** A Redis URL fit for a log line: its password replaced. */
const redactedRedis = (url: string): string => url.replace(/\/\/([^:@/]*):[^@/]*@/, '//$1:***@')

/** A request's path without its query (which may hold a token), for logs. */
/** A stop step that takes longer than this is named in the log. */
const SLOW_STOP_MS = 5000

const pathOf = (url: string | undefined): string => (url ?? '/').split('?')[0] as string

export class Relay extends EventEmitter<RelayEvents> {
  /** This relay's Prometheus metrics, in a registry of its own (several relays can share a process). */
  readonly metrics: Registry
  private readonly counters: RelayMetrics
  private readonly mesh: Mesh
  private readonly acks: WriteAcks
  private readonly placement: Placement
  private readonly documents: DocRegistry
  private readonly upgrades: UpgradeRouter
  private readonly docApi: DocApi
  private readonly webhooks: Webhooks
  /** This relay as one node of a region of several (null when it is the region's only relay). */
  private readonly regionNode: RegionNode | null
  private location = 'given by the caller'
  private boundPort = 0
  private draining = false
  private closing: Promise<void> | null = null
  private readonly sockets = new Set<Duplex>()

  private constructor (
    readonly config: RelayConfig,
    private readonly store: DocStore,
    log: ReplicationLog,
    private readonly logger: Logger,
    private readonly server: http.Server,
    tombstones: readonly Tombstone[],
  ) {
    super()
    const erased = new ErasedDocs(tombstones, {
      peers: config.peers.map(p => p.region),
      waitMs: config.replication.erasureWaitMs,
    })
    this.counters = createRelayMetrics(config.region, () => store.available !== false)
    this.metrics = this.counters.registry
    const metrics = this.counters
    this.webhooks = new Webhooks(config, metrics, logger)
    this.placement = new Placement(
      config.region,
      [config.region, ...config.peers.map(p => p.region)],
      config.namespaces,
      logger,
      (peer, agreement) => metrics.policyMismatch.set({ peer }, agreement === 'mismatch' ? 1 : 0),
    )
    const sessionPlacement: SessionPlacement = {
      route: docName => this.placement.route(docName),
      forwardWrite: (writer, docName, update, level, result) =>
        this.mesh.forwarding.forward(writer, docName, update, level, result),
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
      metrics,
      logger,
      idleMs: config.idleReleaseMs,
      awarenessSink: (doc, update) => {
        this.mesh.publishAwareness(doc, update)
        this.regionNode?.publishAwareness(doc, update)
      },
      maxDocumentBytes: config.limits.maxDocumentBytes,
      fanoutWindowMs: config.fanoutWindowMs,
      presence: config.limits.presence,
      logName: name => this.logName(name),
      erased,
      onWrite: (name, seq) => this.webhooks.changed(name, seq),
    })
    this.mesh = new Mesh({
      region: config.region,
      peers: config.peers,
      meshSecret: config.meshSecret,
      previousMeshSecrets: config.previousMeshSecrets,
      timing: config.replication,
      log,
      registry: this.documents,
      metrics,
      logger,
      placement: this.placement,
      maxPayload: peerMaxPayload(config),
      erased,
      logName: name => this.logName(name),
      onErased: name => this.webhooks.deleted(name),
      acceptForward: (docName, update, level, reply) => this.acceptForward(docName, update, level, reply),
    })
    const regions = [config.region, ...config.peers.map(p => p.region)]
    this.acks = new WriteAcks({
      regions: () => regions,
      heldUpTo: region => this.mesh.heldUpTo(region),
      subscribe: listener => {
        this.on('peers', listener)
        return () => this.off('peers', listener)
      },
    })
    this.regionNode = config.redis.url === undefined ? null : new RegionNode({
      region: config.region,
      node: config.node ?? defaultNodeName(),
      redisUrl: config.redis.url,
      redisCluster: config.redis.cluster,
      pollMs: config.redis.pollMs,
      store,
      log,
      documents: this.documents,
      metrics,
      logger,
      onRedis: up => this.emit('redis', up),
      onNodes: () => this.emit('nodes'),
      mesh: this.mesh,
      syncErased: () => this.mesh.erasure.syncFromStore(),
    })
    this.documents.on('loaded', name => this.emit('loaded', name))
    this.documents.on('released', name => this.emit('released', name))
    const peersChanged = (): void => { this.emit('peers') }
    this.mesh.on('acknowledged', peersChanged)
    this.mesh.on('change', peersChanged)
    const authenticator = Authenticator.create(config.auth)
    this.docApi = new DocApi({
      config,
      authenticator,
      placement: this.placement,
      urlOf: region => sessionPlacement.urlOf(region),
      documents: this.documents,
      acks: this.acks,
      erasure: this.mesh.erasure,
      metrics,
      logger,
    })
    this.upgrades = new UpgradeRouter({
      config,
      metrics,
      logger,
      refusalLog: throttledLogger(logger),
      authenticator,
      mesh: this.mesh,
      documents: this.documents,
      acks: this.acks,
      placement: this.placement,
      sessionPlacement,
      endpoints: () => this.endpoints(),
      logName: name => this.logName(name),
    })
  }

  static async start ({ config, store, logger = stderrLogger() }: RelayOptions): Promise<Relay> {
    // The relay does not exist yet while the store opens; availability changes reach it once it does.
    let relayOf: () => Relay | undefined = () => undefined
    const opened = store === undefined
      ? await openStore(config, logger, available => relayOf()?.emit('store', available))
      : { store, where: 'given by the caller' }
    const docStore = opened.store
    const server = http.createServer()
    // A relay without peers has no replication lag to report, so it keeps no write times.
    let log: ReplicationLog
    let tombstones: Tombstone[]
    try {
      tombstones = await docStore.readErased()
      log = await ReplicationLog.open(config.region, docStore, {
        trackLag: config.peers.length > 0,
        // The nodes of a region append to one store: marks are read from it, not only kept.
        shared: config.redis.url !== undefined,
      })
    } catch (err) {
      await docStore.close().catch(() => {})
      throw err
    }
    const relay = new Relay(config, docStore, log, logger, server, tombstones)
    relay.location = opened.where
    relayOf = () => relay
    server.on('request', (req, res) => {
      handleHttp(relay.httpContext(), req, res).catch(err => {
        logger.log('error', 'http handler failed', { path: pathOf(req.url), error: (err as Error).message })
        if (!res.headersSent) res.writeHead(500)
        res.end()
      })
    })
    server.on('upgrade', (req, socket, head) => relay.upgrades.handle(req, socket, head))
    server.on('clientError', (_err, socket) => socket.destroy())
    server.on('connection', socket => relay.track(socket))
    try {
      await new Promise<void>((resolve, reject) => {
        server.once('error', reject)
        server.listen(config.listen.port, config.listen.host, () => {
          server.off('error', reject)
          resolve()
        })
      })
    } catch (err) {
      // Not listening (the port is taken): give back what was opened for it.
      await relay.close().catch(() => {})
      throw err
    }
    relay.boundPort = (server.address() as AddressInfo).port
    logger.log('info', 'relay listening', {
      region: config.region,
      url: relay.url,
      store: opened.where,
      peers: config.peers.length,
      ...(relay.regionNode === null ? {} : { node: relay.regionNode.node, redis: redactedRedis(config.redis.url ?? '') }),
    })
    if (config.auth.anonymous === 'none' && config.auth.jwtSecret === undefined && config.auth.jwksFile === undefined) {
      logger.log('warn', 'no client can connect: anonymous access is none and no token keys are set. Set auth.jwtSecret or auth.jwksFile, or --anonymous rw for open access', {})
    } else if (config.auth.anonymous !== 'none' && !['127.0.0.1', '::1', 'localhost'].includes(config.listen.host)) {
      logger.log('warn', `anonymous clients may ${config.auth.anonymous === 'rw' ? 'read and write' : 'read'} every document on a non-loopback address`, { host: config.listen.host })
    }
    relay.regionNode?.announce(relay.publicUrl)
    // A node of a region of several dials the peers only while it holds the mesh lease.
    // (The lease may have been taken while the server started listening.)
    const lease = relay.regionNode?.meshLease ?? null
    relay.mesh.start({ dial: lease === null || lease.held })
    relay.placement.start(relay.mesh)
    return relay
  }

  get region (): string {
    return this.config.region
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

  /** Where the data is, fit to print: a path, a database URL without its password, or memory. */
  get storeLocation (): string {
    return this.location
  }

  /** This relay's name among its region's nodes; null when it is the region's only relay. */
  get node (): string | null {
    return this.regionNode?.node ?? null
  }

  /**
   * The node of this region that holds the mesh lease and dials the peers, as this node last
   * saw it (null for a relay that is its region's only one, or a region without peers).
   */
  get meshNode (): string | null {
    return this.regionNode?.meshLease?.holder ?? null
  }

  /** Whether this node is subscribed on Redis (null: not a node of a region of several). */

  get redisUp (): boolean | null {
    return this.regionNode?.redisUp ?? null
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

  /** Each peer region as this relay sees it now: its link, lag, what it says it reaches, its rules. */
  peers (): PeerInfo[] {
    return this.mesh.peerInfo()
  }

  /** The full view of `GET /v1/regions` (which shows less to strangers, see http.regions). */
  regionInfo (): RegionInfo {
    const peers = this.peers()
    return {
      region: this.config.region,
      publicUrl: this.publicUrl,
      regions: [
        {
          name: this.config.region,
          url: this.publicUrl,
          self: true,
          state: 'up',
          ...(this.regionNode === null ? {} : { nodes: this.regionNode.nodes }),
          ...(this.meshNode === null ? {} : { meshNode: this.meshNode }),
        },
        // On a node that does not hold the mesh lease, a peer is up when its own link to us is.
        ...peers.map(p => {
          const state = p.state === 'up' || p.inbound ? 'up' as const : 'down' as const
          // Why, in a word, where anyone can see it: a refused link is an operator's to fix.
          return {
            name: p.region,
            url: p.url,
            self: false,
            state,
            ...(state === 'down' && p.error !== undefined ? { error: p.error } : {}),
            ...(p.policy.agreement === 'mismatch' ? { policy: 'mismatch' as const } : {}),
          }
        }),
      ],
      peers,
      policy: {
        digest: this.placement.digest,
        // Each rule as an operator wrote it (so residency can be checked here), and who writes now.
        namespaces: this.placement.rules.map((rule, i) => ({
          match: rule.match,
          mode: rule.mode ?? 'active-active',
          regions: rule.regions ?? [this.config.region, ...this.config.peers.map(p => p.region)],
          ...(rule.ack === undefined ? {} : { ack: rule.ack }),
          ...(rule.mode === 'active-passive' ? { primary: rule.primary, standby: rule.standby ?? [], writer: this.placement.writerFor(i) ?? null } : {}),
        })),
      },
    }
  }

  /**
   * A write a readable standby passed on: stored here as this region's own if this region
   * writes the document now, and told at each level it reaches, up to `level`.
   */
  private acceptForward (docName: string, update: Uint8Array, level: AckLevel, reply: ForwardReply): void {
    const route = this.placement.route(docName)
    if (route.kind !== 'here') return reply({ error: `${this.config.region} does not write "${this.logName(docName)}" now` })
    this.documents.acquire(docName)
      .then(doc => doc.write(update, null))
      .then(seq => {
        reply({ level: 'local' })
        const owner = {}
        const regions = this.placement.allowedRegions(docName)
        if (level === 'majority' || level === 'all') this.acks.whenDurable(seq, 'majority', owner, () => reply({ level: 'majority' }), regions)
        if (level === 'all') this.acks.whenDurable(seq, 'all', owner, () => reply({ level: 'all' }), regions)
      }, err => reply({ error: (err as Error).message }))
      .finally(() => this.documents.release(docName))
  }

  /**
   * How a document's name may appear in this relay's logs: a name its rules keep out of this
   * region is itself restricted data (residency), so it never does.
   */
  private logName (name: string): string {
    return this.placement.allowsHere(name) ? name : '(restricted)'
  }

  /**
   * Drains: stops accepting, closes every client with 1001, lets in-flight appends finish,
   * closes the store. Safe to call more than once.
   */
  close (): Promise<void> {
    this.closing ??= this.drain()
    return this.closing
  }

  /** Every TCP connection the server took, upgraded or not: closing ends those still open. */
  private track (socket: Duplex): void {
    this.sockets.add(socket)
    socket.once('close', () => this.sockets.delete(socket))
  }

  private async drain (): Promise<void> {
    this.draining = true
    this.webhooks.close()
    this.mesh.close()
    await this.slow('the region node', this.regionNode?.close())
    this.placement.close()
    this.acks.close()
    const stopped = new Promise<void>(resolve => this.server.close(() => resolve()))
    this.server.closeIdleConnections()
    await this.slow('the client and peer sockets', this.upgrades.drain())
    this.server.closeAllConnections()
    // Upgraded sockets are not the HTTP server's to close: whatever the drain left (a refused
    // upgrade still writing, a socket mid-upgrade) would hold server.close() forever.
    for (const socket of this.sockets) socket.destroy()
    await this.slow('the HTTP server', stopped)
    await this.slow('the store', this.store.close())
    await this.slow('the documents', this.documents.closeAll())
    this.logger.log('info', 'relay stopped', { region: this.config.region })
  }

  /** Waits for a step of the drain, and says which one when it takes long (a stop that hangs). */
  private async slow (what: string, step: Promise<void> | undefined): Promise<void> {
    if (step === undefined) return
    const timer = setTimeout(() => this.logger.log('warn', 'stopping the relay is slow', { waitingFor: what, seconds: SLOW_STOP_MS / 1000 }), SLOW_STOP_MS)
    timer.unref()
    try {
      await step
    } finally {
      clearTimeout(timer)
    }
  }

  /** Null when ready; otherwise why not, for /readyz. */
  private readiness (): string | null {
    if (this.draining) return 'the relay is draining'
    if (this.store.available === false) return 'the store does not answer: writes are refused until it does'
    return null
  }

  private httpContext () {
    return {
      docs: (req: http.IncomingMessage, res: http.ServerResponse) => this.docApi.handle(req, res),
      ready: () => this.readiness(),
      registry: this.metrics,
      regions: () => this.regionInfo(),
      http: this.config.http,
    }
  }
}
