/**
 * One client's use of one document, whatever carries it: a stock y-websocket socket (one
 * document per socket) or a document on a multiplexed socket. It loads the document, answers
 * the sync, stores the client's updates durably before anyone else sees them, and removes the
 * client's presence when it leaves. Messages that arrive while the document loads wait (a
 * bounded amount), then run in order.
 */
import {
  type AckLevel, CloseCode, EMPTY_UPDATE, ProtocolError, type YMessage, diffUpdate, encodeFrame, isEmptyUpdate,
  readAwarenessUpdate, validateStateVector, validateUpdate,
} from '@georelay/core'
import { type DocRegistry, erasedRefusal } from './doc-registry.js'
import type { DocClient, LiveDoc } from './live-doc.js'
import { costOf, costOfBytes } from '../limits/index.js'
import type { Route } from '../placement/index.js'
import { RelayRefusal } from './relay-refusal.js'

/** Writes held while an active-passive document has no writer in reach, per session. */
const MAX_HELD_BYTES = 16 * 1024 * 1024
/** Messages that may wait for a document to load, per session. */
const MAX_PENDING_MESSAGES = 1024

/** An awareness update with no entries. */
const NO_PRESENCE = new Uint8Array([0])

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
  /** Work done for this client after its frame was charged (loading the document): charge it too. */
  charge(cost: number): void
  /**
   * A sync step 2 or update of the client's was stored durably (or had nothing new) — true —
   * or refused — false. Hocuspocus providers count their unsynced changes by this answer.
   */
  stored?(applied: boolean): void
}

/** A write passed on to the writer: up to which level, and who hears each level reached. */
export interface ForwardLevels { level: AckLevel, durable: (level: AckLevel) => void }

/** What the writer said of a write passed on to it: durable at a level, or refused. */
export type ForwardedResult = { level: AckLevel } | { error: Error }

/** Where documents belong (see placement.ts), as a session needs it. */
export interface SessionPlacement {
  route(docName: string): Route
  urlOf(region: string): string
  /**
   * Passes a write of a readable standby's client to the document's writer; `result` is called
   * for each level it becomes durable at, up to `level`, or once with the error.
   */
  forwardWrite?(
    writer: string, docName: string, update: Uint8Array, level: AckLevel, result: (r: ForwardedResult) => void,
  ): void
  /** Calls back when the writer of the document's namespace changes (active-passive only); returns the unsubscribe. */
  onRoles(docName: string, listener: () => void): () => void
}

/** For relays and tests without namespaces: every document is served and written here. */
export const everywhere: SessionPlacement = { route: () => ({ kind: 'here' }), urlOf: () => '', onRoles: () => () => {} }

export interface DocSessionOptions {
  registry: DocRegistry
  transport: SessionTransport
  placement?: SessionPlacement
  /** Bytes that may wait for the document to load (beyond it the session fails with 4429). */
  maxPendingBytes?: number
  /**
   * Who opens the sync. `y-websocket` (default): the relay sends its step 1 as the document
   * opens, as the stock server does. `hocuspocus`: the relay waits for the client's step 1 and
   * answers it with step 2, then its own step 1, as @hocuspocus/server does.
   */
  syncStyle?: 'y-websocket' | 'hocuspocus'
}

type Pending = { kind: 'messages', messages: YMessage[] } | { kind: 'write', update: Uint8Array, done: (seq: number) => void }

const bytesOf = (messages: YMessage[]): number =>
  messages.reduce((n, m) => n + ('update' in m ? m.update.length : 'stateVector' in m ? m.stateVector.length : 1), 0)

const sameBytes = (a: Uint8Array, b: Uint8Array): boolean =>
  a.length === b.length && a.every((byte, i) => byte === b[i])

export class DocSession implements DocClient {
  readonly id = nextId++
  private doc: LiveDoc | null = null
  private pending: Pending[] | null = []
  private pendingBytes = 0
  private closed = false
  /** The writer that this readable standby passes writes on to (null: writes are stored here). */
  private forwardTo: string | null = null
  /** Writes waiting for this region to become the document's writer (null: writes go through). */
  private held: { update: Uint8Array, done: (seq: number) => void }[] | null = null
  private heldBytes = 0
  private unwatch: () => void = () => {}
  /** The state vector last answered, at which document version: a repeat of it gets an empty answer. */
  private answered: { stateVector: Uint8Array, version: number } | null = null
  private readonly registry: DocRegistry
  private readonly transport: SessionTransport
  private readonly placement: SessionPlacement
  private readonly maxPendingBytes: number
  private readonly syncStyle: 'y-websocket' | 'hocuspocus'
  /** A read-only client (its token says `ro`): it syncs and sees updates, its writes are refused. */
  readOnly = false

