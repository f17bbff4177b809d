/**
 * A relay as one node of a region of several: what it adds to a lone relay. The nodes share the
 * region's store (whose log is the truth) and one Redis, which only hints. This node
 *
 * - publishes a hint after each of its durable appends, carrying the update when it is small;
 * - subscribes to the channels of the documents it has loaded, hands siblings' updates to them,
 *   and follows each document's log by its own cursor (log-follower.ts): on a hint without its
 *   update, every `pollMs`, and whenever Redis comes back, so that nothing a hint failed to bring
 *   is missing for longer than a poll;
 * - carries its clients' presence to the siblings, and theirs to its clients;
 * - in a region with peers, contends for the region's mesh lease (held in the shared store,
 *   see core's store-lease.ts): the holder alone dials the peers and pushes the region's log,
 *   woken by its siblings' `appended` marks on the region's channel (and its poll), and tells
 *   the siblings up to where each peer durably holds the region's entries (`held`), so that
 *   `majority` and `all` resolve on every node. Peers' links to the region may arrive at any
 *   node; each stores what it is sent in the shared log.
 */
import {
  type DocStore, MAX_HINT_UPDATE_BYTES, type NodeMessage, type RegionMessage, type StoreLease, canLease, validateUpdate,
} from '@georelay/core'
import type { DocRegistry } from '../docs/index.js'
import type { Logger, RelayMetrics } from '../observability/index.js'
import type { ReplicationLog } from '../replication/index.js'
import { HintBus } from './hint-bus.js'
import { LogFollower } from './log-follower.js'
import { type LiveNode, NodeDirectory } from './node-directory.js'

export interface RegionNodeOptions {
  region: string
  /** This node's name, unique among the nodes of the region. */
  node: string
  redisUrl: string
  /** `redisUrl` is a node of a Redis Cluster. */
  redisCluster?: boolean
  /** How often every loaded document's log is read whatever the hints said. */
  pollMs: number
  store: DocStore
  log: ReplicationLog
  documents: DocRegistry
  metrics: RelayMetrics
  logger: Logger
  /** Called when the subscription to Redis is lost (false) or made again (true). */
  onRedis?: (up: boolean) => void
  /** Called when the region's list of live nodes changed. */
  onNodes?: (nodes: LiveNode[]) => void
  /** The region's links to its peers, when it has peers: this node drives them while it holds the lease. */
  mesh?: RegionMesh
  /**
   * Applies the tombstones a sibling node wrote to the shared store (its erasures, or those
   * peers sent it): called every poll, so a sibling's erasure closes this node's clients of the
   * document within `pollMs`.
   */
  syncErased?: () => Promise<void>
}

/** What a node asks of its mesh (mesh/, which depends on this folder, not the reverse). */
export interface RegionMesh {
  readonly peerRegions: readonly string[]
  setDialing(on: boolean): void
  /** There are local entries to push that a sibling appended. */
  wake(): void
  /** The lease holder says `region` durably holds this region's entries up to `seq`. */
  noteHeld(region: string, seq: number): void
  heldUpTo(region: string): number
  /** Sends this region's clients' presence to the peers this node has links to. */
  publishAwareness(docName: string, update: Uint8Array): void
  on(event: 'acknowledged', listener: (peer: string) => void): unknown
  off(event: 'acknowledged', listener: (peer: string) => void): unknown
  on(event: 'awareness', listener: (docName: string, update: Uint8Array) => void): unknown
  off(event: 'awareness', listener: (docName: string, update: Uint8Array) => void): unknown
}

const validUpdate = (update: Uint8Array): boolean => {
  try {
    validateUpdate(update)
    return true
  } catch {
    return false
  }
}

/** Presence set by a sibling node's clients belongs to that node (region names have no ':'). */
const ownerOf = (node: string): string => `node:${node}`

export class RegionNode {
  private readonly bus: HintBus
  private readonly follower: LogFollower
  private readonly poll: NodeJS.Timeout
  private unhook: () => void
  private directory: NodeDirectory | null = null
  private readonly lease: StoreLease | null = null
  /** Marks waiting to go out on the region's channel, sent once per event-loop turn. */
  private appendedSeq = 0
  private readonly heldToSend = new Set<string>()
  private flushScheduled = false

