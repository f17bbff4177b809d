/**
 * How the mesh's cost grows with the number of regions: a full mesh of N in-process relays
 * behind the WAN simulator, the same one-way delay between every pair. Per N, the mesh first
 * idles with no client at all (only pings and link state cross), then one writer in r0 types a
 * trace at a human pace while a reader in every other region watches. Reported per N: edit to
 * visible minus the delay, cross-region bytes per client update byte and by message kind, idle
 * bytes and messages per second, CPU, and the peer sockets each relay holds.
 */
import os from 'node:os'
import { monitorEventLoopDelay, performance } from 'node:perf_hooks'
import * as Y from 'yjs'
import {
  type EditingTrace, type MeshBytes, type MeshTally, TestCluster, type WanSimulator, connectProvider, destroyProvider,
  directionTally, meshBytesBetween, on, waitSynced, waitUntil,
} from '@georelay/testkit'
import type { Relay } from '@georelay/relay'
import { table } from '../markdown-table.js'
import { distribution, quantiles } from '../stats.js'
import { barChart, distributionChart } from '../svg-chart.js'
import { applyPatch } from '../trace-updates.js'

export interface RegionScaleOptions {
  trace: EditingTrace
  /** Mesh sizes, run one after the other (default 2, 3, 5, 8, 16). */
  regionCounts?: number[]
  /** One-way delay between every pair of regions (default 20 ms). */
  delayMs?: number
  /** Typing per mesh size (default 10 s). */
  typingSeconds?: number
  /** Pause between keystrokes (default 150 ms, a human pace). */
  intervalMs?: number
  /** The idle window per mesh size (default 5 s: five heartbeats). */
  idleSeconds?: number
  /**
   * Peer-link compression (default true, the relay's default). In one process every relay shares
   * ws's zlib queue (10 at a time) and libuv's 4 threads, which a real relay has to itself.
   */
  compress?: boolean
  onProgress?: (line: string) => void
}

export interface RegionScaleRun {
  regions: number
  keystrokes: number
  /** Edit in r0 to visible in each other region, minus the delay, over every reader. */
  latencyMinusDelayMs: { count: number, p50: number, p99: number, max: number }
  /** The same at stats.QUANTILE_POINTS, for a distribution chart. */
  latencyQuantiles: number[]
  clientUpdateBytes: number
  /** Everything the WAN carried from the first keystroke until r0's peers acknowledged the last. */
  crossRegionBytes: number
  bytesRatio: number
  /** Of those, the bytes of batches (the updates themselves) per client update byte. */
  batchBytesRatio: number
  byKind: MeshBytes
  idleSeconds: number
  idleBytesPerSecond: number
  /** Idle wire bytes per second by message kind (link-state, ping, pong…). */
  idleBytesPerSecondByKind: MeshBytes
  /** Idle messages per second by kind, mesh-wide: with the bytes, each message's size. */
  idleMessagesPerSecondByKind: Record<string, number>
  /**
   * CPU seconds per second of this whole process (relays, WAN simulator, providers)
   * divided by N: an in-process upper bound of a region's share, not one relay's own.
   */
  cpuPerRegionTyping: number
  cpuPerRegionIdle: number
  /** Peer sockets of each relay, counted from its own links (up outbound + open inbound): min and max over relays. */
  peerSocketsPerRelay: { min: number, max: number }
  /** Proxied peer connections the WAN simulator holds, mesh-wide. */
  wanConnections: number
  /** Peer connections opened after the mesh was up: links dropped and dialled again (0 when the mesh held). */
  reconnects: number
  /**
   * The process's event-loop delay while typing: every relay, proxy and provider shares one
   * loop, so a stall here is a stall of every region at once.
   */
  eventLoopDelayMs: { p99: number, max: number }
  /** This machine's 1-minute load average when the run ended. */
  loadAverage: number
  error?: string
}

export interface RegionScaleResult {
  delayMs: number
  intervalMs: number
  heartbeatMs: number
  /** Whether peer links were deflated (the relay's default). */
  compress: boolean
  runs: RegionScaleRun[]
}

/** Production timing, as measureMesh uses: TEST_REPLICATION's quick heartbeats would inflate every figure. */
const REPLICATION = { batchWindowMs: 5, heartbeatMs: 1000, linkTimeoutMs: 3000 }
const DEFAULTS = {
  regionCounts: [2, 3, 5, 8, 16], delayMs: 20, typingSeconds: 10, intervalMs: 150, idleSeconds: 5, compress: true,
}
const DOC = 'scale/doc'

