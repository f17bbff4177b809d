/**
 * An N-region cluster on loopback for tests: one relay per region, every pair of relays
 * linked through the WAN simulator, clients connecting straight to their region's relay.
 * Relays run in-process (to look inside) or as real `georelay relay` processes (to kill -9).
 * The wiring (ports, links, peer lists, the order of a region's starts and stops) is
 * @georelay/cluster's ClusterPlan, as under LocalCluster; this adds test defaults and faults.
 */
import fs from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import { type DocStore, MemoryStore } from '@georelay/core'
import { SqliteStore } from '@georelay/store-sqlite'
import { ClusterPlan, type WanSimulator, type WanSimulatorOptions } from '@georelay/cluster'
import { type Logger, Relay, type RelayConfigInput, parseRelayConfig, silentLogger } from '@georelay/relay'
import { type RelayProcess, startRelayProcess } from './relay-process.js'

export const TEST_MESH_SECRET = 'test-mesh-secret-of-at-least-32-bytes'

/** Replication timing for tests: quick heartbeats so cuts are noticed in about a second. */
export const TEST_REPLICATION = { batchWindowMs: 5, heartbeatMs: 200, linkTimeoutMs: 1000 }

export interface ClusterOptions {
  regions: string[]
  /** One-way delay between two regions (both directions), in ms; default 0. */
  delayMs?: (a: string, b: string) => number
  /** 'in-process' (default) or 'process' (real CLI processes with a SQLite store each). */
  mode?: 'in-process' | 'process'
  /** In-process store: 'memory' (default) or 'sqlite'. Process mode always uses SQLite. */
  store?: 'memory' | 'sqlite'
  /** Extra relay configuration (replication timing, storage thresholds…). */
  config?: Partial<RelayConfigInput>
  /** Extra configuration of one region, over `config` (to give relays different rules). */
  configFor?: (region: string) => Partial<RelayConfigInput>
  wan?: WanSimulatorOptions
  /** Process mode: how long a relay process may take to report listening (default 15 s). */
  startTimeoutMs?: number
  /** In-process relays' logger: one for all, or one per region. */
  logger?: Logger | ((region: string) => Logger)
}

export interface ClusterRegion {
  readonly region: string
  /** The relay's own URL, for clients of this region. */
  readonly url: string
  readonly port: number
  /** The in-process relay (undefined in process mode or while stopped). */
  relay: Relay | undefined
  /** The relay process (undefined in in-process mode or while stopped). */
  process: RelayProcess | undefined
}

/** A region's entry: its port and URL are the plan's (picked again if a port was taken at start). */
class Region implements ClusterRegion {
  relay: Relay | undefined = undefined
  process: RelayProcess | undefined = undefined

  constructor (readonly region: string, private readonly plan: ClusterPlan) {}

  get port (): number {
    return this.plan.port(this.region)
  }

  get url (): string {
    return this.plan.url(this.region)
  }
}

export class TestCluster {
  readonly regions = new Map<string, ClusterRegion>()
  readonly wan: WanSimulator
  private readonly stores = new Map<string, DocStore>()
  /** Regions whose relay process is stopped by SIGSTOP. */
  private readonly paused = new Set<string>()

  private constructor (readonly options: ClusterOptions, private readonly plan: ClusterPlan, readonly dataDir: string) {
    this.wan = plan.wan
    for (const region of plan.regions) this.regions.set(region, new Region(region, plan))
  }

  static async start (options: ClusterOptions): Promise<TestCluster> {
    const dataDir = fs.mkdtempSync(path.join(os.tmpdir(), 'georelay-cluster-'))
    let plan: ClusterPlan
    try {
      plan = await ClusterPlan.create({
        regions: options.regions,
        dataDir,
        meshSecret: TEST_MESH_SECRET,
        wan: options.wan,
        delayMs: options.delayMs,
      })
    } catch (err) {
      fs.rmSync(dataDir, { recursive: true, force: true })
      throw err
    }
    const cluster = new TestCluster(options, plan, dataDir)
    try {
      await plan.startAll(region => cluster.launch(region), region => cluster.halt(region))
    } catch (err) {
      await cluster.close()
      throw err
    }
    return cluster
  }

  get (region: string): ClusterRegion {
    this.plan.check(region)
    return this.regions.get(region) as ClusterRegion
  }

  url (region: string): string {
    return this.get(region).url
  }

  /** The store of an in-process region: what a test reads to see what is durable there. */
  store (region: string): DocStore {
    const store = this.stores.get(region)
    if (store === undefined) throw new Error(`region ${region} has no in-process store (process mode, or not started)`)
    return store
  }

  /** The in-process relay of a region (throws in process mode or while it is stopped). */
  relay (region: string): Relay {
    const relay = this.get(region).relay
    if (relay === undefined) throw new Error(`region ${region} has no in-process relay running`)
    return relay
  }

