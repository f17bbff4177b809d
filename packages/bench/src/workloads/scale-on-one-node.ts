/**
 * How one relay's cost grows with the work (issue: "how cost grows"): CPU per delivered update
 * as readers per document go 1 → 256 (one document, paced writer), and memory and idle CPU as
 * idle connections go 1,000 → 10,000 (docs/architecture.md, Performance goals: 10,000 within 1 GB).
 */
import { type Contender, startContender } from '../contenders.js'
import { type LoadSocket, openLoadSocket } from '../load-socket.js'
import type { KeystrokeUpdates } from '../trace-updates.js'
import { type PhaseResult, runPhase, single } from './fan-out.js'

export interface ReadersRun {
  readers: number
  paced: PhaseResult | null
  error?: string
}

export interface ReadersScaleOptions {
  counts: readonly number[]
  keystrokes: KeystrokeUpdates
  pacedRate: number
  pacedCount: number
}

/** One georelay (SQLite) process, one document, a paced writer, `readers` readers per step. */
export const runReadersScale = async (options: ReadersScaleOptions): Promise<ReadersRun[]> => {
  const contender = await startContender('georelay')
  const runs: ReadersRun[] = []
  const phase = (readersPerDoc: number, pacedCount: number, prefix: string): Promise<PhaseResult> =>
    runPhase(single(contender), {
      docs: 1, readersPerDoc, keystrokes: options.keystrokes, pacedRate: options.pacedRate, pacedCount,
      saturatedCount: 0, window: 64,
    }, 'paced', prefix)
  try {
    await phase(4, Math.min(500, options.pacedCount), 'warmup')
    for (const readers of options.counts) {
      try {
        runs.push({ readers, paced: await phase(readers, options.pacedCount, `readers-${readers}`) })
      } catch (err) {
        runs.push({ readers, paced: null, error: (err as Error).message })
      }
    }
  } finally {
    await contender.stop()
  }
  return runs
}

export interface IdleRun {
  connections: number
  rssBytes: number
  /** Share of one core the relay used while every connection sat idle. */
  idleCpuShare: number
  /** Time to open the connections added at this step. */
  openSeconds: number
  error?: string
}

const OPEN_AT_ONCE = 200
/** Connections per document: idle readers of a few shared documents, as a real app's tabs. */
const PER_DOC = 10

/** Opens connections in steps up to each count and samples the relay while they idle. */
export const runIdleConnections = async (counts: readonly number[], idleSeconds: number): Promise<IdleRun[]> => {
  const contender: Contender = await startContender('georelay')
  const sockets: LoadSocket[] = []
  const runs: IdleRun[] = []
  try {
    for (const connections of counts) {
      const started = performance.now()
      try {
        while (sockets.length < connections) {
          const n = Math.min(OPEN_AT_ONCE, connections - sockets.length)
          const batch = Array.from({ length: n }, (_, i) => sockets.length + i)
          sockets.push(...await Promise.all(batch.map(i => openLoadSocket(contender, `idle/${Math.floor(i / PER_DOC)}`, { timeoutMs: 60_000 }))))
        }
      } catch (err) {
        runs.push({ connections, rssBytes: NaN, idleCpuShare: NaN, openSeconds: NaN, error: (err as Error).message })
        break
      }
      const openSeconds = (performance.now() - started) / 1000
      const before = contender.sample()
      const t = performance.now()
      await new Promise(resolve => setTimeout(resolve, idleSeconds * 1000))
      const after = contender.sample()
      runs.push({
        connections,
        rssBytes: after.rssBytes,
        idleCpuShare: (after.cpuSeconds - before.cpuSeconds) / ((performance.now() - t) / 1000),
        openSeconds,
      })
    }
  } finally {
    for (const socket of sockets) socket.close()
    await contender.stop()
  }
  return runs
}
