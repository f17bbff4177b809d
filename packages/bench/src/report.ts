/**
 * The run's results as one JSON document, a markdown report (the performance goals of docs/architecture.md with each
 * figure's ratio to its goal, then the detail per workload), and SVG charts.
 */
import fs from 'node:fs'
import path from 'node:path'
import type { ContenderKind } from './contenders.js'
import type { MachineInfo } from './machine.js'
import { table } from './markdown-table.js'
import { barChart, distributionChart } from './svg-chart.js'
import type { ConvergenceResult } from './workloads/convergence.js'
import type { DurableAckResult } from './workloads/durable-ack.js'
import type { FailoverResult } from './workloads/failover.js'
import type { FanOutResult, PhaseResult } from './workloads/fan-out.js'
import {
  FIRST_SYNC_CASES, FIRST_SYNC_MODES, type FirstSyncResult, type FirstSyncRun, type SyncTimes,
} from './workloads/first-sync.js'
import type { ManyDocsResult } from './workloads/many-docs.js'
import type { MemoryResult } from './workloads/memory.js'
import type { IdleRun, ReadersRun } from './workloads/scale-on-one-node.js'
import type { StoredDocsResult } from './workloads/stored-docs.js'
import { type PartitionCatchUpResult, partitionCatchUpCharts, partitionCatchUpSection } from './workloads/partition-catch-up.js'
import { type RegionScaleResult, regionScaleCharts, regionScaleSection } from './workloads/region-scale.js'
import type { RegionNodesResult } from './workloads/region-nodes.js'

export interface BenchReport {
  startedAt: string
  durationSeconds: number
  machine: MachineInfo
  mode: 'quick' | 'full'
  trace: string
  settings: Record<string, number | string>
  fanOut: FanOutResult[]
  convergence: ConvergenceResult | null
  /** Many documents with a human-pace typist each (absent from reports written before it existed). */
  manyDocs?: ManyDocsResult | null
  /** How cost grows on one relay (absent from reports written before they existed). */
  readersScale?: ReadersRun[] | null
  idleConnections?: IdleRun[] | null
  storedDocs?: StoredDocsResult | null
  regionScale?: RegionScaleResult | null
  partitionCatchUp?: PartitionCatchUpResult | null
  memory: MemoryResult[]
  durableAck: DurableAckResult | null
  /** The same on the Postgres store (null where no PostgreSQL is installed). */
  durableAckPostgres: DurableAckResult | null
  failover: FailoverResult | null
  /** A region of one and of two nodes on Postgres and Redis (null when not run). */
  regionNodes: RegionNodesResult | null
  /** Hocuspocus providers' time to first sync (absent from reports written before it existed). */
  firstSync?: FirstSyncResult | null
}

export interface GoalRow {
  what: string
  measured: string
  goal: string
  /** measured ÷ goal, for goals of the form "at most": ≤ 1 is met. */
  ratio: number
  note?: string
}

/** The contender whose figures the goals are about. */
const GEORELAY: ContenderKind = 'georelay'
/** A phase whose load generator used more than this share of a core was limited by it. */
const LOAD_GEN_BOUND = 0.9

const fmt = (value: number, digits = 2): string => Number.isFinite(value) ? value.toFixed(digits) : 'n/a'
const mb = (bytes: number): string => Number.isFinite(bytes) && bytes > 0 ? `${(bytes / 2 ** 20).toFixed(0)} MB` : 'n/a'
const kOf = (n: number): string => Number.isFinite(n) ? `${(n / 1000).toFixed(1)}k` : 'n/a'

const fanOutOf = (report: BenchReport, kind: ContenderKind): FanOutResult | undefined =>
  report.fanOut.find(r => r.kind === kind && r.error === undefined)

export const loadGenBound = (phase: PhaseResult | null): boolean =>
  phase !== null && phase.loadGenCpuShare >= LOAD_GEN_BOUND

