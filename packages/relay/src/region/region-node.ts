/**
 * A relay as one node of a region of several: what it adds to a lone relay. The nodes share the
 * region's store (whose log is the truth) and one Redis, which only hints. This node
 *
 * - publishes a hint after each of its durable appends, carrying the update when it is small;
 * - subscribes to the channels of the documents it has loaded, hands siblings' updates to them,
 *   and follows each document's log by its own cursor (log-follower.ts): on a hint without its
 *   update, every `pollMs`, and whenever Redis comes back, so that nothing a hint failed to bring
 *   is missing for longer than a poll;
 * - carries its clients' presence to the siblings, and theirs to its clients.
 */
import { type DocStore, MAX_HINT_UPDATE_BYTES, type NodeMessage, validateUpdate } from '@georelay/core'
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
  private readonly unhook: () => void
  private directory: NodeDirectory | null = null

  constructor (private readonly options: RegionNodeOptions) {
    const { documents, log, metrics, logger } = options
    this.bus = new HintBus({ url: options.redisUrl, region: options.region, metrics, logger })
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
    this.poll = setInterval(() => { void this.follower.catchUp('poll') }, options.pollMs)
    this.poll.unref()
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
  }

  /** Stops following; reads in flight finish. */
  async close (): Promise<void> {
    clearInterval(this.poll)
    this.unhook()
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
