/**
 * A peer's link to this relay, the acceptor's side of the peer protocol: it answers with this
 * relay's `welcome` (its marks) and `policy`, stores what the peer pushes in arrival order, and
 * acknowledges each batch once it is durable, with this relay's marks. Once a store write
 * failed nothing more is acknowledged on the link: the peer redials and resends from the marks
 * that were durable, so no hole is left behind them.
 */
import type WebSocket from 'ws'
import { CloseCode, PEER_PROTOCOL_VERSION, type PeerMessage, stateVectorOf } from '@georelay/core'
import { type LinkContext, isControl } from './link-context.js'
import { PeerSocket } from './peer-socket.js'

export class InboundLink {
  private readonly socket: PeerSocket
  /** Batches, catch-ups and state-vector requests are answered in arrival order. */
  private chain: Promise<void> = Promise.resolve()
  private failed = false
  private readonly updatesIn: { inc(value: number): void }

  constructor (private readonly ctx: LinkContext, readonly ws: WebSocket, readonly region: string) {
    this.updatesIn = ctx.metrics.peerUpdatesIn.labels({ peer: region })
    this.socket = new PeerSocket(ws, region, ctx.metrics, {
      message: message => this.handle(message),
      malformed: reason => this.close(CloseCode.MalformedMessage, reason),
    })
    ctx.log.startOver()
    // On a store shared by a region's nodes, a sibling may have stored what this peer sent it
    // over an earlier link: the welcome's marks come from the store, so the peer resumes there.
    this.enqueue(async () => {
      await ctx.log.refresh()
      this.send({ type: 'welcome', version: PEER_PROTOCOL_VERSION, region: ctx.region, have: ctx.log.marks() })
      this.send({ type: 'policy', rules: ctx.placement.canonical })
    }, 'could not read this region\'s marks from the shared store')
  }

  get open (): boolean {
    return this.socket.open
  }

  get lastHeard (): number {
    return this.socket.lastHeard
  }

  send (message: PeerMessage): boolean {
    return this.socket.send(message)
  }

  close (code: number, reason: string): void {
    this.ctx.logger.log('warn', 'closing inbound peer link', { peer: this.region, code, reason })
    this.socket.close(code, reason)
  }

  /** Queues a step after the earlier ones; after a failure, none runs. */
  private enqueue (step: () => Promise<void>, failure = 'could not store replicated updates'): void {
    this.chain = this.chain.then(() => this.failed || !this.open ? undefined : step()).catch(err => {
      this.failed = true
      this.close(CloseCode.InternalError, `${failure}: ${(err as Error).message}`)
    })
  }

  private handle (message: PeerMessage): void {
    if (isControl(message)) return this.ctx.control(message, this.region)
    const { log, documents, placement } = this.ctx
    switch (message.type) {
      case 'batch': {
        if (this.failed || !this.open) return
        // Duplicate checks run now, in arrival order; the appends complete in that order too.
        const appends: Promise<void>[] = []
        for (const entry of message.entries) {
          if (!placement.allowsHere(entry.docName)) {
            this.ctx.refuse(this.region, 'update')
            continue
          }
          // Its entries still count for the marks below: the peer resends nothing.
          if (documents.isErased(entry.docName)) {
            this.ctx.metrics.erasedDropped.inc()
            continue
          }
          const append = log.appendReplicated(entry.docName, entry.update, entry.origin, entry.originSeq)
          if (append !== null) appends.push(append.then(() => documents.applyDurable(entry.docName, entry.update)))
        }
        this.updatesIn.inc(appends.length)
        return this.enqueue(async () => {
          await Promise.all(appends)
          for (const [origin, seq] of Object.entries(message.upTo)) await log.recordHave(origin, seq)
          this.send({ type: 'ack', have: log.marks() })
        })
      }
      case 'catch-up': {
        if (this.failed || !this.open) return
        if (!placement.allowsHere(message.docName)) return this.ctx.refuse(this.region, 'catch-up')
        if (documents.isErased(message.docName)) return this.ctx.metrics.erasedDropped.inc()
        const append = log.appendLocal(message.docName, message.update)
          .then(() => documents.applyDurable(message.docName, message.update))
        return this.enqueue(() => append)
      }
      case 'sv-request':
        return this.enqueue(async () => {
          // Only documents that may live here and go to the asking peer are looked up: a state
          // vector says the document exists, and which clients wrote it. The others are left
          // out of the reply, so the peer sends nothing for them.
          const docs: { docName: string, stateVector: Uint8Array }[] = []
          for (const docName of message.docNames) {
            if (documents.isErased(docName)) continue
            if (placement.allowsHere(docName) && placement.mayReceive(docName, this.region)) {
              docs.push({ docName, stateVector: stateVectorOf(await documents.stateOf(docName)) })
            } else {
              this.ctx.refuse(this.region, 'sv-request')
            }
          }
          this.send({ type: 'sv-reply', docs })
        })
      case 'policy':
        placement.setPeerRules(this.region, message.rules)
        return
      default:
        return this.close(CloseCode.MalformedMessage, `unexpected ${message.type} on an inbound link`)
    }
  }
}
