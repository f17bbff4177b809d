/**
 * Rate limits for HTTP requests, which have no socket to slow down: a token bucket per client
 * address, charged what each request cost once it is known (as sockets are, message-cost.ts).
 * A request from an address in debt is refused with 429 and how long to wait, before any work.
 * Buckets that refilled are forgotten, so idle addresses cost nothing.
 */
import { type RateLimit, TokenBucket } from './token-bucket.js'

/** Addresses tracked before refilled buckets are swept. */
const SWEEP_AT = 10_000

export class RequestLimiter {
  private readonly buckets = new Map<string, TokenBucket>()

  constructor (private readonly limit: RateLimit) {}

  /** Milliseconds the address must wait before its next request is taken (0: take it). */
  waitMs (address: string, now = performance.now()): number {
    return this.buckets.get(address)?.debtMs(now) ?? 0
  }

  /** Charges the work a request from `address` cost. */
  charge (address: string, cost: number, now = performance.now()): void {
    if (this.limit.rate === 0) return
    let bucket = this.buckets.get(address)
    if (bucket === undefined) {
      if (this.buckets.size >= SWEEP_AT) this.sweep(now)
      bucket = new TokenBucket(this.limit.rate, this.limit.burst, now)
      this.buckets.set(address, bucket)
    }
    bucket.spend(cost, now)
  }

  private sweep (now: number): void {
    for (const [address, bucket] of this.buckets) if (bucket.isFull(now)) this.buckets.delete(address)
  }
}
