/**
 * The region mesh of one relay: its links to every peer, what it knows of the links between
 * the others, and the routing that follows. Each relay pushes its own log to every peer over
 * its own link, and forwards another origin's entries to a peer only while that origin cannot
 * reach the peer itself (a cut link); so in a healthy mesh each update crosses each
 * inter-region link once.
 */
import crypto from 'node:crypto'
import { EventEmitter } from 'node:events'
import type { IncomingMessage } from 'node:http'
import type WebSocket from 'ws'
import { type PeerMessage, type RegionStaleness, coalesceAwarenessUpdates } from '@georelay/core'
import type { DocRegistry, ErasedDocs } from '../docs/index.js'
import { type Logger, type RelayMetrics, throttledLogger } from '../observability/index.js'
import type { MeshView, PeerPolicyInfo, Placement } from '../placement/index.js'
import type { ReplicationLog } from '../replication/index.js'
import { Erasure } from './erasure.js'
import { StrongReads } from './strong-read.js'
import { type AcceptForward, WriteForwarding } from './write-forwarding.js'
import { InboundLink } from './inbound-link.js'
import type { ControlMessage, LinkContext, MeshTiming, RefusedKind } from './link-context.js'
import { LinkStateTable, LinkStateVersions, shouldForward } from './link-state.js'
import { type LinkErrorKind, OutboundLink } from './outbound-link.js'

export type { MeshTiming } from './link-context.js'

/** `url` (then `urls`, its other nodes) is where this relay dials the peer; `publicUrl` what others may be shown. */
export interface MeshPeer { region: string, url: string, urls?: string[] | undefined, publicUrl?: string | undefined }

export interface MeshOptions {
  region: string
  peers: MeshPeer[]
  meshSecret: string | undefined
  /** Also accepted from peers, and dialled with when a peer refuses `meshSecret` (a rotation). */
  previousMeshSecrets?: string[]
  timing: MeshTiming
  log: ReplicationLog
  registry: DocRegistry
  metrics: RelayMetrics
  logger: Logger
  placement: Placement
  /** The largest peer message taken or sent, in bytes. */
  maxPayload: number
  /** Erased documents, which the mesh keeps in step with the other regions (erasure.ts). */
  erased: ErasedDocs
  logName(name: string): string
  /** An erasure asked in this region was applied here. */
  onErased?(docName: string): void
  /** As a document's writer: takes a write a readable standby passed on (write-forwarding.ts). */
  acceptForward?: AcceptForward
}

export interface PeerInfo {
  region: string
  /** The peer's public URL (never the address this relay dials, which may be internal). */
  url: string
  /** This relay's link to the peer. */
  state: 'up' | 'connecting' | 'down'
  /** Whether the peer's link to this relay is up. */
  inbound: boolean
  /** Regions the peer says it reaches (empty when its word is stale). */
  reaches: string[]
  lagMs: number
  pendingUpdates: number
  /** Round trip of the last ping on this relay's link (null before the first answer). */
  rttMs: number | null
  /** The peer's namespace rules: their digest, and whether they equal ours. */
  policy: PeerPolicyInfo
  /** Why this relay's link is down, as a kind (the details are in this relay's log). */
  error?: LinkErrorKind
}

const digest = (text: string): Buffer => crypto.createHash('sha256').update(text).digest()

export interface MeshEvents {
  /** A link of this relay's came up or went down, or another region's link state changed. */
  change: []
  /** A peer acknowledged entries as durable. */
  acknowledged: [peer: string]
  /** Presence of another region's clients arrived for a document that may live here. */
  awareness: [docName: string, update: Uint8Array]
}

