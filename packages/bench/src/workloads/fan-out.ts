/**
 * Fan-out: R documents, each with one writer replaying a trace one keystroke per update and
 * 16 readers. Run twice per contender: paced (a fixed rate per writer; CPU per delivered update
 * and latency at a load every server can carry) and saturated (each writer keeps a window of
 * updates in flight ahead of its slowest reader; delivered updates per second).
 */
import * as Y from 'yjs'
import { type Contender, type ContenderKind, type StartContenderOptions, startContender } from '../contenders.js'
import { type LoadSocket, openLoadSocket } from '../load-socket.js'
import { ownCpuSeconds } from '../proc-stats.js'
import { type Distribution, distribution, quantiles } from '../stats.js'
import type { KeystrokeUpdates } from '../trace-updates.js'
import { updateFrame } from '../wire.js'

export interface FanOutOptions {
  docs: number
  readersPerDoc: number
  keystrokes: KeystrokeUpdates
  /** Updates per second per writer in the paced phase. */
  pacedRate: number
  /** Keystrokes per writer in the paced phase. */
  pacedCount: number
  /** Keystrokes per writer in the saturated phase. */
  saturatedCount: number
  /** Updates a writer may have ahead of its slowest reader in the saturated phase. */
  window: number
  timeoutMs?: number
}

export interface PhaseResult {
  /** Keystroke updates delivered to readers (each reader counts). */
  delivered: number
  wallSeconds: number
  deliveredPerSecond: number
  serverCpuSeconds: number
  /** Server CPU seconds per 10,000 delivered updates. */
  cpuPer10k: number
  /** Share of one core the server used. */
  serverCpuShare: number
  /** Share of one core the load generator used; near 1 it, not the server, was the limit. */
  loadGenCpuShare: number
  /** Messages readers received (fewer than deliveries when the server merges updates). */
  framesReceived: number
  latencyMs: Distribution
  latencyQuantiles: number[]
  /** Latency of the readers of each server, when readers were spread over several (nodes of a region). */
  latencyByServerMs: Record<string, Distribution>
}

/**
 * Where the load connects: one server for everything, or a region of nodes with the writers on
 * one and the readers spread over all.
 */
export interface FanOutServers {
  writer: Contender
  /** The server reader `i` of a document connects to, and its name in latencyByServerMs. */
  readerOf: (i: number) => { server: Contender, name: string }
  /** Every process whose CPU counts. */
  all: Contender[]
}

export const single = (contender: Contender): FanOutServers =>
  ({ writer: contender, readerOf: () => ({ server: contender, name: contender.label }), all: [contender] })

export interface FanOutResult {
  kind: ContenderKind
  label: string
  paced: PhaseResult | null
  saturated: PhaseResult | null
  peakRssBytes: number
  error?: string
}

interface Reader {
  socket: LoadSocket | null
  /** Its server's name, for latencyByServerMs. */
  server: string
  /** Keystrokes this reader holds: all before this index. */
  next: number
  /** The highest writer clock seen. */
  clock: number
}

interface DocLoad {
  name: string
  /** Opened after the readers, so that none of them misses an update. */
  writer: LoadSocket | null
  readers: Reader[]
  sentAt: Float64Array
  sent: number
}

