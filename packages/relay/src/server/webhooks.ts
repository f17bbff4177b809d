/**
 * Webhooks (config `webhooks`): receivers told that a document changed or was erased, so that
 * servers can re-index, render or sync without holding a socket per document.
 *
 * - `change`: once per burst of writes a document took **in this region** (clients' and the
 *   HTTP API's, not what peers replicate: each region tells of its own writes, so a receiver
 *   hears of a write once, not once per region). A burst ends `debounceMs` after its last
 *   write, or `maxWaitMs` after its first, whichever comes first; the event carries the local
 *   sequence number of its last write.
 * - `delete`: once, by the region where the erasure was asked.
 *
 * Each is a POST of `{ "event", "doc", "region", "seq", "at" }` as JSON, signed with
 * `X-Georelay-Signature: sha256=<hex HMAC-SHA256 of the body with the webhook's secret>`. A
 * delivery that fails (no answer in 10 s, or not 2xx) is retried with growing, jittered pauses
 * until it succeeds: at least once, while the relay runs (events not yet delivered when it
 * stops are not stored, and are lost). While a receiver is down its events are coalesced per
 * document (a newer change replaces an older one not yet delivered; a delete replaces both),
 * so what waits is bounded by the number of documents, and at most MAX_PENDING of them.
 */
import crypto from 'node:crypto'
import { type Backoff, fullJitter } from '@georelay/core'
import type { RelayConfig } from '../config/index.js'
import type { Logger, RelayMetrics } from '../observability/index.js'

export type WebhookEvent = 'change' | 'delete'

export interface WebhookPayload {
  event: WebhookEvent
  doc: string
  region: string
  /** The local sequence number of the burst's last write (0 for a delete). */
  seq: number
  /** When the event was fired, ms since the epoch. */
  at: number
}

/** Documents whose events may wait for one receiver; past it the oldest waiting are dropped. */
const MAX_PENDING = 10_000
const TIMEOUT_MS = 10_000
const RETRY: Backoff = { baseMs: 500, maxMs: 30_000 }
/** Deliveries in flight per receiver. */
const CONCURRENCY = 4

export const signBody = (secret: string, body: string): string =>
  `sha256=${crypto.createHmac('sha256', secret).update(body).digest('hex')}`

type WebhookConfig = RelayConfig['webhooks'][number]

interface Burst {
  firstAt: number
  lastAt: number
  seq: number
  timer: NodeJS.Timeout
}

/** One receiver: its bursts, what waits to be delivered, and the deliveries in flight. */
class Receiver {
  private readonly bursts = new Map<string, Burst>()
  /** Insertion order is delivery order; a document's newer event replaces its older one. */
  private readonly pending = new Map<string, WebhookPayload>()
  private readonly inFlight = new Set<string>()
  private attempts = 0
  private retryTimer: NodeJS.Timeout | null = null
  private closed = false

  constructor (
    private readonly hook: WebhookConfig,
    private readonly label: string,
    private readonly region: string,
    private readonly metrics: RelayMetrics,
    private readonly logger: Logger,
  ) {}

  changed (doc: string, seq: number): void {
    if (this.closed || !this.hook.events.includes('change')) return
    const now = Date.now()
    const burst = this.bursts.get(doc)
    // A write within a burst only moves its end: the timer, when it fires, looks again.
    if (burst !== undefined) {
      burst.lastAt = now
      burst.seq = Math.max(burst.seq, seq)
      return
    }
    const timer = this.wake(doc, Math.min(this.hook.debounceMs, this.hook.maxWaitMs))
    this.bursts.set(doc, { firstAt: now, lastAt: now, seq, timer })
  }

  private wake (doc: string, ms: number): NodeJS.Timeout {
    const timer = setTimeout(() => this.fire(doc), ms)
    timer.unref()
    return timer
  }

  deleted (doc: string): void {
    if (this.closed) return
    const burst = this.bursts.get(doc)
    if (burst !== undefined) clearTimeout(burst.timer)
    this.bursts.delete(doc)
    // A change of an erased document is not told any more: the delete replaces it.
    this.pending.delete(doc)
    if (this.hook.events.includes('delete')) this.enqueue({ event: 'delete', doc, region: this.region, seq: 0, at: Date.now() })
  }

  close (): void {
    this.closed = true
    for (const burst of this.bursts.values()) clearTimeout(burst.timer)
    this.bursts.clear()
    if (this.retryTimer !== null) clearTimeout(this.retryTimer)
  }

