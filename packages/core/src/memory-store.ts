import { CompactionScheduler } from './compaction-scheduler.js'
import { DEFAULT_COMPACTION, storeClosed, type CompactionThresholds, type DocStore, type LogEntry, type StoredDoc } from './doc-store.js'
import { mergeUpdatesInBatches, yieldToEventLoop, type Yield } from './updates.js'

export interface StoreOptions {
  compaction?: CompactionThresholds
  /** How compaction yields between merge batches (tests inject a scheduler here). */
  pause?: Yield
  /** Called when a background compaction fails; the log is kept and retried on later appends. */
  onCompactionError?: (docName: string, err: unknown) => void
}

interface MemoryDoc {
  snapshot: Uint8Array | null
  snapshotSeq: number
  log: LogEntry[]
}

/** A DocStore in memory: for tests and for relays that may forget everything on restart. */
export class MemoryStore implements DocStore {
  private readonly docs = new Map<string, MemoryDoc>()
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

  async append (docName: string, update: Uint8Array): Promise<number> {
    if (this.closed) throw storeClosed()
    const doc = this.doc(docName)
    const entry = { seq: ++this.seq, update: new Uint8Array(update) } // not `slice`: a view for a Buffer
    doc.log.push(entry)
    this.scheduler.noteAppend(docName, update.length)
    return entry.seq
  }

  async read (docName: string): Promise<StoredDoc> {
    if (this.closed) throw storeClosed()
    const doc = this.docs.get(docName)
    if (doc === undefined) return { snapshot: null, snapshotSeq: 0, log: [] }
    return { snapshot: doc.snapshot, snapshotSeq: doc.snapshotSeq, log: [...doc.log] }
  }

  compact (docName: string): Promise<void> {
    if (this.closed) return Promise.reject(storeClosed())
    return this.scheduler.compact(docName)
  }

  async listDocs (): Promise<string[]> {
    if (this.closed) throw storeClosed()
    return [...this.docs.keys()]
  }

  async close (): Promise<void> {
    this.closed = true
    await this.scheduler.settled()
  }

  private doc (docName: string): MemoryDoc {
    let doc = this.docs.get(docName)
    if (doc === undefined) {
      doc = { snapshot: null, snapshotSeq: 0, log: [] }
      this.docs.set(docName, doc)
    }
    return doc
  }

  private async fold (docName: string): Promise<{ count: number, bytes: number }> {
    const doc = this.docs.get(docName)
    if (doc === undefined || doc.log.length === 0) return { count: 0, bytes: 0 }
    const folded = [...doc.log]
    const upTo = (folded[folded.length - 1] as LogEntry).seq
    const parts = doc.snapshot === null ? [] : [doc.snapshot]
    const snapshot = await mergeUpdatesInBatches([...parts, ...folded.map(e => e.update)], { pause: this.pause })
    // Entries appended while merging have higher sequence numbers and stay in the log.
    doc.snapshot = snapshot
    doc.snapshotSeq = upTo
    doc.log = doc.log.filter(e => e.seq > upTo)
    return { count: folded.length, bytes: folded.reduce((n, e) => n + e.update.length, 0) }
  }
}
