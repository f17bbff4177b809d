/**
 * What the attack measurements need around a relay child process: starting it from any
 * build's CLI, polling its /healthz back-to-back (the longest answer is the longest stall of
 * its event loop, as a client sees it), and sampling its memory from /proc.
 */
import { type ChildProcess, spawn } from 'node:child_process'
import fs from 'node:fs'
import http from 'node:http'
import { type IntervalHistogram, monitorEventLoopDelay, performance } from 'node:perf_hooks'
import { type Subscribe, waitUntil } from '../wait-for.js'

export const sleep = (ms: number): Promise<void> => new Promise(resolve => setTimeout(resolve, Math.max(0, ms)))

const every = (ms: number): Subscribe => notify => {
  const timer = setInterval(notify, ms)
  return () => clearInterval(timer)
}

/** Checks `condition` every `stepMs` until it holds (true) or `timeoutMs` passed (false). */
export const until = (condition: () => boolean, timeoutMs: number, stepMs = 20): Promise<boolean> =>
  waitUntil([every(stepMs)], condition, { what: 'a condition', timeoutMs }).then(() => true, () => false)

export interface SpawnedRelay {
  readonly url: string
  readonly port: number
  readonly pid: number
  readonly child: ChildProcess
  /** The last 64 KiB the relay wrote to stderr. */
  stderrTail(): string
  /** Whether the process still runs. */
  alive(): boolean
  /** kill -9 and wait for the exit; safe to call more than once. */
  kill(): Promise<void>
}

export interface SpawnRelayOptions {
  bin: string
  args: string[]
  /** Added to the parent's environment, from which every GEORELAY_* variable is removed first. */
  env?: Record<string, string>
  timeoutMs?: number
}

const LISTENING = /listening on (ws:\/\/\S+)/
const STDERR_KEEP = 64 * 1024
const running = new Set<ChildProcess>()
let exitHookInstalled = false

export const spawnRelay = ({ bin, args, env = {}, timeoutMs = 15_000 }: SpawnRelayOptions): Promise<SpawnedRelay> => {
  if (!exitHookInstalled) {
    exitHookInstalled = true
    // Whatever happens to this process, no relay it started outlives it.
    process.on('exit', () => { for (const child of running) child.kill('SIGKILL') })
  }
  const childEnv: NodeJS.ProcessEnv = {}
  for (const [key, value] of Object.entries(process.env)) if (!key.startsWith('GEORELAY_')) childEnv[key] = value
  Object.assign(childEnv, env)
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [bin, 'relay', ...args], { env: childEnv, stdio: ['ignore', 'pipe', 'pipe'] })
    running.add(child)
    let stdout = ''
    let stderr = ''
    let settled = false
    const exited = new Promise<void>(done => child.once('exit', () => {
      running.delete(child)
      done()
    }))
    const kill = async (): Promise<void> => {
      if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL')
      await exited
    }
    const timer = setTimeout(() => {
      if (settled) return
      settled = true
      void kill()
      reject(new Error(`relay did not report listening within ${timeoutMs} ms; stderr:\n${stderr}`))
    }, timeoutMs)
    child.stderr?.setEncoding('utf8').on('data', (chunk: string) => {
      stderr += chunk
      if (stderr.length > 2 * STDERR_KEEP) stderr = stderr.slice(-STDERR_KEEP)
    })
    child.stdout?.setEncoding('utf8').on('data', (chunk: string) => {
      if (settled) return
      stdout += chunk
      const match = LISTENING.exec(stdout)
      if (match === null) return
      settled = true
      clearTimeout(timer)
      const url = match[1] as string
      resolve({
        url,
        port: Number(new URL(url).port),
        pid: child.pid as number,
        child,
        stderrTail: () => stderr.slice(-STDERR_KEEP),
        alive: () => child.exitCode === null && child.signalCode === null,
        kill,
      })
    })
    void exited.then(() => {
      clearTimeout(timer)
      if (settled) return
      settled = true
      reject(new Error(`relay exited (${child.exitCode ?? child.signalCode}) before listening; stderr:\n${stderr}`))
    })
  })
}

export interface HealthStats {
  /** Longest single /healthz round trip (ms), answered or timed out. */
  maxMs: number
  /** Answered requests. */
  answered: number
  /** Requests that failed (connection refused or reset, timeout, non-200). */
  failed: number
}

/** GET /healthz back-to-back: the next request leaves as soon as the previous one answered. */
export class HealthPoller {
  private running = false
  private loop: Promise<void> | null = null
  private readonly agent = new http.Agent({ keepAlive: true, maxSockets: 1 })
  private readonly stats: HealthStats = { maxMs: 0, answered: 0, failed: 0 }
  /** When the last /healthz answer arrived (ms since the epoch; 0: none yet). */
  lastAnsweredAt = 0

  constructor (private readonly port: number, private readonly timeoutMs = 60_000) {}

  start (): void {
    if (this.running) return
    this.running = true
    this.loop = this.run()
  }

  /** Stops after the request in flight answered (or timed out) and returns the figures. */
  async stop (): Promise<HealthStats> {
    this.running = false
    await this.loop
    this.agent.destroy()
    return { ...this.stats }
  }