export class Mesh extends EventEmitter<MeshEvents> implements MeshView {
  private readonly region: string
  private readonly meshSecret: string
  /** Every secret a peer may offer: this relay's, then those of a rotation in progress. */
  private readonly acceptedSecrets: string[]
  private readonly timing: MeshTiming
  private readonly log: ReplicationLog
  private readonly registry: DocRegistry
  private readonly metrics: RelayMetrics
  private readonly logger: Logger
  /** For lines anyone who can reach the port can cause (refused links). */
  private readonly refusalLog: Logger
  private readonly linkStates: LinkStateTable
  private readonly versions = new LinkStateVersions()
  private readonly placement: Placement
  private readonly peers: MeshPeer[]
  /** What every link is given of this relay. */
  private readonly context: LinkContext
  private readonly links = new Map<string, OutboundLink>()
  private readonly inbound = new Map<string, InboundLink>()
  private readonly deadRegions = new Set<string>()
  /** Silence is counted from start at the earliest: a relay that just started has heard no one yet. */
  private readonly startedAt = Date.now()
  private ticker: NodeJS.Timeout | null = null
  private readonly awarenessQueue = new Map<string, Uint8Array[]>()
  private awarenessTimer: NodeJS.Timeout | null = null
  private readonly onAppend = (): void => { this.wake() }
  /** Whether this relay dials its peers: always, unless another node of its region holds the mesh lease. */
  private dialing: boolean | null = null
  /** Peers' durable marks of this region's entries as the region's lease holder heard them. */
  private readonly heldElsewhere = new Map<string, number>()
  /** Erasures: this region's, and the tombstones the other regions send. */
  readonly erasure: Erasure
  /** Clients' strong reads: what this region pulls from the others (strong-read.ts). */
  readonly strongReads: StrongReads
  /** Writes of a readable standby's clients, passed on to the writer (write-forwarding.ts). */
  readonly forwarding: WriteForwarding

  constructor (options: MeshOptions) {
    super()
    this.region = options.region
    this.meshSecret = options.meshSecret ?? ''
    this.acceptedSecrets = this.meshSecret === '' ? [] : [this.meshSecret, ...options.previousMeshSecrets ?? []]
    this.timing = options.timing
    this.log = options.log
    this.registry = options.registry
    this.metrics = options.metrics
    this.logger = options.logger
    this.peers = options.peers
    this.placement = options.placement
    this.refusalLog = throttledLogger(options.logger)
    this.linkStates = new LinkStateTable(options.timing.linkTimeoutMs)
    const registry = options.registry
    this.context = {
      region: this.region,
      meshSecrets: this.acceptedSecrets,
      timing: this.timing,
      maxPayload: options.maxPayload,
      log: this.log,
      documents: {
        stateOf: name => registry.stateOf(name),
        applyDurable: (name, update) => registry.applyDurable(name, update),
        listDocs: prefix => this.log.store.listDocs(prefix),
        isErased: name => registry.isErased(name),
      },
      placement: this.placement,
      metrics: this.metrics,
      logger: this.logger,
      refusalLog: this.refusalLog,
      originsFor: peer => this.originsFor(peer),
      linkChanged: peer => this.linkChanged(peer),
      acknowledged: peer => this.acknowledged(peer),
      control: (message, from) => this.handleControl(message, from),
      refuse: (peer, kind) => this.refuse(peer, kind),
    }
    this.erasure = new Erasure({
      region: this.region,
      erased: options.erased,
      log: this.log,
      registry,
      placement: this.placement,
      metrics: this.metrics,
      logger: this.logger,
      logName: options.logName,
      send: (region, message) => this.sendTo(region, message),
      neighbours: () => this.neighbours(),
      onErased: docName => options.onErased?.(docName),
    })
    this.forwarding = new WriteForwarding((region, message) => this.sendTo(region, message), options.acceptForward)
    this.strongReads = new StrongReads({
      region: this.region,
      log: this.log,
      registry,
      placement: this.placement,
      logger: this.logger,
      send: (region, message) => this.sendTo(region, message),
      neighbours: () => this.neighbours(),
    })
  }

