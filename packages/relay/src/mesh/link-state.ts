/**
 * What each region says it reaches, flooded through the mesh. A relay forwards an origin's
 * entries to a peer only while it has no fresh word that the origin reaches that peer itself;
 * with no word at all (a cut, or a dead origin) it forwards, since duplicates are harmless
 * and missing updates are not.
 */
import type { Marks } from '@georelay/core'

export interface RegionLinkState {
  version: number
  reaches: string[]
  have: Marks
  /** Per peer, how far behind the region's own writes it is, as the region measured. */
  lags: Marks
  /** Local receive time of this version. */
  receivedAt: number
}

export class LinkStateTable {
  private readonly states = new Map<string, RegionLinkState>()

  constructor (private readonly staleMs: number) {}

  /** Records a region's state; returns false when it is not newer than what is known. */
  update (
    region: string, version: number, reaches: string[], have: Marks, now = Date.now(), lags: Marks = {},
  ): boolean {
    const known = this.states.get(region)
    if (known !== undefined && known.version >= version) return false
    this.states.set(region, { version, reaches, have, lags, receivedAt: now })
    return true
  }

  get (region: string): RegionLinkState | undefined {
    return this.states.get(region)
  }

  fresh (region: string, now = Date.now()): RegionLinkState | undefined {
    const state = this.states.get(region)
    return state !== undefined && now - state.receivedAt <= this.staleMs ? state : undefined
  }

  /** Whether `origin` is known, freshly, to reach `peer` over its own link. */
  reaches (origin: string, peer: string, now = Date.now()): boolean {
    return this.fresh(origin, now)?.reaches.includes(peer) ?? false
  }
}

/** Whether `me` should send `origin`'s entries to `peer`. */
export const shouldForward = (
  me: string,
  origin: string,
  peer: string,
  table: LinkStateTable,
  now = Date.now(),
): boolean => {
  if (origin === peer) return false
  if (origin === me) return true
  return !table.reaches(origin, peer, now)
}

/**
 * The versions of one relay's link state: its start time in milliseconds times 1000, plus a
 * counter. Peers keep only versions newer than the last they saw, so a relay that restarted
 * and counted from 0 again had its word ignored for about as long as its previous run lasted
 * (a stale `reaches` list deciding forwarding meanwhile). Started later, a run's versions are
 * above every version of the runs before it unless one of those announced more than 1000 times
 * per millisecond it was up.
 */
export class LinkStateVersions {
  private last: number

  constructor (startedAt = Date.now(), private readonly now: () => number = Date.now) {
    this.last = startedAt * 1000
  }

  /**
   * Follows the clock as well as counting: when another node of the region takes over the mesh
   * lease, its announcements must outrank those of the holder before it, whenever it started.
   */
  next (): number {
    this.last = Math.max(this.last + 1, this.now() * 1000)
    return this.last
  }
}
