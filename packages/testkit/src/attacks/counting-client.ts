/**
 * A stock-protocol client socket for the attack measurements: the `ws` library (so that it can
 * negotiate permessage-deflate), counting what the relay sends by y-websocket message type
 * instead of keeping it, so that answers of hundreds of megabytes take no memory here.
 */
import { type YMessage, decodeFrame } from '@georelay/core'
import WebSocket from 'ws'

export type Counts = Record<YMessage['type'], number>

/**
 * Counts received messages by type and keeps the last sync step 2 and awareness payloads; never
 * answers anything on its own.
 */
export class CountingClient {
  readonly ws: WebSocket
  readonly counts: Counts = { 'sync-step1': 0, 'sync-step2': 0, 'sync-update': 0, awareness: 0, 'auth-denied': 0, 'query-awareness': 0 }
  /** Frames that are no y-websocket messages (core's decodeFrame refused them). */
  undecodable = 0
  bytesIn = 0
  /** When the last frame arrived (ms since the epoch; 0: none yet). */
  lastMessageAt = 0
  lastStep2: Uint8Array | null = null
  lastAwareness: Uint8Array | null = null
  close: { code: number, reason: string } | null = null
  error: string | null = null
  /** HTTP status when the upgrade was refused. */
  refusedStatus: number | null = null
  readonly opened: Promise<void>
  readonly closed: Promise<void>

  constructor (url: string, options: WebSocket.ClientOptions = {}) {
    this.ws = new WebSocket(url, { handshakeTimeout: 10_000, ...options })
    this.opened = new Promise((resolve, reject) => {
      this.ws.once('open', () => resolve())
      this.ws.once('close', code => reject(new Error(`${url} closed (${code}) before it opened`)))
      this.ws.once('error', err => reject(err))
      this.ws.once('unexpected-response', (req, res) => {
        this.refusedStatus = res.statusCode ?? 0
        res.resume()
        req.destroy()
        reject(new Error(`${url}: upgrade refused with HTTP ${res.statusCode}`))
      })
    })
    this.opened.catch(() => {})
    this.closed = new Promise(resolve => {
      this.ws.once('close', (code, reason) => {
        this.close = { code, reason: reason.toString() }
        resolve()
      })
      this.ws.once('unexpected-response', () => resolve())
    })
    this.ws.on('error', err => { this.error ??= err.message })
    this.ws.on('message', (data: Buffer) => {
      this.bytesIn += data.length
      this.lastMessageAt = Date.now()
      let messages: YMessage[]
      try {
        messages = decodeFrame(data)
      } catch {
        this.undecodable++
        return
      }
      for (const message of messages) {
        this.counts[message.type]++
        if (message.type === 'sync-step2') this.lastStep2 = message.update
        if (message.type === 'awareness') this.lastAwareness = message.update
      }
    })
  }

  get isClosed (): boolean {
    return this.close !== null || this.refusedStatus !== null
  }

  send (frame: Uint8Array): void {
    if (this.ws.readyState === WebSocket.OPEN) this.ws.send(frame)
  }

  terminate (): void {
    try {
      this.ws.terminate()
    } catch {
      // already gone
    }
  }
}