export const goalRows = (report: BenchReport): GoalRow[] => {
  const rows: GoalRow[] = []
  const geo = fanOutOf(report, GEORELAY)
  // The goals (docs/architecture.md, Performance goals): as fast as possible against
  // @y/websocket-server and Hocuspocus, paced against the echo.
  const cpuGoals: [ContenderKind, 'paced' | 'saturated', number, string][] = [
    ['ywss', 'saturated', 1 / 3, '≤ 1/3 ×'], ['hocuspocus', 'saturated', 0.8, '≤ 0.8 ×'], ['echo', 'paced', 1, '≤ 1.0 ×'],
  ]
  for (const [kind, phase, factor, words] of cpuGoals) {
    const other = fanOutOf(report, kind)
    const [ours, theirs] = [geo?.[phase], other?.[phase]]
    if (ours == null || theirs == null || other === undefined) continue
    const relative = ours.cpuPer10k / theirs.cpuPer10k
    const bound = loadGenBound(theirs) ? { note: `load generator bound for ${other.label}` } : {}
    rows.push({
      what: `fan-out CPU per delivered update vs ${other.label} (${phase === 'paced' ? 'paced' : 'as fast as possible'})`,
      measured: `${fmt(ours.cpuPer10k, 3)} vs ${fmt(theirs.cpuPer10k, 3)} s/10k = ${fmt(relative)}×`,
      goal: `${words}`,
      ratio: relative / factor,
      ...bound,
    })
  }
  const others = report.fanOut.filter(r => !isGeorelay(r.kind) && r.paced !== null && r.error === undefined)
  if (geo?.paced != null && others.length > 0) {
    const best = Math.min(...others.map(r => (r.paced as PhaseResult).latencyMs.p50))
    const added = geo.paced.latencyMs.p50 - best
    rows.push({
      what: 'fan-out p50 delivery latency (paced), over the best of the others',
      measured: `${fmt(geo.paced.latencyMs.p50, 2)} vs ${fmt(best, 2)} ms: +${fmt(added, 2)} ms`,
      goal: '≤ +1 ms',
      ratio: Math.max(0, added) / 1,
    })
  }
  // Like with like, as fast as possible: each store beside Hocuspocus keeping documents the same way or not at all.
  const pairs: [ContenderKind, ContenderKind][] = [['georelay-memory', 'hocuspocus'], [GEORELAY, 'hocuspocus-sqlite']]
  for (const [ours, theirs] of pairs) {
    const [a, b] = [fanOutOf(report, ours), fanOutOf(report, theirs)]
    const [x, y] = [a?.saturated, b?.saturated]
    if (a === undefined || b === undefined || x == null || y == null) continue
    const relative = x.cpuPer10k / y.cpuPer10k
    rows.push({
      what: `fan-out CPU per delivered update, ${a.label} vs ${b.label} (as fast as possible)`,
      measured: `${fmt(x.cpuPer10k, 3)} vs ${fmt(y.cpuPer10k, 3)} s/10k = ${fmt(relative)}×`,
      goal: '≤ 0.8 ×',
      ratio: relative / 0.8,
    })
  }
  if (geo?.saturated != null) {
    const others = report.fanOut.filter(r => r.kind !== GEORELAY && r.kind !== 'georelay-memory' && r.saturated !== null && r.error === undefined)
    const best = others.reduce<FanOutResult | undefined>(
      (b, r) => (r.saturated as PhaseResult).deliveredPerSecond > ((b?.saturated?.deliveredPerSecond) ?? 0) ? r : b,
      undefined,
    )
    if (best?.saturated != null) {
      const bound = [geo, ...others].filter(r => loadGenBound(r.saturated)).map(r => r.label)
      rows.push({
        what: 'fan-out throughput at saturation (best other ÷ georelay)',
        measured: `${kOf(geo.saturated.deliveredPerSecond)}/s vs ${best.label} ${kOf(best.saturated.deliveredPerSecond)}/s`,
        goal: 'ahead of all three (≤ 1)',
        ratio: best.saturated.deliveredPerSecond / geo.saturated.deliveredPerSecond,
        ...(bound.length > 0 ? { note: `load generator bound for ${bound.join(', ')}` } : {}),
      })
    }
  }
  const conv = report.convergence
  if (conv?.human != null) {
    const d = conv.human.delayMs
    rows.push({ what: `convergence p50, edit to visible in another region, minus ${d} ms delay (human pace)`, measured: `+${fmt(conv.human.latencyMinusDelayMs.p50, 1)} ms`, goal: '≤ +10 ms', ratio: conv.human.latencyMinusDelayMs.p50 / 10 })
    rows.push({ what: `convergence p99, minus ${d} ms delay (human pace)`, measured: `+${fmt(conv.human.latencyMinusDelayMs.p99, 1)} ms`, goal: '≤ +20 ms', ratio: conv.human.latencyMinusDelayMs.p99 / 20 })
  }
  if (conv?.fast != null) {
    rows.push({ what: 'cross-region bytes per client update byte, fast typing replay', measured: fmt(conv.fast.bytesRatio, 3), goal: '≤ 0.5', ratio: conv.fast.bytesRatio / 0.5 })
  }
  const many = report.manyDocs
  if (many != null) {
    rows.push({
      what: `cross-region bytes per client update byte, ${many.docs} documents, a typist each every ${many.intervalMs} ms`,
      measured: fmt(many.bytesRatio, 3),
      goal: '≤ 1.0',
      ratio: many.bytesRatio,
    })
  }
  const idle = report.idleConnections?.filter(r => r.error === undefined).at(-1)
  if (idle !== undefined) {
    rows.push({ what: `relay RSS with ${idle.connections} idle connections`, measured: mb(idle.rssBytes), goal: idle.connections >= 10_000 ? '≤ 1 GB' : '≤ 1 GB at 10,000', ratio: idle.rssBytes / 2 ** 30 * Math.max(1, 10_000 / idle.connections) })
  }
  const stored = report.storedDocs?.runs.filter(r => r.error === undefined) ?? []
  const [fewest, most] = [stored[0], stored.at(-1)]
  if (fewest !== undefined && most !== undefined && most !== fewest) {
    const grows = (what: string, of: (r: StoredDocsResult['runs'][number]) => number): GoalRow => ({
      what: `${what}, ${most.docs} stored documents vs ${fewest.docs}`,
      measured: `${fmt(of(most), 1)} vs ${fmt(of(fewest), 1)} ms`,
      goal: 'independent of the count (≤ 1.5×, for noise)',
      ratio: of(most) / of(fewest) / 1.5,
    })
    rows.push(grows('relay start', r => r.startMs), grows('peer link up', r => r.linkUpMs), grows('/v1/regions p50', r => r.regionsMs.p50))
  }
  const geoMem = report.memory.find(m => m.kind === GEORELAY && m.error === undefined)
  const ywssMem = report.memory.find(m => m.kind === 'ywss' && m.error === undefined)
  if (geoMem !== undefined && ywssMem !== undefined) {
    const relative = geoMem.rssBytes / ywssMem.rssBytes
    rows.push({
      what: `relay RSS, ${geoMem.docs} open documents of ${(geoMem.docBytes / 1024).toFixed(0)} KB, vs @y/websocket-server`,
      measured: `${mb(geoMem.rssBytes)} vs ${mb(ywssMem.rssBytes)} = ${fmt(relative)}×`,
      goal: '≤ 0.25 ×',
      ratio: relative / 0.25,
    })
  }
  const ack = report.durableAck
  if (ack !== null && ack.error === undefined) {
    rows.push({
      what: `durable local ack p99 at ${fmt(ack.achievedRate, 0)} updates/s`,
      measured: `${fmt(ack.latencyMs.p99, 1)} ms (p50 ${fmt(ack.latencyMs.p50, 1)})`,
      goal: '≤ 5 ms',
      ratio: ack.latencyMs.p99 / 5,
      note: `fsync alone here: p99 ${fmt(ack.fsyncMs.p99, 1)} ms`,
    })
  }
  const pgAck = report.durableAckPostgres
  if (pgAck !== null && pgAck.error === undefined) {
    rows.push({
      what: `durable local ack p99 on Postgres at ${fmt(pgAck.achievedRate, 0)} updates/s`,
      measured: `${fmt(pgAck.latencyMs.p99, 1)} ms (p50 ${fmt(pgAck.latencyMs.p50, 1)})`,
      goal: '≤ 10 ms',
      ratio: pgAck.latencyMs.p99 / 10,
      note: 'Postgres on loopback, same disk',
    })
  }
  const fo = report.failover
  if (fo !== null) {
    if (Number.isFinite(fo.crashMs)) rows.push({ what: 'failover after kill -9: next acknowledged write', measured: `${fmt(fo.crashMs, 0)} ms`, goal: '≤ 1000 ms', ratio: fo.crashMs / 1000 })
    if (Number.isFinite(fo.silentCutMs)) rows.push({ what: 'failover after a silent cut: next acknowledged write', measured: `${fmt(fo.silentCutMs, 0)} ms`, goal: '≤ 5000 ms', ratio: fo.silentCutMs / 5000 })
    // Reports written before the node case existed have no such field.
    const nodeMs = fo.nodeCrashMs ?? NaN
    if (Number.isFinite(nodeMs)) rows.push({ what: 'failover to another node of the region after kill -9: next acknowledged write', measured: `${fmt(nodeMs, 0)} ms`, goal: '≤ 500 ms', ratio: nodeMs / 500 })
  }
  const [one, two] = [1, 2].map(n => report.regionNodes?.runs.find(r => r.nodes === n && r.error === undefined))
  if (one?.saturated != null && two?.saturated != null) {
    const gain = two.saturated.deliveredPerSecond / one.saturated.deliveredPerSecond
    rows.push({
      what: 'a region of 2 nodes vs 1: delivered updates per second at saturation',
      measured: `${kOf(two.saturated.deliveredPerSecond)}/s vs ${kOf(one.saturated.deliveredPerSecond)}/s = ${fmt(gain)}×`,
      goal: '≥ 1.7 ×',
      ratio: 1.7 / gain,
      note: `${report.machine.nproc} cores for both nodes, Postgres, Redis and the load generator`,
    })
  }
  if (two?.sameNodeMs != null && two.otherNodeMs != null) {
    const extra = two.otherNodeMs.p50 - two.sameNodeMs.p50
    rows.push({
      what: 'cross-node delivery p50, minus same-node (paced)',
      measured: `+${fmt(extra, 2)} ms (p99 ${fmt(two.otherNodeMs.p99, 1)} vs ${fmt(two.sameNodeMs.p99, 1)} ms)`,
      goal: '≤ +2 ms',
      ratio: Math.max(extra, 0) / 2,
    })
  }
  return rows
}

