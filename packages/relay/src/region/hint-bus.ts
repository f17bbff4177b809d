/**
 * The Redis side of a region of nodes: one channel per loaded document (core's nodeChannel),
 * sharded pub/sub (SSUBSCRIBE/SPUBLISH, Redis 7), so that on Redis Cluster a document's hints
 * stay on its shard and a node receives only the documents it has loaded.
 *
 * Nothing here may hold up a write or a read: a hint that cannot be published is counted and
 * dropped (enableOfflineQueue off), because the log poll finds what it would have said. The
 * subscriber re-subscribes by itself whenever it connects, then says `resubscribed`, so that the
 * node reads what it missed while Redis was away.
 */
import { EventEmitter } from 'node:events'
import { Cluster, Redis } from 'ioredis'
import {
  type NodeMessage, ProtocolError, type RegionMessage, decodeNodeMessage, decodeRegionMessage, encodeNodeMessage,
  nodeChannel, regionChannel,
} from '@georelay/core'
import { type Logger, type RelayMetrics, throttledLogger } from '../observability/index.js'

export interface HintBusOptions {
  url: string
  /**
   * `url` is a node of a Redis Cluster: both connections are cluster clients, the subscriber
   * with one connection per shard (ioredis's sharded subscribers), and channels are subscribed
   * one at a time, since one SSUBSCRIBE may name channels of one slot only.
   */
  cluster?: boolean
  region: string
  metrics: RelayMetrics
  logger: Logger
}

export interface HintBusEvents {
  /** A sibling's message about a document this node subscribed to. */
  message: [docName: string, message: NodeMessage]
  /** Subscribed again after Redis was away (or for the first time): messages meanwhile were lost. */
  resubscribed: []
  /** The subscriber lost Redis: hints are lost until `resubscribed`. */
  lost: []
  /** A sibling's message on the region's channel. */
  region: [message: RegionMessage]
}

/** Channels per SSUBSCRIBE when subscribing everything again. */
const SUBSCRIBE_CHUNK = 500
/** A subscription refused on a connection that is up is tried again after this long. */
const RESUBSCRIBE_RETRY_MS = 200

/** Reconnect quickly (a restarted Redis is back in well under a second), then every 2 s. */
const retryStrategy = (attempt: number): number => Math.min(50 * 2 ** attempt, 2000)

/** What the bus needs of a connection, the same on a standalone server and on a cluster. */
type Connection = Redis | Cluster

export class HintBus extends EventEmitter<HintBusEvents> {
  private readonly pub: Connection
  private readonly sub: Connection
  private readonly subscribeChunk: number
  /** Channel → document, for every document subscribed to. */
  private readonly channels = new Map<string, string>()
  private subscribed = false
  private closed = false
  private readonly log: Logger
  /** The region's own channel, always subscribed. */
  private readonly regionChannel: string

  constructor (private readonly options: HintBusOptions) {
    super()
    this.regionChannel = regionChannel(options.region)
    this.log = throttledLogger(options.logger)
    // A Redis that holds the connection open and answers nothing must not hold a command (or a
    // shutdown) for longer than this.
    const common = { connectTimeout: 2000, commandTimeout: 2000, retryStrategy, lazyConnect: false }
    // A hint is worth nothing late: never queue it behind a reconnect.
    const pub = { enableOfflineQueue: false, maxRetriesPerRequest: 0, enableAutoPipelining: true }
    if (options.cluster === true) {
      // The cluster client's own start-up commands need its offline queue (without it the ready
      // check fails and it reconnects over and over); `publish` drops hints while it is not ready.
      const cluster = { clusterRetryStrategy: retryStrategy, redisOptions: common }
      this.pub = new Cluster([options.url], { ...cluster, enableAutoPipelining: true })
      this.sub = new Cluster([options.url], { ...cluster, shardedSubscribers: true })
      this.subscribeChunk = 1
    } else {
      this.pub = new Redis(options.url, { ...common, ...pub })
      this.sub = new Redis(options.url, { ...common, autoResubscribe: false, maxRetriesPerRequest: null })
      this.subscribeChunk = SUBSCRIBE_CHUNK
    }
    for (const connection of [this.pub, this.sub]) {
      connection.on('error', (err: Error) => this.log.log('warn', 'redis error: hints wait, the log poll catches up', { error: err.message }))
    }
    this.sub.on('smessageBuffer', (channel: Buffer, message: Buffer) => this.received(channel, message))
    this.sub.on('close', () => this.lost())
    this.sub.on('ready', () => { void this.resubscribe() })
    options.metrics.redisUp.set(0)
  }

