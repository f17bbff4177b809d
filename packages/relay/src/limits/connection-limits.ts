/**
 * The limits one client socket lives under (SECURITY.md): what its messages may cost per second
 * (its own token bucket, and one shared by every socket from its address), and how much may
 * wait in its send buffer before it counts as a slow reader.
 *
 * Limits count work, not frames: each message costs a token plus one per COST_UNIT_BYTES of
 * what handling it touches (see message-cost.ts). A socket over its rate is first slowed —
 * the relay stops reading it until the debt is paid, so TCP pushes back on the sender — and
 * closed with 4429 only when it has stayed over the limit for `throttledCloseAfterMs`.
 */
import type { WebSocket } from 'ws'
import { type BucketsByKey, type RateLimit, TokenBucket } from './token-bucket.js'

export interface LimitsConfig {
  messagesPerSecond: RateLimit
  maxBufferedBytes: number
  /** How long a socket may stay throttled without a break before it is closed (4429). */
  throttledCloseAfterMs: number
}

export type Overrun = { code: 'ERR_RATE_LIMITED' | 'ERR_SLOW_READER', reason: string }

/** What a charge decided: read on (`waitMs` 0), pause reading for `waitMs`, or close. */
export type Verdict = { waitMs: number } | { overrun: Overrun }

export class ConnectionLimits {
  private readonly own: TokenBucket | null
  private readonly shared: { bucket: TokenBucket | null, release: () => void }
  /** When the socket last went over its rate without being back under it since (null: it is not throttled). */
  private throttledSince: number | null = null

  constructor (private readonly config: LimitsConfig, perAddress: BucketsByKey, address: string) {
    const { rate, burst } = config.messagesPerSecond
    this.own = rate === 0 ? null : new TokenBucket(rate, burst)
    this.shared = perAddress.acquire(address)
  }

  /** Charges the cost of work just done for this socket. */
  charge (cost: number, now = performance.now()): Verdict {
    const own = this.own?.spend(cost, now) ?? 0
    const shared = this.shared.bucket?.spend(cost, now) ?? 0
    const waitMs = Math.max(own, shared)
    if (waitMs === 0) {
      this.throttledSince = null
      return { waitMs }
    }
    this.throttledSince ??= now
    if (now - this.throttledSince > this.config.throttledCloseAfterMs) {
      const held = `${(this.config.throttledCloseAfterMs / 1000).toFixed(this.config.throttledCloseAfterMs < 10_000 ? 1 : 0)} s`
      const reason = shared > own
        ? `rate limited: too many messages from your address for ${held} (limits.messagesPerSecondPerAddress); slow down`
        : `rate limited: over ${this.config.messagesPerSecond.rate} messages/s on this socket for ${held} (limits.messagesPerSecond); slow down`
      return { overrun: { code: 'ERR_RATE_LIMITED', reason } }
    }
    return { waitMs }
  }

  /** How long until this socket is out of debt (0: read on). */
  debtMs (now = performance.now()): number {
    return Math.max(this.own?.debtMs(now) ?? 0, this.shared.bucket?.debtMs(now) ?? 0)
  }

  /** After a send: the overrun when the socket's unsent bytes passed the bound. */
  checkBuffer (ws: WebSocket): Overrun | null {
    if (ws.bufferedAmount <= this.config.maxBufferedBytes) return null
    return { code: 'ERR_SLOW_READER', reason: `this client reads too slowly: over ${this.config.maxBufferedBytes} bytes waited to be sent (limits.maxBufferedBytes)` }
  }

  release (): void {
    this.shared.release()
  }
}
