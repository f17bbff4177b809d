/**
 * `georelay cluster`: one relay per region on this machine, each with its own store, linked
 * through the WAN simulator so that what crosses regions is as late as it would be between
 * real regions. Clients connect straight to their region's relay. With `nodesPerRegion` above
 * one, each region is that many nodes sharing the region's Postgres schema and one Redis, as
 * a production region of several nodes (docs/operations.md).
 */
import { type Logger, Relay, type RelayConfig, parseRelayConfig, silentLogger } from '@georelay/relay'
import { ClusterPlan } from './cluster-plan.js'
import { oneWayDelayMs } from './latency-table.js'
import type { WanSimulator } from './wan-simulator.js'

export interface LocalClusterOptions {
  regions: string[]
  /**
   * Port of the first region's relay; the others follow. 0 picks free ports (again, if one is
   * taken before its relay binds it).
   */
  basePort: number
  host?: string
  /** Each region's SQLite store lives in `<dataDir>/<region>`. */
  dataDir: string
  store: 'sqlite' | 'postgres' | 'memory'
  /** With store `postgres`: the one database every region shares, each in a schema of its own (`schemaOf`). */
  postgresUrl?: string
  /** One-way delay overrides, keyed `a:b` with the names sorted. */
  latency?: Record<string, number>
  meshSecret?: string
  logger?: Logger
  /** Relays per region (default 1); above one they need store `postgres` and `redisUrl`. */
  nodesPerRegion?: number
  /** The Redis every region's nodes share (each region has channels of its own). */
  redisUrl?: string
}

export interface ClusterRegionInfo {
  region: string
  url: string
  /** The region's relay (its first node); after `stopRegion`, the stopped one until `startRegion` replaces it. */
  relay: Relay
  /** Every node of the region, the first being `relay` (one, unless `nodesPerRegion`). */
  nodes: { node: string, url: string, relay: Relay }[]
}

/** A pair of regions and the simulated link between them. */
export interface ClusterLinkInfo {
  a: string
  b: string
  delayMs: number
  /** Whether either direction is cut. */
  cut: boolean
}

export class LocalCluster {
  readonly wan: WanSimulator
  private readonly stopped = new Set<string>()

  private constructor (
    readonly regions: ClusterRegionInfo[],
    private readonly plan: ClusterPlan,
    private readonly options: LocalClusterOptions,
    private readonly logger: Logger,
  ) {
    this.wan = plan.wan
  }

  static async start (options: LocalClusterOptions): Promise<LocalCluster> {
    const nodes = options.nodesPerRegion ?? 1
    if (nodes > 1 && (options.store !== 'postgres' || options.redisUrl === undefined)) {
      throw new Error(`${nodes} nodes per region share each region's store and talk over Redis: give store postgres with a database URL, and a Redis URL`)
    }
    const plan = await ClusterPlan.create({
      nodesPerRegion: nodes,
      regions: options.regions,
      basePort: options.basePort,
      host: options.host,
      dataDir: options.dataDir,
      meshSecret: options.meshSecret,
      delayMs: (a, b) => oneWayDelayMs(a, b, options.latency),
    })
    const logger = options.logger ?? silentLogger
    let relays: Map<string, Relay[]>
    try {
      relays = await plan.startAll(
        region => startNodes(plan, options, region, logger),
        (_, started) => Promise.allSettled(started.map(relay => relay.close())),
      )
    } catch (err) {
      await plan.close()
      throw err
    }
    const regions = plan.regions.map(region => regionInfo(plan, region, relays.get(region) as Relay[]))
    return new LocalCluster(regions, plan, options, logger)
  }

  /** Whether the region's relay is running (not stopped by `stopRegion`). */
  isRunning (region: string): boolean {
    this.info(region)
    return !this.stopped.has(region)
  }

  /**
   * Stops one region's relay as a drain would (its clients are closed with 1001 and move to
   * another region; its peers see the link drop). Its data directory stays, so `startRegion`
   * brings it back with everything it had; with the memory store it comes back empty, as a
   * region that lost its disk. Stopping a stopped region does nothing.
   */
  stopRegion (region: string): Promise<void> {
    const info = this.info(region)
    return this.plan.inOrder(region, async () => {
      if (this.stopped.has(region)) return
      this.stopped.add(region)
      await Promise.all(info.nodes.map(n => n.relay.close()))
    })
  }

