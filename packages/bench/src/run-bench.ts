/**
 * `npm run bench`: every workload, every contender as its own process, one run, one report.
 */
import path from 'node:path'
import {
  type EditingTrace, type HocuspocusVersion, type PostgresServer, type RedisServer, loadTrace, startPostgres,
  startRedis, syntheticTrace,
} from '@georelay/testkit'
import { type ContenderKind, isContenderKind } from './contenders.js'
import { machineInfo } from './machine.js'
import { type BenchReport, firstSyncTable, goalRows, goalTable, writeReport } from './report.js'
import { finalStateOf, keystrokeUpdates } from './trace-updates.js'
import { runConvergence } from './workloads/convergence.js'
import { runDurableAck } from './workloads/durable-ack.js'
import { runFailover } from './workloads/failover.js'
import { runFanOut } from './workloads/fan-out.js'
import { runFirstSync } from './workloads/first-sync.js'
import { runManyDocs } from './workloads/many-docs.js'
import { runIdleConnections, runReadersScale } from './workloads/scale-on-one-node.js'
import { runStoredDocs } from './workloads/stored-docs.js'
import { runPartitionCatchUp } from './workloads/partition-catch-up.js'
import { runRegionScale } from './workloads/region-scale.js'
import { runMemory } from './workloads/memory.js'
import { runRegionNodes } from './workloads/region-nodes.js'

export const WORKLOADS = [
  'fanout', 'convergence', 'many-docs', 'memory', 'ack', 'failover', 'nodes', 'first-sync', 'readers', 'idle', 'stored-docs',
  'regions', 'partition',
] as const
export type Workload = typeof WORKLOADS[number]

export interface BenchOptions {
  quick: boolean
  /** A sequential trace file; default a seeded synthetic one. */
  trace?: string
  seed: number
  workloads: Workload[]
  contenders: ContenderKind[]
  docs: number
  readersPerDoc: number
  pacedRate: number
  /** One-way delay between regions for the convergence workload. */
  delayMs: number
  memoryDocs: number
  /**
   * Profile every contender during fan-out, and the relay during durable ack (`--cpu-prof`,
   * profiles in `<out>/profiles`; the profiler costs CPU too).
   */
  cpuProf: boolean
  outDir: string
  log: (line: string) => void
}

/** How long each workload runs in quick and full mode. */
const SIZES = {
  quick: {
    pacedCount: 1500, saturatedCount: 3000, fastUpdates: 1000, humanUpdates: 60, memoryKeystrokes: 20000, ackSeconds: 3,
    memoryContenders: ['ywss', 'georelay'] as ContenderKind[], manyDocs: { docs: 100, seconds: 4 },
    readers: [1, 16, 64], idle: { counts: [1000], seconds: 2 }, storedDocs: [1000, 10_000],
    regions: { counts: [2, 3], typingSeconds: 3, idleSeconds: 2 }, partitionSeconds: 5,
  },
  full: {
    pacedCount: 5000, saturatedCount: 10000, fastUpdates: 3000, humanUpdates: 200, memoryKeystrokes: 40000,
    ackSeconds: 10,
    memoryContenders: ['echo', 'ywss', 'hocuspocus', 'georelay'] as ContenderKind[], manyDocs: { docs: 1000, seconds: 20 },
    readers: [1, 4, 16, 64, 256], idle: { counts: [1000, 5000, 10_000], seconds: 5 }, storedDocs: [1000, 100_000],
    regions: { counts: [2, 3, 5, 8, 16], typingSeconds: 10, idleSeconds: 5 }, partitionSeconds: 600,
  },
}
/** Time to first sync: connects one at a time, bursts of connects at once, provider versions. */
const FIRST_SYNC = {
  quick: { sequential: 20, concurrent: 10, bursts: 1, versions: [4] as HocuspocusVersion[] },
  full: { sequential: 50, concurrent: 20, bursts: 3, versions: [4, 3] as HocuspocusVersion[] },
}
const HUMAN_INTERVAL_MS = 150
const fmt3 = (n: number): string => n.toFixed(3)
const WINDOW = 64

