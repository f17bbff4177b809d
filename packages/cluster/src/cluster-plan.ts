/**
 * The wiring of a cluster on one machine, shared by LocalCluster (`georelay cluster`, the demo)
 * and the testkit's TestCluster: a port per region, a WAN simulator link for every ordered pair
 * of regions, each region's peer list (dialled through the simulator, shown to clients with the
 * peer's own URL), the rest of what every relay of the cluster must agree on (mesh secret, data
 * directories), and the order of each region's starts and stops. What runs in a region (an
 * in-process relay, a `georelay relay` process) and the rest of its configuration are the
 * caller's.
 */
import crypto from 'node:crypto'
import path from 'node:path'
import type { RelayConfigInput } from '@georelay/relay'
import { freePorts } from './free-port.js'
import { type LinkTarget, WanSimulator, type WanSimulatorOptions } from './wan-simulator.js'

export interface ClusterPlanOptions {
  regions: readonly string[]
  /** Address every relay listens on (default 127.0.0.1). */
  host?: string
  /**
   * Port of the first region's relay; the others follow. 0 (the default) picks free ports, and
   * `startAll` picks again if one was taken before its relay bound it.
   */
  basePort?: number
  /** One-way delay between two regions, both directions; without it, the simulator's `defaultDelayMs`. */
  delayMs?: (a: string, b: string) => number
  wan?: WanSimulatorOptions
  /** Each region's data lives in `<dataDir>/<region>`; without it `relayConfig` names none. */
  dataDir?: string
  /** The secret every relay of the cluster shares (default: random for this plan). */
  meshSecret?: string
  /**
   * Relays per region (default 1): the nodes of a region of several, which share its store.
   * Each gets a port of its own; peers are given every node's address, dialled in turn.
   */
  nodesPerRegion?: number
}

/** A peer of a region as its relay configuration lists it. */
export interface PlannedPeer {
  region: string
  /** Where the relay dials it: the WAN simulator's link to it (to its first node). */
  url: string
  /** Links to the region's other nodes, when it has several. */
  urls?: string[]
  /** Where clients reach it: the peer's own relay. */
  publicUrl: string
}

/** What the plan decides of a region's relay configuration; the rest is the caller's. */
export interface PlannedRelayConfig extends Pick<RelayConfigInput, 'dataDir'> {
  region: string
  listen: { host: string, port: number }
  peers: PlannedPeer[]
  meshSecret: string
}

/** How many times `startAll` picks ports again when one was taken under it. */
const MAX_PORT_ATTEMPTS = 5

/** A listen error, in-process (its code) or from a relay process (its log, in the message). */
const isPortTaken = (err: unknown): boolean =>
  (err as NodeJS.ErrnoException | undefined)?.code === 'EADDRINUSE' || /\bEADDRINUSE\b/.test(String((err as Error | undefined)?.message))

export class ClusterPlan {
  readonly regions: readonly string[]
  readonly host: string
  readonly wan: WanSimulator
  readonly meshSecret: string
  private readonly basePort: number
  private readonly dataDir: string | undefined
  readonly nodesPerRegion: number
  /** Each region's nodes' ports. */
  private ports = new Map<string, number[]>()
  /** Each ordered pair's link URLs (one per node of `to`), keyed `from` then `to`. */
  private readonly links = new Map<string, Map<string, string[]>>()
  /** Starts and stops of one region, in order: a stop never overtakes a start still listening. */
  private readonly transitions = new Map<string, Promise<unknown>>()

  private constructor (options: ClusterPlanOptions) {
    this.regions = [...options.regions]
    this.host = options.host ?? '127.0.0.1'
    this.basePort = options.basePort ?? 0
    this.dataDir = options.dataDir
    this.meshSecret = options.meshSecret ?? crypto.randomBytes(16).toString('hex')
    this.nodesPerRegion = options.nodesPerRegion ?? 1
    this.wan = new WanSimulator(options.wan)
  }

  /** Links every pair of regions through a new WAN simulator, then picks the relays' ports. */
  static async create (options: ClusterPlanOptions): Promise<ClusterPlan> {
    if (new Set(options.regions).size !== options.regions.length || options.regions.length === 0) throw new Error('--regions needs one or more distinct region names')
    const nodes = options.nodesPerRegion ?? 1
    if (!Number.isInteger(nodes) || nodes < 1 || nodes > 8) throw new Error(`--nodes-per-region must be 1 to 8, not ${nodes}`)
    const plan = new ClusterPlan(options)
    try {
      // Links first: their proxies take ephemeral ports too, and must not take a relay's.
      for (const from of plan.regions) {
        const links = new Map<string, string[]>()
        for (const to of plan.others(from)) {
          const urls: string[] = []
          for (let node = 0; node < plan.nodesPerRegion; node++) {
            urls.push((await plan.wan.link(from, to, () => plan.target(to, node))).url)
          }
          links.set(to, urls)
          if (options.delayMs !== undefined && from < to) {
            plan.wan.setConditions(from, to, { delayMs: options.delayMs(from, to) })
          }
        }
        plan.links.set(from, links)
      }
      await plan.pickPorts()
    } catch (err) {
      await plan.wan.close()
      throw err
    }
    return plan
  }

