/**
 * A DocStore on PostgreSQL: production storage, and the shared log of a region whose relay runs
 * as several nodes. It behaves as the SQLite store does (the same conformance suite):
 *
 * - Appends are group-committed: every append of one event-loop turn goes into one statement
 *   (one round trip, one commit), and each promise resolves only after that commit.
 * - Sequence numbers come from a counter row raised in that same statement (schema.ts), so they
 *   become visible in order and without holes whatever other relays append at the same time.
 * - Compaction merges a document's cut off the database, then in one transaction writes the
 *   snapshot, drops the folded entries and raises the folded marks and generations. An advisory
 *   lock on the document keeps two relays from folding it at once.
 * - When the database cannot be reached, calls fail with ERR_STORE_UNAVAILABLE (a relay refuses
 *   writes and keeps serving what it has loaded), `available` turns false, and a probe brings it
 *   back to true once the database answers again; pg's pool reconnects by itself.
 */
import pg from 'pg'
import {
  type LeaseOptions, type LeaseStore, type StoreLease,
  CompactionScheduler, DEFAULT_COMPACTION, LOCAL_ORIGIN, StoreError, docErased, mergeUpdatesInBatches, storeClosed,
  yieldToEventLoop, type DocStore, type LogEntry, type Origin, type OriginRead, type PendingAppend, type SinceRead,
  type StoreOptions, type StoredDoc, type Tombstone, type Yield,
} from '@georelay/core'
import { AdvisoryLease } from './advisory-lease.js'
import { redactUrl } from './redact.js'
import { migrate, quoteSchema } from './schema.js'

export interface PostgresStoreOptions extends StoreOptions {
  /** `postgres://user:password@host:port/database`; the password never appears in errors. */
  url: string
  /** The schema holding the tables (regions sharing a database use one each). Default `georelay`. */
  schema?: string
  /** Connections kept open (default 10). */
  poolSize?: number
  /** A statement running longer than this is cancelled (default 10,000 ms). */
  statementTimeoutMs?: number
  /** Called when the database stops or starts answering. */
  onAvailability?: (available: boolean, reason: string) => void
}

/** One row of readOrigin: the origin's folded mark, with one entry or none. */
interface OriginRow {
  folded: number | null
  generation: number | null
  oseq: number | null
  doc: string | null
  data: Buffer | null
}

/** What compaction folds: a document's snapshot (if any) and its log, from one read. */
interface Cut {
  snapshot: { data: Uint8Array, seq: number, folded: Record<string, number> } | null
  log: (LogEntry & { origin: string, originSeq: number })[]
}

/** One row of `cut`'s statement: k 0 is the snapshot, k 1 a log entry. */
interface CutRow {
  k: number
  seq: number
  data: Buffer
  folded: Record<string, number> | null
  origin: string | null
  origin_seq: number | null
}

/** Postgres's bigint comes back as a string; every number here is below 2^53. */
const INT8 = 20
const types = {
  getTypeParser: ((oid: number, format?: 'text' | 'binary') =>
    oid === INT8 ? (value: string) => Number(value) : pg.types.getTypeParser(oid, format)) as pg.CustomTypesConfig['getTypeParser'],
}

/** How often a store that lost its database checks whether it is back. */
const PROBE_MS = 1000

const UNREACHABLE_CODES = ['ECONNREFUSED', 'ECONNRESET', 'ETIMEDOUT', 'EHOSTUNREACH', 'ENOTFOUND', 'EPIPE', '57P01', '57P02', '57P03']

/** SQLSTATE classes and codes that mean the database is not there (rather than the query being wrong). */
const unreachable = (err: unknown): boolean => {
  const code = (err as { code?: string }).code ?? ''
  return UNREACHABLE_CODES.includes(code)
    || code.startsWith('08')
    || /Connection terminated|connect ETIMEDOUT|timeout exceeded when trying to connect/i.test((err as Error).message ?? '')
}

export class PostgresStore implements DocStore, LeaseStore {
  private readonly pool: pg.Pool
  private readonly s: string
  private readonly scheduler: CompactionScheduler
  private readonly pause: Yield
  private queue: PendingAppend[] = []
  private flushing: Promise<void> | null = null
  private scheduled = false
  private closed = false
  private up = true
  private probe: NodeJS.Timeout | null = null
  private readonly lockKey: string
  /**
   * Names this store erased or read as erased: their appends are refused before any SQL. (A
   * relay of the same region erasing meanwhile is seen at the next readErased.)
   */
  private readonly erased = new Set<string>()