const regionNames = (n: number): string[] => Array.from({ length: n }, (_, i) => `r${i}`)

const sleep = (ms: number): Promise<void> => new Promise(resolve => setTimeout(resolve, ms))

const cpuSecondsSince = (start: NodeJS.CpuUsage): number => {
  const used = process.cpuUsage(start)
  return (used.user + used.system) / 1e6
}

const wanBytesSent = (cluster: TestCluster): number => cluster.wan.stats().reduce((n, s) => n + s.bytesSent, 0)

/** The sockets a relay's own state says it holds to its peers: its dialled links that are up, and theirs to it. */
const peerSockets = (relay: Relay): number =>
  relay.peers().reduce((n, p) => n + (p.state === 'up' ? 1 : 0) + (p.inbound ? 1 : 0), 0)

const meshUp = (cluster: TestCluster, regions: string[]): Promise<unknown> =>
  waitUntil(regions.map(r => on(cluster.relay(r), 'peers')),
    () => regions.every(r => cluster.relay(r).peers().every(p => p.state === 'up' && p.inbound)),
    { what: `a full mesh of ${regions.length} regions to link up`, timeoutMs: 60_000 })

/** How far each connection's capture reached at a moment: direction "from to" → bytes per connection. */
export type CaptureMark = Map<string, number[]>

const directions = (regions: string[]): [string, string][] =>
  regions.flatMap(from => regions.filter(to => to !== from).map(to => [from, to] as [string, string]))

/**
 * Only lengths, which is cheap: decoding the capture inflates every compressed message, and
 * doing that while the relays run stalls their event loop past the link timeout at 16 regions.
 * Decode with `tallyBetween` once they are gone (the capture outlives the simulator's close).
 */
export const markCapture = (wan: WanSimulator, regions: string[]): CaptureMark =>
  new Map(directions(regions).map(([from, to]) =>
    [`${from} ${to}`, wan.captureByConnection(from, to).map(c => c.length)]))

export type Tally = MeshTally

/** Bytes and messages by kind in every connection's capture up to `mark`. */
const tallyUpTo = (wan: WanSimulator, regions: string[], mark: CaptureMark): Tally => {
  const tally: Tally = { bytes: {}, messages: {} }
  for (const [from, to] of directions(regions)) {
    const part = directionTally(wan, from, to, mark.get(`${from} ${to}`) ?? [])
    for (const [kind, n] of Object.entries(part.bytes)) tally.bytes[kind] = (tally.bytes[kind] ?? 0) + n
    for (const [kind, n] of Object.entries(part.messages)) tally.messages[kind] = (tally.messages[kind] ?? 0) + n
  }
  return tally
}

/** Wire bytes and messages by kind that crossed between two marks of the same capture. */
export const tallyBetween = (wan: WanSimulator, regions: string[], from: CaptureMark, to: CaptureMark): Tally => {
  const [before, after] = [tallyUpTo(wan, regions, from), tallyUpTo(wan, regions, to)]
  return {
    bytes: meshBytesBetween(before.bytes, after.bytes),
    messages: meshBytesBetween(before.messages, after.messages),
  }
}

/** What a timed-out wait is told: how far each reader got, and the links as the relays see them. */
const meshState = (cluster: TestCluster, regions: string[], seenAt: number[][], count: number): string => {
  const seen = seenAt.map((s, r) => `r${r + 1} ${s.length}/${count}`).join(', ')
  const peers = regions.flatMap(r => cluster.relay(r).peers())
  const down = peers.filter(p => p.state !== 'up' || !p.inbound).length
  const pending = cluster.relay('r0').peers().map(p => `${p.region}:${p.pendingUpdates}`).join(' ')
  return `seen ${seen}; ${down} of ${peers.length} peer links not up both ways; r0 pending ${pending}`
}

interface Typing {
  keystrokes: number
  latencies: number[]
  clientBytes: number
}

/**
 * One writer in r0 types at `intervalMs`, keystroke i due at start + i × interval; a reader in
 * every other region knows it has keystroke i once its state vector holds the writer's clock
 * right after it (as testkit's measureMesh counts).
 */