  constructor (readonly docName: string, options: DocSessionOptions) {
    this.registry = options.registry
    this.transport = options.transport
    this.placement = options.placement ?? everywhere
    this.maxPendingBytes = options.maxPendingBytes ?? Number.POSITIVE_INFINITY
    this.syncStyle = options.syncStyle ?? 'y-websocket'
    const placement = this.placement
    if (!this.follow(placement.route(docName))) return
    this.unwatch = placement.onRoles(docName, () => { if (!this.closed) this.follow(placement.route(docName)) })
    this.open().catch(err => this.transport.fail(err))
  }

  /** What handling these messages costs in rate-limit tokens (see message-cost.ts). */
  costOf (messages: readonly YMessage[]): number {
    return costOf(messages, { docBytes: this.doc?.byteSize ?? 0, awarenessBytes: this.doc?.presence.bytes ?? 0 })
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
      this.forwardTo = null
      return true
    }
    this.forwardTo = route.kind === 'read-here' ? route.region : null
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
    if (this.pending !== null) this.wait({ kind: 'messages', messages }, bytesOf(messages))
    else if (this.doc !== null) this.run(() => this.handle(this.doc as LiveDoc, messages))
  }

  /**
   * Stores a validated update durably; `done` gets its local sequence number. At a readable
   * standby the write goes to the writer instead, and `levels` (when given, else `done` with 0
   * at `local`) hears each level the writer says it is durable at, up to `level`.
   */
  write (update: Uint8Array, done: (seq: number) => void, levels?: ForwardLevels): void {
    if (this.closed) return
    // While the document loads, the refusal waits behind the sync: a client then hears its
    // step 2 first, and knows that the document stays open (a refused open has no step 2).
    if (this.readOnly && this.pending === null) return this.transport.refuseWrite('ERR_READ_ONLY', `read-only: this client may read "${this.docName}" but not write it`)
    if (this.forwardTo !== null && this.pending === null) return this.forward(this.forwardTo, update, done, levels)
    if (this.pending !== null) this.wait({ kind: 'write', update, done }, update.length)
    else if (this.doc !== null) this.store(this.doc, update, done)
  }

  /** Whether this session passes its writes on to the writer (a readable standby). */
  get forwarding (): boolean {
    return this.forwardTo !== null
  }

  private forward (
    writer: string, update: Uint8Array, done: (seq: number) => void, levels?: ForwardLevels,
  ): void {
    const forwardWrite = this.placement.forwardWrite
    if (forwardWrite === undefined) {
      return this.transport.fail(new RelayRefusal('ERR_NO_WRITER', CloseCode.TryAgainLater, 'this region cannot pass writes on; retry later'))
    }
    forwardWrite.call(this.placement, writer, this.docName, update, levels?.level ?? 'local', result => {
      if (this.closed) return
      // Not stored at the writer: the client still holds the edit, and sends it again when it reopens.
      if ('error' in result) return this.transport.fail(result.error)
      if (levels !== undefined) levels.durable(result.level)
      else if (result.level === 'local') done(0)
    })
  }

  /** The document was erased: the session ends, and its transport says why (4410). */
  erased (refusal: Error): void {
    if (this.closed) return
    this.close()
    this.transport.fail(refusal)
  }

  /** The client left: drop its presence everywhere and let the document go idle. */
  close (): void {
    if (this.closed) return
    this.closed = true
    this.unwatch()
    // Held and pending writes were never acknowledged: the client sends them again wherever it goes next.
    this.held = null
    this.pending = null
    const doc = this.doc
    if (doc === null) return // open() releases the document when its load finishes
    doc.clients.delete(this)
    doc.removeClient(this)
    this.registry.release(this.docName)
  }

  /** Bounded: a client cannot park more than a message's worth while the document loads. */
  private wait (item: Pending, bytes: number): void {
    const pending = this.pending as Pending[]
    this.pendingBytes += bytes
    if (pending.length >= MAX_PENDING_MESSAGES || this.pendingBytes > this.maxPendingBytes) {
      this.close()
      this.transport.fail(new RelayRefusal('ERR_TOO_MUCH_PENDING', CloseCode.RateLimited, 'too much arrived before the document finished loading; wait for the sync, then send'))
      return
    }
    pending.push(item)
  }

  private async open (): Promise<void> {
    const doc = await this.registry.acquire(this.docName)
    if (this.closed) {
      this.registry.release(this.docName)
      return
    }
    // Erased between its load and now: nothing of it is served.
    if (this.registry.isErased(this.docName)) {
      this.registry.release(this.docName)
      this.closed = true
      return this.transport.fail(erasedRefusal(this.docName))
    }
    this.doc = doc
    doc.clients.add(this)
    // The first client to need a document pays for reading it from the store.
    if (!doc.loadCharged) {
      doc.loadCharged = true
      this.transport.charge(costOfBytes(doc.byteSize))
    }
    // The relay opens the sync too, as the stock y-websocket server does.
    if (this.syncStyle === 'y-websocket') this.send(encodeFrame({ type: 'sync-step1', stateVector: doc.stateVector() }))
    const presence = doc.presence.fullUpdate()
    if (presence !== null) this.send(encodeFrame({ type: 'awareness', update: presence }))
    const waiting = this.pending ?? []
    this.pending = null
    this.pendingBytes = 0
    for (const item of waiting) {
      if (this.closed) return
      if (item.kind === 'messages') {
        // Questions were priced before the document's size was known.
        this.transport.charge(this.costOf(item.messages) - item.messages.length)
        this.run(() => this.handle(doc, item.messages))
      } else {
        this.store(doc, item.update, item.done)
      }
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

  /** A client's sync message: stored, and answered with `stored` if the transport wants it. */
  private storeSynced (doc: LiveDoc, update: Uint8Array): void {
    const stored = this.transport.stored
    if (stored === undefined) return this.store(doc, update, () => {})
    this.store(doc, update, () => stored.call(this.transport, true), () => stored.call(this.transport, false))
  }

  private store (doc: LiveDoc, update: Uint8Array, done: (seq: number) => void, refused: () => void = () => {}): void {
    if (this.forwardTo !== null && !this.readOnly) return this.forward(this.forwardTo, update, done)
    if (this.readOnly) {
      this.transport.refuseWrite('ERR_READ_ONLY', `read-only: this client may read "${this.docName}" but not write it`)
      return refused()
    }
    if (this.held !== null) {
      this.heldBytes += update.length
      if (this.heldBytes > MAX_HELD_BYTES) {
        return this.transport.fail(new RelayRefusal('ERR_NO_WRITER', CloseCode.TryAgainLater, 'no region that may write this document is reachable, and too much is waiting; retry later'))
      }
      this.held.push({ update, done })
      return
    }
    doc.write(update, this).then(done, err => {
      if (err instanceof RelayRefusal && err.code === 'ERR_DOC_TOO_LARGE') {
        this.transport.refuseWrite(err.code, err.message)
        refused()
      } else {
        this.transport.fail(err)
      }
    })
  }

  /** The answer to a sync step 1: what the relay has that the state vector lacks. */
  private answer (doc: LiveDoc, stateVector: Uint8Array): Uint8Array {
    // The same question on an unchanged document: this client has the answer already.
    const unchanged = this.answered !== null && this.answered.version === doc.version
      && sameBytes(this.answered.stateVector, stateVector)
    if (unchanged) return EMPTY_UPDATE
    this.answered = { stateVector, version: doc.version }
    return diffUpdate(doc.state(), stateVector)
  }

  private handle (doc: LiveDoc, messages: YMessage[]): void {
    for (const message of messages) {
      if (this.closed) return
      switch (message.type) {
        case 'sync-step1':
          this.send(encodeFrame({ type: 'sync-step2', update: this.answer(doc, message.stateVector) }))
          if (this.syncStyle === 'hocuspocus') this.send(encodeFrame({ type: 'sync-step1', stateVector: doc.stateVector() }))
          break
        case 'sync-step2': {
          // A reconnecting client sends everything the relay's state vector lacks by its reckoning;
          // strip what the relay already has so that only news is stored and forwarded.
          const news = diffUpdate(message.update, doc.stateVector())
          if (!isEmptyUpdate(news)) this.storeSynced(doc, news)
          else this.transport.stored?.(true)
          break
        }
        case 'sync-update':
          this.storeSynced(doc, message.update)
          break
        case 'awareness':
          doc.applyLocalAwareness(message.update, this)
          break
        case 'query-awareness':
          // Answered even when empty, as the stock y-websocket server does.
          this.send(encodeFrame({ type: 'awareness', update: doc.presence.fullUpdate() ?? NO_PRESENCE }))
          break
        case 'auth-denied':
          break // refused by validateMessages()
      }
    }
  }
}
