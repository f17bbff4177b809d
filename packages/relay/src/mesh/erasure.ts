/**
 * Erasure across regions (DELETE /v1/docs/{name}): a tombstone that every region allowed to
 * hold the document applies — its store deletes the log and snapshot and keeps the tombstone,
 * its clients are closed with 4410, its presence goes — and confirms.
 *
 * Tombstones travel on any link, as control messages: the region where the erasure was asked
 * sends `erase` to every neighbour that may hold the document; a region that applies a new one
 * confirms with `erased` to the origin (or, when it cannot reach it, to the sender) and passes
 * it on to its other neighbours. When a link comes up each side sends every tombstone the other
 * may hold (also none: that says "this is all"), so a region that was down or cut off learns of
 * erasures on return, and the origin's confirmations are rebuilt after its own restart. A name
 * restricted to some regions is only ever sent to them (residency: the name is data too).
 */
import type { PeerMessage, Tombstone } from '@georelay/core'
import type { DocRegistry, ErasedDocs } from '../docs/index.js'
import type { Logger, RelayMetrics } from '../observability/index.js'
import type { ReplicationLog } from '../replication/index.js'
import type { LinkPlacement } from './link-context.js'

/** Tombstones per `erase` message sent on link-up. */
const TOMBSTONES_PER_MESSAGE = 256

export type ErasureState = 'erased' | 'pending'

export interface ErasureStatus {
  docName: string
  /** When the erasure was asked for, at its origin (ms since the epoch). */
  at: number
  origin: string
  /** Every region that may hold the document: whether it confirmed the erasure. */
  regions: Record<string, ErasureState>
  /** True once every one of them did. */
  complete: boolean
}

export interface ErasureOptions {
  region: string
  erased: ErasedDocs
  log: ReplicationLog
  registry: DocRegistry
  placement: LinkPlacement & { allowedRegions(docName: string): string[] }
  metrics: RelayMetrics
  logger: Logger
  logName(name: string): string
  /** Sends on whichever link to the region is up; false when none is. */
  send(region: string, message: PeerMessage): boolean
  /** Regions with a link up now. */
  neighbours(): string[]
  /** An erasure asked in this region was applied here (webhooks). */
  onErased?(docName: string): void
}

export class Erasure {
  /** Per erased document, the regions known to have purged it (this one once it has). */
  private readonly confirmed = new Map<string, Set<string>>()
  /** Erasures being applied here: a second request waits for the first. */
  private readonly applying = new Map<string, Promise<void>>()

  constructor (private readonly o: ErasureOptions) {
    // What the store erased before this start is purged here already.
    for (const tombstone of o.erased.all()) this.confirm(tombstone.docName, o.region)
  }

  /** Erases a document everywhere, asked here; resolves once it is purged in this region. */
  async erase (docName: string): Promise<ErasureStatus> {
    const tombstone = this.o.erased.get(docName) ?? { docName, at: Date.now(), origin: this.o.region }
    await this.apply(tombstone, true)
    this.spread(tombstone, null)
    return this.status(docName) as ErasureStatus
  }

  /**
   * Applies the tombstones in the store this relay does not know of: a sibling node of the
   * region wrote them. Erasing again also deletes what this node stored of the document before
   * it knew.
   */
  async syncFromStore (): Promise<void> {
    for (const tombstone of await this.o.log.store.readErased()) {
      if (!this.o.erased.has(tombstone.docName)) await this.apply(tombstone)
    }
  }

  /** What is known of a document's erasure here (null: not erased). */
  status (docName: string): ErasureStatus | null {
    const tombstone = this.o.erased.get(docName)
    if (tombstone === undefined) return null
    const confirmed = this.confirmed.get(docName) ?? new Set()
    const regions = Object.fromEntries(this.o.placement.allowedRegions(docName)
      .map(region => [region, confirmed.has(region) ? 'erased' as const : 'pending' as const]))
    return { docName, at: tombstone.at, origin: tombstone.origin, regions, complete: Object.values(regions).every(s => s === 'erased') }
  }

  /** A link to `peer` came up: it gets every tombstone it may hold, and at least one message. */
  linkUp (peer: string): void {
    const mine = this.o.erased.all().filter(t => this.o.placement.mayReceive(t.docName, peer))
    for (let i = 0; i === 0 || i < mine.length; i += TOMBSTONES_PER_MESSAGE) {
      this.o.send(peer, { type: 'erase', tombstones: mine.slice(i, i + TOMBSTONES_PER_MESSAGE) })
    }
  }

  /** An `erase` or `erased` from a peer. */
  receive (message: PeerMessage, from: string): void {
    if (message.type === 'erased') {
      for (const docName of message.docNames) this.confirm(docName, from)
      return
    }
    if (message.type !== 'erase') return
    this.o.erased.heardFrom(from)
    for (const tombstone of message.tombstones) {
      // A peer with other rules may list a name that does not live here: nothing to purge.
      if (!this.o.placement.allowsHere(tombstone.docName)) continue
      const fresh = !this.o.erased.has(tombstone.docName)
      this.apply(tombstone).then(() => {
        // The origin hears it straight, when it can; the sender otherwise.
        const to = this.o.neighbours().includes(tombstone.origin) ? tombstone.origin : from
        this.o.send(to, { type: 'erased', docNames: [tombstone.docName] })
        if (to !== from) this.o.send(from, { type: 'erased', docNames: [tombstone.docName] })
        if (fresh) this.spread(tombstone, from)
      }, err => {
        this.o.logger.log('error', 'could not apply an erasure from a peer; it is applied when the link next comes up', {
          peer: from, doc: this.o.logName(tombstone.docName), error: (err as Error).message,
        })
      })
    }
  }

  private confirm (docName: string, region: string): void {
    if (!this.o.erased.has(docName)) return
    let regions = this.confirmed.get(docName)
    if (regions === undefined) this.confirmed.set(docName, regions = new Set())
    regions.add(region)
  }

  /** To every neighbour that may hold the document but the one it came from. */
  private spread (tombstone: Tombstone, from: string | null): void {
    for (const peer of this.o.neighbours()) {
      if (peer !== from && this.o.placement.mayReceive(tombstone.docName, peer)) this.o.send(peer, { type: 'erase', tombstones: [tombstone] })
    }
  }

  /**
   * Purges the document here: known erased at once (so nothing more is taken in for it), the
   * store's data deleted with the tombstone kept, its clients closed and its memory freed.
   * `askedHere`: the erasure was asked of this relay, which tells the webhooks (once).
   */
  private apply (tombstone: Tombstone, askedHere = false): Promise<void> {
    const { docName } = tombstone
    const running = this.applying.get(docName)
    if (running !== undefined) return running
    if (this.confirmed.get(docName)?.has(this.o.region) === true) return Promise.resolve()
    const fresh = this.o.erased.add(tombstone)
    const applied = (async () => {
      await this.o.log.store.erase(this.o.erased.get(docName) ?? tombstone)
      await this.o.registry.evict(docName)
      this.confirm(docName, this.o.region)
      if (fresh) {
        if (askedHere) this.o.onErased?.(docName)
        this.o.metrics.erasures.inc({ origin: tombstone.origin === this.o.region ? 'here' : 'peer' })
        this.o.logger.log('info', 'document erased', { doc: this.o.logName(docName), origin: tombstone.origin })
      }
    })().finally(() => this.applying.delete(docName))
    this.applying.set(docName, applied)
    return applied
  }
}