const typeAndWatch = async (
  cluster: TestCluster, regions: string[], trace: EditingTrace, count: number, intervalMs: number, delayMs: number,
): Promise<Typing> => {
  const writer = connectProvider(cluster.url('r0'), DOC)
  const readers = regions.slice(1).map(r => connectProvider(cluster.url(r), DOC))
  try {
    await Promise.all([writer, ...readers].map(p => waitSynced(p, 30_000)))
    const writerId = writer.doc.clientID
    const clockAfter: number[] = []
    const sentAt: number[] = []
    const seenAt: number[][] = readers.map(() => [])
    readers.forEach((reader, r) => {
      reader.doc.on('update', () => {
        const clock = Y.getState(reader.doc.store, writerId)
        const seen = seenAt[r] as number[]
        const now = performance.now()
        while (seen.length < clockAfter.length && (clockAfter[seen.length] as number) <= clock) seen.push(now)
      })
    })
    let clientBytes = 0
    writer.doc.on('update', (update: Uint8Array) => { clientBytes += update.length })
    const text = writer.doc.getText('t')
    const patches = trace.patches.slice(0, count)
    const start = performance.now()
    for (const [i, patch] of patches.entries()) {
      const wait = start + i * intervalMs - performance.now()
      if (wait > 0) await sleep(wait)
      sentAt[i] = performance.now()
      // A pure deletion adds no clock: counted as seen at once, and left out of the latencies.
      clockAfter[i] = patch[2].length === 0 ? -1 : Y.getState(writer.doc.store, writerId) + patch[2].length
      applyPatch(text, patch)
    }
    await Promise.all(readers.map((reader, r) => waitUntil([on(reader.doc, 'update')],
      () => (seenAt[r] as number[]).length >= patches.length,
      { what: `region r${r + 1} to see every keystroke`, timeoutMs: 60_000 })
      .catch((err: Error) => {
        throw new Error(`${err.message} (${meshState(cluster, regions, seenAt, patches.length)})`)
      })))
    const latencies = seenAt.flatMap(seen => seen
      .map((t, i) => t - (sentAt[i] as number) - delayMs)
      .filter((_, i) => (clockAfter[i] as number) >= 0))
    return { keystrokes: patches.length, latencies, clientBytes }
  } finally {
    for (const provider of [writer, ...readers]) destroyProvider(provider)
  }
}

type Settings = Required<Omit<RegionScaleOptions, 'onProgress'>>

/** What is measured while the relays run; the rest comes from the capture once they are gone. */
type FromCapture = 'byKind' | 'idleBytesPerSecondByKind' | 'idleMessagesPerSecondByKind' | 'batchBytesRatio'
type Measured = Omit<RegionScaleRun, FromCapture>

