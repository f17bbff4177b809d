/**
 * The embedded default store: one SQLite file per relay (better-sqlite3, WAL).
 *
 * Appends are group-committed: every append of one event-loop turn goes into one transaction,
 * and each promise resolves only after that transaction is durable. With `synchronous: 'full'`
 * (the default) that is after an fsync of the WAL, which runs off the event loop (wal-sync.ts),
 * so an acknowledged append survives a process crash and a power cut; with `'normal'` it is
 * right after the commit, which survives a process crash (kill -9) but may lose the last
 * commits with the machine. Entries committed but not yet durable are not read out for
 * replication or compaction: a crash could still take them, and their numbers with them.
 * better-sqlite3 is synchronous, which keeps each step simple; the only long step, merging a
 * big log into a snapshot, runs between transactions in capped batches that yield to the
 * event loop.
 */
import fs from 'node:fs'
import path from 'node:path'
import Database from 'better-sqlite3'
import {
  CompactionScheduler, DEFAULT_COMPACTION, LOCAL_ORIGIN, StoreError, docErased, mergeUpdatesInBatches, prefixEnd,
  storeClosed,
  yieldToEventLoop, type DocStore, type LogEntry, type Origin, type OriginRead, type PendingAppend, type SinceRead,
  type StoreOptions, type StoredDoc, type Tombstone, type Yield,
} from '@georelay/core'
import { type Fdatasync, WalSync } from './wal-sync.js'

export interface SqliteStoreOptions extends StoreOptions {
  /** When an append resolves: after an fsync of the WAL (`full`, the default) or after its write (`normal`). */
  synchronous?: 'full' | 'normal'
  /** How the WAL is synced with `full` (default fs.fdatasync in the thread pool; tests inject a gate here). */
  fdatasync?: Fdatasync
}

export const SQLITE_FILE = 'georelay.sqlite'
const SCHEMA_VERSION = 1

const SCHEMA = `
  CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
  CREATE TABLE IF NOT EXISTS snapshots (
    doc TEXT PRIMARY KEY,
    data BLOB NOT NULL,
    seq INTEGER NOT NULL,
    -- JSON object: per origin, the highest origin sequence number folded into this snapshot
    folded TEXT NOT NULL DEFAULT '{}'
  );
  -- AUTOINCREMENT: a sequence number is never reused, even after compaction deletes rows,
  -- so a replication cursor always means the same point in history.
  CREATE TABLE IF NOT EXISTS log (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    doc TEXT NOT NULL,
    data BLOB NOT NULL,
    origin TEXT NOT NULL DEFAULT '',
    origin_seq INTEGER -- NULL for local entries: their origin sequence number is seq
  );
  CREATE INDEX IF NOT EXISTS log_by_doc ON log (doc, seq);
  CREATE INDEX IF NOT EXISTS log_by_origin ON log (origin, origin_seq) WHERE origin <> '';
  -- Per origin, the highest origin sequence number folded into any snapshot.
  CREATE TABLE IF NOT EXISTS folded (origin TEXT PRIMARY KEY, seq INTEGER NOT NULL);
  -- Per origin region, how far this store durably holds its entries (replication cursors).
  CREATE TABLE IF NOT EXISTS have (origin TEXT PRIMARY KEY, seq INTEGER NOT NULL);
  -- Erased documents: their data is gone, their names take nothing more.
  CREATE TABLE IF NOT EXISTS erased (doc TEXT PRIMARY KEY, at INTEGER NOT NULL, origin TEXT NOT NULL);
`

const asStoreError = (err: unknown): StoreError => {
  const code = (err as { code?: string }).code
  if (code === 'SQLITE_FULL' || code === 'ENOSPC') {
    return new StoreError('ERR_STORE_FULL', 'the disk is full: free space on the data volume; reads keep working', { cause: err })
  }
  return new StoreError('ERR_STORE_IO', `the store failed to write (${(err as Error).message}); check the data directory`, { cause: err })
}