export const defaultOptions = (quick: boolean): BenchOptions => ({
  quick,
  seed: 1,
  workloads: [...WORKLOADS],
  contenders: quick ? ['ywss', 'hocuspocus', 'echo', 'georelay'] : ['ywss', 'hocuspocus', 'hocuspocus-sqlite', 'echo', 'georelay', 'georelay-memory'],
  docs: 4,
  readersPerDoc: 16,
  pacedRate: 500,
  delayMs: 40,
  memoryDocs: 1000,
  cpuProf: false,
  outDir: path.resolve('packages/bench/results'),
  log: line => process.stderr.write(`${line}\n`),
})

export const parseContenders = (list: string): ContenderKind[] => list.split(',').map(name => {
  if (!isContenderKind(name)) throw new Error(`unknown contender "${name}"`)
  return name
})

export const parseWorkloads = (list: string): Workload[] => list.split(',').map(name => {
  if (!(WORKLOADS as readonly string[]).includes(name)) throw new Error(`unknown workload "${name}" (one of ${WORKLOADS.join(', ')})`)
  return name as Workload
})

const profileFlags = (options: BenchOptions, name: string): string[] => options.cpuProf
  ? ['--cpu-prof', `--cpu-prof-dir=${path.join(options.outDir, 'profiles')}`, `--cpu-prof-name=${name}-${Date.now()}.cpuprofile`]
  : []