export const goalTable = (report: BenchReport): string =>
  table(['what', 'measured', 'goal', 'ratio to goal', 'met'],
    goalRows(report).map(r => [r.what, r.measured + (r.note === undefined ? '' : ` (${r.note})`), r.goal, fmt(r.ratio), r.ratio <= 1 ? 'yes' : '**no**']))

const phaseCells = (p: PhaseResult | null): string[] => p === null
  ? ['n/a', 'n/a', 'n/a', 'n/a']
  : [kOf(p.deliveredPerSecond) + '/s', fmt(p.cpuPer10k, 3), `${fmt(p.latencyMs.p50, 1)} / ${fmt(p.latencyMs.p99, 1)}`, `${fmt(p.serverCpuShare)} / ${fmt(p.loadGenCpuShare)}${loadGenBound(p) ? ' (bound)' : ''}`]

const timesCell = (run: FirstSyncRun | undefined): string => {
  if (run === undefined) return 'n/a'
  if (run.error !== undefined) return 'failed'
  const t: SyncTimes = run.ms
  return `${fmt(t.p50)} / ${fmt(t.p95)} / ${fmt(t.p99)}`
}

const ratioCell = (geo: FirstSyncRun | undefined, hp: FirstSyncRun | undefined): string => {
  if (geo === undefined || hp === undefined || geo.error !== undefined || hp.error !== undefined) return 'n/a'
  return (['p50', 'p95', 'p99'] as const).map(p => fmt(geo.ms[p] / hp.ms[p])).join(' / ')
}