  private constructor (private readonly options: PostgresStoreOptions, pool: pg.Pool) {
    this.pool = pool
    this.s = quoteSchema(options.schema ?? 'georelay')
    this.lockKey = options.schema ?? 'georelay'
    this.pause = options.pause ?? yieldToEventLoop
    this.scheduler = new CompactionScheduler(
      options.compaction ?? DEFAULT_COMPACTION,
      docName => this.fold(docName),
      options.onCompactionError ?? (() => {}),
    )
    // An idle client whose server went away errors here; unhandled, that would end the process.
    pool.on('error', err => this.lost(err))
  }

  /** Connects, creates or checks the schema, and returns the open store. */
  static async open (options: PostgresStoreOptions): Promise<PostgresStore> {
    const pool = new pg.Pool({
      connectionString: options.url,
      max: options.poolSize ?? 10,
      statement_timeout: options.statementTimeoutMs ?? 10_000,
      connectionTimeoutMillis: 5000,
      types,
    })
    pool.on('error', () => {}) // until the store takes over the handler
    try {
      await migrate(pool, options.schema ?? 'georelay')
    } catch (err) {
      await pool.end().catch(() => {})
      throw asStoreError(err, options.url)
    }
    const store = new PostgresStore(options, pool)
    // Tombstones are kept in memory from the start: an erased name's appends never reach SQL.
    await store.readErased()
    return store
  }

  /** A lease among the relays sharing this schema (advisory-lease.ts). */
  openLease (options: LeaseOptions): StoreLease {
    return new AdvisoryLease(this.options.url, this.options.schema ?? 'georelay', options)
  }

  /** False while the database does not answer. */
  get available (): boolean {
    return this.up
  }

  append (docName: string, update: Uint8Array, origin?: Origin): Promise<number> {
    if (this.closed) return Promise.reject(storeClosed())
    if (this.erased.has(docName)) return Promise.reject(docErased(docName))
    return new Promise((resolve, reject) => {
      // Copied: the caller may reuse its buffer before the batch is written.
      this.queue.push({ docName, update: new Uint8Array(update), origin, resolve, reject })
      this.schedule()
    })
  }

  async read (docName: string): Promise<StoredDoc> {
    if (this.closed) throw storeClosed()
    const { snapshot, log } = await this.cut(docName)
    this.scheduler.observe(docName, log.length, log.reduce((n, e) => n + e.update.length, 0))
    return {
      snapshot: snapshot?.data ?? null,
      snapshotSeq: snapshot?.seq ?? 0,
      log: log.map(({ seq, update }) => ({ seq, update })),
    }
  }

  compact (docName: string): Promise<void> {
    if (this.closed) return Promise.reject(storeClosed())
    return this.scheduler.compact(docName)
  }

  async readOrigin (origin: string, after: number, limit: number): Promise<OriginRead> {
    if (this.closed) throw storeClosed()
    const take = Math.min(limit, Number.MAX_SAFE_INTEGER)
    // One statement: the entries and the origin's folded mark from one snapshot of the data.
    const entries = origin === LOCAL_ORIGIN
      ? `SELECT seq AS oseq, doc, data FROM ${this.s}.log WHERE origin = '' AND seq > $2 ORDER BY seq LIMIT $3`
      : `SELECT origin_seq AS oseq, doc, data FROM ${this.s}.log WHERE origin = $1 AND origin <> '' AND origin_seq > $2 ORDER BY origin_seq LIMIT $3`
    const result = await this.query<OriginRow>(
      `SELECT f.seq AS folded, f.generation, e.oseq, e.doc, e.data FROM (SELECT 1) AS one
       LEFT JOIN ${this.s}.folded f ON f.origin = $1
       LEFT JOIN LATERAL (${entries}) e ON true
       ORDER BY e.oseq`, [origin, after, take])
    const first = result.rows[0]
    return {
      entries: result.rows
        .filter(row => row.oseq !== null)
        .map(row => ({ docName: row.doc as string, originSeq: row.oseq as number, update: bytes(row.data as Buffer) })),
      foldedUpTo: first?.folded ?? 0,
      foldGeneration: first?.generation ?? 0,
    }
  }

  async docsFoldedPast (origin: string, after: number): Promise<string[]> {
    if (this.closed) throw storeClosed()
    const result = await this.query<{ doc: string }>(`SELECT doc FROM ${this.s}.snapshots WHERE (folded ->> $1)::bigint > $2 ORDER BY doc`, [origin, after])
    return result.rows.map(row => row.doc)
  }