export class SqliteStore implements DocStore {
  private readonly db: Database.Database
  private readonly scheduler: CompactionScheduler
  private readonly pause: Yield
  private queue: PendingAppend[] = []
  private readonly generations = new Map<string, number>()
  private flushing: Promise<void> | null = null
  /** The newest batch's wait for the disk (batches become durable in order). */
  private settling: Promise<void> = Promise.resolve()
  /**
   * Batches committed and waiting for their fsync. Appends meanwhile are not committed each
   * turn but together when the batch is durable: they could not be acknowledged sooner (the
   * next fsync starts then anyway), and one transaction per fsync round costs less than one per turn.
   */
  private batchesAtDisk = 0
  private readonly insertBatch: (items: PendingAppend[]) => number[]
  /** Makes commits durable; null with `synchronous: 'normal'`, where a commit is as durable as it gets. */
  private readonly walSync: WalSync | null
  /** The highest log seq known durable: reads for replication and compaction stop there. */
  private durableSeq: number
  /** Set when an fsync failed: what was written since may be gone, so nothing more is taken. */
  private failed: StoreError | null = null
  private closed = false
  /** Names of erased documents, read at open: appends of them are refused before any SQL. */
  private readonly erased = new Set<string>()
  private readonly stmt

  /** Opens (or creates) the store in `dataDir`. */
  constructor (readonly dataDir: string, options: SqliteStoreOptions = {}) {
    fs.mkdirSync(dataDir, { recursive: true })
    this.db = new Database(path.join(dataDir, SQLITE_FILE))
    this.db.pragma('journal_mode = WAL')
    // NORMAL in WAL mode: a commit writes the WAL without fsync; `full` then syncs it off the event loop.
    this.db.pragma('synchronous = NORMAL')
    this.walSync = options.synchronous === 'normal' ? null : new WalSync(path.join(dataDir, `${SQLITE_FILE}-wal`), options.fdatasync)
    this.db.pragma('busy_timeout = 5000')
    // Deleted rows are overwritten with zeros, so that an erased document (and what compaction
    // folded away) does not linger in free pages of the file.
    this.db.pragma('secure_delete = ON')
    this.db.exec(SCHEMA)
    const version = this.db.prepare<[], { value: string }>("SELECT value FROM meta WHERE key = 'schema'").get()
    if (version === undefined) {
      this.db.prepare("INSERT INTO meta (key, value) VALUES ('schema', ?)").run(String(SCHEMA_VERSION))
    } else if (Number(version.value) !== SCHEMA_VERSION) {
      this.db.close()
      throw new StoreError('ERR_STORE_IO', `${path.join(dataDir, SQLITE_FILE)} has schema ${version.value}; this georelay reads schema ${SCHEMA_VERSION}`)
    }
    this.stmt = {
      insert: this.db.prepare<[string, Uint8Array, string, number | null]>('INSERT INTO log (doc, data, origin, origin_seq) VALUES (?, ?, ?, ?)'),
      snapshot: this.db.prepare<[string], { data: Uint8Array, seq: number, folded: string }>('SELECT data, seq, folded FROM snapshots WHERE doc = ?'),
      log: this.db.prepare<[string], { seq: number, data: Uint8Array }>('SELECT seq, data FROM log WHERE doc = ? ORDER BY seq'),
      logUpTo: this.db.prepare<
        [string, number],
        { seq: number, data: Uint8Array, origin: string, origin_seq: number | null }
      >('SELECT seq, data, origin, origin_seq FROM log WHERE doc = ? AND seq <= ? ORDER BY seq'),
      lastSeq: this.db.prepare<[string], { seq: number | null }>('SELECT max(seq) AS seq FROM log WHERE doc = ?'),
      putSnapshot: this.db.prepare<[string, Uint8Array, number, string]>(
        'INSERT INTO snapshots (doc, data, seq, folded) VALUES (?, ?, ?, ?) ON CONFLICT (doc) DO UPDATE SET data = excluded.data, seq = excluded.seq, folded = excluded.folded'),
      localAfter: this.db.prepare<[number, number, number], { seq: number, doc: string, data: Uint8Array }>(
        "SELECT seq, doc, data FROM log WHERE origin = '' AND seq > ? AND seq <= ? ORDER BY seq LIMIT ?"),
      originAfter: this.db.prepare<
        [string, number, number, number],
        { origin_seq: number, doc: string, data: Uint8Array }
      >(
        // `origin <> ''` lets the planner use the partial index log_by_origin (else: a full scan and a sort).
        "SELECT origin_seq, doc, data FROM log WHERE origin = ? AND origin <> '' AND origin_seq > ? AND seq <= ? ORDER BY origin_seq LIMIT ?"),
      // Cursors come as one JSON object {doc: seq}: any number of documents, one statement.
      since: this.db.prepare<[string, number, number], { seq: number, doc: string, data: Uint8Array }>(
        'SELECT l.seq, l.doc, l.data FROM json_each(?) AS c JOIN log l ON l.doc = c.key AND l.seq > c.value WHERE l.seq <= ? ORDER BY l.seq LIMIT ?'),
      foldedSince: this.db.prepare<[string], { doc: string }>(
        'SELECT s.doc FROM json_each(?) AS c JOIN snapshots s ON s.doc = c.key WHERE s.seq > c.value'),
      foldedOf: this.db.prepare<[string], { seq: number }>('SELECT seq FROM folded WHERE origin = ?'),
      raiseFolded: this.db.prepare<[string, number]>(
        'INSERT INTO folded (origin, seq) VALUES (?, ?) ON CONFLICT (origin) DO UPDATE SET seq = max(seq, excluded.seq)'),
      foldedPast: this.db.prepare<[string, number], { doc: string }>(
        'SELECT doc FROM snapshots, json_each(snapshots.folded) AS mark WHERE mark.key = ? AND mark.value > ?'),
      lastSeqEver: this.db.prepare<[], { seq: number }>("SELECT seq FROM sqlite_sequence WHERE name = 'log'"),
      haveAll: this.db.prepare<[], { origin: string, seq: number }>('SELECT origin, seq FROM have'),
      raiseHave: this.db.prepare<[string, number]>(
        'INSERT INTO have (origin, seq) VALUES (?, ?) ON CONFLICT (origin) DO UPDATE SET seq = max(seq, excluded.seq)'),
      dropLog: this.db.prepare<[string, number]>('DELETE FROM log WHERE doc = ? AND seq <= ?'),
      docs: this.db.prepare<[], { doc: string }>('SELECT doc FROM snapshots UNION SELECT DISTINCT doc FROM log'),
      // A range of the primary key and of log_by_doc: every name from the prefix up to prefixEnd.
      docsBetween: this.db.prepare<[{ from: string, to: string }], { doc: string }>(
        'SELECT doc FROM snapshots WHERE doc >= @from AND doc < @to UNION SELECT DISTINCT doc FROM log WHERE doc >= @from AND doc < @to'),
      docsFrom: this.db.prepare<[{ from: string }], { doc: string }>(
        'SELECT doc FROM snapshots WHERE doc >= @from UNION SELECT DISTINCT doc FROM log WHERE doc >= @from'),
      eraseLog: this.db.prepare<[string]>('DELETE FROM log WHERE doc = ?'),
      eraseSnapshot: this.db.prepare<[string]>('DELETE FROM snapshots WHERE doc = ?'),
      putErased: this.db.prepare<[string, number, string]>('INSERT INTO erased (doc, at, origin) VALUES (?, ?, ?) ON CONFLICT (doc) DO NOTHING'),
      erasedAll: this.db.prepare<[], { doc: string, at: number, origin: string }>('SELECT doc, at, origin FROM erased ORDER BY doc'),
    }
    this.insertBatch = this.db.transaction((items: PendingAppend[]) => items.map(item => {
      const { docName, update, origin } = item
      const region = origin?.region ?? LOCAL_ORIGIN
      const { lastInsertRowid } = this.stmt.insert.run(docName, update, region, origin?.seq ?? null)
      return Number(lastInsertRowid)
    }))
    for (const row of this.stmt.erasedAll.all()) this.erased.add(row.doc)
    // What the file holds at open is as durable as it will get.
    this.durableSeq = this.stmt.lastSeqEver.get()?.seq ?? 0
    this.pause = options.pause ?? yieldToEventLoop
    this.scheduler = new CompactionScheduler(
      options.compaction ?? DEFAULT_COMPACTION,
      docName => this.fold(docName),
      options.onCompactionError ?? (() => {}),
    )
  }