  constructor (private readonly options: RegionNodeOptions) {
    const { documents, log, metrics, logger } = options
    this.bus = new HintBus({
      url: options.redisUrl, cluster: options.redisCluster ?? false, region: options.region, metrics, logger,
    })
    this.follower = new LogFollower({
      store: options.store,
      metrics,
      logger,
      docs: {
        apply: (docName, update) => documents.applyDurable(docName, update),
        stateVector: async docName => (await documents.ifLoaded(docName))?.stateVector() ?? null,
      },
    })
    const loaded = (docName: string, cursor: number): void => {
      this.follower.track(docName, cursor)
      // Once subscribed, read what siblings appended between the load's read and the subscription.
      void this.bus.subscribe(docName).then(() => this.follower.refresh(docName))
    }
    const released = (docName: string): void => {
      this.follower.untrack(docName)
      this.bus.unsubscribe(docName)
    }
    const stored = (docName: string, seq: number, update: Uint8Array): void => {
      this.follower.stored(docName, seq)
      const carried = update.length <= MAX_HINT_UPDATE_BYTES ? update : null
      this.bus.publish(docName, { type: 'hint', node: options.node, seq, update: carried })
    }
    documents.on('loaded', loaded)
    documents.on('released', released)
    log.on('stored', stored)
    this.unhook = () => {
      documents.off('loaded', loaded)
      documents.off('released', released)
      log.off('stored', stored)
    }
    this.bus.on('message', (docName, message) => this.received(docName, message))
    this.bus.on('resubscribed', () => {
      void this.follower.catchUp('redis')
      options.onRedis?.(true)
    })
    this.bus.on('lost', () => options.onRedis?.(false))
    this.bus.on('region', message => this.regionMessage(message))
    this.poll = setInterval(() => {
      void this.follower.catchUp('poll')
      options.syncErased?.().catch(err => logger.log('warn', 'could not read the region\'s erasures from the shared store; retried next poll', { error: (err as Error).message }))
      // The holder pushes whatever the log holds, and says the peers' marks again.
      if (this.lease?.held === true) {
        options.mesh?.wake()
        this.resendHeld()
      }
    }, options.pollMs)
    this.poll.unref()
    const mesh = options.mesh
    if (mesh !== undefined && mesh.peerRegions.length > 0) this.lease = this.leadMesh(mesh)
  }

  /** Contends for the mesh lease; drives the mesh while it holds it. */
  private leadMesh (mesh: RegionMesh): StoreLease {
    const { store, logger, region, node } = this.options
    if (!canLease(store)) throw new Error(`the store of region ${region} cannot hold the mesh lease: a region of several nodes with peers needs the postgres store`)
    const lease = store.openLease({
      name: 'mesh',
      holder: node,
      // The store's timings: renewed each second, a holder silent 5 s is deposed (Postgres).
      onEvent: event => {
        if (event.type === 'acquired') logger.log('info', 'this node holds the mesh lease: it dials the peers and pushes the region\'s log', { epoch: event.epoch })
        else if (event.type === 'lost') logger.log('warn', 'this node lost the mesh lease: it stops dialling the peers; another node takes over', { epoch: event.epoch, reason: event.reason })
        else logger.log('warn', 'deposed the mesh lease holder: it renewed nothing for too long (paused, or cut off from the database)', { holder: event.holder, silentMs: event.silentMs })
      },
    })
    // The mesh says 'change' when it starts or stops dialling: the relay's 'peers' event.
    const unlisten = lease.onChange(held => mesh.setDialing(held))
    const local = this.options.log
    const appended = (origin: string): void => {
      if (origin !== region || lease.held) return
      this.appendedSeq = local.lastLocalSeq
      this.scheduleFlush()
    }
    const acknowledged = (peer: string): void => {
      if (!lease.held) return
      this.heldToSend.add(peer)
      this.scheduleFlush()
    }
    const resend = (): void => this.resendHeld()
    // Another region's presence reached this node (its link to the peer is here): the siblings
    // with clients of the document show it too.
    const peerPresence = (docName: string, update: Uint8Array): void => {
      this.bus.publish(docName, { type: 'awareness', node: this.options.node, update })
    }
    local.on('append', appended)
    mesh.on('acknowledged', acknowledged)
    mesh.on('awareness', peerPresence)
    this.bus.on('resubscribed', resend)
    const unhook = this.unhook
    this.unhook = () => {
      unhook()
      unlisten()
      local.off('append', appended)
      mesh.off('acknowledged', acknowledged)
      mesh.off('awareness', peerPresence)
      this.bus.off('resubscribed', resend)
    }
    return lease
  }