  /** `dial: false` for a node of a region of several: it dials once `setDialing(true)`. */
  start ({ dial = true }: { dial?: boolean } = {}): void {
    this.log.on('append', this.onAppend)
    for (const peer of this.peers) {
      this.links.set(peer.region, new OutboundLink(this.context, peer.region, [peer.url, ...(peer.urls ?? [])]))
    }
    this.setDialing(dial)
    this.ticker = setInterval(() => this.tick(), this.timing.heartbeatMs)
  }

  /** Dials every peer (this node took the region's mesh lease) or stops (it lost it). */
  setDialing (on: boolean): void {
    if (on === this.dialing) return
    this.dialing = on
    for (const link of this.links.values()) {
      if (on) link.start()
      else link.suspend()
    }
    this.emit('change')
  }

  get peerRegions (): string[] {
    return this.peers.map(p => p.region)
  }

  /** There may be entries to push that this process did not append (a sibling node did). */
  wake (): void {
    for (const link of this.links.values()) link.schedulePump()
  }

  /** The region's lease holder says `region` durably holds this region's entries up to `seq`. */
  noteHeld (region: string, seq: number): void {
    if (!this.links.has(region) || seq <= (this.heldElsewhere.get(region) ?? 0)) return
    this.heldElsewhere.set(region, seq)
    this.acknowledged(region)
  }

  close (): void {
    this.forwarding.close()
    this.log.off('append', this.onAppend)
    if (this.ticker !== null) clearInterval(this.ticker)
    if (this.awarenessTimer !== null) clearTimeout(this.awarenessTimer)
    for (const link of this.links.values()) link.close()
    for (const inbound of this.inbound.values()) inbound.ws.terminate()
  }

  /** Origins whose entries go to `peer`: ours, and those that cannot reach it themselves. */
  private originsFor (peer: string): string[] {
    const now = Date.now()
    const forwarded = this.peers
      .map(p => p.region)
      .filter(origin => origin !== peer && shouldForward(this.region, origin, peer, this.linkStates, now))
    return [this.region, ...forwarded]
  }

  /** Regions this relay's own links reach now. */
  private reaches (): string[] {
    return [...this.links.values()].filter(link => link.status === 'up').map(link => link.region)
  }

  /** A link came up or went down: tell everyone, and re-plan what each link carries. */
  private linkChanged (peer: string): void {
    const state = this.links.get(peer)?.status ?? 'unknown'
    this.logger.log('info', 'peer link changed', { peer, state })
    this.announce()
    // Presence sent while the link was down is gone; a returning peer gets it all again.
    if (state === 'up') {
      this.sendPresence(peer)
      this.erasure.linkUp(peer)
    }
    for (const link of this.links.values()) link.schedulePump(0)
    this.emit('change')
  }

  /** A peer acknowledged: update lag figures and tell whoever waits for durability. */
  private acknowledged (peer: string): void {
    this.updateLagMetrics()
    this.emit('acknowledged', peer)
  }

  /**
   * Up to which local sequence number `region` durably holds this region's entries: from its
   * acknowledgements on our link, or its link state when the word came another way.
   */
  heldUpTo (region: string): number {
    if (region === this.region) return Number.POSITIVE_INFINITY
    return Math.max(
      this.links.get(region)?.peerHave[this.region] ?? 0,
      this.linkStates.get(region)?.have[this.region] ?? 0,
      this.heldElsewhere.get(region) ?? 0,
    )
  }

  /** Regions, this one first, that durably hold this region's entry `localSeq`. */
  private holders (localSeq: number): string[] {
    return [this.region, ...this.peers.map(p => p.region).filter(region => this.heldUpTo(region) >= localSeq)]
  }

