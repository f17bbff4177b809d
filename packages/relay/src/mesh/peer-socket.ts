/**
 * One WebSocket of a peer link, whichever side opened it: every frame is decoded and checked
 * (peer-message-checks.ts) before the link sees it, sends and receives are counted per peer,
 * and the time the peer was last heard is kept for the link timeout.
 */
import type WebSocket from 'ws'
import {
  CompactBatchReader, CompactBatchWriter, type PeerMessage, ProtocolError, closeReason, decodePeerMessage,
  encodePeerMessage,
} from '@georelay/core'
import type { RelayMetrics } from '../observability/index.js'
import { checkPeerMessage } from './peer-message-checks.js'

export interface PeerSocketHandler {
  message(message: PeerMessage): void
  /** A frame that is not a well-formed peer message: the link decides what to close. */
  malformed(reason: string): void
}

export class PeerSocket {
  lastHeard = Date.now()
  private readonly bytesIn: { inc(value: number): void }
  private readonly bytesOut: { inc(value: number): void }
  /** This connection's state for compact batches: read always, written once the peer said it reads them. */
  private readonly batchReader = new CompactBatchReader()
  private batchWriter: CompactBatchWriter | undefined

  constructor (readonly ws: WebSocket, readonly peer: string, metrics: RelayMetrics, handler: PeerSocketHandler) {
    this.bytesIn = metrics.peerBytesIn.labels({ peer })
    this.bytesOut = metrics.peerBytesOut.labels({ peer })
    ws.on('message', (data: Buffer, isBinary: boolean) => {
      this.lastHeard = Date.now()
      this.bytesIn.inc(data.length)
      let message: PeerMessage
      try {
        if (!isBinary) throw new ProtocolError('ERR_TEXT_FRAME', 'text frames are not part of the peer protocol')
        message = decodePeerMessage(new Uint8Array(data.buffer, data.byteOffset, data.byteLength), this.batchReader)
        checkPeerMessage(message)
      } catch (err) {
        return handler.malformed((err as Error).message)
      }
      handler.message(message)
    })
    ws.on('ping', () => { this.lastHeard = Date.now() })
    ws.on('pong', () => { this.lastHeard = Date.now() })
  }

  get open (): boolean {
    return this.ws.readyState === this.ws.OPEN
  }

  /** The peer's welcome said protocol `version`: from 2 on, batches go compact. */
  peerSpeaks (version: number): void {
    if (version >= 2) this.batchWriter ??= new CompactBatchWriter()
  }

  send (message: PeerMessage): boolean {
    if (!this.open) return false
    const frame = encodePeerMessage(message, this.batchWriter)
    this.ws.send(frame)
    this.bytesOut.inc(frame.length)
    return true
  }

  close (code: number, reason: string): void {
    this.ws.close(code, closeReason(reason))
  }

  terminate (): void {
    this.ws.terminate()
  }
}