  /**
   * 'held' is a mark: sent again each poll and when Redis is back, a lost one is made good even
   * on a document nobody writes to any more.
   */
  private resendHeld (): void {
    if (this.lease?.held !== true) return
    for (const peer of this.options.mesh?.peerRegions ?? []) this.heldToSend.add(peer)
    this.scheduleFlush()
  }

  private scheduleFlush (): void {
    if (this.flushScheduled) return
    this.flushScheduled = true
    setImmediate(() => {
      this.flushScheduled = false
      const { node, mesh } = this.options
      if (this.appendedSeq > 0) this.bus.publishRegion({ type: 'appended', node, seq: this.appendedSeq })
      this.appendedSeq = 0
      for (const peer of this.heldToSend) this.bus.publishRegion({ type: 'held', node, region: peer, seq: mesh?.heldUpTo(peer) ?? 0 })
      this.heldToSend.clear()
    })
  }

  private regionMessage (message: RegionMessage): void {
    if (message.node === this.options.node) return
    if (message.type === 'appended') {
      if (this.lease?.held === true) this.options.mesh?.wake()
    } else if (message.type === 'presence') {
      // A sibling's clients' presence: the holder's links take it to every peer.
      if (this.lease?.held === true) this.options.mesh?.publishAwareness(message.docName, message.update)
    } else {
      this.options.mesh?.noteHeld(message.region, message.seq)
    }
  }

  /** Whether this node holds the region's mesh lease (null in a region without peers). */
  get meshLease (): { held: boolean, holder: string | null } | null {
    return this.lease === null ? null : { held: this.lease.held, holder: this.lease.holder }
  }

  get node (): string {
    return this.options.node
  }

  /** Starts telling the region's other nodes (and /v1/regions) that this node serves at `url`. */
  announce (url: string): void {
    const self = { name: this.options.node, url }
    let clashingWith = ''
    const clash = (other: string): void => {
      if (other === clashingWith) return
      clashingWith = other
      this.options.logger.log('warn', `node name "${self.name}" is also announced at ${other}: two nodes of region ${this.options.region} share a name (or this node restarted on another address): give each node its own --node`, {})
    }
    this.directory ??= new NodeDirectory(this.bus.commands, this.options.region, self, this.options.onNodes, clash)
    this.directory.start()
  }

  /** The region's live nodes as this node last read them (itself alone while Redis is away). */
  get nodes (): LiveNode[] {
    return this.directory?.nodes ?? []
  }

  /** True while this node is subscribed on Redis. */
  get redisUp (): boolean {
    return this.bus.up
  }

  /** Presence from this node's clients, for the siblings. */
  publishAwareness (docName: string, update: Uint8Array): void {
    this.bus.publish(docName, { type: 'awareness', node: this.options.node, update })
    // Not holding the mesh lease, this node may have no link to a peer: the holder sends it on.
    if (this.lease !== null && !this.lease.held) {
      this.bus.publishRegion({ type: 'presence', node: this.options.node, docName, update })
    }
  }

  /** Stops following; reads in flight finish. */
  async close (): Promise<void> {
    clearInterval(this.poll)
    this.unhook()
    await this.lease?.close()
    await this.directory?.close()
    this.bus.close()
    this.follower.close()
    await this.follower.settled()
  }

  private received (docName: string, message: NodeMessage): void {
    if (message.type === 'hint') {
      // Checked like any update from outside: a bad one is not taken, the log brings the entry.
      const update = message.update !== null && validUpdate(message.update) ? message.update : null
      this.follower.hinted(docName, message.seq, update)
      return
    }
    if (message.node === this.options.node) return
    this.options.documents.ifLoaded(docName).then(doc => {
      try {
        doc?.applyRemoteAwareness(message.update, ownerOf(message.node))
      } catch {
        this.options.metrics.presenceRefused.inc()
      }
    }, () => {})
  }
}