  /**
   * Checks a peer's upgrade request before any WebSocket exists: the mesh secret (constant
   * time) and that the region is a configured peer. A refusal is an HTTP status, so a socket
   * without the secret never gets to send a (compressed) frame. Refusals are logged without
   * the secret, a few a second at most.
   */
  admit (req: IncomingMessage): { region: string } | { status: 401 | 403, reason: string } {
    const region = String(req.headers['x-georelay-region'] ?? '').slice(0, 64)
    const offered = /^Bearer (.+)$/.exec(String(req.headers.authorization ?? ''))?.[1] ?? ''
    // Every secret compared, so that the time taken says nothing about which one matched.
    const offeredDigest = digest(offered)
    const ok = this.acceptedSecrets.map(secret => crypto.timingSafeEqual(offeredDigest, digest(secret))).includes(true)
    if (!ok) {
      this.metrics.peerRefused.inc({ reason: 'secret' })
      this.refusalLog.log('warn', 'refused a peer link: wrong or missing mesh secret', { claimedRegion: region, address: req.socket.remoteAddress })
      return { status: 401, reason: this.meshSecret === '' ? 'this relay has no mesh configured' : 'wrong or missing mesh secret' }
    }
    if (!this.links.has(region)) {
      this.metrics.peerRefused.inc({ reason: 'region' })
      this.refusalLog.log('warn', 'refused a peer link: region is not a configured peer', { claimedRegion: region })
      return { status: 403, reason: closeReasonFor(region, this.peers.map(p => p.region)) }
    }
    return { region }
  }

  /** Takes a peer's link once `admit` let it in; a newer link from the same region replaces the older. */
  accept (ws: WebSocket, region: string): void {
    this.inbound.get(region)?.ws.terminate()
    const inbound = new InboundLink(this.context, ws, region)
    this.inbound.set(region, inbound)
    ws.on('close', () => {
      if (this.inbound.get(region) === inbound) this.inbound.delete(region)
    })
    if (this.dialing !== false) this.sendTo(region, this.linkStateMessage())
    this.erasure.linkUp(region)
    this.links.get(region)?.redialNow()
  }

  /** Link state, awareness and erasures arrive on any link, in either direction. */
  private handleControl (message: ControlMessage, from: string): void {
    if (message.type === 'erase' || message.type === 'erased') {
      this.erasure.receive(message, from)
    } else if (message.type === 'forward' || message.type === 'forwarded') {
      this.forwarding.receive(message, from)
    } else if (message.type === 'pull' || message.type === 'pulled') {
      this.strongReads.receive(message, from).catch(err => {
        this.logger.log('warn', 'could not answer a strong read\'s pull', { peer: from, error: (err as Error).message })
      })
    } else if (message.type === 'link-state') {
      if (message.region === this.region) return
      const { region, version, reaches, have, lags } = message
      if (!this.linkStates.update(region, version, reaches, have, Date.now(), lags)) return
      if (this.deadRegions.delete(message.region)) this.logger.log('info', 'region reachable again', { region: message.region })
      // Passed on only to neighbours the region says it does not reach: those it reaches hear it
      // from the region itself. Forwarding every copy made link state grow as (N − 1)² messages per
      // region a heartbeat (docs/architecture.md, a full mesh at 50 regions); in a healthy mesh
      // nothing is forwarded now, and across a cut the word still goes round it.
      const reached = new Set(reaches)
      for (const neighbour of this.neighbours()) {
        if (neighbour !== from && neighbour !== region && !reached.has(neighbour)) this.sendTo(neighbour, message)
      }
      for (const link of this.links.values()) link.schedulePump()
      this.emit('change')
    } else if (message.type === 'awareness') {
      if (message.origin === this.region) return
      if (!this.placement.allowsHere(message.docName)) return this.refuse(from, 'awareness')
      if (this.registry.isErased(message.docName)) return this.metrics.erasedDropped.inc()
      this.emit('awareness', message.docName, message.update)
      this.registry.ifLoaded(message.docName)
        .then(doc => doc?.applyRemoteAwareness(message.update, message.origin))
        .catch(err => {
          this.logger.log('warn', 'ignored a malformed awareness update from a peer', { peer: from, error: (err as Error).message })
        })
      const now = Date.now()
      for (const neighbour of this.neighbours()) {
        const forward = neighbour !== from
          && shouldForward(this.region, message.origin, neighbour, this.linkStates, now)
          && this.placement.mayReceive(message.docName, neighbour)
        if (forward) this.sendTo(neighbour, message)
      }
    }
  }

