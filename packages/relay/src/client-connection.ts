/**
 * One socket of a stock y-websocket client on `ws://HOST:PORT/<docName>`.
 *
 * A frame is decoded and validated whole as soon as it arrives: if any message in it is
 * malformed the socket closes with 4400 and nothing of the frame is stored or forwarded.
 * Frames that arrive while the document loads wait in a queue, then run in order.
 */
import type { RawData, WebSocket } from 'ws'
import * as awarenessProtocol from 'y-protocols/awareness'
import {
  CloseCode, ProtocolError, type YMessage, closeReason, decodeFrame, diffUpdate, encodeFrame, isEmptyUpdate,
  readAwarenessUpdate, StoreError, validateStateVector, validateUpdate,
} from '@georelay/core'
import type { DocClient, LiveDoc } from './live-doc.js'
import type { DocRegistry } from './doc-registry.js'
import type { Logger } from './logger.js'
import type { RelayMetrics } from './metrics.js'

/** Close code for a write the relay could not store: the client keeps it and resends later. */
const CLOSE_INTERNAL_ERROR = 1011

let nextId = 1

const toBytes = (data: RawData): Uint8Array => {
  const buffer = Array.isArray(data) ? Buffer.concat(data) : Buffer.isBuffer(data) ? data : Buffer.from(data)
  return new Uint8Array(buffer.buffer, buffer.byteOffset, buffer.byteLength)
}

/** Checks every payload of a frame; the awareness entries are kept to track who set them. */
const validate = (messages: YMessage[]): void => {
  for (const message of messages) {
    switch (message.type) {
      case 'sync-step1': validateStateVector(message.stateVector); break
      case 'sync-step2': case 'sync-update': validateUpdate(message.update); break
      case 'awareness': readAwarenessUpdate(message.update); break
      case 'auth-denied': throw new ProtocolError('ERR_UNEXPECTED_MESSAGE', 'auth messages go from relay to client, not the other way')
      case 'query-awareness': break
    }
  }
}

export class ClientConnection implements DocClient {
  readonly id = nextId++
  private doc: LiveDoc | null = null
  private queue: YMessage[][] | null = []
  private closed = false
  /** Awareness client ids this socket has announced, removed everywhere when it leaves. */
  private readonly awarenessIds = new Set<number>()

  constructor (
    private readonly ws: WebSocket,
    readonly docName: string,
    private readonly registry: DocRegistry,
    private readonly metrics: RelayMetrics,
    private readonly logger: Logger,
  ) {
    metrics.connections.inc({ endpoint: 'y-websocket' })
    ws.on('message', (data, isBinary) => this.receive(data, isBinary))
    ws.on('close', () => {
      try {
        this.onClose()
      } catch (err) {
        logger.log('error', 'cleanup of a closed client failed', { doc: docName, client: this.id, error: String((err as Error)?.stack ?? err) })
      }
    })
    ws.on('error', err => logger.log('debug', 'client socket error', { doc: docName, client: this.id, error: err.message }))
    this.open().catch(err => this.fail(err))
  }

  send (frame: Uint8Array): void {
    if (this.ws.readyState !== this.ws.OPEN) return
    this.ws.send(frame)
    this.metrics.bytesOut.inc({ target: 'client' }, frame.length)
  }

  /** Closes the socket with a code and a reason in words. */
  close (code: number, reason: string): void {
    if (this.ws.readyState === this.ws.OPEN || this.ws.readyState === this.ws.CONNECTING) this.ws.close(code, closeReason(reason))
  }

  private async open (): Promise<void> {
    const doc = await this.registry.acquire(this.docName)
    if (this.closed) {
      this.registry.release(this.docName)
      return
    }
    this.doc = doc
    doc.clients.add(this)
    // The relay opens the sync too, as the stock y-websocket server does.
    this.send(encodeFrame({ type: 'sync-step1', stateVector: doc.stateVector() }))
    const states = doc.awareness.getStates()
    if (states.size > 0) this.send(encodeFrame({ type: 'awareness', update: awarenessProtocol.encodeAwarenessUpdate(doc.awareness, [...states.keys()]) }))
    const waiting = this.queue ?? []
    this.queue = null
    for (const messages of waiting) this.handleSafely(doc, messages)
  }