const runOne = async (n: number, options: Settings): Promise<RegionScaleRun> => {
  const { trace, delayMs, typingSeconds, intervalMs, idleSeconds, compress } = options
  const regions = regionNames(n)
  const cluster = await TestCluster.start({
    regions,
    delayMs: () => delayMs,
    wan: { capture: true },
    config: { replication: { ...REPLICATION, compress }, limits: { messagesPerSecond: { rate: 0, burst: 0 } } },
  })
  let reconnects = 0
  const countReconnect = (): void => { reconnects++ }
  let measured: Measured
  let marks: CaptureMark[]
  try {
    await meshUp(cluster, regions)
    // One heartbeat after link-up, so the announcements of the links coming up are behind us.
    await sleep(REPLICATION.heartbeatMs)
    cluster.wan.on('connection', countReconnect)
    const idleMark = markCapture(cluster.wan, regions)
    const idleWanBefore = wanBytesSent(cluster)
    const idleCpu = process.cpuUsage()
    const idleStart = performance.now()
    await sleep(idleSeconds * 1000)
    const idleWall = (performance.now() - idleStart) / 1000
    const idleCpuSeconds = cpuSecondsSince(idleCpu)
    const idleBytes = wanBytesSent(cluster) - idleWanBefore
    const typingMark = markCapture(cluster.wan, regions)

    const wanBefore = wanBytesSent(cluster)
    const typingCpu = process.cpuUsage()
    const loopDelay = monitorEventLoopDelay({ resolution: 10 })
    loopDelay.enable()
    const typingStart = performance.now()
    const typing = await typeAndWatch(
      cluster, regions, trace, Math.max(1, Math.floor(typingSeconds * 1000 / intervalMs)), intervalMs, delayMs)
    const sockets = regions.map(r => peerSockets(cluster.relay(r)))
    const wanConnections = cluster.wan.openConnections
    // Acknowledgements too, so the count holds the whole exchange (as measureMesh waits for them).
    const acknowledged = (): boolean => cluster.relay('r0').peers().every(p => p.pendingUpdates === 0)
    await waitUntil([on(cluster.relay('r0'), 'peers')], acknowledged,
      { what: 'every peer to acknowledge r0\'s writes', timeoutMs: 30_000 })
    const typingWall = (performance.now() - typingStart) / 1000
    const typingCpuSeconds = cpuSecondsSince(typingCpu)
    loopDelay.disable()
    const crossRegionBytes = wanBytesSent(cluster) - wanBefore
    marks = [idleMark, typingMark, markCapture(cluster.wan, regions)]
    const latency = distribution(typing.latencies)
    measured = {
      regions: n,
      keystrokes: typing.keystrokes,
      latencyMinusDelayMs: { count: latency.count, p50: latency.p50, p99: latency.p99, max: latency.max },
      latencyQuantiles: quantiles(typing.latencies),
      clientUpdateBytes: typing.clientBytes,
      crossRegionBytes,
      bytesRatio: crossRegionBytes / typing.clientBytes,
      idleSeconds: idleWall,
      idleBytesPerSecond: idleBytes / idleWall,
      cpuPerRegionTyping: typingCpuSeconds / typingWall / n,
      cpuPerRegionIdle: idleCpuSeconds / idleWall / n,
      peerSocketsPerRelay: { min: Math.min(...sockets), max: Math.max(...sockets) },
      wanConnections,
      reconnects,
      eventLoopDelayMs: { p99: loopDelay.percentile(99) / 1e6, max: loopDelay.max / 1e6 },
      loadAverage: os.loadavg()[0] ?? NaN,
    }
  } finally {
    cluster.wan.off('connection', countReconnect)
    await cluster.close()
  }
  // Decoded once the relays are gone (the capture outlives the simulator's close): see markCapture.
  const [idleMark, typingMark, endMark] = marks as [CaptureMark, CaptureMark, CaptureMark]
  const idle = tallyBetween(cluster.wan, regions, idleMark, typingMark)
  const byKind = tallyBetween(cluster.wan, regions, typingMark, endMark).bytes
  const perSecond = (counts: Record<string, number>): Record<string, number> =>
    Object.fromEntries(Object.entries(counts).map(([kind, x]) => [kind, x / measured.idleSeconds]))
  return {
    ...measured,
    batchBytesRatio: (byKind['batch'] ?? 0) / measured.clientUpdateBytes,
    byKind,
    idleBytesPerSecondByKind: perSecond(idle.bytes),
    idleMessagesPerSecondByKind: perSecond(idle.messages),
  }
}

const failedRun = (regions: number, err: unknown): RegionScaleRun => ({
  regions,
  keystrokes: 0,
  latencyMinusDelayMs: { count: 0, p50: NaN, p99: NaN, max: NaN },
  latencyQuantiles: [],
  clientUpdateBytes: 0,
  crossRegionBytes: 0,
  bytesRatio: NaN,
  batchBytesRatio: NaN,
  byKind: {},
  idleSeconds: 0,
  idleBytesPerSecond: NaN,
  idleBytesPerSecondByKind: {},
  idleMessagesPerSecondByKind: {},
  cpuPerRegionTyping: NaN,
  cpuPerRegionIdle: NaN,
  peerSocketsPerRelay: { min: NaN, max: NaN },
  wanConnections: NaN,
  reconnects: NaN,
  eventLoopDelayMs: { p99: NaN, max: NaN },
  loadAverage: os.loadavg()[0] ?? NaN,
  error: (err as Error).message,
})

export const runRegionScale = async (options: RegionScaleOptions): Promise<RegionScaleResult> => {
  const settings = { ...DEFAULTS, ...options }
  const { onProgress = () => {} } = options
  const runs: RegionScaleRun[] = []
  for (const n of settings.regionCounts) {
    onProgress(`region scale: ${n} regions…`)
    try {
      runs.push(await runOne(n, settings))
    } catch (err) {
      runs.push(failedRun(n, err))
    }
  }
  const { delayMs, intervalMs, compress } = settings
  return { delayMs, intervalMs, heartbeatMs: REPLICATION.heartbeatMs, compress, runs }
}

const fmt = (value: number, digits = 2): string => Number.isFinite(value) ? value.toFixed(digits) : 'n/a'