  /** Queues a local client's awareness update for every region, coalesced per document. */
  publishAwareness (docName: string, update: Uint8Array): void {
    if (this.peers.length === 0) return
    const queued = this.awarenessQueue.get(docName)
    if (queued === undefined) this.awarenessQueue.set(docName, [update])
    else queued.push(update)
    this.awarenessTimer ??= setTimeout(() => this.flushAwareness(), this.timing.batchWindowMs)
  }

  silentFor (region: string): number {
    const now = Date.now()
    const link = this.links.get(region)
    const inbound = this.inbound.get(region)
    const heard = Math.max(
      link?.status === 'up' ? link.lastHeardAt : 0,
      inbound?.open === true ? inbound.lastHeard : 0,
      this.linkStates.get(region)?.receivedAt ?? 0,
      this.startedAt,
    )
    return Math.max(0, now - heard)
  }

  linkUp (region: string): boolean {
    return this.links.get(region)?.status === 'up' || this.inbound.get(region)?.open === true
  }

  holdsOurWrites (region: string): boolean {
    return this.holders(this.log.lastLocalSeq).includes(region)
  }

  peersByDistance (): string[] {
    const rtt = (region: string): number => this.links.get(region)?.rttMs ?? Number.MAX_SAFE_INTEGER
    return this.peers.map(p => p.region).sort((a, b) => rtt(a) - rtt(b))
  }

  /**
   * How far behind this region is known to be on each peer's own writes: while a peer's word
   * is fresh, nothing when this region holds all it said it had, else the lag the peer measured
   * from this region's acknowledgements; without a fresh word, at least as long as the silence.
   */
  staleness (): RegionStaleness[] {
    const now = Date.now()
    const held = this.log.marks()
    return this.peers.map(({ region }) => {
      const word = this.linkStates.get(region)
      if (word === undefined) return { region, lagMs: now - this.startedAt, pending: 0 }
      const pending = Math.max(0, (word.have[region] ?? 0) - (held[region] ?? 0))
      const reported = pending === 0 ? 0 : Math.max(1, word.lags[this.region] ?? 0)
      const age = now - word.receivedAt
      return { region, lagMs: age <= this.timing.linkTimeoutMs ? reported : reported + age, pending }
    })
  }

  /**
   * Ms since the oldest of this region's writes that `peer` has not acknowledged (0: none), by
   * this node's link or, on a node not holding the mesh lease, as the holder relayed it.
   */
  private lagOf (peer: string, now: number): number {
    const since = this.log.pendingSince(this.heldUpTo(peer))
    return since === undefined ? 0 : now - since
  }

  peerInfo (): PeerInfo[] {
    const now = Date.now()
    return this.peers.map(peer => {
      const link = this.links.get(peer.region)
      return {
        region: peer.region,
        url: peer.publicUrl ?? peer.url,
        state: link?.status ?? 'down',
        inbound: this.inbound.get(peer.region)?.open ?? false,
        reaches: this.linkStates.fresh(peer.region, now)?.reaches ?? [],
        lagMs: this.lagOf(peer.region, now),
        pendingUpdates: this.log.pendingCount(this.heldUpTo(peer.region)),
        rttMs: link?.rttMs ?? null,
        policy: this.placement.peerPolicy(peer.region),
        ...(link?.lastErrorKind === undefined || link.status === 'up' ? {} : { error: link.lastErrorKind }),
      }
    })
  }