  private receive (data: RawData, isBinary: boolean): void {
    if (this.closed) return
    let messages: YMessage[]
    try {
      if (!isBinary) throw new ProtocolError('ERR_TEXT_FRAME', 'text frames are not part of the protocol: send binary frames')
      messages = decodeFrame(toBytes(data))
      validate(messages)
    } catch (err) {
      return this.fail(err)
    }
    if (this.queue !== null) this.queue.push(messages)
    else if (this.doc !== null) this.handleSafely(this.doc, messages)
  }

  /** A bug in handling one client's message must close that socket, not crash the relay. */
  private handleSafely (doc: LiveDoc, messages: YMessage[]): void {
    try {
      this.handle(doc, messages)
    } catch (err) {
      this.fail(err)
    }
  }

  private handle (doc: LiveDoc, messages: YMessage[]): void {
    for (const message of messages) {
      switch (message.type) {
        case 'sync-step1':
          this.send(encodeFrame({ type: 'sync-step2', update: diffUpdate(doc.state(), message.stateVector) }))
          break
        case 'sync-step2': {
          // A reconnecting client sends everything the relay's state vector lacks by its reckoning;
          // strip what the relay already has so that only news is stored and forwarded.
          const news = diffUpdate(message.update, doc.stateVector())
          if (!isEmptyUpdate(news)) this.write(doc, news)
          break
        }
        case 'sync-update':
          this.write(doc, message.update)
          break
        case 'awareness':
          this.applyAwareness(doc, message.update)
          break
        case 'query-awareness':
          this.send(encodeFrame({ type: 'awareness', update: awarenessProtocol.encodeAwarenessUpdate(doc.awareness, [...doc.awareness.getStates().keys()]) }))
          break
        case 'auth-denied':
          break // refused by validate()
      }
    }
  }

  private write (doc: LiveDoc, update: Uint8Array): void {
    doc.write(update, this).catch(err => this.fail(err))
  }

  private applyAwareness (doc: LiveDoc, update: Uint8Array): void {
    doc.applyLocalAwareness(update, this)
    // y-protocols skips stale entries (and a first state at clock 0), so track what it kept.
    for (const { clientID } of readAwarenessUpdate(update)) {
      if (doc.awareness.states.has(clientID)) this.awarenessIds.add(clientID)
      else this.awarenessIds.delete(clientID)
    }
  }

  private fail (err: unknown): void {
    if (err instanceof ProtocolError) {
      this.metrics.rejected.inc({ code: err.code })
      this.logger.log('info', 'client message refused', { doc: this.docName, client: this.id, code: err.code, reason: err.message })
      return this.close(err.closeCode, err.message)
    }
    if (err instanceof StoreError) {
      this.metrics.storeErrors.inc({ op: 'append' })
      this.logger.log('error', 'could not store a client update', { doc: this.docName, client: this.id, code: err.code, error: err.message })
      return this.close(CLOSE_INTERNAL_ERROR, `the relay could not store your update (${err.code}); your client keeps it, reconnect later`)
    }
    this.logger.log('error', 'client connection failed', { doc: this.docName, client: this.id, error: String((err as Error)?.stack ?? err) })
    this.close(CLOSE_INTERNAL_ERROR, 'internal relay error; reconnect later')
  }

  private onClose (): void {
    if (this.closed) return
    this.closed = true
    this.metrics.connections.dec({ endpoint: 'y-websocket' })
    const doc = this.doc
    if (doc === null) return // open() releases the document when its load finishes
    doc.clients.delete(this)
    doc.removeAwareness([...this.awarenessIds], true)
    this.registry.release(this.docName)
  }
}
