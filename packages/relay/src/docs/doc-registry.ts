/**
 * Loads documents on first use and releases them from memory once no client has used them
 * for `idleMs` and no write is in flight (a later use loads them again from the store).
 */
import { EventEmitter } from 'node:events'
import { CloseCode, EMPTY_UPDATE, mergeUpdatesInBatches } from '@georelay/core'
import type { ErasedDocs } from './erased-docs.js'
import { RelayRefusal } from './relay-refusal.js'
import { type AwarenessSink, LiveDoc } from './live-doc.js'
import type { Logger } from '../observability/index.js'
import type { RelayMetrics } from '../observability/index.js'
import type { PresenceLimits } from './presence.js'
import type { ReplicationLog } from '../replication/index.js'

export interface DocRegistryOptions {
  log: ReplicationLog
  metrics: RelayMetrics
  logger: Logger
  /** How long a document with no clients stays in memory. */
  idleMs: number
  awarenessSink?: AwarenessSink
  maxDocumentBytes?: number
  fanoutWindowMs?: number
  presence?: PresenceLimits
  /** How a document's name may appear in logs (restricted names never appear outside their regions). */
  logName?: (name: string) => string
  /** Documents erased for good: they never load again. */
  erased?: ErasedDocs
  /** A write of this region's was stored (webhooks). */
  onWrite?: (docName: string, seq: number) => void
}

export const erasedRefusal = (name: string): RelayRefusal =>
  new RelayRefusal('ERR_DELETED', CloseCode.Gone, `"${name}" was deleted: it takes no more reads or writes`)

interface Entry {
  doc: Promise<LiveDoc>
  users: number
  idle: NodeJS.Timeout | null
}

export interface DocRegistryEvents {
  /** A document was loaded from the store into memory, holding every entry up to `cursor`. */
  loaded: [name: string, cursor: number]
  /** An idle document was released from memory. */
  released: [name: string]
}

export class DocRegistry extends EventEmitter<DocRegistryEvents> {
  private readonly entries = new Map<string, Entry>()
  private readonly log: ReplicationLog
  private readonly metrics: RelayMetrics

  constructor (private readonly options: DocRegistryOptions) {
    super()
    this.log = options.log
    this.metrics = options.metrics
  }

  get size (): number {
    return this.entries.size
  }

  /** The live document, loading it if needed; pair every call with `release`. */
  acquire (name: string): Promise<LiveDoc> {
    let entry = this.entries.get(name)
    if (entry === undefined) {
      entry = { doc: this.load(name), users: 0, idle: null }
      this.entries.set(name, entry)
      const loading = entry
      // A failed load must not stay cached: the next client tries again.
      loading.doc.catch(() => { if (this.entries.get(name) === loading) this.entries.delete(name) })
    }
    entry.users++
    if (entry.idle !== null) {
      clearTimeout(entry.idle)
      entry.idle = null
    }
    return entry.doc
  }

  release (name: string): void {
    const entry = this.entries.get(name)
    if (entry === undefined) return
    entry.users--
    if (entry.users === 0) this.scheduleUnload(name, entry)
  }

  /**
   * Hands an update that is already durable to the document if it is loaded or loading (a
   * load that read the store before the append committed would miss it; applying twice is
   * harmless). An unloaded document will read it from the store.
   */
  applyDurable (name: string, update: Uint8Array): void {
    this.entries.get(name)?.doc.then(doc => doc.applyDurable(update, null), () => {})
  }

  isErased (name: string): boolean {
    return this.options.erased?.has(name) === true
  }

  /**
   * An erased document leaves memory: each of its clients is told (4410, its session closes)
   * and its presence goes with it.
   */
  async evict (name: string): Promise<void> {
    const entry = this.entries.get(name)
    if (entry === undefined) return
    this.entries.delete(name)
    if (entry.idle !== null) clearTimeout(entry.idle)
    const doc = await entry.doc.catch(() => undefined)
    if (doc === undefined) return
    const reason = erasedRefusal(name)
    for (const client of [...doc.clients]) client.erased?.(reason)
    doc.destroy()
    this.metrics.documents.dec()
    this.emit('released', name)
  }

  /** The document's state: from memory when loaded, else merged from the store. */
  async stateOf (name: string): Promise<Uint8Array> {
    if (this.options.erased?.has(name) === true) return EMPTY_UPDATE
    const entry = this.entries.get(name)
    if (entry !== undefined) {
      try { return (await entry.doc).state() } catch { /* a failed load: read the store below */ }
    }
    return (await this.readState(name)).state
  }

  /** The document if it is loaded now (not loading). */
  async ifLoaded (name: string): Promise<LiveDoc | undefined> {
    const entry = this.entries.get(name)
    if (entry === undefined) return undefined
    try { return await entry.doc } catch { return undefined }
  }

  /** Loaded documents, for a drain or a test. */
  async loaded (): Promise<LiveDoc[]> {
    const settled = await Promise.allSettled([...this.entries.values()].map(e => e.doc))
    return settled.flatMap(r => r.status === 'fulfilled' ? [r.value] : [])
  }

  async closeAll (): Promise<void> {
    for (const entry of this.entries.values()) if (entry.idle !== null) clearTimeout(entry.idle)
    for (const doc of await this.loaded()) doc.destroy()
    this.entries.clear()
    this.metrics.documents.set(0)
  }

  /** The stored document merged, and the highest entry number it holds. */
  private async readState (name: string): Promise<{ state: Uint8Array, cursor: number }> {
    const stored = await this.log.store.read(name)
    const parts = stored.snapshot === null ? [] : [stored.snapshot]
    return {
      state: await mergeUpdatesInBatches([...parts, ...stored.log.map(e => e.update)]),
      cursor: Math.max(stored.snapshotSeq, stored.log[stored.log.length - 1]?.seq ?? 0),
    }
  }

  private async load (name: string): Promise<LiveDoc> {
    const erased = this.options.erased
    if (erased !== undefined) {
      await erased.settled()
      if (erased.has(name)) throw erasedRefusal(name)
    }
    const { state, cursor } = await this.readState(name)
    // Erased while it was read: what was read is dropped.
    if (erased?.has(name) === true) throw erasedRefusal(name)
    this.metrics.documents.inc()
    this.options.logger.log('debug', 'document loaded', { doc: this.options.logName?.(name) ?? name, bytes: state.length })
    const { awarenessSink, maxDocumentBytes, fanoutWindowMs, presence, onWrite } = this.options
    const doc = new LiveDoc(name, state, {
      log: this.log,
      metrics: this.metrics,
      ...(awarenessSink === undefined ? {} : { awarenessSink }),
      ...(onWrite === undefined ? {} : { onWrite }),
      maxBytes: maxDocumentBytes,
      fanoutWindowMs,
      presence,
    })
    this.emit('loaded', name, cursor)
    return doc
  }

  private scheduleUnload (name: string, entry: Entry): void {
    entry.idle = setTimeout(() => {
      entry.idle = null
      if (entry.users > 0 || this.entries.get(name) !== entry) return
      entry.doc.then(doc => {
        if (entry.users > 0 || this.entries.get(name) !== entry) return
        if (doc.busy) return this.scheduleUnload(name, entry)
        this.entries.delete(name)
        doc.destroy()
        this.metrics.documents.dec()
        this.emit('released', name)
      }, () => {})
    }, this.options.idleMs)
    entry.idle.unref()
  }
}