/** One row per document, way of connecting and provider version: georelay, Hocuspocus, and their ratio. */
export const firstSyncTable = (result: FirstSyncResult): string => {
  const rows: string[][] = []
  for (const docCase of FIRST_SYNC_CASES) {
    for (const mode of FIRST_SYNC_MODES) {
      for (const version of result.versions) {
        const of = (server: FirstSyncRun['server']): FirstSyncRun | undefined =>
          result.runs.find(r => r.case === docCase && r.mode === mode && r.version === version && r.server === server)
        const [geo, hp] = [of('georelay'), of('hocuspocus')]
        if (geo === undefined && hp === undefined) continue
        const bound = [geo, hp].some(r => r !== undefined && r.loadGenCpuShare >= LOAD_GEN_BOUND)
        rows.push([
          docCase === 'empty' ? 'empty, a fresh name each' : `preloaded, ${(result.docBytes / 1024).toFixed(0)} KB, held open`,
          mode === 'sequential' ? `${result.sequential} one at a time` : `${result.bursts} × ${result.concurrent} at once`,
          `${version}.x`,
          timesCell(geo),
          timesCell(hp),
          ratioCell(geo, hp),
          `${fmt(geo?.serverCpuMsPerSync ?? NaN)} / ${fmt(hp?.serverCpuMsPerSync ?? NaN)}`,
          `${fmt(geo?.loadGenCpuShare ?? NaN)} / ${fmt(hp?.loadGenCpuShare ?? NaN)}${bound ? ' (bound)' : ''}`,
        ])
      }
    }
  }
  return table(['document', 'connects', 'provider', 'georelay p50 / p95 / p99 ms', '@hocuspocus/server p50 / p95 / p99 ms',
    'georelay ÷ Hocuspocus p50 / p95 / p99', 'server CPU ms per sync (georelay / Hocuspocus)',
    'client CPU share (georelay / Hocuspocus)'], rows)
}

