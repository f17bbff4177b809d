/**
 * Retry delays with full jitter: a random wait between 0 and an exponentially growing ceiling.
 * Relays redialling a lost peer and clients reconnecting after a region died would otherwise
 * come back in one wave. (AWS Architecture Blog, "Exponential Backoff And Jitter".)
 */
export interface Backoff {
  /** The ceiling of the first retry… */
  baseMs: number
  /** …doubling per attempt up to this. */
  maxMs: number
}

/** The delay before retry number `attempt` (0 for the first). */
export const fullJitter = (attempt: number, { baseMs, maxMs }: Backoff, random: () => number = Math.random): number =>
  random() * Math.min(maxMs, baseMs * 2 ** attempt)