  /** A burst ends `debounceMs` after its last write or `maxWaitMs` after its first. */
  private fire (doc: string): void {
    const burst = this.bursts.get(doc)
    if (burst === undefined) return
    const due = Math.min(burst.lastAt + this.hook.debounceMs, burst.firstAt + this.hook.maxWaitMs)
    const now = Date.now()
    if (now < due) {
      burst.timer = this.wake(doc, due - now)
      return
    }
    this.bursts.delete(doc)
    this.enqueue({ event: 'change', doc, region: this.region, seq: burst.seq, at: Date.now() })
  }

  private enqueue (payload: WebhookPayload): void {
    const waiting = this.pending.get(payload.doc)
    if (waiting !== undefined) this.metrics.webhookCoalesced.inc({ webhook: this.label })
    this.pending.delete(payload.doc)
    this.pending.set(payload.doc, payload)
    if (this.pending.size > MAX_PENDING) {
      const oldest = this.pending.keys().next().value as string
      this.pending.delete(oldest)
      this.metrics.webhookDropped.inc({ webhook: this.label })
      this.logger.log('warn', 'a webhook receiver is behind by more than the documents kept for it: the oldest event was dropped', { webhook: this.label, kept: MAX_PENDING })
    }
    this.metrics.webhookPending.set({ webhook: this.label }, this.pending.size)
    this.pump()
  }

  /** Sends what waits, a few at a time, unless a failure's pause is running. */
  private pump (): void {
    if (this.closed || this.retryTimer !== null) return
    for (const [doc, payload] of this.pending) {
      if (this.inFlight.size >= CONCURRENCY) return
      if (this.inFlight.has(doc)) continue
      this.inFlight.add(doc)
      this.deliver(payload).then(ok => {
        this.inFlight.delete(doc)
        // Delivered: unless a newer event of the document arrived meanwhile, it is done.
        if (ok && this.pending.get(doc) === payload) this.pending.delete(doc)
        this.metrics.webhookPending.set({ webhook: this.label }, this.pending.size)
        if (ok) {
          this.attempts = 0
          this.pump()
        } else {
          this.pauseThenPump()
        }
      }, () => {})
    }
  }

  private pauseThenPump (): void {
    if (this.closed || this.retryTimer !== null) return
    const delay = fullJitter(this.attempts++, RETRY)
    this.retryTimer = setTimeout(() => {
      this.retryTimer = null
      this.pump()
    }, delay)
    this.retryTimer.unref()
  }

  private async deliver (payload: WebhookPayload): Promise<boolean> {
    const body = JSON.stringify(payload)
    try {
      const res = await fetch(this.hook.url, {
        method: 'POST',
        headers: {
          'content-type': 'application/json',
          'user-agent': 'georelay-webhooks',
          'x-georelay-event': payload.event,
          'x-georelay-signature': signBody(this.hook.secret, body),
        },
        body,
        signal: AbortSignal.timeout(TIMEOUT_MS),
      })
      await res.arrayBuffer().catch(() => undefined)
      const ok = res.status >= 200 && res.status < 300
      this.metrics.webhookDeliveries.inc({ webhook: this.label, result: ok ? 'ok' : 'failed' })
      if (!ok) this.logger.log('info', 'a webhook receiver refused an event; it is retried', { webhook: this.label, status: res.status })
      return ok
    } catch (err) {
      this.metrics.webhookDeliveries.inc({ webhook: this.label, result: 'failed' })
      this.logger.log('info', 'a webhook receiver did not answer; the event is retried', { webhook: this.label, error: (err as Error).message })
      return false
    }
  }
}

export class Webhooks {
  private readonly receivers: Receiver[]

  constructor (config: RelayConfig, metrics: RelayMetrics, logger: Logger) {
    // Labelled by position: a receiver's URL may hold a credential.
    this.receivers = config.webhooks.map((hook, i) => new Receiver(hook, String(i), config.region, metrics, logger))
  }

  /** A write this region took in (a client's or the HTTP API's). */
  changed (doc: string, seq: number): void {
    for (const receiver of this.receivers) receiver.changed(doc, seq)
  }

  /** An erasure asked in this region. */
  deleted (doc: string): void {
    for (const receiver of this.receivers) receiver.deleted(doc)
  }

  close (): void {
    for (const receiver of this.receivers) receiver.close()
  }
}
