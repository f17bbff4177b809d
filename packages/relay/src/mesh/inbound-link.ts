/**
 * The accepting side of a peer's link: it stores what the peer pushes, in order, and
 * acknowledges each batch once it is durable, with this relay's marks.
 */
import type WebSocket from 'ws'
import {
  CloseCode, PEER_PROTOCOL_VERSION, type PeerMessage, ProtocolError, closeReason, decodePeerMessage, encodePeerMessage, stateVectorOf,
} from '@georelay/core'
import { checkPeerMessage } from './peer-message-checks.js'
import type { Mesh } from './mesh.js'

export class PeerInbound {
  /** Batches, catch-ups and state-vector requests are answered in arrival order. */
  private chain: Promise<void> = Promise.resolve()
  lastHeard = Date.now()
  private failed = false

  constructor (private readonly mesh: Mesh, readonly ws: WebSocket, readonly region: string) {
    ws.on('message', (data: Buffer, isBinary: boolean) => {
      this.lastHeard = Date.now()
      mesh.metrics.peerBytesIn.inc({ peer: region }, data.length)
      let message: PeerMessage
      try {
        if (!isBinary) throw new ProtocolError('ERR_TEXT_FRAME', 'text frames are not part of the peer protocol')
        message = decodePeerMessage(new Uint8Array(data.buffer, data.byteOffset, data.byteLength))
        checkPeerMessage(message)
      } catch (err) {
        return this.close(CloseCode.MalformedMessage, (err as Error).message)
      }
      this.handle(message)
    })
    ws.on('ping', () => { this.lastHeard = Date.now() })
    mesh.log.startOver()
    this.send({ type: 'welcome', version: PEER_PROTOCOL_VERSION, region: mesh.region, have: mesh.log.marks() })
    this.send({ type: 'policy', rules: mesh.placement.canonical })
  }

  get open (): boolean {
    return this.ws.readyState === this.ws.OPEN
  }

  send (message: PeerMessage): boolean {
    if (!this.open) return false
    const frame = encodePeerMessage(message)
    this.ws.send(frame)
    this.mesh.metrics.peerBytesOut.inc({ peer: this.region }, frame.length)
    return true
  }

  close (code: number, reason: string): void {
    this.mesh.logger.log('warn', 'closing inbound peer link', { peer: this.region, code, reason })
    this.ws.close(code, closeReason(reason))
  }

  /**
   * Queues a step after the earlier ones. Once a step failed (a write the store refused),
   * nothing more is acknowledged on this link: the peer redials and resends from the marks
   * that were durable.
   */
  private enqueue (step: () => Promise<void>): void {
    this.chain = this.chain.then(() => this.failed || !this.open ? undefined : step()).catch(err => {
      this.failed = true
      this.close(1011, `could not store replicated updates: ${(err as Error).message}`)
    })
  }

  private handle (message: PeerMessage): void {
    const { log, registry, metrics, placement } = this.mesh
    switch (message.type) {
      case 'batch': {
        // After a failure nothing more is taken from this link: the peer resends from the marks.
        if (this.failed || !this.open) return
        // Duplicate checks run now, in arrival order; the appends complete in that order too.
        const appends: Promise<void>[] = []
        for (const entry of message.entries) {
          if (!placement.allowsHere(entry.docName)) {
            this.mesh.refuse(this.region, 'update')
            continue
          }
          const append = log.appendReplicated(entry.docName, entry.update, entry.origin, entry.originSeq)
          if (append !== null) appends.push(append.then(() => registry.applyDurable(entry.docName, entry.update)))
        }
        metrics.peerUpdatesIn.inc({ peer: this.region }, appends.length)
        return this.enqueue(async () => {
          await Promise.all(appends)
          for (const [origin, seq] of Object.entries(message.upTo)) await log.recordHave(origin, seq)
          this.send({ type: 'ack', have: log.marks() })
        })
      }
      case 'catch-up': {
        if (this.failed || !this.open) return
        if (!placement.allowsHere(message.docName)) return this.mesh.refuse(this.region, 'catch-up')
        const append = log.appendLocal(message.docName, message.update).then(() => registry.applyDurable(message.docName, message.update))
        return this.enqueue(() => append)
      }
      case 'sv-request':
        return this.enqueue(async () => {
          // Only documents that may live here and go to the asking peer are looked up: a state
          // vector says the document exists, and which clients wrote it. The others are left
          // out of the reply, so the peer sends nothing for them.
          const docs: { docName: string, stateVector: Uint8Array }[] = []
          for (const docName of message.docNames) {
            if (placement.allowsHere(docName) && placement.mayReceive(docName, this.region)) {
              docs.push({ docName, stateVector: stateVectorOf(await registry.stateOf(docName)) })
            } else {
              this.mesh.refuse(this.region, 'sv-request')
            }
          }
          this.send({ type: 'sv-reply', docs })
        })
      case 'link-state':
      case 'awareness':
        return this.mesh.handleControl(message, this.region)
      case 'policy':
        placement.setPeerRules(this.region, message.rules)
        return
      default:
        return this.close(CloseCode.MalformedMessage, `unexpected ${message.type} on an inbound link`)
    }
  }
}