/** Idle bytes per message of a kind: what the per-message sizes of a heartbeat are. */
const bytesPerMessage = (run: RegionScaleRun, kind: string): number =>
  (run.idleBytesPerSecondByKind[kind] ?? NaN) / (run.idleMessagesPerSecondByKind[kind] ?? NaN)

export const regionScaleSection = (result: RegionScaleResult): string => {
  const ok = result.runs.filter(r => r.error === undefined)
  const rows = ok.map(r => [
    String(r.regions),
    String(r.keystrokes),
    `+${fmt(r.latencyMinusDelayMs.p50, 1)} / +${fmt(r.latencyMinusDelayMs.p99, 1)}`,
    `${fmt(r.bytesRatio, 2)} (${fmt(r.batchBytesRatio, 2)})`,
    fmt(r.idleBytesPerSecond, 0),
    `${fmt(r.idleMessagesPerSecondByKind['link-state'] ?? 0, 0)} × ${fmt(bytesPerMessage(r, 'link-state'), 0)} B`,
    `${fmt(r.cpuPerRegionTyping, 3)} / ${fmt(r.cpuPerRegionIdle, 3)}`,
    r.peerSocketsPerRelay.min === r.peerSocketsPerRelay.max
      ? String(r.peerSocketsPerRelay.min)
      : `${r.peerSocketsPerRelay.min}–${r.peerSocketsPerRelay.max}`,
    String(r.reconnects),
    `${fmt(r.eventLoopDelayMs.p99, 0)} / ${fmt(r.eventLoopDelayMs.max, 0)}`,
    fmt(r.loadAverage, 1),
  ])
  const failed = result.runs.filter(r => r.error !== undefined).map(r => `- ${r.regions} regions failed: ${r.error}`)
  const links = result.compress ? 'deflated' : 'not compressed'
  return [
    '## How cost grows with regions',
    `A full mesh of N in-process relays (regions r0 … r(N−1)), ${result.delayMs} ms one-way delay between every pair ` +
    `(WAN simulator), heartbeat ${result.heartbeatMs} ms, peer links ${links}. First idle with no client, then one ` +
    `writer in r0 typing a keystroke every ${result.intervalMs} ms, a reader in every other region. Bytes ratio: everything the WAN carried ` +
    'from the first keystroke until r0\'s peers acknowledged the last, per client update byte (in brackets: batches ' +
    'alone). CPU: this whole process (relays, WAN simulator, providers) per second of the window, shared out over ' +
    'N regions, not one relay\'s own. Peer sockets: each relay\'s own links, dialled and accepted. Links ' +
    'redialled: peer connections opened after the mesh was up (0 when every link held; more means the ' +
    'in-process mesh missed its link timeout, and its figures are not a healthy mesh\'s).',
    table(['N', 'keystrokes', 'latency − delay p50 / p99 ms', 'cross-region bytes / client byte (batches)',
      'idle mesh bytes/s', 'idle link-state messages/s × size', 'CPU s/s per region, typing / idle (whole process ÷ N)',
      'peer sockets per relay', 'links redialled', 'event-loop delay p99 / max ms', 'load average'], rows),
    ...(failed.length === 0 ? [] : [failed.join('\n')]),
  ].join('\n\n')
}

export const regionScaleCharts = (result: RegionScaleResult): Record<string, string> => {
  const ok = result.runs.filter(r => r.error === undefined)
  if (ok.length === 0) return {}
  const label = (r: RegionScaleRun): string => `${r.regions} regions`
  return {
    'region-scale-p99.svg': barChart({
      title: `Edit to visible in every other region, p99 minus ${result.delayMs} ms delay`,
      unit: 'ms',
      bars: ok.map(r => ({ label: label(r), value: r.latencyMinusDelayMs.p99 })),
      goal: { value: 20, label: 'goal: delay + 20 ms' },
    }),
    'region-scale-idle-bytes.svg': barChart({
      title: 'Idle mesh bytes per second, every link (pings, link state)',
      unit: 'B/s',
      bars: ok.map(r => ({ label: label(r), value: r.idleBytesPerSecond })),
    }),
    'region-scale-latency.svg': distributionChart({
      title: `Edit to visible minus ${result.delayMs} ms delay, by mesh size`,
      unit: 'ms',
      series: ok.filter(r => r.latencyQuantiles.length > 0)
        .map(r => ({ label: label(r), quantiles: r.latencyQuantiles })),
    }),
  }
}