  append (docName: string, update: Uint8Array, origin?: Origin): Promise<number> {
    if (this.closed) return Promise.reject(storeClosed())
    if (this.erased.has(docName)) return Promise.reject(docErased(docName))
    if (this.failed !== null) return Promise.reject(this.failed)
    return new Promise((resolve, reject) => {
      // Copied: the caller may reuse its buffer before the batch is written.
      this.queue.push({ docName, update: new Uint8Array(update), origin, resolve, reject })
      if (this.flushing === null && this.batchesAtDisk === 0) {
        this.flushing = new Promise(done => setImmediate(() => { this.flush(); done() }))
      }
    })
  }

  async read (docName: string): Promise<StoredDoc> {
    if (this.closed) throw storeClosed()
    const stored = this.db.transaction(() => ({
      snapshot: this.stmt.snapshot.get(docName),
      log: this.stmt.log.all(docName),
    }))()
    const log: LogEntry[] = stored.log.map(row => ({ seq: row.seq, update: new Uint8Array(row.data) }))
    this.scheduler.observe(docName, log.length, log.reduce((n, e) => n + e.update.length, 0))
    return {
      snapshot: stored.snapshot === undefined ? null : new Uint8Array(stored.snapshot.data),
      snapshotSeq: stored.snapshot?.seq ?? 0,
      log,
    }
  }

