/**
 * The nemesis of a chaos run: a seeded schedule of faults against a process-mode TestCluster,
 * one at a time or two overlapping: cut a link between two relays (one direction or both),
 * partition a region from the other relays, kill -9 a relay (with or without its region's
 * clients) and restart it, SIGSTOP a relay and SIGCONT it. Every fault is recorded in the
 * history with when it began and when it was healed.
 */
import * as prng from 'lib0/prng'
import type { TestCluster } from './cluster.js'
import { type ChaosHistory, FAULT_KINDS, type Fault, type FaultKind } from './chaos-history.js'
import type { RelayProcess } from './relay-process.js'

export interface NemesisOptions {
  /** Quiet time between two faults, in ms: [min, max]. */
  gapMs: [number, number]
  /** How long a fault lasts, in ms: [min, max]. */
  holdMs: [number, number]
  kinds?: readonly FaultKind[]
  /** At most this many faults (shared evenly between the lanes). */
  maxFaults?: number
  /** The clients of a region, for faults that take them down with their relay. */
  clients?: RegionClients
  /** Link faults and process faults in two lanes that overlap (default: one fault at a time). */
  overlap?: boolean
  /** Progress lines (a fault began or healed). */
  log?: (line: string) => void
}

export interface RegionClients {
  /** Ends the region's clients at once (called before its relay is killed). */
  die(region: string): Promise<void>
  /** Starts new clients in the region (its relay is back). */
  replace(region: string): Promise<void>
}

const LOG_TAIL_LINES = 20

export class Nemesis {
  /** Regions killed for good: never restarted. */
  readonly lost = new Set<string>()
  private stopped = false
  private readonly wakers = new Set<() => void>()
  /** Processes this nemesis (or the run's end) stopped on purpose; any other exit is a crash. */
  private readonly expectedExits = new WeakSet<RelayProcess>()

  constructor (
    private readonly cluster: TestCluster,
    private readonly history: ChaosHistory,
    private readonly gen: prng.PRNG,
    private readonly options: NemesisOptions,
  ) {
    for (const region of cluster.regions.keys()) this.watch(region)
  }

  get regions (): string[] {
    return [...this.cluster.regions.keys()].filter(r => !this.lost.has(r))
  }

  /**
   * Injects faults until `untilMs` (history time) or `maxFaults`, cycling through the kinds in a
   * seeded order so that even a short run hits each kind. With `overlap`, link faults and
   * process faults run in two lanes of their own, so they overlap.
   */
  async run (untilMs: number): Promise<void> {
    const kinds = this.options.kinds ?? FAULT_KINDS
    const lanes = this.options.overlap === true
      ? [kinds.filter(isLinkFault), kinds.filter(k => !isLinkFault(k))].filter(lane => lane.length > 0)
      : [kinds]
    // A share of the faults and a PRNG per lane: what one lane does does not depend on the
    // other's timing (a slow restart in one does not leave the other every fault).
    const share = Math.ceil((this.options.maxFaults ?? Infinity) / lanes.length)
    const results = await Promise.allSettled(lanes.map(lane => {
      const gen = prng.create(prng.uint32(this.gen, 0, 0x7fffffff))
      return this.lane(lane, untilMs, { left: share }, gen).catch(err => {
        this.stop() // the other lane heals its fault and ends too, before the error is reported
        throw err
      })
    }))
    const failed = results.find(r => r.status === 'rejected')
    if (failed !== undefined) throw (failed as PromiseRejectedResult).reason
    // Out of faults early: the run still lasts until `untilMs`, quietly.
    await this.hold(Infinity, untilMs)
  }

  /** Ends `run` early (faults in progress are healed first). */
  stop (): void {
    this.stopped = true
    for (const wake of this.wakers) wake()
  }

  /**
   * Heals every link (but those of lost regions), resumes every paused relay, restarts every
   * relay that is down (but those of lost regions).
   */
  async restoreAll (): Promise<void> {
    if (this.lost.size === 0) this.cluster.wan.healAll()
    // A lost region stays cut off: bytes it sent into a cut link would otherwise still arrive
    // after its death, as if its site had survived the partition to send them.
    for (const a of this.regions) for (const b of this.regions) if (a < b) this.cluster.wan.heal(a, b)
    for (const region of this.regions) {
      this.cluster.resumeRegion(region)
      const process = this.cluster.get(region).process
      if (process === undefined || process.child.exitCode !== null || process.child.signalCode !== null) {
        await this.restart(region)
      }
    }
    for (const fault of this.history.faults) this.history.healed(fault)
  }

  /** Cuts a region off from the other relays for `ms` (its clients still reach it); not healed. */
  async isolate (region: string, ms: number): Promise<void> {
    this.log(`isolate ${region} from the other relays`)
    for (const other of this.regions) if (other !== region) this.cluster.wan.cut(region, other)
    await this.hold(ms, Infinity)
  }

  /** kill -9 of a region that never comes back. */
  async loseRegion (region: string): Promise<void> {
    this.lost.add(region)
    this.log(`lose ${region} for good (kill -9, never restarted)`)
    await this.kill(region)
  }