  async readSince (cursors: ReadonlyMap<string, number>, limit: number): Promise<SinceRead> {
    if (this.closed) throw storeClosed()
    if (cursors.size === 0) return { entries: [], folded: [] }
    // One statement, so one view: entries (k 1) and folded documents (k 0, no data).
    const result = await this.query<{ k: number, seq: number, doc: string, data: Buffer | null }>(
      `WITH c AS (SELECT * FROM unnest($1::text[], $2::bigint[]) AS c(doc, after))
       (SELECT 1 AS k, l.seq, l.doc, l.data FROM c JOIN ${this.s}.log l ON l.doc = c.doc AND l.seq > c.after ORDER BY l.seq LIMIT $3)
       UNION ALL
       SELECT 0, s.seq, s.doc, NULL FROM c JOIN ${this.s}.snapshots s ON s.doc = c.doc AND s.seq > c.after`,
      [[...cursors.keys()], [...cursors.values()], Math.min(limit, Number.MAX_SAFE_INTEGER)])
    const entries = result.rows.filter(row => row.k === 1).sort((a, b) => a.seq - b.seq)
    return {
      entries: entries.map(row => ({ docName: row.doc, seq: row.seq, update: bytes(row.data as Buffer) })),
      folded: result.rows.filter(row => row.k === 0).map(row => row.doc),
    }
  }

  async readHave (): Promise<Record<string, number>> {
    if (this.closed) throw storeClosed()
    const result = await this.query<{ origin: string, seq: number }>(`SELECT origin, seq FROM ${this.s}.have`)
    return Object.fromEntries(result.rows.map(row => [row.origin, row.seq]))
  }

  async writeHave (origin: string, seq: number): Promise<void> {
    if (this.closed) throw storeClosed()
    await this.query(`INSERT INTO ${this.s}.have (origin, seq) VALUES ($1, $2)
      ON CONFLICT (origin) DO UPDATE SET seq = greatest(${this.s}.have.seq, excluded.seq)`, [origin, seq])
  }

  async lastSeq (): Promise<number> {
    if (this.closed) throw storeClosed()
    const result = await this.query<{ seq: number }>(`SELECT seq FROM ${this.s}.counter WHERE id = 1`)
    return result.rows[0]?.seq ?? 0
  }

  async listDocs (prefix = ''): Promise<string[]> {
    if (this.closed) throw storeClosed()
    // starts_with, not a range: under the database's collation (not C) text order is not prefix order.
    const where = prefix === '' ? '' : ' WHERE starts_with(doc, $1)'
    const result = await this.query<{ doc: string }>(
      `SELECT doc FROM ${this.s}.snapshots${where} UNION SELECT DISTINCT doc FROM ${this.s}.log${where}`,
      prefix === '' ? [] : [prefix],
    )
    return result.rows.map(row => row.doc)
  }

  async erase ({ docName, at, origin }: Tombstone): Promise<void> {
    if (this.closed) throw storeClosed()
    this.erased.add(docName)
    // Appends queued before the erasure are written first, then deleted with the rest.
    while (this.flushing !== null || this.queue.length > 0) await (this.flushing ?? this.flush())
    await this.transaction(async client => {
      // The lock compaction takes: a fold of this document waits, then finds it erased.
      await client.query('SELECT pg_advisory_xact_lock(hashtextextended($1, 0))', [`${this.lockKey}:${docName}`])
      await client.query(`DELETE FROM ${this.s}.log WHERE doc = $1`, [docName])
      await client.query(`DELETE FROM ${this.s}.snapshots WHERE doc = $1`, [docName])
      await client.query(`INSERT INTO ${this.s}.erased (doc, at, origin) VALUES ($1, $2, $3) ON CONFLICT (doc) DO NOTHING`, [docName, at, origin])
      return true
    })
  }

  async readErased (): Promise<Tombstone[]> {
    if (this.closed) throw storeClosed()
    const result = await this.query<{ doc: string, at: number, origin: string }>(`SELECT doc, at, origin FROM ${this.s}.erased ORDER BY doc`)
    for (const row of result.rows) this.erased.add(row.doc)
    return result.rows.map(row => ({ docName: row.doc, at: row.at, origin: row.origin }))
  }

  async close (): Promise<void> {
    if (this.closed) return
    this.closed = true
    while (this.flushing !== null || this.queue.length > 0) await (this.flushing ?? this.flush())
    await this.scheduler.settled()
    if (this.probe !== null) clearInterval(this.probe)
    await this.pool.end()
  }

