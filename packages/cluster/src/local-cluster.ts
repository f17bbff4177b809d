/**
 * `georelay cluster`: one relay per region on this machine, each with its own store, linked
 * through the WAN simulator so that what crosses regions is as late as it would be between
 * real regions. Clients connect straight to their region's relay.
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
}

export interface ClusterRegionInfo {
  region: string
  url: string
  /** The region's relay; after `stopRegion`, the stopped one until `startRegion` replaces it. */
  relay: Relay
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
    const plan = await ClusterPlan.create({
      regions: options.regions,
      basePort: options.basePort,
      host: options.host,
      dataDir: options.dataDir,
      meshSecret: options.meshSecret,
      delayMs: (a, b) => oneWayDelayMs(a, b, options.latency),
    })
    const logger = options.logger ?? silentLogger
    let relays: Map<string, Relay>
    try {
      relays = await plan.startAll(
        region => Relay.start({ config: configOf(plan, options, region), logger }),
        (_, relay) => relay.close(),
      )
    } catch (err) {
      await plan.close()
      throw err
    }
    const regions = plan.regions.map(region => ({ region, url: plan.url(region), relay: relays.get(region) as Relay }))
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
      await info.relay.close()
    })
  }

  /** Starts a stopped region's relay again on the same port and data directory; resolves with it listening. */
  startRegion (region: string): Promise<Relay> {
    const info = this.info(region)
    return this.plan.inOrder(region, async () => {
      if (!this.stopped.has(region)) return info.relay
      const relay = await Relay.start({ config: configOf(this.plan, this.options, region), logger: this.logger })
      info.relay = relay
      this.stopped.delete(region)
      return relay
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

  /** What `georelay cluster` prints: each region's URL, then each pair's one-way delay. */
  describe (): string[] {
    return [
      ...this.regions.map(({ region, url }) => `  ${region.padEnd(14)} ${url}`),
      ...this.links().map(({ a, b, delayMs }) => `  ${`${a} <-> ${b}`.padEnd(30)} ${delayMs} ms one way`),
    ]
  }

  async close (): Promise<void> {
    await this.plan.settled()
    await Promise.allSettled(this.regions.map(r => r.relay.close()))
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
const configOf = (plan: ClusterPlan, options: LocalClusterOptions, region: string): RelayConfig => {
  const base = plan.relayConfig(region)
  const storage = options.store === 'postgres'
    ? { storage: { postgres: { url: options.postgresUrl, schema: schemaOf(region) } } }
    : {}
  return parseRelayConfig({ ...base, ...storage, store: options.store, auth: { anonymous: 'rw' }, http: { regions: 'full' } }, `cluster region ${region}`)
}

/**
 * The schema a region of a local cluster keeps its tables in: one database holds every region,
 * as separate as separate databases would be (no table is shared), and one URL is enough.
 */
export const schemaOf = (region: string): string => `georelay_${region.replace(/-/g, '_')}`