  private config (region: string): RelayConfigInput {
    const { config = {} } = this.options
    const own = this.options.configFor?.(region) ?? {}
    return {
      ...config,
      ...own,
      // Tests of everything but authentication connect without tokens.
      auth: { anonymous: 'rw', ...config.auth, ...own.auth },
      ...this.plan.relayConfig(region),
      ...(own.meshSecret === undefined ? {} : { meshSecret: own.meshSecret }),
      replication: { ...TEST_REPLICATION, ...config.replication },
      // Tests read every link's state from /v1/regions, as an operator would.
      http: { regions: 'full', ...config.http, ...own.http },
    }
  }

  /**
   * Endpoints for a client that lives somewhere: each region's relay reached through the WAN
   * simulator with the given one-way delay (from `from`, a name for the client's place).
   */
  async clientEndpoints (from: string, delays: Record<string, number>): Promise<{ name: string, url: string }[]> {
    const endpoints: { name: string, url: string }[] = []
    for (const region of this.plan.regions) {
      const link = await this.wan.link(from, region, { port: this.plan.port(region) })
      this.wan.setConditions(from, region, { delayMs: delays[region] ?? 0 })
      endpoints.push({ name: region, url: link.url })
    }
    return endpoints
  }

  /** Starts (or restarts) a region's relay on its port, with its data, after its earlier starts and stops. */
  async startRegion (region: string): Promise<void> {
    return this.plan.inOrder(region, () => this.launch(region))
  }

  /** Stops a region's relay cleanly (drain); its data stays for a restart. */
  async stopRegion (region: string): Promise<void> {
    return this.plan.inOrder(region, () => this.halt(region))
  }

  /** kill -9 of a region's relay process (process mode only). */
  async killRegion (region: string): Promise<void> {
    const entry = this.get(region)
    return this.plan.inOrder(region, async () => {
      if (entry.process === undefined) throw new Error(`region ${region} has no relay process to kill`)
      await entry.process.kill9()
      entry.process = undefined
      this.paused.delete(region)
    })
  }

  /**
   * SIGSTOP of a region's relay process (process mode only): it keeps its sockets open but
   * answers nothing, like a relay stuck in a long GC pause or a frozen VM.
   */
  pauseRegion (region: string): void {
    const entry = this.get(region)
    if (entry.process === undefined) throw new Error(`region ${region} has no relay process to pause`)
    entry.process.child.kill('SIGSTOP')
    this.paused.add(region)
  }

  /** SIGCONT of a region paused by `pauseRegion`; nothing for a region that is not paused. */
  resumeRegion (region: string): void {
    if (!this.paused.delete(region)) return
    this.get(region).process?.child.kill('SIGCONT')
  }

  isPaused (region: string): boolean {
    return this.paused.has(region)
  }

  async close (): Promise<void> {
    await Promise.all([...this.regions.keys()].map(region => this.stopRegion(region).catch(() => {})))
    for (const process of [...this.regions.values()].map(r => r.process)) await process?.kill9()
    await this.plan.close()
    fs.rmSync(this.dataDir, { recursive: true, force: true })
  }

  /** Starts the region's relay, in-process or as a process, on its planned port. */
  private async launch (region: string): Promise<void> {
    const entry = this.get(region)
    if (this.options.mode === 'process') {
      const file = path.join(this.dataDir, `${region}.json`)
      fs.writeFileSync(file, JSON.stringify({ ...this.config(region), store: 'sqlite' }))
      entry.process = await startRelayProcess({ args: ['--config', file], ...(this.options.startTimeoutMs === undefined ? {} : { timeoutMs: this.options.startTimeoutMs }) })
      return
    }
    let store = this.stores.get(region)
    if (store === undefined || this.options.store === 'sqlite') {
      store = this.options.store === 'sqlite' ? new SqliteStore(path.join(this.dataDir, region)) : new MemoryStore()
      this.stores.set(region, store)
    }
    try {
      entry.relay = await Relay.start({ config: parseRelayConfig({ ...this.config(region), store: this.options.store ?? 'memory' }), store, logger: this.loggerFor(region) })
    } catch (err) {
      // A relay that did not start leaves its store open: close it, and open a new one next time.
      this.stores.delete(region)
      await store.close().catch(() => {})
      throw err
    }
  }

  private async halt (region: string): Promise<void> {
    const entry = this.get(region)
    // A stopped process would keep SIGTERM pending forever.
    this.resumeRegion(region)
    if (entry.process !== undefined) await entry.process.stop()
    if (entry.relay !== undefined) {
      if (this.options.store !== 'sqlite') this.stores.set(region, new MemoryStore()) // a memory store does not survive its relay
      await entry.relay.close()
    }
    entry.process = undefined
    entry.relay = undefined
  }

  private loggerFor (region: string): Logger {
    const { logger } = this.options
    return typeof logger === 'function' ? logger(region) : logger ?? silentLogger
  }
}