  private schedule (): void {
    if (this.scheduled || this.flushing !== null) return
    this.scheduled = true
    setImmediate(() => {
      this.scheduled = false
      void this.flush()
    })
  }

  /** Writes what is queued in one statement; appends arriving meanwhile wait for the next. */
  private flush (): Promise<void> {
    // A document erased after its append was queued takes nothing more.
    const batch = this.queue.filter(item => {
      if (!this.erased.has(item.docName)) return true
      item.reject(docErased(item.docName))
      return false
    })
    this.queue = []
    if (batch.length === 0) return Promise.resolve()
    const done = this.insert(batch).then(seqs => {
      batch.forEach((item, i) => {
        this.scheduler.noteAppend(item.docName, item.update.length)
        item.resolve(seqs[i] as number)
      })
    }, err => {
      for (const item of batch) item.reject(err)
    }).finally(() => {
      this.flushing = null
      if (this.queue.length > 0) this.schedule()
    })
    this.flushing = done
    return done
  }

  private async insert (batch: PendingAppend[]): Promise<number[]> {
    // The counter row is raised and the entries inserted in one statement (its own transaction):
    // entries i = 1..n get the numbers top - n + i.
    const result = await this.query<{ top: number }>(
      `WITH c AS (UPDATE ${this.s}.counter SET seq = seq + $1 WHERE id = 1 RETURNING seq AS top),
            ins AS (
              INSERT INTO ${this.s}.log (seq, doc, data, origin, origin_seq)
              SELECT c.top - $1 + t.ord, t.doc, t.data, t.origin, t.oseq
              FROM c, unnest($2::text[], $3::bytea[], $4::text[], $5::bigint[]) WITH ORDINALITY AS t(doc, data, origin, oseq, ord)
            )
       SELECT top FROM c`,
      [
        batch.length,
        batch.map(item => item.docName),
        batch.map(item => Buffer.from(item.update.buffer, item.update.byteOffset, item.update.byteLength)),
        batch.map(item => item.origin?.region ?? LOCAL_ORIGIN),
        batch.map(item => item.origin?.seq ?? null),
      ])
    const top = result.rows[0]?.top as number
    return batch.map((_, i) => top - batch.length + 1 + i)
  }

  /** The document's snapshot and log, read in one statement (one consistent view). */
  private async cut (docName: string): Promise<Cut> {
    const result = await this.query<CutRow>(
      `SELECT 0 AS k, seq, data, folded, NULL AS origin, NULL::bigint AS origin_seq FROM ${this.s}.snapshots WHERE doc = $1
       UNION ALL
       SELECT 1, seq, data, NULL, origin, origin_seq FROM ${this.s}.log WHERE doc = $1
       ORDER BY k, seq`, [docName])
    const head = result.rows[0]
    const snapshot = head?.k === 0 ? { data: bytes(head.data), seq: head.seq, folded: head.folded ?? {} } : null
    const log = result.rows.filter(row => row.k === 1).map(row => ({
      seq: row.seq, update: bytes(row.data), origin: row.origin ?? LOCAL_ORIGIN, originSeq: row.origin_seq ?? row.seq,
    }))
    return { snapshot, log }
  }