  /** Starts a stopped region's relay again on the same port and data directory; resolves with it listening. */
  startRegion (region: string): Promise<Relay> {
    const info = this.info(region)
    return this.plan.inOrder(region, async () => {
      if (!this.stopped.has(region)) return info.relay
      const started = await startNodes(this.plan, this.options, region, this.logger)
      Object.assign(info, regionInfo(this.plan, region, started))
      this.stopped.delete(region)
      return info.relay
    })
  }

  /** Cuts both directions between two regions (bytes are held, as in a partition, until `heal`). */
  cut (a: string, b: string): void {
    this.plan.check(a)
    this.plan.check(b)
    this.wan.cut(a, b)
  }

  heal (a: string, b: string): void {
    this.plan.check(a)
    this.plan.check(b)
    this.wan.heal(a, b)
  }

  /** Every pair of regions, in the order of `regions`, with its one-way delay and whether it is cut. */
  links (): ClusterLinkInfo[] {
    const links: ClusterLinkInfo[] = []
    for (const [i, { region: a }] of this.regions.entries()) {
      for (const { region: b } of this.regions.slice(i + 1)) {
        links.push({
          a,
          b,
          delayMs: this.wan.conditions(a, b).delayMs,
          cut: this.wan.stats(a, b).cut || this.wan.stats(b, a).cut,
        })
      }
    }
    return links
  }

  /** What `georelay cluster` prints: each region's URL (each node's), then each pair's one-way delay. */
  describe (): string[] {
    return [
      ...this.regions.map(({ region, nodes }) => `  ${region.padEnd(14)} ${nodes.map(n => n.url).join('  ')}`),
      ...this.links().map(({ a, b, delayMs }) => `  ${`${a} <-> ${b}`.padEnd(30)} ${delayMs} ms one way`),
    ]
  }

  async close (): Promise<void> {
    await this.plan.settled()
    await Promise.allSettled(this.regions.flatMap(r => r.nodes.map(n => n.relay.close())))
    await this.plan.close()
  }

  private info (region: string): ClusterRegionInfo {
    this.plan.check(region)
    return this.regions.find(r => r.region === region) as ClusterRegionInfo
  }
}

/**
 * A region's relay configuration: the plan's wiring, and what a cluster on one machine is for:
 * trying things out, so anyone on it may read and write, and see every link's state.
 */
const configOf = (plan: ClusterPlan, options: LocalClusterOptions, region: string, node: number): RelayConfig => {
  const base = plan.relayConfig(region, node)
  const storage = options.store === 'postgres'
    ? { storage: { postgres: { url: options.postgresUrl, schema: schemaOf(region) } } }
    : {}
  const several = plan.nodesPerRegion > 1 ? { node: nodeName(region, node), redis: { url: options.redisUrl } } : {}
  return parseRelayConfig({
    ...base, ...storage, ...several, store: options.store, auth: { anonymous: 'rw' }, http: { regions: 'full' },
  }, `cluster region ${region}${plan.nodesPerRegion > 1 ? ` node ${nodeName(region, node)}` : ''}`)
}

/** A node's name in a local cluster: the region's name and its number, from 1. */
export const nodeName = (region: string, node: number): string => `${region}-${node + 1}`

/** Starts every node of a region; if one fails, closes those that started. */
const startNodes = async (
  plan: ClusterPlan, options: LocalClusterOptions, region: string, logger: Logger,
): Promise<Relay[]> => {
  const results = await Promise.allSettled(Array.from({ length: plan.nodesPerRegion }, (_, node) =>
    Relay.start({ config: configOf(plan, options, region, node), logger })))
  const started = results.flatMap(r => r.status === 'fulfilled' ? [r.value] : [])
  const failed = results.find((r): r is PromiseRejectedResult => r.status === 'rejected')
  if (failed === undefined) return started
  await Promise.allSettled(started.map(relay => relay.close()))
  throw failed.reason
}

const regionInfo = (plan: ClusterPlan, region: string, relays: Relay[]): ClusterRegionInfo => ({
  region,
  url: plan.url(region),
  relay: relays[0] as Relay,
  nodes: relays.map((relay, node) => ({ node: nodeName(region, node), url: plan.url(region, node), relay })),
})

/**
 * The schema a region of a local cluster keeps its tables in: one database holds every region,
 * as separate as separate databases would be (no table is shared), and one URL is enough.
 */
export const schemaOf = (region: string): string => `georelay_${region.replace(/-/g, '_')}`
