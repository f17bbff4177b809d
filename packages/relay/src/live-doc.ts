/**
 * A document while clients use it. The relay keeps it as encoded Yjs updates, never as a
 * `Y.Doc`: answering a sync needs only the merged state, its state vector and `diffUpdate`.
 * Every write is appended durably before anyone else sees it.
 */
import * as Y from 'yjs'
import { Awareness } from 'y-protocols/awareness'
import { type DocStore, encodeFrame, mergeUpdates, stateVectorOf } from '@georelay/core'
import type { RelayMetrics } from './metrics.js'

/** Someone a document sends frames to: a client socket today, a peer link later. */
export interface DocClient {
  readonly id: number
  send(frame: Uint8Array): void
}

/** Past this many unmerged updates the state is merged eagerly, to bound memory and work. */
const MAX_UNMERGED = 256

export class LiveDoc {
  readonly clients = new Set<DocClient>()
  /** Ephemeral presence; never stored. */
  readonly awareness: Awareness
  private parts: Uint8Array[]
  private stateVectorCache: Uint8Array | null = null
  private writesInFlight = 0

  constructor (
    readonly name: string,
    state: Uint8Array,
    private readonly store: DocStore,
    private readonly metrics: RelayMetrics,
  ) {
    this.parts = [state]
    this.awareness = new Awareness(new Y.Doc({ gc: false }))
    this.awareness.setLocalState(null) // the relay itself is not a participant
  }

  /** Everything durable of the document, as one update. */
  state (): Uint8Array {
    if (this.parts.length > 1) this.parts = [mergeUpdates(this.parts)]
    return this.parts[0] as Uint8Array
  }

  stateVector (): Uint8Array {
    this.stateVectorCache ??= stateVectorOf(this.state())
    return this.stateVectorCache
  }

  /** True while an append is in flight: the document must not be released yet. */
  get busy (): boolean {
    return this.writesInFlight > 0
  }

  /**
   * Appends an update durably, then sends it to every client but `from`. Appends resolve in
   * the order they were made, so clients see one writer's updates in order.
   */
  async write (update: Uint8Array, from: DocClient | null, source: 'client' | 'peer'): Promise<void> {
    this.writesInFlight++
    const end = this.metrics.storeAppendSeconds.startTimer()
    try {
      await this.store.append(this.name, update)
    } finally {
      this.writesInFlight--
      end()
    }
    this.metrics.updatesIn.inc({ source })
    this.metrics.updateBytesIn.inc({ source }, update.length)
    this.parts.push(update)
    this.stateVectorCache = null
    if (this.parts.length > MAX_UNMERGED) this.state()
    this.broadcast(encodeFrame({ type: 'sync-update', update }), from)
  }

  /** Sends one frame to every client but `except`: encoded once, the same bytes for all. */
  broadcast (frame: Uint8Array, except: DocClient | null): void {
    for (const client of this.clients) if (client !== except) client.send(frame)
  }

  destroy (): void {
    this.awareness.destroy()
  }
}
