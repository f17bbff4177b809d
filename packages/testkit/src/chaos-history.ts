/**
 * What a chaos run did and saw: every element written (by whom, at which ack level, when),
 * every acknowledgement (level, time, the region whose relay gave it), every read, every fault.
 * The checks at the end are computed from this history alone, as Jepsen's checkers are.
 */
import type { AckLevel } from '@georelay/core'

export type FaultKind = 'cut' | 'partition' | 'kill' | 'pause'
export const FAULT_KINDS: readonly FaultKind[] = ['cut', 'partition', 'kill', 'pause']

export interface Ack {
  at: number
  /** The region whose relay acknowledged (the client's region at that moment). */
  region: string | null
}

export interface WrittenElement {
  element: string
  client: string
  /** The session's ack level. */
  level: AckLevel
  sentAt: number
  acks: Partial<Record<AckLevel, Ack>>
}

export interface Fault {
  kind: FaultKind
  /** What it hit, in words: `a->b`, `a<->b`, `region a`. */
  target: string
  at: number
  healedAt: number | null
}

export class ChaosHistory {
  readonly elements = new Map<string, WrittenElement>()
  readonly faults: Fault[] = []
  /** Read times per client (a read sees the client's replica as it is at that time). */
  readonly reads = new Map<string, number[]>()
  /** When each client first synced with a relay. */
  readonly joinedAt = new Map<string, number>()
  /** When each element first became visible in each client's replica. */
  readonly firstSeen = new Map<string, Map<string, number>>()
  /** Relay processes that died without the nemesis killing them, with their last log lines. */
  readonly crashes: { region: string, at: number, exit: string, log: string }[] = []
  readonly startedAt = performance.now()

  now (): number {
    return performance.now() - this.startedAt
  }

  written (element: string, client: string, level: AckLevel): void {
    this.elements.set(element, { element, client, level, sentAt: this.now(), acks: {} })
  }

  acked (element: string, level: AckLevel, region: string | null): void {
    const entry = this.elements.get(element)
    if (entry === undefined) throw new Error(`acknowledgement of ${element}, which was never written`)
    entry.acks[level] ??= { at: this.now(), region }
  }

  joined (client: string): void {
    if (!this.joinedAt.has(client)) this.joinedAt.set(client, this.now())
  }

  read (client: string): void {
    let reads = this.reads.get(client)
    if (reads === undefined) this.reads.set(client, reads = [])
    reads.push(this.now())
  }

  seen (client: string, elements: Iterable<string>): void {
    let seen = this.firstSeen.get(client)
    if (seen === undefined) this.firstSeen.set(client, seen = new Map())
    const at = this.now()
    for (const element of elements) if (!seen.has(element)) seen.set(element, at)
  }

  fault (kind: FaultKind, target: string): Fault {
    const fault: Fault = { kind, target, at: this.now(), healedAt: null }
    this.faults.push(fault)
    return fault
  }

  healed (fault: Fault): void {
    fault.healedAt ??= this.now()
  }

  /**
   * The elements that must survive: acknowledged at `majority` or `all` anywhere, or at `local`
   * by a relay of a region that came back (a region lost for good may take its `local` writes).
   */
  mustSurvive (deadRegions: ReadonlySet<string>): string[] {
    return [...this.elements.values()]
      .filter(e => e.acks.majority !== undefined || e.acks.all !== undefined || (e.acks.local !== undefined && !deadRegions.has(e.acks.local.region ?? '')))
      .map(e => e.element)
  }

  /**
   * Jepsen's stale count: acknowledged elements missing from at least one read that began after
   * the acknowledgement (they showed up later). Expected of an eventually consistent store: a
   * read in another region lags by the replication delay, and by the fault while one lasts.
   */
  stale (clients: Iterable<string>): number {
    const stale = new Set<string>()
    for (const client of clients) {
      const reads = this.reads.get(client) ?? []
      const seen = this.firstSeen.get(client) ?? new Map<string, number>()
      for (const e of this.elements.values()) {
        const ackAt = e.acks[e.level]?.at
        if (ackAt === undefined || stale.has(e.element)) continue
        const visibleAt = seen.get(e.element) ?? Infinity
        const firstRead = firstAfter(reads, ackAt)
        if (firstRead !== undefined && firstRead < visibleAt) stale.add(e.element)
      }
    }
    return stale.size
  }

  /**
   * Per acknowledged element, the time from its first acknowledgement (durable in one region)
   * until every one of `clients` that had joined by then saw it.
   */
  visibilityLags (clients: string[]): number[] {
    const lags: number[] = []
    for (const e of this.elements.values()) {
      const ackAt = e.acks.local?.at
      if (ackAt === undefined) continue
      let last = -Infinity
      for (const client of clients) {
        if ((this.joinedAt.get(client) ?? Infinity) > ackAt) continue
        last = Math.max(last, this.firstSeen.get(client)?.get(e.element) ?? Infinity)
      }
      if (Number.isFinite(last)) lags.push(Math.max(0, last - ackAt))
    }
    return lags.sort((x, y) => x - y)
  }
}

/** The first value of a sorted list greater than `t`. */
const firstAfter = (sorted: number[], t: number): number | undefined => {
  let lo = 0
  let hi = sorted.length
  while (lo < hi) {
    const mid = (lo + hi) >>> 1
    if ((sorted[mid] as number) <= t) lo = mid + 1
    else hi = mid
  }
  return sorted[lo]
}

export const quantile = (sorted: number[], q: number): number =>
  sorted.length === 0 ? 0 : sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))] as number
