/**
 * One client's use of one document, whatever carries it: a stock y-websocket socket (one
 * document per socket) or a document on a multiplexed socket. It loads the document, answers
 * the sync, stores the client's updates durably before anyone else sees them, and removes the
 * client's presence when it leaves. Messages that arrive while the document loads wait, then
 * run in order.
 */
import * as awarenessProtocol from 'y-protocols/awareness'
import {
  ProtocolError, type YMessage, diffUpdate, encodeFrame, isEmptyUpdate, readAwarenessUpdate, validateStateVector, validateUpdate,
} from '@georelay/core'
import type { DocRegistry } from './doc-registry.js'
import type { DocClient, LiveDoc } from './live-doc.js'
import type { Route } from './placement.js'
import { RelayRefusal } from './relay-refusal.js'

/** Writes held while an active-passive document has no writer in reach, per session. */
const MAX_HELD_BYTES = 16 * 1024 * 1024

let nextId = 1

/** Checks every payload of a frame before any of it takes effect. */
export const validateMessages = (messages: YMessage[]): void => {
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

/** What carries a session's frames, and where its failures go. */
export interface SessionTransport {
  send(frame: Uint8Array): void
  /** The session failed (bad message, store error): the transport decides what to close. */
  fail(err: unknown): void
  /** The document belongs in another region (residency, or its active-passive writer). */
  redirect(region: string, url: string): void
  /** A write was refused (read-only session, document too large); the session stays open for reading. */
  refuseWrite(code: string, reason: string): void
}

/** Where documents belong (see placement.ts), as a session needs it. */
export interface SessionPlacement {
  route(docName: string): Route
  urlOf(region: string): string
  /** Calls back when the writer of the document's namespace changes (active-passive only); returns the unsubscribe. */
  onRoles(docName: string, listener: () => void): () => void
}

/** For relays and tests without namespaces: every document is served and written here. */
export const everywhere: SessionPlacement = { route: () => ({ kind: 'here' }), urlOf: () => '', onRoles: () => () => {} }

type Pending = { kind: 'messages', messages: YMessage[] } | { kind: 'write', update: Uint8Array, done: (seq: number) => void }

export class DocSession implements DocClient {
  readonly id = nextId++
  private doc: LiveDoc | null = null
  private pending: Pending[] | null = []
  private closed = false
  /** Awareness client ids this client announced, removed everywhere when it leaves. */
  private readonly awarenessIds = new Set<number>()
  /** Writes waiting for this region to become the document's writer (null: writes go through). */
  private held: { update: Uint8Array, done: (seq: number) => void }[] | null = null
  private heldBytes = 0
  private unwatch: () => void = () => {}
  /** A read-only client (its token says `ro`): it syncs and sees updates, its writes are refused. */
  readOnly = false

  constructor (
    readonly docName: string,
    private readonly registry: DocRegistry,
    private readonly transport: SessionTransport,
    private readonly placement: SessionPlacement = everywhere,
  ) {
    if (!this.follow(placement.route(docName))) return
    this.unwatch = placement.onRoles(docName, () => { if (!this.closed) this.follow(placement.route(docName)) })
    this.open().catch(err => transport.fail(err))
  }

  /** Applies a route; false when the session was sent elsewhere (and is closed). */
  private follow (route: Route): boolean {
    if (route.kind === 'elsewhere') {
      this.close()
      this.transport.redirect(route.region, this.placement.urlOf(route.region))
      return false
    }
    if (route.kind === 'hold') {
      this.held ??= []
      return true
    }
    const held = this.held
    this.held = null
    this.heldBytes = 0
    if (held !== null && this.doc !== null) for (const w of held) this.store(this.doc, w.update, w.done)
    else if (held !== null) for (const w of held) this.pending?.push({ kind: 'write', ...w })
    return true
  }

  send (frame: Uint8Array): void {
    this.transport.send(frame)
  }

  /** Handles validated messages of this document, in order. */
  receive (messages: YMessage[]): void {
    if (this.closed) return
    if (this.pending !== null) this.pending.push({ kind: 'messages', messages })
    else if (this.doc !== null) this.run(() => this.handle(this.doc as LiveDoc, messages))
  }

  /** Stores a validated update durably; `done` gets its local sequence number. */
  write (update: Uint8Array, done: (seq: number) => void): void {
    if (this.closed) return
    if (this.readOnly) return this.transport.refuseWrite('ERR_READ_ONLY', `read-only: this client may read "${this.docName}" but not write it`)
    if (this.pending !== null) this.pending.push({ kind: 'write', update, done })
    else if (this.doc !== null) this.store(this.doc, update, done)
  }

  /** The client left: drop its presence everywhere and let the document go idle. */
  close (): void {
    if (this.closed) return
    this.closed = true
    this.unwatch()
    // Held writes were never acknowledged: the client sends them again wherever it goes next.
    this.held = null
    const doc = this.doc
    if (doc === null) return // open() releases the document when its load finishes
    doc.clients.delete(this)
    doc.removeAwareness([...this.awarenessIds], true)
    this.registry.release(this.docName)
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
    const waiting = this.pending ?? []
    this.pending = null
    for (const item of waiting) {
      if (item.kind === 'messages') this.run(() => this.handle(doc, item.messages))
      else this.store(doc, item.update, item.done)
    }
  }

  /** A bug in handling one client's message must fail that session, not crash the relay. */
  private run (step: () => void): void {
    try {
      step()
    } catch (err) {
      this.transport.fail(err)
    }
  }

  private store (doc: LiveDoc, update: Uint8Array, done: (seq: number) => void): void {
    if (this.readOnly) return this.transport.refuseWrite('ERR_READ_ONLY', `read-only: this client may read "${this.docName}" but not write it`)
    if (this.held !== null) {
      this.heldBytes += update.length
      if (this.heldBytes > MAX_HELD_BYTES) {
        return this.transport.fail(new RelayRefusal('ERR_NO_WRITER', 1013, 'no region that may write this document is reachable, and too much is waiting; retry later'))
      }
      this.held.push({ update, done })
      return
    }
    doc.write(update, this).then(done, err => {
      if (err instanceof RelayRefusal && err.code === 'ERR_DOC_TOO_LARGE') this.transport.refuseWrite(err.code, err.message)
      else this.transport.fail(err)
    })
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
          if (!isEmptyUpdate(news)) this.store(doc, news, () => {})
          break
        }
        case 'sync-update':
          this.store(doc, message.update, () => {})
          break
        case 'awareness':
          doc.applyLocalAwareness(message.update, this)
          // y-protocols skips stale entries (and a first state at clock 0), so track what it kept.
          for (const { clientID } of readAwarenessUpdate(message.update)) {
            if (doc.awareness.states.has(clientID)) this.awarenessIds.add(clientID)
            else this.awarenessIds.delete(clientID)
          }
          break
        case 'query-awareness':
          this.send(encodeFrame({ type: 'awareness', update: awarenessProtocol.encodeAwarenessUpdate(doc.awareness, [...doc.awareness.getStates().keys()]) }))
          break
        case 'auth-denied':
          break // refused by validateMessages()
      }
    }
  }
}
