/**
 * One socket of a stock y-websocket client on `ws://HOST:PORT/<docName>`: one document.
 *
 * A frame is decoded and validated whole as soon as it is taken: if any message in it is
 * malformed the socket closes with 4400 and nothing of the frame is stored or forwarded.
 * Repeated questions in a frame get one answer, and the frame is charged what it costs
 * (message-cost.ts) before its work is done.
 */
import type { WebSocket } from 'ws'
import { CloseCode, decodeFrame, encodeFrame, movedReason } from '@georelay/core'
import type { Grants } from '../auth/index.js'
import { ClientSocket } from './client-socket.js'
import { describeFailure } from './client-failure.js'
import type { ConnectionLimits } from '../limits/index.js'
import type { DocRegistry } from '../docs/index.js'
import { DocSession, type SessionPlacement, validateMessages } from '../docs/index.js'
import type { Logger } from '../observability/index.js'
import { coalesceQuestions } from '../limits/index.js'
import type { RelayMetrics } from '../observability/index.js'
import { type Expiry, expiryTimer } from '../auth/index.js'

export interface ClientConnectionOptions {
  docName: string
  registry: DocRegistry
  metrics: RelayMetrics
  logger: Logger
  placement?: SessionPlacement
  /** What the socket's token allows (null: everything). */
  grants?: Grants | null
  limits?: ConnectionLimits | null
  /** Bytes that may wait while the document loads. */
  maxPendingBytes?: number
  /** How the document's name may appear in logs (a restricted name never appears outside its regions). */
  logName?: (name: string) => string
}

export class ClientConnection {
  readonly docName: string
  private readonly socket: ClientSocket
  private readonly session: DocSession
  private readonly expiry: Expiry | null

  constructor (ws: WebSocket, private readonly options: ClientConnectionOptions) {
    const { docName, registry, metrics, logger, grants = null } = options
    this.docName = docName
    this.socket = new ClientSocket(ws, { endpoint: 'y-websocket', metrics, logger, limits: options.limits ?? null }, {
      frame: bytes => this.frame(bytes),
      fail: err => this.fail(err),
      finished: () => {
        this.expiry?.cancel()
        // Also during the session's construction, when it redirects at once.
        this.session?.close()
      },
    })
    this.expiry = expiryTimer(grants, () => this.close(CloseCode.Unauthenticated, 'the token has expired: reconnect with a fresh one'))
    this.session = new DocSession(docName, {
      registry,
      placement: options.placement,
      maxPendingBytes: options.maxPendingBytes,
      transport: {
        send: frame => this.socket.send(frame),
        fail: err => this.fail(err),
        // The reason starts with "REGION URL", which the SDK reads; stock clients just see the words.
        redirect: (region, url) => this.close(CloseCode.Moved, movedReason({ region, url })),
        // y-websocket's own answer to a refused write: an auth message, "permission denied".
        refuseWrite: (code, reason) => {
          metrics.rejected.inc({ code })
          this.socket.send(encodeFrame({ type: 'auth-denied', reason }))
        },
        charge: cost => this.socket.charge(cost),
      },
    })
    this.session.readOnly = grants?.access(docName) === 'ro'
  }

  /** Closes the socket with a code and a reason in words; nothing it sends afterwards is handled. */
  close (code: number, reason: string): void {
    this.socket.close(code, reason)
  }

  private frame (bytes: Uint8Array): void {
    // Every message is checked, the repeated questions too, before repeats are dropped.
    const decoded = decodeFrame(bytes)
    validateMessages(decoded)
    const messages = coalesceQuestions(decoded)
    this.socket.charge(this.session.costOf(messages))
    if (!this.socket.closed) this.session.receive(messages)
  }

  private fail (err: unknown): void {
    if (this.socket.closed) return
    const { code, reason, metric, level } = describeFailure(err)
    const { metrics, logger, logName } = this.options
    metrics.rejected.inc({ code: metric })
    logger.log(level, 'client failed; closing its socket', {
      doc: logName?.(this.docName) ?? this.docName, code: metric, reason, ...(level === 'error' ? { error: String((err as Error)?.stack ?? err) } : {}),
    })
    this.close(code, reason)
  }
}