  /**
   * A peer sent something of a document that may not live here (its rules differ from ours):
   * drop it, count it, and log it without the document's name or content.
   */
  private refuse (peer: string, kind: RefusedKind): void {
    this.metrics.residencyRefused.inc({ peer, kind })
    this.logger.log('warn', 'refused a document from a peer: its namespace rules do not allow it here', { peer, kind })
  }

  private sendPresence (peer: string): void {
    this.registry.loaded().then(docs => {
      for (const doc of docs) {
        const update = doc.localAwareness()
        if (update !== null && this.placement.mayReceive(doc.name, peer)) this.sendTo(peer, { type: 'awareness', docName: doc.name, origin: this.region, update })
      }
    }, () => {})
  }

  private neighbours (): string[] {
    return this.peers.map(p => p.region).filter(region => this.links.get(region)?.status === 'up' || this.inbound.get(region)?.open === true)
  }

  /** Sends on this relay's own link to the region if it is up, else on the region's link here. */
  private sendTo (region: string, message: PeerMessage): boolean {
    return this.links.get(region)?.send(message) === true || this.inbound.get(region)?.send(message) === true
  }

  private linkStateMessage (): PeerMessage {
    const now = Date.now()
    // How far behind this region's writes each peer is: what it reads its staleness from.
    const lags = Object.fromEntries(this.peers.map(p => [p.region, this.lagOf(p.region, now)]))
    return { type: 'link-state', region: this.region, version: this.versions.next(), reaches: this.reaches(), have: this.log.marks(), lags }
  }

  private announce (): void {
    // A node whose links are suspended (another node of the region dials) would announce that
    // the region reaches no one; the holder speaks for the region.
    if (this.dialing === false) return
    const message = this.linkStateMessage()
    for (const neighbour of this.neighbours()) this.sendTo(neighbour, message)
  }

  private flushAwareness (): void {
    this.awarenessTimer = null
    const neighbours = this.neighbours()
    for (const [docName, updates] of this.awarenessQueue) {
      const update = coalesceAwarenessUpdates(updates)
      const to = neighbours.filter(neighbour => this.placement.mayReceive(docName, neighbour))
      for (const neighbour of to) this.sendTo(neighbour, { type: 'awareness', docName, origin: this.region, update })
      this.metrics.peerAwarenessOut.inc(to.length)
    }
    this.awarenessQueue.clear()
  }

  private tick (): void {
    this.announce()
    const now = Date.now()
    for (const inbound of this.inbound.values()) {
      if (now - inbound.lastHeard > this.timing.linkTimeoutMs) inbound.ws.terminate()
    }
    // A region no one has heard of for a while is gone: its clients' presence goes with it.
    for (const { region } of this.peers) {
      const heard = this.linkStates.fresh(region, now) !== undefined || this.neighbours().includes(region)
      if (heard || this.deadRegions.has(region)) continue
      this.deadRegions.add(region)
      this.logger.log('warn', 'region unreachable; dropping its clients\' presence', { region })
      this.registry.loaded().then(docs => { for (const doc of docs) doc.forgetRegion(region) }, () => {})
    }
    this.updateLagMetrics()
  }

  private updateLagMetrics (): void {
    let minAcked = Number.MAX_SAFE_INTEGER
    for (const info of this.peerInfo()) {
      this.metrics.replicationLagMs.set({ peer: info.region }, info.lagMs)
      this.metrics.replicationPending.set({ peer: info.region }, info.pendingUpdates)
      this.metrics.peerLinkUp.set({ peer: info.region }, info.state === 'up' ? 1 : 0)
      minAcked = Math.min(minAcked, this.heldUpTo(info.region))
    }
    if (this.peers.length > 0) this.log.forgetTimesUpTo(minAcked)
  }
}

const closeReasonFor = (region: string, peers: string[]): string =>
  `region "${region}" is not a configured peer here (peers: ${peers.join(', ') || 'none'})`