  compact (docName: string): Promise<void> {
    if (this.closed) return Promise.reject(storeClosed())
    return this.scheduler.compact(docName)
  }

  async readOrigin (origin: string, after: number, limit: number): Promise<OriginRead> {
    if (this.closed) throw storeClosed()
    limit = Math.min(limit, Number.MAX_SAFE_INTEGER) // SQLite refuses LIMIT Infinity
    return this.db.transaction(() => {
      const entries = origin === LOCAL_ORIGIN
        ? this.stmt.localAfter.all(after, this.durableSeq, limit)
          .map(row => ({ docName: row.doc, originSeq: row.seq, update: new Uint8Array(row.data) }))
        : this.stmt.originAfter.all(origin, after, this.durableSeq, limit)
          .map(row => ({ docName: row.doc, originSeq: row.origin_seq, update: new Uint8Array(row.data) }))
      return {
        entries,
        foldedUpTo: this.stmt.foldedOf.get(origin)?.seq ?? 0,
        foldGeneration: this.generations.get(origin) ?? 0,
      }
    })()
  }

  async docsFoldedPast (origin: string, after: number): Promise<string[]> {
    if (this.closed) throw storeClosed()
    return this.stmt.foldedPast.all(origin, after).map(row => row.doc)
  }

  async readSince (cursors: ReadonlyMap<string, number>, limit: number): Promise<SinceRead> {
    if (this.closed) throw storeClosed()
    const json = JSON.stringify(Object.fromEntries(cursors))
    return this.db.transaction(() => ({
      entries: this.stmt.since.all(json, this.durableSeq, Math.min(limit, Number.MAX_SAFE_INTEGER))
        .map(row => ({ docName: row.doc, seq: row.seq, update: new Uint8Array(row.data) })),
      folded: this.stmt.foldedSince.all(json).map(row => row.doc),
    }))()
  }

  async readHave (): Promise<Record<string, number>> {
    if (this.closed) throw storeClosed()
    return Object.fromEntries(this.stmt.haveAll.all().map(row => [row.origin, row.seq]))
  }

  async writeHave (origin: string, seq: number): Promise<void> {
    if (this.closed) throw storeClosed()
    try {
      this.stmt.raiseHave.run(origin, seq)
    } catch (err) {
      throw asStoreError(err)
    }
    await this.durable()
  }

  async lastSeq (): Promise<number> {
    if (this.closed) throw storeClosed()
    // AUTOINCREMENT keeps the highest rowid ever used in sqlite_sequence, even after deletes.
    return this.stmt.lastSeqEver.get()?.seq ?? 0
  }

  async listDocs (prefix = ''): Promise<string[]> {
    if (this.closed) throw storeClosed()
    if (prefix === '') return this.stmt.docs.all().map(row => row.doc)
    const to = prefixEnd(prefix)
    const rows = to === null
      ? this.stmt.docsFrom.all({ from: prefix })
      : this.stmt.docsBetween.all({ from: prefix, to })
    return rows.map(row => row.doc)
  }

  async erase ({ docName, at, origin }: Tombstone): Promise<void> {
    if (this.closed) throw storeClosed()
    // Appends queued before the erasure are written now, then deleted with the rest.
    if (this.queue.length > 0) this.flush(true)
    this.erased.add(docName)
    try {
      this.db.transaction(() => {
        this.stmt.eraseLog.run(docName)
        this.stmt.eraseSnapshot.run(docName)
        this.stmt.putErased.run(docName, at, origin)
      })()
      // The pages are zeroed in the file; the WAL still holds their earlier images until it is
      // checkpointed and truncated.
      this.db.pragma('wal_checkpoint(TRUNCATE)')
    } catch (err) {
      throw asStoreError(err)
    }
    await this.durable()
  }

