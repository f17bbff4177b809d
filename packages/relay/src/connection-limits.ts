/**
 * The limits one client socket lives under (DESIGN 4.5, 4429): how fast it may send (its own
 * token bucket, and one shared by every socket from its address), and how much may wait in its
 * send buffer before it counts as a slow reader and is cut, rather than growing the relay's memory.
 */
import type { WebSocket } from 'ws'
import { type BucketsByKey, type RateLimit, TokenBucket } from './token-bucket.js'

/** How long a slow reader gets to take its close frame before the socket is cut. */
const SLOW_READER_GRACE_MS = 1000

export interface LimitsConfig {
  messagesPerSecond: RateLimit
  maxBufferedBytes: number
}

export type Overrun = { code: 'ERR_RATE_LIMITED' | 'ERR_SLOW_READER', reason: string }

export class ConnectionLimits {
  private readonly own: TokenBucket | null
  private readonly shared: { bucket: TokenBucket | null, release: () => void }

  constructor (private readonly config: LimitsConfig, perAddress: BucketsByKey, address: string) {
    const { rate, burst } = config.messagesPerSecond
    this.own = rate === 0 ? null : new TokenBucket(rate, burst)
    this.shared = perAddress.acquire(address)
  }

  /** Counts one received message; the overrun when this socket or its address sends too fast. */
  admit (): Overrun | null {
    if (this.own !== null && !this.own.take()) {
      return { code: 'ERR_RATE_LIMITED', reason: `rate limited: more than ${this.config.messagesPerSecond.rate} messages/s on this socket (limits.messagesPerSecond); slow down` }
    }
    if (this.shared.bucket !== null && !this.shared.bucket.take()) {
      return { code: 'ERR_RATE_LIMITED', reason: 'rate limited: too many messages from your address (limits.messagesPerSecondPerAddress); slow down' }
    }
    return null
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

/** Closes with 4429 and, if the close frame cannot get through a full buffer, cuts the socket. */
export const closeOverrun = (ws: WebSocket, reason: string): void => {
  if (ws.readyState === ws.OPEN || ws.readyState === ws.CONNECTING) ws.close(4429, reason)
  setTimeout(() => ws.terminate(), SLOW_READER_GRACE_MS).unref()
}