const firstSyncFailures = (result: FirstSyncResult): string[] => [
  ...(result.error === undefined ? [] : [`- failed: ${result.error}`]),
  ...result.runs.filter(r => r.error !== undefined)
    .map(r => `- ${r.label}, ${r.case}, ${r.mode}, ${r.version}.x failed: ${r.error}`),
]

export const markdownReport = (report: BenchReport): string => {
  const m = report.machine
  const s = report.settings
  const parts: string[] = []
  parts.push(`# georelay benchmark, ${report.startedAt.slice(0, 16).replace('T', ' ')} UTC (${report.mode})`)
  parts.push(`Machine: ${m.nproc} cores, ${m.cpuModel}, ${m.totalMemoryGb} GB, Node ${m.node}, ${m.platform}; load average ${m.loadAverage} at start. ` +
    `Run took ${fmt(report.durationSeconds / 60, 1)} min. Trace: ${report.trace}.`)
  parts.push('## Goals\n\n' + goalTable(report))
  if (report.fanOut.length > 0) {
    parts.push(`## Fan-out\n\n${s['docs']} documents × (1 writer + ${s['readersPerDoc']} readers). Paced: ${s['pacedRate']} updates/s per writer, ${s['pacedCount']} keystrokes; ` +
      `saturated: ${s['saturatedCount']} keystrokes, ${s['window']} in flight per writer. CPU in seconds per 10,000 delivered updates; CPU share = fraction of one core (server / load generator).\n\n` +
      table(['server', 'paced delivered', 'paced CPU s/10k', 'paced latency p50 / p99 ms', 'paced CPU share', 'saturated delivered', 'saturated CPU s/10k', 'saturated latency p50 / p99 ms', 'saturated CPU share', 'frames per delivery (sat.)', 'peak RSS'],
        report.fanOut.map(r => [r.label, ...phaseCells(r.paced), ...phaseCells(r.saturated),
          r.saturated === null ? 'n/a' : fmt(r.saturated.framesReceived / r.saturated.delivered, 3), mb(r.peakRssBytes)])))
    const failed = report.fanOut.filter(r => r.error !== undefined)
    if (failed.length > 0) parts.push(failed.map(r => `- ${r.label} failed: ${r.error}`).join('\n'))
  }
  const conv = report.convergence
  if (conv !== null) {
    const rows = [conv.fast, conv.human].filter(x => x !== null).map(x => [
      x.intervalMs === 0 ? 'as fast as possible' : `every ${x.intervalMs} ms`, String(x.updates),
      `+${fmt(x.latencyMinusDelayMs.p50, 1)} / +${fmt(x.latencyMinusDelayMs.p99, 1)} / +${fmt(x.latencyMinusDelayMs.max, 1)}`,
      `${x.crossRegionBytes} / ${x.clientUpdateBytes}`, fmt(x.bytesRatio, 3)])
    parts.push(`## Convergence and cross-region bytes\n\nThree regions, ${conv.fast?.delayMs ?? conv.human?.delayMs ?? '?'} ms one-way delay between each pair (WAN simulator, in-process relays), a writer in one region, a reader in each other.\n\n` +
      table(['typing pace', 'keystrokes', 'latency − delay p50 / p99 / max ms', 'cross-region bytes / client update bytes', 'ratio'], rows) +
      (conv.error === undefined ? '' : `\n\nFailed: ${conv.error}`))
  }
  const many = report.manyDocs
  if (many != null) {
    const kinds = Object.entries(many.byKind).sort((a, b) => b[1] - a[1])
    parts.push(`## Cross-region bytes over many documents\n\nThree regions, ${many.docs} documents in region a, one typist each ` +
      `(a keystroke every ${many.intervalMs} ms, phases spread; each continues the trace from its own point), ` +
      `${fmt(many.seconds, 1)} s, ${many.keystrokes} keystrokes, ${many.clientUpdateBytes} bytes of client updates; ` +
      `the mesh carried ${many.crossRegionBytes} bytes = ${fmt(many.bytesRatio, 3)} per client byte.\n\n` +
      table(['direction', 'MB per hour at this rate'], Object.entries(many.perPairPerHour).map(([pair, b]) => [pair, fmt(b / 2 ** 20, 1)])) +
      '\n\n' + table(['what the mesh carried', 'bytes', 'share'], kinds.map(([kind, b]) => [kind, String(b), `${fmt(100 * b / many.crossRegionBytes, 1)} %`])))
  }
  const readers = report.readersScale
  if (readers != null && readers.length > 0) {
    parts.push(`## Cost as readers grow\n\nOne georelay (SQLite) process, one document, its writer paced at ${s['pacedRate']} updates/s; each row a fresh document.\n\n` +
      table(['readers', 'paced delivered', 'paced CPU s/10k', 'paced latency p50 / p99 ms', 'paced CPU share'],
        readers.map(r => [String(r.readers), ...(r.paced === null ? [`failed: ${r.error ?? ''}`, '', '', ''] : phaseCells(r.paced))])))
  }
  const idleRuns = report.idleConnections
  if (idleRuns != null && idleRuns.length > 0) {
    parts.push('## Idle connections\n\nOne georelay (SQLite) process; y-websocket connections, ten per document, opened in steps and left idle.\n\n' +
      table(['connections', 'RSS', 'CPU share while idle', 'time to open this step'],
        idleRuns.map(r => [String(r.connections), r.error === undefined ? mb(r.rssBytes) : `failed: ${r.error}`, fmt(r.idleCpuShare, 3), `${fmt(r.openSeconds, 1)} s`])))
  }
  const storedRuns = report.storedDocs?.runs
  if (storedRuns != null && storedRuns.length > 0) {
    parts.push('## A relay over a large store\n\nA SQLite store filled beforehand (a tenth of the documents in a namespace kept to this region), then a georelay process started on it and an empty region joining it.\n\n' +
      table(['stored documents', 'start (spawn to listening)', '/v1/regions p50 / p99', 'joining region: link up', 'first entry there'],
        storedRuns.map(r => r.error !== undefined ? [String(r.docs), `failed: ${r.error}`, '', '', ''] : [String(r.docs), `${fmt(r.startMs, 0)} ms`, `${fmt(r.regionsMs.p50, 2)} / ${fmt(r.regionsMs.p99, 2)} ms`, `${fmt(r.linkUpMs, 0)} ms`, `${fmt(r.firstEntryMs, 0)} ms`])))
  }
  if (report.regionScale != null) parts.push(regionScaleSection(report.regionScale))
  if (report.partitionCatchUp != null) parts.push(partitionCatchUpSection(report.partitionCatchUp))
  if (report.memory.length > 0) {
    parts.push(`## Memory\n\n` + table(['server', 'documents', 'document size', 'RSS before', 'RSS with all open', 'peak RSS', 'load time'],
      report.memory.map(r => [r.label, String(r.docs), `${(r.docBytes / 1024).toFixed(1)} KB`, mb(r.baseRssBytes), r.error === undefined ? mb(r.rssBytes) : `failed: ${r.error}`, mb(r.peakRssBytes), `${fmt(r.loadSeconds, 1)} s`])))
  }
  const acks = [report.durableAck, report.durableAckPostgres].filter((a): a is DurableAckResult => a !== null)
  if (acks.length > 0) {
    parts.push('## Durable ack\n\n' + acks.map(ack =>
      `SDK session → relay process with the ${ack.store === 'postgres' ? 'Postgres store (PostgreSQL on loopback)' : 'SQLite store'}, ack level local: ${ack.writes} writes at ${fmt(ack.achievedRate, 0)}/s; ` +
      `latency p50 ${fmt(ack.latencyMs.p50, 2)} ms, p90 ${fmt(ack.latencyMs.p90, 2)} ms, p99 ${fmt(ack.latencyMs.p99, 2)} ms, max ${fmt(ack.latencyMs.max, 1)} ms. ` +
      `This disk's floor, one 100-byte write + fsync alone: p50 ${fmt(ack.fsyncMs.p50, 2)} ms, p99 ${fmt(ack.fsyncMs.p99, 2)} ms, max ${fmt(ack.fsyncMs.max, 1)} ms.` +
      (ack.error === undefined ? '' : ` Failed: ${ack.error}`)).join('\n\n'))
  }
  const nodes = report.regionNodes
  // Reports written before this workload existed have no field at all.
  if (nodes != null) {
    parts.push(`## A region of several nodes\n\nThe fan-out workload on one region of 1 and of 2 georelay nodes (processes) sharing one PostgreSQL and one Redis on loopback: every writer on node 1, each document's readers split evenly over the nodes. CPU counts every node.\n\n` +
      table(['nodes', 'paced delivered', 'paced CPU s/10k', 'paced latency p50 / p99 ms', 'paced CPU share', 'saturated delivered', 'saturated CPU s/10k', 'saturated latency p50 / p99 ms', 'saturated CPU share', 'paced p50 / p99 same node', 'paced p50 / p99 other node'],
        nodes.runs.map(r => [String(r.nodes), ...phaseCells(r.paced), ...phaseCells(r.saturated),
          r.sameNodeMs === null ? 'n/a' : `${fmt(r.sameNodeMs.p50, 1)} / ${fmt(r.sameNodeMs.p99, 1)}`,
          r.otherNodeMs === null ? 'n/a' : `${fmt(r.otherNodeMs.p50, 1)} / ${fmt(r.otherNodeMs.p99, 1)}`])))
    for (const r of nodes.runs) if (r.error !== undefined) parts.push(`${r.nodes} node(s) failed: ${r.error}`)
  }
  const first = report.firstSync
  if (first != null) {
    parts.push(`## Time to first sync, Hocuspocus provider\n\nAn unchanged \`@hocuspocus/provider\` (${first.versions.map(v => `${v}.x`).join(', ')}) in the bench's process, ` +
      `a socket of its own per sample: milliseconds from \`new HocuspocusProvider(...)\` to its \`synced\` event, against ${first.labels.georelay} and ${first.labels.hocuspocus} ` +
      `(no extensions), both child processes of this run, taking turns. Empty: a fresh document name per sample. Preloaded: the trace's final state (${first.textLength} characters), ` +
      `written once through a provider that stays connected, so both servers answer from memory (Hocuspocus without persistence keeps a document only while a connection holds it); ` +
      `every sample checks it received all of it. ${first.warmup} unmeasured connects per server and version first. Server CPU per sync: ` +
      `from /proc (10 ms ticks) over that server's rounds, closing sockets included; client CPU share: the fraction of one core the providers' process used (≥ 0.9: it, not the server, was the limit).\n\n` +
      firstSyncTable(first) + (firstSyncFailures(first).length === 0 ? '' : `\n\n${firstSyncFailures(first).join('\n')}`))
  }
  const fo = report.failover
  if (fo !== null) {
    parts.push(`## Failover\n\nTwo regions, an SDK client with default timing writing every 10 ms at ack level local: after kill -9 of its relay, the next write was acknowledged through the other region in ${fmt(fo.crashMs, 0)} ms; ` +
      `after a silent cut of its link, in ${fmt(fo.silentCutMs, 0)} ms.` +
      (Number.isFinite(fo.nodeCrashMs ?? NaN) ? ` A region of two nodes on one Postgres and Redis, the client given both URLs: after kill -9 of the node in use, the next write was acknowledged by the other node in ${fmt(fo.nodeCrashMs, 0)} ms.` : '') +
      (fo.error === undefined ? '' : ` Failed: ${fo.error}`))
  }
  return parts.join('\n\n') + '\n'
}

