/**
 * A token bucket: `ratePerSecond` tokens flow in, at most `burst` wait. Work is charged after
 * it is known (`spend`), so the bucket may go into debt; the caller then stops taking work
 * from that client until the debt is paid (`debtMs`). Refilled lazily from the clock, so an
 * idle bucket costs nothing.
 */
export class TokenBucket {
  private tokens: number
  private last: number

  constructor (readonly ratePerSecond: number, readonly burst: number, now = performance.now()) {
    this.tokens = burst
    this.last = now
  }

  private refill (now: number): void {
    this.tokens = Math.min(this.burst, this.tokens + (now - this.last) * this.ratePerSecond / 1000)
    this.last = now
  }

  /**
   * Takes `n` tokens, into debt if need be; returns how long until the bucket is out of debt (0: it
   * is not in debt).
   */
  spend (n: number, now = performance.now()): number {
    this.refill(now)
    this.tokens -= n
    return this.debtMs(now)
  }

  /** Whether the bucket holds its whole burst: it is as if it had never been used. */
  isFull (now = performance.now()): boolean {
    this.refill(now)
    return this.tokens >= this.burst
  }

  /** Milliseconds until the bucket holds at least 0 tokens again. */
  debtMs (now = performance.now()): number {
    this.refill(now)
    return this.tokens >= 0 ? 0 : -this.tokens * 1000 / this.ratePerSecond
  }
}

/** A limit of `rate` per second with a `burst`; rate 0 means no limit. */
export interface RateLimit { rate: number, burst: number }

/** Buckets shared by every connection from one address; forgotten when its last connection closes. */
export class BucketsByKey {
  private readonly buckets = new Map<string, { bucket: TokenBucket, users: number }>()

  constructor (private readonly limit: RateLimit) {}

  /** The bucket of `key` for one more user (null when unlimited), and how to give it back. */
  acquire (key: string): { bucket: TokenBucket | null, release: () => void } {
    if (this.limit.rate === 0) return { bucket: null, release: () => {} }
    let entry = this.buckets.get(key)
    if (entry === undefined) {
      entry = { bucket: new TokenBucket(this.limit.rate, this.limit.burst), users: 0 }
      this.buckets.set(key, entry)
    }
    entry.users++
    const held = entry
    let released = false
    return {
      bucket: held.bucket,
      release: () => {
        if (released) return
        released = true
        if (--held.users === 0 && this.buckets.get(key) === held) this.buckets.delete(key)
      },
    }
  }
}