  private async fold (docName: string): Promise<{ count: number, bytes: number }> {
    const cut = await this.cut(docName)
    const last = cut.log[cut.log.length - 1]
    if (last === undefined) return { count: 0, bytes: 0 }
    const parts = [...(cut.snapshot === null ? [] : [cut.snapshot.data]), ...cut.log.map(e => e.update)]
    const merged = await mergeUpdatesInBatches(parts, { pause: this.pause })
    const marks: Record<string, number> = { ...cut.snapshot?.folded }
    for (const entry of cut.log) if ((marks[entry.origin] ?? 0) < entry.originSeq) marks[entry.origin] = entry.originSeq
    const foldedOrigins = [...new Set(cut.log.map(e => e.origin))]
    const committed = await this.transaction(async client => {
      await client.query('SELECT pg_advisory_xact_lock(hashtextextended($1, 0))', [`${this.lockKey}:${docName}`])
      // Another relay folded this document since the cut was read: its fold stands, ours is dropped.
      // Erased since: nothing of it is kept.
      const now = await client.query<{ seq: number, erased: boolean }>(
        `SELECT (SELECT seq FROM ${this.s}.snapshots WHERE doc = $1) AS seq, EXISTS (SELECT 1 FROM ${this.s}.erased WHERE doc = $1) AS erased`, [docName])
      if ((now.rows[0]?.seq ?? 0) !== (cut.snapshot?.seq ?? 0) || now.rows[0]?.erased === true) {
        return false
      }
      await client.query(`INSERT INTO ${this.s}.snapshots (doc, data, seq, folded) VALUES ($1, $2, $3, $4)
        ON CONFLICT (doc) DO UPDATE SET data = excluded.data, seq = excluded.seq, folded = excluded.folded`,
      [docName, Buffer.from(merged.buffer, merged.byteOffset, merged.byteLength), last.seq, JSON.stringify(marks)])
      // Numbers are given in commit order (schema.ts), so nothing at or below the cut can still arrive.
      await client.query(`DELETE FROM ${this.s}.log WHERE doc = $1 AND seq <= $2`, [docName, last.seq])
      await client.query(`INSERT INTO ${this.s}.folded (origin, seq, generation)
        SELECT m.key, m.value::bigint, CASE WHEN m.key = ANY($2::text[]) THEN 1 ELSE 0 END FROM jsonb_each_text($1::jsonb) AS m
        ON CONFLICT (origin) DO UPDATE SET seq = greatest(${this.s}.folded.seq, excluded.seq),
          generation = ${this.s}.folded.generation + excluded.generation`, [JSON.stringify(marks), foldedOrigins])
      return true
    })
    if (!committed) return { count: 0, bytes: 0 }
    return { count: cut.log.length, bytes: cut.log.reduce((n, e) => n + e.update.length, 0) }
  }

  /**
   * Runs `work` in a transaction on a client of its own: committed when it returns true, rolled
   * back when it returns false or throws.
   */
  private async transaction (work: (client: pg.PoolClient) => Promise<boolean>): Promise<boolean> {
    const client = await this.connect()
    try {
      await client.query('BEGIN')
      const commit = await work(client)
      await client.query(commit ? 'COMMIT' : 'ROLLBACK')
      return commit
    } catch (err) {
      await client.query('ROLLBACK').catch(() => {})
      throw this.failed(err)
    } finally {
      client.release()
    }
  }

  private async connect (): Promise<pg.PoolClient> {
    try {
      const client = await this.pool.connect()
      this.reachable()
      return client
    } catch (err) {
      throw this.failed(err)
    }
  }

  private async query<R extends pg.QueryResultRow> (text: string, values?: unknown[]): Promise<pg.QueryResult<R>> {
    try {
      const result = await this.pool.query<R>(text, values)
      this.reachable()
      return result
    } catch (err) {
      throw this.failed(err)
    }
  }

  private failed (err: unknown): StoreError {
    if (err instanceof StoreError) return err
    if (unreachable(err)) this.lost(err)
    return asStoreError(err, this.options.url)
  }

  private lost (err: unknown): void {
    if (!this.up || this.closed) return
    this.up = false
    this.options.onAvailability?.(false, redactUrl((err as Error).message ?? String(err), this.options.url))
    this.probe = setInterval(() => {
      this.pool.query('SELECT 1').then(() => this.reachable(), () => {})
    }, PROBE_MS)
    this.probe.unref()
  }

  private reachable (): void {
    if (this.up) return
    this.up = true
    if (this.probe !== null) clearInterval(this.probe)
    this.probe = null
    this.options.onAvailability?.(true, 'the database answers again')
  }
}

/** Bytes of a row as a Uint8Array with a buffer of its own (pg's may be a view into a pooled one). */
const bytes = (data: Buffer): Uint8Array => new Uint8Array(data)

const asStoreError = (err: unknown, url: string): StoreError => {
  if (err instanceof StoreError) return err
  const message = redactUrl((err as Error).message ?? String(err), url)
  const code = (err as { code?: string }).code ?? ''
  if (unreachable(err)) {
    return new StoreError('ERR_STORE_UNAVAILABLE', `the database does not answer (${message}): writes are refused until it does; documents already loaded are still served`, { cause: err })
  }
  if (code === '53100') return new StoreError('ERR_STORE_FULL', `the database's disk is full (${message}): free space; reads keep working`, { cause: err })
  if (code === '57014') return new StoreError('ERR_STORE_IO', `a statement ran past storage.postgres.statementTimeoutMs (${message})`, { cause: err })
  return new StoreError('ERR_STORE_IO', `the database refused a statement (${message})`, { cause: err })
}