export const runPhase = async (servers: FanOutServers, options: FanOutOptions, phase: 'paced' | 'saturated', docPrefix: string = phase): Promise<PhaseResult> => {
  const contender = servers.writer
  const { docs: docCount, readersPerDoc, keystrokes, window, timeoutMs = 120_000 } = options
  const { clockNeeded, inserts, clientId } = keystrokes
  let count = Math.min(phase === 'paced' ? options.pacedCount : options.saturatedCount, keystrokes.updates.length)
  // A deletion is seen with the next insertion: end on an insertion, or the last ones never count.
  while (count > 0 && inserts[count - 1] !== true) count--
  const frames = new Map<string, Uint8Array[]>()
  const latencies: number[] = []
  const byServer = new Map<string, number[]>()
  let framesReceived = 0
  let finishedReaders = 0
  const totalReaders = docCount * readersPerDoc
  let finish!: () => void
  const allDelivered = new Promise<void>(resolve => { finish = resolve })
  const loads: DocLoad[] = []
  let pump: (load: DocLoad) => void = () => {}

  for (let d = 0; d < docCount; d++) {
    const name = `bench/${docPrefix}-${d}`
    frames.set(name, keystrokes.updates.slice(0, count).map(update => updateFrame(contender.framing, name, update)))
    const load: DocLoad = { name, writer: null, readers: [], sentAt: new Float64Array(count), sent: 0 }
    loads.push(load)
    load.readers = Array.from({ length: readersPerDoc }, (_, i) =>
      ({ socket: null, server: servers.readerOf(i).name, next: 0, clock: 0 }))
    await Promise.all(load.readers.map(async (reader, i) => {
      let serverLatencies = byServer.get(reader.server)
      if (serverLatencies === undefined) byServer.set(reader.server, serverLatencies = [])
      const own = serverLatencies
      reader.socket = await openLoadSocket(servers.readerOf(i).server, name, {
        onFrame: (sync, at) => {
          framesReceived++
          if (sync.updates.length === 0 || reader.next >= count) return
          for (const update of sync.updates) {
            const clock = Y.parseUpdateMeta(update).to.get(clientId) ?? 0
            if (clock > reader.clock) reader.clock = clock
          }
          const before = reader.next
          while (reader.next < count && (clockNeeded[reader.next] as number) <= reader.clock) {
            if (inserts[reader.next] === true) {
              const latency = at - (load.sentAt[reader.next] as number)
              latencies.push(latency)
              own.push(latency)
            }
            reader.next++
          }
          if (reader.next === before) return
          if (reader.next >= count && ++finishedReaders === totalReaders) finish()
          if (phase === 'saturated') pump(load)
        },
      })
    }))
    load.writer = await openLoadSocket(contender, name)
  }

  const cpuOf = (): number => servers.all.reduce((sum, server) => sum + server.sample().cpuSeconds, 0)
  const before = cpuOf()
  const cpuBefore = ownCpuSeconds()
  const start = performance.now()
  const send = (load: DocLoad, upTo: number): void => {
    const docFrames = frames.get(load.name) as Uint8Array[]
    while (load.sent < upTo) {
      load.sentAt[load.sent] = performance.now()
      load.writer?.send(docFrames[load.sent] as Uint8Array)
      load.sent++
    }
  }
  let ticker: ReturnType<typeof setTimeout> | undefined
  if (phase === 'paced') {
    const tick = (): void => {
      const due = Math.min(count, Math.floor((performance.now() - start) * options.pacedRate / 1000) + 1)
      for (const load of loads) send(load, due)
      if (due < count) ticker = setTimeout(tick, 1)
    }
    tick()
  } else {
    pump = load => {
      let slowest = count
      for (const reader of load.readers) if (reader.next < slowest) slowest = reader.next
      // Deletions are seen with the next insertion: a window ending in a run of them would
      // wait for itself, so it always reaches to an insertion.
      let limit = Math.min(count, slowest + window)
      while (limit < count && inserts[limit - 1] !== true) limit++
      send(load, limit)
    }
    for (const load of loads) pump(load)
  }
  let timer: ReturnType<typeof setTimeout> | undefined
  try {
    await Promise.race([allDelivered, new Promise((_, reject) => {
      timer = setTimeout(() => {
        const progress = loads.map(l => `${l.sent} sent, readers at ${Math.min(...l.readers.map(r => r.next))}…${Math.max(...l.readers.map(r => r.next))}`).join('; ')
        reject(new Error(`${contender.label} ${docPrefix}: ${finishedReaders}/${totalReaders} readers got all ${count} updates within ${timeoutMs} ms (${progress})`))
      }, timeoutMs)
    })])
  } finally {
    clearTimeout(timer)
    clearTimeout(ticker)
  }
  const wallSeconds = (performance.now() - start) / 1000
  const loadGenCpu = ownCpuSeconds() - cpuBefore
  const after = cpuOf()
  for (const load of loads) for (const socket of [load.writer, ...load.readers.map(r => r.socket)]) socket?.close()
  const delivered = count * totalReaders
  const serverCpuSeconds = after - before
  return {
    delivered,
    wallSeconds,
    deliveredPerSecond: delivered / wallSeconds,
    serverCpuSeconds,
    cpuPer10k: serverCpuSeconds / delivered * 10_000,
    serverCpuShare: serverCpuSeconds / wallSeconds,
    loadGenCpuShare: loadGenCpu / wallSeconds,
    framesReceived,
    latencyMs: distribution(latencies),
    latencyQuantiles: quantiles(latencies),
    latencyByServerMs: Object.fromEntries([...byServer].map(([server, values]) => [server, distribution(values)])),
  }
}

export const runFanOut = async (
  kind: ContenderKind,
  options: FanOutOptions,
  start: StartContenderOptions = {},
): Promise<FanOutResult> => {
  const contender = await startContender(kind, start)
  const result: FanOutResult = { kind, label: contender.label, paced: null, saturated: null, peakRssBytes: 0 }
  try {
    // A fresh process spends its first seconds compiling (on extra threads, which count as its
    // CPU): warm every contender up the same way before anything is measured.
    await runPhase(single(contender), { ...options, saturatedCount: Math.min(options.saturatedCount, 1000) }, 'saturated', 'warmup')
    result.paced = await runPhase(single(contender), options, 'paced')
    result.saturated = await runPhase(single(contender), options, 'saturated')
  } catch (err) {
    result.error = (err as Error).message
  } finally {
    try { result.peakRssBytes = contender.sample().peakRssBytes } catch { /* it died: the error says why */ }
    await contender.stop()
  }
  return result
}