  async readErased (): Promise<Tombstone[]> {
    if (this.closed) throw storeClosed()
    return this.stmt.erasedAll.all().map(row => ({ docName: row.doc, at: row.at, origin: row.origin }))
  }

  async close (): Promise<void> {
    if (this.closed) return
    this.closed = true
    while (this.flushing !== null || this.batchesAtDisk > 0) {
      await this.flushing
      await this.settling
    }
    await this.scheduler.settled()
    this.walSync?.close()
    this.db.close()
  }

  /** Commits the queued appends (`now`: even while a batch waits for the disk). */
  private flush (now = false): void {
    this.flushing = null
    if (this.batchesAtDisk > 0 && !now) return
    // A document erased after its append was queued takes nothing more.
    const batch = this.queue.filter(item => {
      const refusal = this.failed ?? (this.erased.has(item.docName) ? docErased(item.docName) : null)
      if (refusal === null) return true
      item.reject(refusal)
      return false
    })
    this.queue = []
    if (batch.length === 0) return
    let seqs: number[]
    try {
      seqs = this.insertBatch(batch)
    } catch (err) {
      const error = asStoreError(err)
      for (const item of batch) item.reject(error)
      return
    }
    const upTo = seqs[seqs.length - 1] as number
    this.batchesAtDisk++
    this.settling = this.durable().then(() => {
      if (upTo > this.durableSeq) this.durableSeq = upTo
      batch.forEach((item, i) => {
        this.scheduler.noteAppend(item.docName, item.update.length)
        item.resolve(seqs[i] as number)
      })
    }, (err: unknown) => {
      for (const item of batch) item.reject(err)
    }).finally(() => {
      this.batchesAtDisk--
      if (this.batchesAtDisk === 0 && this.queue.length > 0) this.flush()
    })
  }

  /** Resolves once every commit so far is durable; a failed fsync fails the store for writes. */
  private async durable (): Promise<void> {
    if (this.failed !== null) throw this.failed
    if (this.walSync === null) return
    try {
      await this.walSync.durable()
    } catch (err) {
      this.failed ??= new StoreError('ERR_STORE_IO', `the store could not make its writes durable (fdatasync of the WAL: ${(err as Error).message}); it takes no more writes: check the disk, then restart the relay`, { cause: err })
      throw this.failed
    }
  }

  private async fold (docName: string): Promise<{ count: number, bytes: number }> {
    // Read a consistent cut: the snapshot and every log entry up to the newest one now.
    // Only durable entries: a snapshot must not hold what a crash could still take from the log.
    const cut = this.db.transaction(() => {
      const last = this.stmt.lastSeq.get(docName)?.seq ?? null
      if (last === null) return null
      const upTo = Math.min(last, this.durableSeq)
      return { upTo, snapshot: this.stmt.snapshot.get(docName), log: this.stmt.logUpTo.all(docName, upTo) }
    })()
    if (cut === null || cut.log.length === 0) return { count: 0, bytes: 0 }
    const parts = cut.snapshot === undefined ? [] : [new Uint8Array(cut.snapshot.data)]
    const merged = await mergeUpdatesInBatches(
      [...parts, ...cut.log.map(row => new Uint8Array(row.data))],
      { pause: this.pause },
    )
    if (this.db.open === false) return { count: 0, bytes: 0 }
    const marks: Record<string, number> = cut.snapshot === undefined
      ? {}
      : JSON.parse(cut.snapshot.folded) as Record<string, number>
    for (const row of cut.log) {
      const seq = row.origin_seq ?? row.seq
      if ((marks[row.origin] ?? 0) < seq) marks[row.origin] = seq
    }
    // Erased while merging: nothing of it is kept.
    if (this.erased.has(docName)) return { count: 0, bytes: 0 }
    // Appends committed while merging have seq > upTo and stay in the log.
    this.db.transaction(() => {
      this.stmt.putSnapshot.run(docName, merged, cut.upTo, JSON.stringify(marks))
      this.stmt.dropLog.run(docName, cut.upTo)
      for (const [origin, seq] of Object.entries(marks)) this.stmt.raiseFolded.run(origin, seq)
    })()
    // In the same turn as the commit, so a reader sees the generation and the fold together.
    for (const origin of new Set(cut.log.map(row => row.origin))) {
      this.generations.set(origin, (this.generations.get(origin) ?? 0) + 1)
    }
    return { count: cut.log.length, bytes: cut.log.reduce((n, row) => n + row.data.length, 0) }
  }
}
