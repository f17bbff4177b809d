/**
 * A document's presence (y-protocols awareness) as a relay keeps it: ephemeral, never stored,
 * and bounded (SECURITY.md, "Presence").
 *
 * An awareness update may name any client id, so left alone one message could add ten thousand
 * made-up states, or change and erase other people's cursors. Here each client id belongs to
 * whoever first announced it — a local client (its socket's session) or, for other regions'
 * clients, that region — and only its owner may change or remove it. A client owns at most
 * `perClient` ids, a document holds at most `perDocument` states, and a state is at most
 * `stateBytes` of JSON; entries past those bounds are dropped, the rest of the update applies.
 * When a state goes (its owner left, or y-protocols timed it out) its bookkeeping goes too, so
 * memory follows the states present, not every id ever seen.
 */
import * as Y from 'yjs'
import * as awarenessProtocol from 'y-protocols/awareness'
import { type AwarenessEntry, encodeAwarenessEntries, readAwarenessUpdate } from '@georelay/core'

/** A local client (its session object) or another region (its name). */
export type PresenceOwner = object | string

export interface PresenceLimits {
  /** Awareness client ids one local client may own in one document. */
  perClient: number
  /** Awareness states one document holds, from every client and region. */
  perDocument: number
  /** Bytes of one state's JSON. */
  stateBytes: number
}

export const DEFAULT_PRESENCE_LIMITS: PresenceLimits = { perClient: 4, perDocument: 1000, stateBytes: 16 * 1024 }

export class Presence {
  readonly awareness: awarenessProtocol.Awareness
  private readonly owners = new Map<number, PresenceOwner>()
  private readonly byOwner = new Map<PresenceOwner, Set<number>>()
  private readonly sizes = new Map<number, number>()
  private totalBytes = 0
  /** Entries dropped so far for breaking the rules above. */
  refused = 0

  constructor (private readonly limits: PresenceLimits) {
    this.awareness = new awarenessProtocol.Awareness(new Y.Doc({ gc: false }))
    this.awareness.setLocalState(null) // the relay itself is not a participant
    this.awareness.on('update', ({ removed }: { removed: number[] }, origin: unknown) => {
      if (origin === 'timeout') for (const id of removed) this.forget(id)
    })
  }

  /** About how many bytes every state takes encoded (what answering a query costs). */
  get bytes (): number {
    return this.totalBytes + this.sizes.size * 8
  }

  get size (): number {
    return this.awareness.states.size
  }

  /**
   * Applies what `owner` may change of an awareness update and returns the update as applied,
   * to send on (null when nothing of it applied).
   */
  apply (update: Uint8Array, owner: PresenceOwner): Uint8Array | null {
    const entries = readAwarenessUpdate(update)
    // New ids this update would add count against the bounds as they are taken.
    const added = new Set<number>()
    const kept = entries.filter(entry => {
      if (!this.admits(entry, owner, added.size)) return false
      if (!this.owners.has(entry.clientID)) added.add(entry.clientID)
      return true
    })
    this.refused += entries.length - kept.length
    if (kept.length === 0) return null
    const applied = kept.length === entries.length ? update : encodeAwarenessEntries(kept)
    awarenessProtocol.applyAwarenessUpdate(this.awareness, applied, owner)
    // y-protocols skips stale entries (and a first state at clock 0): follow what it kept.
    for (const entry of kept) {
      if (this.awareness.states.has(entry.clientID)) this.own(entry.clientID, owner, entry.bytes ?? 0)
      else this.forget(entry.clientID)
    }
    return applied
  }

  /** Removes every state `owner` set; returns the update that says so (null when none). */
  removeAll (owner: PresenceOwner): Uint8Array | null {
    const ids = [...(this.byOwner.get(owner) ?? [])].filter(id => this.awareness.states.has(id))
    if (ids.length === 0) {
      this.byOwner.delete(owner)
      return null
    }
    awarenessProtocol.removeAwarenessStates(this.awareness, ids, null)
    const update = awarenessProtocol.encodeAwarenessUpdate(this.awareness, ids)
    for (const id of ids) this.forget(id)
    return update
  }

  /** Every state local clients set, as one update (null when none): what other regions should see. */
  localUpdate (): Uint8Array | null {
    const ids = [...this.owners].filter(([, owner]) => typeof owner !== 'string').map(([id]) => id)
    return ids.length === 0 ? null : awarenessProtocol.encodeAwarenessUpdate(this.awareness, ids)
  }

  /** Every state, as one update (null when none). */
  fullUpdate (): Uint8Array | null {
    const ids = [...this.awareness.getStates().keys()]
    return ids.length === 0 ? null : awarenessProtocol.encodeAwarenessUpdate(this.awareness, ids)
  }

  destroy (): void {
    this.awareness.destroy()
  }

  private admits (entry: AwarenessEntry, owner: PresenceOwner, adding: number): boolean {
    if (entry.state !== null && (entry.bytes ?? 0) > this.limits.stateBytes) return false
    const current = this.owners.get(entry.clientID)
    if (current !== undefined) return current === owner
    // Erasing a state no one here holds changes nothing; erasing one another owns is refused above.
    if (entry.state === null) return false
    if (this.awareness.states.size + adding >= this.limits.perDocument) return false
    return typeof owner === 'string' || (this.byOwner.get(owner)?.size ?? 0) + adding < this.limits.perClient
  }

  private own (id: number, owner: PresenceOwner, bytes: number): void {
    this.owners.set(id, owner)
    let ids = this.byOwner.get(owner)
    if (ids === undefined) this.byOwner.set(owner, ids = new Set())
    ids.add(id)
    this.totalBytes += bytes - (this.sizes.get(id) ?? 0)
    this.sizes.set(id, bytes)
  }

  private forget (id: number): void {
    const owner = this.owners.get(id)
    if (owner !== undefined) {
      this.owners.delete(id)
      const ids = this.byOwner.get(owner)
      ids?.delete(id)
      if (ids?.size === 0) this.byOwner.delete(owner)
    }
    this.totalBytes -= this.sizes.get(id) ?? 0
    this.sizes.delete(id)
    // y-protocols keeps a clock for every id it ever saw; without this, made-up ids stay forever.
    if (!this.awareness.states.has(id)) this.awareness.meta.delete(id)
  }
}