  private async run (): Promise<void> {
    while (this.running) {
      const started = performance.now()
      const outcome = await this.once()
      const ms = performance.now() - started
      if (outcome !== 'refused') this.stats.maxMs = Math.max(this.stats.maxMs, ms)
      if (outcome === 'ok') {
        this.stats.answered++
        this.lastAnsweredAt = Date.now()
      } else {
        this.stats.failed++
        await sleep(20)
      }
    }
  }

  private once (): Promise<'ok' | 'failed' | 'refused'> {
    return new Promise(resolve => {
      const req = http.get({ host: '127.0.0.1', port: this.port, path: '/healthz', agent: this.agent, timeout: this.timeoutMs }, res => {
        res.resume()
        res.once('end', () => resolve(res.statusCode === 200 ? 'ok' : 'failed'))
        res.once('error', () => resolve('failed'))
      })
      req.once('timeout', () => req.destroy(new Error('timeout')))
      req.once('error', (err: NodeJS.ErrnoException) => resolve(err.code === 'ECONNREFUSED' ? 'refused' : 'failed'))
    })
  }
}

export interface MemStatus {
  rssMb: number
  hwmMb: number
}

const MB = 1024 * 1024

/** VmRSS and VmHWM of a process, in MB (null when it is gone). */
export const readMem = (pid: number): MemStatus | null => {
  let text: string
  try {
    text = fs.readFileSync(`/proc/${pid}/status`, 'utf8')
  } catch {
    return null
  }
  const kb = (field: string): number => Number(new RegExp(`^${field}:\\s+(\\d+) kB`, 'm').exec(text)?.[1] ?? NaN)
  return { rssMb: (kb('VmRSS') * 1024) / MB, hwmMb: (kb('VmHWM') * 1024) / MB }
}

/** Resets the process's VmHWM to its current RSS (Linux: "5" into clear_refs); false if not allowed. */
export const resetPeak = (pid: number): boolean => {
  try {
    fs.writeFileSync(`/proc/${pid}/clear_refs`, '5')
    return true
  } catch {
    return false
  }
}

/** Samples VmRSS every `intervalMs`; the peak is the larger of the samples and VmHWM. */
export class RssSampler {
  private timer: NodeJS.Timeout | null = null
  private maxRssMb = 0
  private lastHwmMb = 0

  constructor (private readonly pid: number, private readonly intervalMs = 50) {}

  start (): void {
    this.sample()
    this.timer = setInterval(() => this.sample(), this.intervalMs)
  }

  stop (): number {
    if (this.timer !== null) clearInterval(this.timer)
    this.timer = null
    this.sample()
    return Math.max(this.maxRssMb, this.lastHwmMb)
  }

  private sample (): void {
    const mem = readMem(this.pid)
    if (mem === null) return
    this.maxRssMb = Math.max(this.maxRssMb, mem.rssMb)
    if (Number.isFinite(mem.hwmMb)) this.lastHwmMb = mem.hwmMb
  }
}

export interface WindowFigures {
  stall: HealthStats
  /** Longest delay of this measuring process's own event loop (ms): a large one makes `stall` an overestimate. */
  selfLagMaxMs: number
  baselineMb: number | null
  peakMb: number | null
  endMb: number | null
  /** Whether VmHWM could be reset at the start of the window (else it counts from the relay's start). */
  peakReset: boolean
}

/** One measuring window: baseline memory, then /healthz polling and memory sampling until `end`. */
export class MeasureWindow {
  private poller: HealthPoller | null = null
  private sampler: RssSampler | null = null
  private lag: IntervalHistogram | null = null
  private baselineMb: number | null = null
  private peakReset = false
  private ending: Promise<WindowFigures> | null = null

  constructor (private readonly relay: SpawnedRelay, private readonly healthTimeoutMs = 60_000) {}

  get started (): boolean {
    return this.poller !== null
  }

  begin (): void {
    this.baselineMb = readMem(this.relay.pid)?.rssMb ?? null
    this.peakReset = resetPeak(this.relay.pid)
    this.sampler = new RssSampler(this.relay.pid)
    this.sampler.start()
    this.poller = new HealthPoller(this.relay.port, this.healthTimeoutMs)
    this.poller.start()
    this.lag = monitorEventLoopDelay({ resolution: 10 })
    this.lag.enable()
  }

  /** Whether the relay answered /healthz within the last `withinMs` (it is not stalled right now). */
  responsive (withinMs = 250): boolean {
    return this.poller !== null && Date.now() - this.poller.lastAnsweredAt <= withinMs
  }

  /** Current RSS (MB) of the relay, for figures inside the window. */
  rssNow (): number | null {
    return readMem(this.relay.pid)?.rssMb ?? null
  }

  /** Stops polling and sampling (after the request in flight answered); safe to call more than once. */
  end (): Promise<WindowFigures> {
    this.ending ??= this.finish()
    return this.ending
  }

  private async finish (): Promise<WindowFigures> {
    if (this.poller === null || this.sampler === null || this.lag === null) throw new Error('measure window ended before it began')
    const stall = await this.poller.stop()
    const peakMb = this.sampler.stop()
    this.lag.disable()
    const endMb = readMem(this.relay.pid)?.rssMb ?? null
    return {
      stall,
      selfLagMaxMs: this.lag.max / 1e6,
      baselineMb: this.baselineMb,
      peakMb: peakMb > 0 ? peakMb : null,
      endMb,
      peakReset: this.peakReset,
    }
  }
}