  /** The connection for plain commands (the node directory's), failing fast while Redis is away. */
  get commands (): Connection {
    return this.pub
  }

  /** True while subscribed: hints arrive. */
  get up (): boolean {
    return this.subscribed
  }

  /** Subscribes to a document's channel; resolves once Redis confirmed (at once while it is away). */
  async subscribe (docName: string): Promise<void> {
    const channel = nodeChannel(this.options.region, docName)
    this.channels.set(channel, docName)
    // Not connected: the next 'ready' subscribes every channel, this one included.
    if (this.sub.status !== 'ready') return
    try {
      await this.sub.ssubscribe(channel)
    } catch {
      // Lost meanwhile: the reconnect subscribes every channel again.
    }
  }

  unsubscribe (docName: string): void {
    const channel = nodeChannel(this.options.region, docName)
    if (!this.channels.delete(channel) || this.sub.status !== 'ready') return
    this.sub.sunsubscribe(channel).catch(() => {})
  }

  publish (docName: string, message: NodeMessage): void {
    this.send(nodeChannel(this.options.region, docName), message)
  }

  /** Says something to every node of the region (region-node.ts's marks); dropped while Redis is away. */
  publishRegion (message: RegionMessage): void {
    this.send(this.regionChannel, message)
  }

  close (): void {
    this.closed = true
    this.subscribed = false
    this.channels.clear()
    this.pub.disconnect()
    this.sub.disconnect()
    this.options.metrics.redisUp.set(0)
  }

  /** A hint is worth nothing late: never queued, counted when it cannot go. */
  private send (channel: string, message: NodeMessage | RegionMessage): void {
    if (this.closed) return
    if (this.pub.status !== 'ready') return this.options.metrics.redisErrors.inc()
    const frame = encodeNodeMessage(message)
    this.pub.spublish(channel, Buffer.from(frame.buffer, frame.byteOffset, frame.byteLength))
      .catch(() => this.options.metrics.redisErrors.inc())
  }

  private received (channel: Buffer, frame: Buffer): void {
    const name = channel.toString('utf8')
    if (name === this.regionChannel) {
      const message = this.decoded(frame, decodeRegionMessage, 'the region channel')
      if (message !== null) this.emit('region', message)
      return
    }
    const docName = this.channels.get(name)
    if (docName === undefined) return
    const message = this.decoded(frame, decodeNodeMessage, 'a node channel')
    if (message !== null) this.emit('message', docName, message)
  }

  /** What a channel carried, or null (logged, throttled) when it is not a message of ours. */
  private decoded<T> (frame: Buffer, decode: (bytes: Uint8Array) => T, where: string): T | null {
    try {
      return decode(new Uint8Array(frame.buffer, frame.byteOffset, frame.byteLength))
    } catch (err) {
      if (!(err instanceof ProtocolError)) throw err
      this.log.log('warn', `a message on ${where} is not georelay's: ignored`, { error: err.message })
      return null
    }
  }

  private lost (): void {
    if (!this.subscribed || this.closed) return
    this.subscribed = false
    this.options.metrics.redisUp.set(0)
    this.options.logger.log('warn', 'redis is away: hints are lost until it is back; the log poll keeps documents up to date', {})
    this.emit('lost')
  }

  private async resubscribe (): Promise<void> {
    const channels = [this.regionChannel, ...this.channels.keys()]
    try {
      for (let i = 0; i < channels.length; i += this.subscribeChunk) {
        await this.sub.ssubscribe(...channels.slice(i, i + this.subscribeChunk))
      }
      // Channels dropped meanwhile were subscribed above: leave them again.
      const dropped = channels.filter(channel => channel !== this.regionChannel && !this.channels.has(channel))
      for (let i = 0; i < dropped.length; i += this.subscribeChunk) {
        await this.sub.sunsubscribe(...dropped.slice(i, i + this.subscribeChunk))
      }
    } catch {
      // Lost again: the next 'ready' tries again. Still ready (a cluster whose shard
      // subscribers were not all up yet): try again shortly.
      if (!this.closed && this.sub.status === 'ready') setTimeout(() => { void this.resubscribe() }, RESUBSCRIBE_RETRY_MS).unref()
      return
    }
    if (this.closed) return
    this.subscribed = true
    this.options.metrics.redisUp.set(1)
    this.emit('resubscribed')
  }
}
