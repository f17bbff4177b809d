import { CompactionScheduler } from './compaction-scheduler.js'
import {
  DEFAULT_COMPACTION, LOCAL_ORIGIN, docErased, storeClosed, type DocStore, type LogEntry, type Origin, type OriginRead,
  type SinceRead, type StoreOptions, type StoredDoc, type Tombstone,
} from './doc-store.js'
import { mergeUpdatesInBatches, yieldToEventLoop, type Yield } from './updates.js'

interface MemoryEntry extends LogEntry {
  readonly docName: string
  readonly origin: string
  readonly originSeq: number
}

interface MemorySnapshot {
  data: Uint8Array
  seq: number
  /** Highest origin sequence number folded, per origin. */
  folded: Map<string, number>
}

const maxInto = (into: Map<string, number>, key: string, value: number): void => {
  if ((into.get(key) ?? 0) < value) into.set(key, value)
}

/** A DocStore in memory: for tests and for relays that may forget everything on restart. */
export class MemoryStore implements DocStore {
  /** Every log entry of every document, by increasing seq. */
  private log: MemoryEntry[] = []
  private readonly snapshots = new Map<string, MemorySnapshot>()
  private readonly folded = new Map<string, number>()
  private readonly have = new Map<string, number>()
  private readonly generations = new Map<string, number>()
  private readonly erased = new Map<string, Tombstone>()
  private readonly scheduler: CompactionScheduler
  private readonly pause: Yield
  private seq = 0
  private closed = false

  constructor (options: StoreOptions = {}) {
    this.pause = options.pause ?? yieldToEventLoop
    this.scheduler = new CompactionScheduler(
      options.compaction ?? DEFAULT_COMPACTION,
      docName => this.fold(docName),
      options.onCompactionError ?? (() => {}),
    )
  }

  async append (docName: string, update: Uint8Array, origin?: Origin): Promise<number> {
    if (this.closed) throw storeClosed()
    if (this.erased.has(docName)) throw docErased(docName)
    const seq = ++this.seq
    this.log.push({
      seq,
      docName,
      update: new Uint8Array(update), // not `slice`: that is a view for a Buffer
      origin: origin?.region ?? LOCAL_ORIGIN,
      originSeq: origin?.seq ?? seq,
    })
    this.scheduler.noteAppend(docName, update.length)
    return seq
  }

  async read (docName: string): Promise<StoredDoc> {
    if (this.closed) throw storeClosed()
    const snapshot = this.snapshots.get(docName)
    return {
      snapshot: snapshot?.data ?? null,
      snapshotSeq: snapshot?.seq ?? 0,
      log: this.log.filter(e => e.docName === docName).map(e => ({ seq: e.seq, update: e.update })),
    }
  }

  compact (docName: string): Promise<void> {
    if (this.closed) return Promise.reject(storeClosed())
    return this.scheduler.compact(docName)
  }

  async readOrigin (origin: string, after: number, limit: number): Promise<OriginRead> {
    if (this.closed) throw storeClosed()
    const entries = this.log
      .filter(e => e.origin === origin && e.originSeq > after)
      .sort((a, b) => a.originSeq - b.originSeq)
      .slice(0, limit)
      .map(e => ({ docName: e.docName, originSeq: e.originSeq, update: e.update }))
    return { entries, foldedUpTo: this.folded.get(origin) ?? 0, foldGeneration: this.generations.get(origin) ?? 0 }
  }

  async docsFoldedPast (origin: string, after: number): Promise<string[]> {
    if (this.closed) throw storeClosed()
    return [...this.snapshots].filter(([, s]) => (s.folded.get(origin) ?? 0) > after).map(([name]) => name)
  }

  async readSince (cursors: ReadonlyMap<string, number>, limit: number): Promise<SinceRead> {
    if (this.closed) throw storeClosed()
    const entries = this.log
      .filter(e => cursors.has(e.docName) && e.seq > (cursors.get(e.docName) as number))
      .slice(0, limit)
      .map(e => ({ docName: e.docName, seq: e.seq, update: e.update }))
    const folded = [...cursors]
      .filter(([name, after]) => (this.snapshots.get(name)?.seq ?? 0) > after)
      .map(([name]) => name)
    return { entries, folded }
  }

  async readHave (): Promise<Record<string, number>> {
    if (this.closed) throw storeClosed()
    return Object.fromEntries(this.have)
  }

  async writeHave (origin: string, seq: number): Promise<void> {
    if (this.closed) throw storeClosed()
    maxInto(this.have, origin, seq)
  }

  async lastSeq (): Promise<number> {
    if (this.closed) throw storeClosed()
    return this.seq
  }

  async listDocs (prefix = ''): Promise<string[]> {
    if (this.closed) throw storeClosed()
    const names = new Set([...this.snapshots.keys(), ...this.log.map(e => e.docName)])
    return [...names].filter(name => name.startsWith(prefix))
  }

  async erase (tombstone: Tombstone): Promise<void> {
    if (this.closed) throw storeClosed()
    if (!this.erased.has(tombstone.docName)) this.erased.set(tombstone.docName, { ...tombstone })
    this.log = this.log.filter(e => e.docName !== tombstone.docName)
    this.snapshots.delete(tombstone.docName)
  }

  async readErased (): Promise<Tombstone[]> {
    if (this.closed) throw storeClosed()
    return [...this.erased.values()].map(t => ({ ...t }))
  }

  async close (): Promise<void> {
    this.closed = true
    await this.scheduler.settled()
  }

  private async fold (docName: string): Promise<{ count: number, bytes: number }> {
    const folded = this.log.filter(e => e.docName === docName)
    if (folded.length === 0) return { count: 0, bytes: 0 }
    const upTo = (folded[folded.length - 1] as MemoryEntry).seq
    const previous = this.snapshots.get(docName)
    const parts = previous === undefined ? [] : [previous.data]
    const data = await mergeUpdatesInBatches([...parts, ...folded.map(e => e.update)], { pause: this.pause })
    // Erased while merging: nothing of it is kept.
    if (this.erased.has(docName)) return { count: 0, bytes: 0 }
    // Entries appended while merging have higher sequence numbers and stay in the log.
    const marks = new Map(previous?.folded ?? [])
    for (const e of folded) {
      maxInto(marks, e.origin, e.originSeq)
      maxInto(this.folded, e.origin, e.originSeq)
    }
    for (const origin of new Set(folded.map(e => e.origin))) {
      this.generations.set(origin, (this.generations.get(origin) ?? 0) + 1)
    }
    this.snapshots.set(docName, { data, seq: upTo, folded: marks })
    const kept = new Set(folded)
    this.log = this.log.filter(e => !kept.has(e) || e.seq > upTo)
    return { count: folded.length, bytes: folded.reduce((n, e) => n + e.update.length, 0) }
  }
}