const isGeorelay = (kind: ContenderKind): boolean => kind === 'georelay' || kind === 'georelay-memory'

export const charts = (report: BenchReport): Record<string, string> => {
  const out: Record<string, string> = {}
  const withPaced = report.fanOut.filter(r => r.paced !== null)
  if (withPaced.length > 0) {
    out['fanout-latency.svg'] = distributionChart({
      title: `Fan-out latency, paced (${report.settings['pacedRate']} updates/s per writer)`,
      unit: 'ms from send to delivery',
      series: withPaced.map(r => ({
        label: r.label,
        quantiles: (r.paced as PhaseResult).latencyQuantiles,
        highlight: r.kind === GEORELAY,
      })),
    })
    out['fanout-cpu.svg'] = barChart({
      title: 'Server CPU per 10,000 delivered updates (paced; lower is better)',
      unit: 's',
      bars: withPaced.map(r => ({
        label: r.label,
        value: (r.paced as PhaseResult).cpuPer10k,
        highlight: isGeorelay(r.kind),
      })),
    })
  }
  const withSat = report.fanOut.filter(r => r.saturated !== null)
  if (withSat.length > 0) {
    out['fanout-throughput.svg'] = barChart({
      title: 'Delivered updates per second at saturation (higher is better)',
      unit: '/s',
      bars: withSat.map(r => ({ label: r.label, value: (r.saturated as PhaseResult).deliveredPerSecond, highlight: isGeorelay(r.kind), ...(loadGenBound(r.saturated) ? { note: 'load generator bound' } : {}) })),
    })
  }
  const readersRuns = report.readersScale?.filter(r => r.paced !== null) ?? []
  if (readersRuns.length > 0) {
    out['readers-cpu.svg'] = barChart({
      title: 'Relay CPU per 10,000 delivered updates as readers per document grow (paced)',
      unit: 's',
      bars: readersRuns.map(r => ({ label: `${r.readers} readers`, value: (r.paced as PhaseResult).cpuPer10k, highlight: true })),
    })
  }
  const idleOk = report.idleConnections?.filter(r => r.error === undefined) ?? []
  if (idleOk.length > 0) {
    out['idle-connections.svg'] = barChart({
      title: 'Relay RSS with idle connections (lower is better)',
      unit: 'MB',
      bars: idleOk.map(r => ({ label: `${r.connections} connections`, value: r.rssBytes / 2 ** 20, highlight: true })),
      goal: { value: 1024, label: 'goal: 1 GB at 10,000' },
    })
  }
  const storedOk = report.storedDocs?.runs.filter(r => r.error === undefined) ?? []
  if (storedOk.length > 0) {
    out['stored-docs.svg'] = barChart({
      title: 'Start and link-up over a large store (flat is the goal)',
      unit: 'ms',
      bars: storedOk.flatMap(r => [
        { label: `start, ${r.docs} docs`, value: r.startMs, highlight: true },
        { label: `link up, ${r.docs} docs`, value: r.linkUpMs },
      ]),
    })
  }
  if (report.regionScale != null) Object.assign(out, regionScaleCharts(report.regionScale))
  if (report.partitionCatchUp != null) Object.assign(out, partitionCatchUpCharts(report.partitionCatchUp))
  const mem = report.memory.filter(r => r.error === undefined)
  if (mem.length > 0) {
    const ywss = mem.find(r => r.kind === 'ywss')
    out['memory.svg'] = barChart({
      title: `RSS with ${mem[0]?.docs ?? 0} open documents (lower is better)`,
      unit: 'MB',
      bars: mem.map(r => ({ label: r.label, value: r.rssBytes / 2 ** 20, highlight: isGeorelay(r.kind) })),
      ...(ywss === undefined ? {} : { goal: { value: ywss.rssBytes / 2 ** 20 / 4, label: 'goal: ¼ of @y/websocket-server' } }),
    })
  }
  const ackSeries = [report.durableAck, report.durableAckPostgres]
    .filter((a): a is DurableAckResult => a !== null && a.latencyQuantiles.length > 0)
    .map(a => ({ label: `georelay (${a.store})`, quantiles: a.latencyQuantiles, highlight: a.store === 'sqlite' }))
  if (ackSeries.length > 0) {
    out['ack-latency.svg'] = distributionChart({ title: 'Durable local ack latency (goal p99 ≤ 5 ms on SQLite, ≤ 10 ms on Postgres)', unit: 'ms from edit to ack', series: ackSeries })
  }
  return out
}

/** Writes results/<stamp>.json, latest.json, latest.md and the charts; returns the markdown path. */
export const writeReport = (report: BenchReport, dir: string): string => {
  fs.mkdirSync(dir, { recursive: true })
  const stamp = report.startedAt.replace(/[:.]/g, '-')
  const json = JSON.stringify(report, null, 2)
  fs.writeFileSync(path.join(dir, `bench-${stamp}.json`), json)
  fs.writeFileSync(path.join(dir, 'latest.json'), json)
  const markdown = markdownReport(report)
  fs.writeFileSync(path.join(dir, `bench-${stamp}.md`), markdown)
  fs.writeFileSync(path.join(dir, 'latest.md'), markdown)
  for (const [name, svg] of Object.entries(charts(report))) fs.writeFileSync(path.join(dir, name), svg)
  return path.join(dir, 'latest.md')
}