export const runBench = async (options: BenchOptions): Promise<{ report: BenchReport, markdownPath: string }> => {
  const { log } = options
  const size = SIZES[options.quick ? 'quick' : 'full']
  const started = performance.now()
  const fanOutCount = Math.max(size.pacedCount, size.saturatedCount)
  const trace: EditingTrace = options.trace === undefined
    ? syntheticTrace(Math.max(fanOutCount, size.fastUpdates, 20_000), options.seed)
    : loadTrace(options.trace)
  const report: BenchReport = {
    startedAt: new Date().toISOString(),
    durationSeconds: 0,
    machine: machineInfo(),
    mode: options.quick ? 'quick' : 'full',
    trace: options.trace === undefined ? `synthetic (seed ${options.seed})` : path.basename(options.trace),
    settings: { docs: options.docs, readersPerDoc: options.readersPerDoc, pacedRate: options.pacedRate, pacedCount: size.pacedCount, saturatedCount: size.saturatedCount, window: WINDOW, delayMs: options.delayMs, humanIntervalMs: HUMAN_INTERVAL_MS, profiled: options.cpuProf ? 'yes (CPU figures include the profiler)' : 'no' },
    fanOut: [],
    convergence: null,
    manyDocs: null,
    readersScale: null,
    idleConnections: null,
    storedDocs: null,
    regionScale: null,
    partitionCatchUp: null,
    memory: [],
    durableAck: null,
    durableAckPostgres: null,
    failover: null,
    regionNodes: null,
    firstSync: null,
  }
  const has = (w: Workload): boolean => options.workloads.includes(w)

  if (has('fanout')) {
    const keystrokes = keystrokeUpdates(trace, fanOutCount)
    for (const kind of options.contenders) {
      log(`fan-out: ${kind}…`)
      const nodeFlags = profileFlags(options, `${kind}-fanout`)
      const result = await runFanOut(kind, {
        docs: options.docs, readersPerDoc: options.readersPerDoc, keystrokes, pacedRate: options.pacedRate,
        pacedCount: size.pacedCount, saturatedCount: size.saturatedCount, window: WINDOW,
      }, { nodeFlags })
      if (result.error !== undefined) log(`  failed: ${result.error}`)
      else log(`  paced ${result.paced?.cpuPer10k.toFixed(3)} s/10k, saturated ${result.saturated?.deliveredPerSecond.toFixed(0)}/s`)
      report.fanOut.push(result)
    }
  }
  if (has('convergence')) {
    log('convergence and cross-region bytes: 3 regions…')
    report.convergence = await runConvergence({
      trace,
      delayMs: options.delayMs,
      fastUpdates: size.fastUpdates,
      humanUpdates: size.humanUpdates,
      humanIntervalMs: HUMAN_INTERVAL_MS,
    })
    if (report.convergence.error !== undefined) log(`  failed: ${report.convergence.error}`)
  }
  if (has('many-docs')) {
    const { docs, seconds } = size.manyDocs
    log(`cross-region bytes: ${docs} documents, one typist each every ${HUMAN_INTERVAL_MS} ms, 3 regions, ${seconds} s…`)
    try {
      report.manyDocs = await runManyDocs({ trace, docs, seconds, intervalMs: HUMAN_INTERVAL_MS, delayMs: options.delayMs, onProgress: line => log(`  ${line}`) })
      log(`  ${fmt3(report.manyDocs.bytesRatio)} cross-region bytes per client update byte`)
    } catch (err) {
      log(`  failed: ${(err as Error).message}`)
    }
  }
  if (has('readers')) {
    log(`cost as readers grow: one document, ${size.readers.join(' → ')} readers, paced at ${options.pacedRate}/s…`)
    report.readersScale = await runReadersScale({
      counts: size.readers,
      keystrokes: keystrokeUpdates(trace, size.pacedCount),
      pacedRate: options.pacedRate,
      pacedCount: size.pacedCount,
    })
    for (const run of report.readersScale) if (run.error !== undefined) log(`  ${run.readers} readers failed: ${run.error}`)
  }
  if (has('idle')) {
    log(`idle connections: ${size.idle.counts.join(' → ')}…`)
    report.idleConnections = await runIdleConnections(size.idle.counts, size.idle.seconds)
    for (const run of report.idleConnections) if (run.error !== undefined) log(`  ${run.connections} failed: ${run.error}`)
  }
  if (has('stored-docs')) {
    log(`a relay over a large store: ${size.storedDocs.join(' and ')} documents…`)
    report.storedDocs = await runStoredDocs(size.storedDocs, line => log(`  ${line}`))
    for (const run of report.storedDocs.runs) if (run.error !== undefined) log(`  ${run.docs} failed: ${run.error}`)
  }
  if (has('regions')) {
    const { counts, typingSeconds, idleSeconds } = size.regions
    log(`cost as regions grow: a full mesh of ${counts.join(' → ')} regions, in-process relays…`)
    try {
      report.regionScale = await runRegionScale({ trace, regionCounts: counts, typingSeconds, idleSeconds, onProgress: line => log(`  ${line}`) })
    } catch (err) {
      log(`  failed: ${(err as Error).message}`)
    }
  }
  if (has('partition')) {
    log(`catch-up after a ${size.partitionSeconds} s partition, 1,000 updates/s on both sides…`)
    try {
      report.partitionCatchUp = await runPartitionCatchUp({ trace, partitionSeconds: size.partitionSeconds, onProgress: line => log(`  ${line}`) })
    } catch (err) {
      log(`  failed: ${(err as Error).message}`)
    }
  }
  // The document of the memory and first-sync workloads: the trace's, or a synthetic one of a real size.
  const documentState = (): Uint8Array =>
    finalStateOf(options.trace === undefined ? syntheticTrace(size.memoryKeystrokes, options.seed) : trace)
  if (has('memory')) {
    const state = documentState()
    for (const kind of size.memoryContenders) {
      log(`memory: ${kind}, ${options.memoryDocs} documents of ${(state.length / 1024).toFixed(0)} KB…`)
      const result = await runMemory(kind, { docs: options.memoryDocs, state })
      if (result.error !== undefined) log(`  failed: ${result.error}`)
      report.memory.push(result)
    }
  }
  if (has('ack')) {
    log('durable ack at 1k updates/s…')
    report.durableAck = await runDurableAck({ trace, rate: 1000, seconds: size.ackSeconds }, { nodeFlags: profileFlags(options, 'georelay-ack') })
    log('durable ack at 1k updates/s on Postgres (a server of its own on loopback)…')
    try {
      const server = await startPostgres()
      try {
        const workload = { trace, rate: 1000, seconds: size.ackSeconds }
        report.durableAckPostgres = await runDurableAck(workload, { postgresUrl: server.url })
      } finally {
        await server.destroy()
      }
    } catch (err) {
      log(`  skipped: ${(err as Error).message}`)
    }
  }
  if (has('failover')) {
    log('failover: kill -9, then a silent cut, then kill -9 of a node of a region of two (Postgres and Redis on loopback)…')
    let servers: { postgres: PostgresServer, redis: RedisServer } | null = null
    try {
      servers = { postgres: await startPostgres(), redis: await startRedis() }
    } catch (err) {
      log(`  no region of nodes: ${(err as Error).message}`)
    }
    try {
      const nodes = servers === null ? undefined : { postgresUrl: servers.postgres.url, redisUrl: servers.redis.url }
      report.failover = await runFailover(10, nodes)
    } finally {
      await servers?.redis.destroy()
      await servers?.postgres.destroy()
    }
  }
  if (has('nodes')) {
    log('a region of 1, then 2 nodes on one Postgres and one Redis (servers of their own on loopback)…')
    try {
      const [postgres, redis] = [await startPostgres(), await startRedis()]
      try {
        report.regionNodes = await runRegionNodes({
          docs: options.docs,
          readersPerDoc: options.readersPerDoc,
          keystrokes: keystrokeUpdates(trace, fanOutCount),
          pacedRate: options.pacedRate,
          pacedCount: size.pacedCount,
          saturatedCount: size.saturatedCount,
          window: WINDOW,
          postgresUrl: postgres.url,
          redisUrl: redis.url,
        })
        for (const run of report.regionNodes.runs) {
          if (run.error !== undefined) log(`  ${run.nodes} node(s) failed: ${run.error}`)
          else log(`  ${run.nodes} node(s): saturated ${run.saturated?.deliveredPerSecond.toFixed(0)}/s, paced ${run.paced?.cpuPer10k.toFixed(3)} s/10k`)
        }
      } finally {
        await redis.destroy()
        await postgres.destroy()
      }
    } catch (err) {
      log(`  skipped: ${(err as Error).message}`)
    }
  }
  if (has('first-sync')) {
    const firstSync = FIRST_SYNC[options.quick ? 'quick' : 'full']
    const state = documentState()
    log(`first sync: Hocuspocus provider ${firstSync.versions.map(v => `${v}.x`).join(' and ')}, georelay /v1/hocuspocus vs @hocuspocus/server, ` +
      `an empty document and one of ${(state.length / 1024).toFixed(0)} KB…`)
    report.firstSync = await runFirstSync({ state, ...firstSync })
    if (report.firstSync.error !== undefined) log(`  failed: ${report.firstSync.error}`)
    for (const run of report.firstSync.runs) {
      if (run.error !== undefined) log(`  ${run.label}, ${run.case}, ${run.mode}, ${run.version}.x failed: ${run.error}`)
    }
    log(`\n${firstSyncTable(report.firstSync)}`)
  }
  report.durationSeconds = (performance.now() - started) / 1000
  const markdownPath = writeReport(report, options.outDir)
  // A run of workloads without goals (first-sync alone) has no goals table to print.
  const goals = goalRows(report).length > 0 ? `\n${goalTable(report)}\n` : ''
  log(`${goals}\nreport: ${markdownPath}`)
  return { report, markdownPath }
}
