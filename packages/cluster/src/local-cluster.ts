/**
 * `georelay cluster`: one relay per region on this machine, each with its own store, linked
 * through the WAN simulator so that what crosses regions is as late as it would be between
 * real regions. Clients connect straight to their region's relay.
 */
import crypto from 'node:crypto'
import net from 'node:net'
import path from 'node:path'
import { type Logger, silentLogger } from './observability/index.js'
import { oneWayDelayMs } from './latency-table.js'
import { type RelayConfig, parseRelayConfig } from './config/index.js'
import { Relay } from './server/index.js'
import { WanSimulator } from './wan-simulator.js'

export interface LocalClusterOptions {
  regions: string[]
  /** Port of the first region's relay; the others follow. 0 picks free ports. */
  basePort: number
  host?: string
  /** Each region's store lives in `<dataDir>/<region>`. */
  dataDir: string
  store: 'sqlite' | 'memory'
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

/** A port nothing listens on right now (for relays that must know each other's ports up front). */
export const freePort = (host = '127.0.0.1'): Promise<number> => new Promise((resolve, reject) => {
  const server = net.createServer()
  server.once('error', reject)
  server.listen(0, host, () => {
    const { port } = server.address() as net.AddressInfo
    server.close(() => resolve(port))
  })
})

export class LocalCluster {
  private readonly stopped = new Set<string>()
  /** Starts and stops of one region, in order: a stop never overtakes a start still listening. */
  private readonly transitions = new Map<string, Promise<unknown>>()

  private constructor (
    readonly regions: ClusterRegionInfo[],
    readonly wan: WanSimulator,
    private readonly configs: Map<string, RelayConfig>,
    private readonly logger: Logger,
  ) {}

  static async start (options: LocalClusterOptions): Promise<LocalCluster> {
    const host = options.host ?? '127.0.0.1'
    const unique = new Set(options.regions)
    if (unique.size !== options.regions.length || options.regions.length === 0) throw new Error('--regions needs one or more distinct region names')
    const ports = new Map<string, number>()
    for (const [i, region] of options.regions.entries()) ports.set(region, options.basePort === 0 ? await freePort(host) : options.basePort + i)
    const wan = new WanSimulator()
    const meshSecret = options.meshSecret ?? crypto.randomBytes(16).toString('hex')
    const logger = options.logger ?? silentLogger
    const relays: ClusterRegionInfo[] = []
    const configs = new Map<string, RelayConfig>()
    try {
      const peersOf = new Map<string, { region: string, url: string }[]>()
      for (const from of options.regions) {
        const peers = []
        for (const to of options.regions) {
          if (to === from) continue
          const link = await wan.link(from, to, { host, port: ports.get(to) as number })
          peers.push({ region: to, url: link.url, publicUrl: `ws://${host}:${ports.get(to) as number}` })
          if (from < to) wan.setConditions(from, to, { delayMs: oneWayDelayMs(from, to, options.latency) })
        }
        peersOf.set(from, peers)
      }
      for (const region of options.regions) {
        const config = parseRelayConfig({
          region,
          listen: { host, port: ports.get(region) },
          dataDir: path.join(options.dataDir, region),
          store: options.store,
          peers: peersOf.get(region),
          meshSecret,
          // A cluster on one machine is for trying things out: anyone on it may read and write,
          // and see every link's state.
          auth: { anonymous: 'rw' },
          http: { regions: 'full' },
        }, `cluster region ${region}`)
        const relay = await Relay.start({ config, logger })
        // With port 0 a relay binds any port; a restart must find it at the same one.
        configs.set(region, { ...config, listen: { ...config.listen, port: relay.port } })
        relays.push({ region, url: relay.url, relay })
      }
    } catch (err) {
      await Promise.allSettled(relays.map(r => r.relay.close()))
      await wan.close()
      throw err
    }
    return new LocalCluster(relays, wan, configs, logger)
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
    return this.inOrder(region, async () => {
      if (this.stopped.has(region)) return
      this.stopped.add(region)
      await info.relay.close()
    })
  }

  /** Starts a stopped region's relay again on the same port and data directory; resolves with it listening. */
  startRegion (region: string): Promise<Relay> {
    const info = this.info(region)
    return this.inOrder(region, async () => {
      if (!this.stopped.has(region)) return info.relay
      const relay = await Relay.start({ config: this.configs.get(region) as RelayConfig, logger: this.logger })
      info.relay = relay
      this.stopped.delete(region)
      return relay
    })
  }

  /** Cuts both directions between two regions (bytes are held, as in a partition, until `heal`). */
  cut (a: string, b: string): void {
    this.info(a)
    this.info(b)
    this.wan.cut(a, b)
  }

  heal (a: string, b: string): void {
    this.info(a)
    this.info(b)
    this.wan.heal(a, b)
  }

  /** Every pair of regions, in the order of `regions`, with its one-way delay and whether it is cut. */
  links (): ClusterLinkInfo[] {
    const links: ClusterLinkInfo[] = []
    for (const [i, { region: a }] of this.regions.entries()) {
      for (const { region: b } of this.regions.slice(i + 1)) {
        links.push({ a, b, delayMs: this.wan.conditions(a, b).delayMs, cut: this.wan.stats(a, b).cut || this.wan.stats(b, a).cut })
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
    await Promise.allSettled([...this.transitions.values()])
    await Promise.allSettled(this.regions.map(r => r.relay.close()))
    await this.wan.close()
  }

  private info (region: string): ClusterRegionInfo {
    const info = this.regions.find(r => r.region === region)
    if (info === undefined) throw new Error(`no region "${region}" in this cluster (it has ${this.regions.map(r => r.region).join(', ')})`)
    return info
  }

  private inOrder<T> (region: string, step: () => Promise<T>): Promise<T> {
    const result = (this.transitions.get(region) ?? Promise.resolve()).catch(() => {}).then(step)
    this.transitions.set(region, result)
    return result
  }
}