  /** Marks every running relay as stopped on purpose (the run is over and closes the cluster). */
  retire (): void {
    for (const entry of this.cluster.regions.values()) {
      if (entry.process !== undefined) this.expectedExits.add(entry.process)
    }
  }

  private async lane (
    kinds: readonly FaultKind[],
    untilMs: number,
    budget: { left: number },
    gen: prng.PRNG,
  ): Promise<void> {
    let round: FaultKind[] = []
    while (!this.stopped && budget.left > 0) {
      await this.hold(between(gen, this.options.gapMs), untilMs)
      if (this.stopped || this.history.now() >= untilMs) return
      if (round.length === 0) round = shuffle(gen, [...kinds])
      budget.left--
      await this.inject(round.shift() as FaultKind, untilMs, gen)
    }
  }

  private async inject (kind: FaultKind, untilMs: number, gen: prng.PRNG): Promise<void> {
    const holdMs = between(gen, this.options.holdMs)
    const [a, b] = shuffle(gen, this.regions) as [string, string]
    switch (kind) {
      case 'cut': {
        const oneWay = prng.bool(gen)
        const fault = this.begin(kind, oneWay ? `${a}->${b}` : `${a}<->${b}`)
        this.cluster.wan.cut(a, b, { oneWay })
        await this.hold(holdMs, untilMs)
        this.cluster.wan.heal(a, b, { oneWay })
        return this.end(fault)
      }
      case 'partition': {
        // Relays only: the region's own clients still reach it, as they would in a real split.
        const others = this.regions.filter(r => r !== a)
        const fault = this.begin(kind, `region ${a}`)
        for (const other of others) this.cluster.wan.cut(a, other)
        await this.hold(holdMs, untilMs)
        for (const other of others) this.cluster.wan.heal(a, other)
        return this.end(fault)
      }
      case 'kill': {
        // Half the time the region's clients die with their relay (a whole site down): then
        // nothing but the relay's disk and its peers can bring back what it acknowledged.
        const clients = this.options.clients
        const withClients = clients !== undefined && prng.bool(gen)
        const fault = this.begin(kind, withClients ? `region ${a} with its clients` : `region ${a}`)
        const dying = withClients ? clients.die(a) : Promise.resolve()
        await this.kill(a)
        await dying
        await this.hold(holdMs, untilMs)
        await this.restart(a)
        if (withClients) await clients.replace(a)
        return this.end(fault)
      }
      case 'pause': {
        const fault = this.begin(kind, `region ${a}`)
        this.cluster.pauseRegion(a)
        await this.hold(holdMs, untilMs)
        this.cluster.resumeRegion(a)
        return this.end(fault)
      }
    }
  }

  private async kill (region: string): Promise<void> {
    const process = this.cluster.get(region).process
    if (process === undefined) return
    this.expectedExits.add(process)
    await this.cluster.killRegion(region)
  }

  private async restart (region: string): Promise<void> {
    await this.cluster.startRegion(region)
    this.watch(region)
  }

  /** Records a relay process that exits without being told to, with the end of its log. */
  private watch (region: string): void {
    const process = this.cluster.get(region).process
    if (process === undefined) return
    void process.exited.then(exit => {
      if (this.expectedExits.has(process)) return
      const log = process.stderr().trimEnd().split('\n').slice(-LOG_TAIL_LINES).join('\n')
      this.history.crashes.push({ region, at: this.history.now(), exit: String(exit), log })
      this.log(`relay ${region} exited by itself (${String(exit)})`)
    })
  }

  private begin (kind: FaultKind, target: string): Fault {
    this.log(`${kind} ${target}`)
    return this.history.fault(kind, target)
  }

  private end (fault: Fault): void {
    this.history.healed(fault)
    this.log(`heal ${fault.kind} ${fault.target}`)
  }

  private log (line: string): void {
    this.options.log?.(`${(this.history.now() / 1000).toFixed(1).padStart(7)} s  ${line}`)
  }

  /**
   * The schedule's own clock: how long a fault lasts or the quiet between two. Not a wait for
   * something to happen; cut short by `stop()` and by the end of the run.
   */
  private hold (ms: number, untilMs: number): Promise<void> {
    const left = Math.max(0, Math.min(ms, untilMs - this.history.now()))
    if (this.stopped || left === 0) return Promise.resolve()
    return new Promise(resolve => {
      const done = (): void => {
        clearTimeout(timer)
        this.wakers.delete(done)
        resolve()
      }
      const timer = setTimeout(done, left)
      this.wakers.add(done)
    })
  }
}

const isLinkFault = (kind: FaultKind): boolean => kind === 'cut' || kind === 'partition'

const between = (gen: prng.PRNG, [min, max]: [number, number]): number => prng.uint32(gen, min, max)

const shuffle = <T>(gen: prng.PRNG, items: T[]): T[] => {
  for (let i = items.length - 1; i > 0; i--) {
    const j = prng.uint32(gen, 0, i)
    ;[items[i], items[j]] = [items[j] as T, items[i] as T]
  }
  return items
}
