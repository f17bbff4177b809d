/**
 * Choosing the nearest region: round-trip times to each relay's `/healthz` (the median of a
 * few samples), nearest first, unreachable last. Moving back to a nearer region needs it to be
 * clearly and steadily better, so a client does not flap between two similar regions. A
 * preferred region, when given, comes first whenever it answers, whatever its round trip.
 */
import type { RegionEndpoint } from '@georelay/core'

export interface FailbackRule {
  /** The candidate's round trip must be at most this fraction of the current one… */
  ratio: number
  /** …and at least this many milliseconds shorter… */
  minGainMs: number
  /** …in this many measurements in a row. */
  consecutive: number
}

export const DEFAULT_FAILBACK: FailbackRule = { ratio: 0.7, minGainMs: 10, consecutive: 2 }

export type Fetch = (url: string, init?: { signal?: AbortSignal, cache?: 'no-store' }) => Promise<{ ok: boolean, text(): Promise<string> }>

export const httpUrlOf = (wsUrl: string, path: string): string => wsUrl.replace(/^ws(s?):/, 'http$1:').replace(/\/+$/, '') + path

const median = (values: number[]): number => {
  const sorted = [...values].sort((a, b) => a - b)
  return sorted[Math.floor(sorted.length / 2)] as number
}

/** Median round trip to a relay in ms, or null when it does not answer in time. */
export const probeRtt = async (
  url: string,
  { fetch, samples = 3, timeoutMs = 2000 }: { fetch: Fetch, samples?: number, timeoutMs?: number },
): Promise<number | null> => {
  const times: number[] = []
  for (let i = 0; i < samples; i++) {
    const started = performance.now()
    try {
      const res = await fetch(httpUrlOf(url, '/healthz'), { signal: AbortSignal.timeout(timeoutMs), cache: 'no-store' })
      await res.text()
      if (!res.ok) return null
    } catch {
      return null
    }
    times.push(performance.now() - started)
  }
  return median(times)
}

/**
 * A region as the SDK is given it: one URL, or the URLs of the region's nodes (a region of
 * several relays; the SDK tries its other nodes before failing over to another region).
 */
export type RegionSpec = { name: string, url: string } | { name: string, urls: string[] }

/** One entry per node: what the picker ranks and the client dials. */
export const nodesOf = (regions: RegionSpec[]): RegionEndpoint[] => regions.flatMap(region => {
  const urls = 'urls' in region ? region.urls : [region.url]
  if (!Array.isArray(urls) || urls.length === 0 || urls.some(url => typeof url !== 'string' || url === '')) {
    throw new Error(`region "${region.name}" needs a url, or urls with at least one URL`)
  }
  return urls.map(url => ({ name: region.name, url }))
})

export class RegionPicker {
  /** Last measured round trip per node URL (null: unreachable). */
  readonly rtt = new Map<string, number | null>()
  private readonly better = new Map<string, number>()

  constructor (
    /** Every node, one entry each (several may share a region's name). */
    public regions: RegionEndpoint[],
    private readonly fetch: Fetch,
    private readonly rule: FailbackRule = DEFAULT_FAILBACK,
    /** A region to use whenever it answers (the user's home region, or a pin for a demo). */
    private readonly preferred: string | null = null,
  ) {}

  async measure (): Promise<void> {
    const results = await Promise.all(this.regions.map(r => probeRtt(r.url, { fetch: this.fetch })))
    this.regions.forEach((r, i) => this.rtt.set(r.url, results[i] ?? null))
  }

  /** A region's round trip: its nearest node's (undefined when no node answered). */
  regionRtt (name: string): number | undefined {
    const times = this.regions
      .filter(r => r.name === name)
      .map(r => this.rtt.get(r.url))
      .filter((t): t is number => t != null)
    return times.length === 0 ? undefined : Math.min(...times)
  }

  /**
   * Nodes nearest first, the preferred region's first if one answered; unreachable and
   * unmeasured ones last, in their given order.
   */
  ranked (): RegionEndpoint[] {
    const byRtt = this.byRtt()
    if (this.reachablePreferred() === null) return byRtt
    return [...byRtt.filter(r => r.name === this.preferred), ...byRtt.filter(r => r.name !== this.preferred)]
  }

  /**
   * After a measurement: the region (its nearest node) to move back to, if one has been clearly
   * better than `current` for enough measurements in a row (then the streak starts over).
   */
  failbackFrom (current: string): RegionEndpoint | null {
    const preferred = this.reachablePreferred()
    if (preferred !== null) {
      // An explicit choice needs no hysteresis: go back as soon as it answers again.
      this.better.clear()
      return preferred.name === current ? null : preferred
    }
    const now = this.regionRtt(current) ?? Number.POSITIVE_INFINITY
    let choice: RegionEndpoint | null = null
    const seen = new Set<string>([current])
    for (const node of this.ranked()) {
      if (seen.has(node.name)) continue
      seen.add(node.name)
      const rtt = this.rtt.get(node.url)
      const clearly = rtt != null && rtt <= now * this.rule.ratio && now - rtt >= this.rule.minGainMs
      const streak = clearly ? (this.better.get(node.name) ?? 0) + 1 : 0
      this.better.set(node.name, streak)
      if (choice === null && streak >= this.rule.consecutive) choice = node
    }
    if (choice !== null) this.better.clear()
    return choice
  }

  /** The preferred region's nearest node that answered, if any. */
  private reachablePreferred (): RegionEndpoint | null {
    if (this.preferred === null || this.regionRtt(this.preferred) === undefined) return null
    return this.byRtt().find(r => r.name === this.preferred) ?? null
  }

  private byRtt (): RegionEndpoint[] {
    const key = (r: RegionEndpoint): number => this.rtt.get(r.url) ?? Number.POSITIVE_INFINITY
    return [...this.regions].sort((a, b) => key(a) - key(b))
  }
}