  /** The port of the region's relay (of its `node`-th node). */
  port (region: string, node = 0): number {
    this.check(region)
    return (this.ports.get(region) as number[])[node] as number
  }

  /** `ws://host:port` of the region's relay (of its `node`-th node), where its clients connect. */
  url (region: string, node = 0): string {
    const host = this.host.includes(':') ? `[${this.host}]` : this.host
    return `ws://${host}:${this.port(region, node)}`
  }

  /** The other regions as the region's relay configuration lists them. */
  peers (region: string): PlannedPeer[] {
    const links = this.links.get(region)
    this.check(region)
    return this.others(region).map(to => {
      const [url, ...more] = links?.get(to) as string[]
      return { region: to, url: url as string, ...(more.length === 0 ? {} : { urls: more }), publicUrl: this.url(to) }
    })
  }

  /** The part of the region's relay configuration (of its `node`-th node) that wires it into the cluster. */
  relayConfig (region: string, node = 0): PlannedRelayConfig {
    return {
      region,
      listen: { host: this.host, port: this.port(region, node) },
      peers: this.peers(region),
      meshSecret: this.meshSecret,
      ...(this.dataDir === undefined ? {} : { dataDir: path.join(this.dataDir, region) }),
    }
  }

  /**
   * Starts every region at once with `start`, which must listen on `port(region)`. If any start
   * fails, stops those that started with `stop`; if they failed because a picked port was taken
   * in the meantime (EADDRINUSE), picks other ports and starts again, else rejects with the error.
   * Resolves with what each start resolved to, in the order of `regions`.
   */
  async startAll<T> (
    start: (region: string) => Promise<T>,
    stop: (region: string, started: T) => Promise<unknown>,
  ): Promise<Map<string, T>> {
    for (let attempt = 1; ; attempt++) {
      const results = await Promise.allSettled(this.regions.map(async region => start(region)))
      const started = new Map<string, T>()
      const failures: unknown[] = []
      results.forEach((result, i) => {
        if (result.status === 'fulfilled') started.set(this.regions[i] as string, result.value)
        else failures.push(result.reason)
      })
      if (failures.length === 0) return started
      await Promise.allSettled([...started].map(([region, value]) => stop(region, value)))
      const cause = failures.find(err => !isPortTaken(err)) ?? failures[0]
      if (this.basePort !== 0 || attempt >= MAX_PORT_ATTEMPTS || !isPortTaken(cause)) throw cause
      await this.pickPorts()
    }
  }

  /** Runs `step` after every step of this region before it (each region's starts and stops). */
  inOrder<T> (region: string, step: () => Promise<T>): Promise<T> {
    this.check(region)
    const result = (this.transitions.get(region) ?? Promise.resolve()).catch(() => {}).then(step)
    this.transitions.set(region, result)
    return result
  }

  /** Resolves once every step begun so far is over, whatever its outcome. */
  async settled (): Promise<void> {
    await Promise.allSettled([...this.transitions.values()])
  }

  /** Throws, naming the cluster's regions, unless `region` is one of them. */
  check (region: string): void {
    if (!this.regions.includes(region)) throw new Error(`no region "${region}" in this cluster (it has ${this.regions.join(', ')})`)
  }

  /** Waits for the steps in flight, then closes the WAN simulator (the relays are the caller's). */
  async close (): Promise<void> {
    await this.settled()
    await this.wan.close()
  }

  private others (region: string): string[] {
    return this.regions.filter(r => r !== region)
  }

  private target (region: string, node: number): LinkTarget | undefined {
    const port = this.ports.get(region)?.[node]
    return port === undefined ? undefined : { host: this.host, port }
  }

  /** Region i's node j gets the (i × nodes + j)-th port: with one node each, base, base + 1, … */
  private async pickPorts (): Promise<void> {
    const n = this.nodesPerRegion
    const count = this.regions.length * n
    const ports = this.basePort === 0
      ? await freePorts(count, this.host)
      : Array.from({ length: count }, (_, i) => this.basePort + i)
    this.ports = new Map(this.regions.map((region, i) => [region, ports.slice(i * n, i * n + n)]))
  }
}
