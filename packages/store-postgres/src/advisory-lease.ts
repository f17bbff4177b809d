/**
 * A lease among the relays sharing a schema, held as a session-level advisory lock on a
 * connection of its own: PostgreSQL itself guarantees one holder, and releases the lock the
 * moment the holder's connection ends, so a node killed with -9 hands the lease over at the next
 * try of another node (`renewMs`).
 *
 * A holder that is alive to PostgreSQL but does nothing (paused, swapping, partitioned from
 * its peers but not from the database) would keep the lock forever; so the holder renews a row
 * every `renewMs`, and a node that finds the row older than `staleMs` cuts the holder's
 * connection (pg_terminate_backend, only if that backend still holds the lock), which frees the
 * lock. Each holding gets a new epoch; renewal names it, so a deposed holder learns it is
 * deposed at its next renewal and stops.
 */
import pg from 'pg'
import type { LeaseOptions, StoreLease } from '@georelay/core'

const DEFAULT_RENEW_MS = 1000
const DEFAULT_STALE_MS = 5000

export class AdvisoryLease implements StoreLease {
  private heldEpoch = 0
  private lastHolder: string | null = null
  private client: pg.Client | null = null
  private timer: NodeJS.Timeout | null = null
  private running: Promise<void> = Promise.resolve()
  private closed = false
  private readonly listeners = new Set<(held: boolean) => void>()
  private readonly renewMs: number
  private readonly staleMs: number
  /** The two keys of the advisory lock: the schema, then the lease's name. */
  private readonly keys: [string, string]

  constructor (
    private readonly url: string,
    private readonly schema: string,
    private readonly options: LeaseOptions,
  ) {
    this.renewMs = options.renewMs ?? DEFAULT_RENEW_MS
    this.staleMs = options.staleMs ?? DEFAULT_STALE_MS
    this.keys = [`georelay:${schema}`, options.name]
    this.schedule(0)
  }

  get held (): boolean {
    return this.heldEpoch > 0
  }

  get epoch (): number {
    return this.heldEpoch
  }

  get holder (): string | null {
    return this.held ? this.options.holder : this.lastHolder
  }

  onChange (listener: (held: boolean) => void): () => void {
    this.listeners.add(listener)
    return () => this.listeners.delete(listener)
  }

  async close (): Promise<void> {
    this.closed = true
    if (this.timer !== null) clearTimeout(this.timer)
    await this.running
    const client = this.client
    this.client = null
    if (client === null) return
    if (this.held) await client.query('SELECT pg_advisory_unlock(hashtext($1), hashtext($2))', this.keys).catch(() => {})
    this.heldEpoch = 0
    await client.end().catch(() => {})
  }

  private schedule (delayMs: number): void {
    if (this.closed) return
    this.timer = setTimeout(() => {
      this.running = this.tick().finally(() => this.schedule(this.renewMs))
    }, delayMs)
    this.timer.unref()
  }

  private async tick (): Promise<void> {
    try {
      const client = await this.connection()
      if (this.held) await this.renew(client)
      else await this.contend(client)
    } catch (err) {
      this.drop(`PostgreSQL did not answer: ${(err as Error).message}`)
    }
  }

  private async connection (): Promise<pg.Client> {
    if (this.client !== null) return this.client
    // Bounded, so that a database that stopped answering is noticed within a renewal or two.
    const client = new pg.Client({
      connectionString: this.url,
      connectionTimeoutMillis: this.renewMs * 2,
      statement_timeout: this.renewMs * 2,
      // The server enforces statement_timeout; a database that cannot be reached at all answers
      // nothing, so the client gives up too, and a holder that cannot renew stops holding.
      query_timeout: this.renewMs * 2,
      keepAlive: true,
    })
    client.on('error', err => this.drop(`connection lost: ${err.message}`, client))
    await client.connect()
    this.client = client
    return client
  }

  private async renew (client: pg.Client): Promise<void> {
    const renewed = await client.query(
      `UPDATE "${this.schema}".lease SET renewed_at = now() WHERE name = $1 AND epoch = $2 AND pid = pg_backend_pid()`,
      [this.options.name, this.heldEpoch])
    if (renewed.rowCount === 0) this.drop('another node holds the lease now')
  }

  private async contend (client: pg.Client): Promise<void> {
    const got = await client.query<{ got: boolean }>('SELECT pg_try_advisory_lock(hashtext($1), hashtext($2)) AS got', this.keys)
    if (got.rows[0]?.got === true) {
      const taken = await client.query<{ epoch: string }>(
        `INSERT INTO "${this.schema}".lease (name, epoch, holder, pid, renewed_at) VALUES ($1, 1, $2, pg_backend_pid(), now())
         ON CONFLICT (name) DO UPDATE SET epoch = lease.epoch + 1, holder = excluded.holder, pid = excluded.pid, renewed_at = now()
         RETURNING epoch`, [this.options.name, this.options.holder])
      this.heldEpoch = Number(taken.rows[0]?.epoch)
      this.lastHolder = this.options.holder
      this.options.onEvent?.({ type: 'acquired', epoch: this.heldEpoch })
      this.changed(true)
      return
    }
    const row = await client.query<{ holder: string, pid: number, silent: number }>(
      `SELECT holder, pid, extract(epoch FROM now() - renewed_at) * 1000 AS silent FROM "${this.schema}".lease WHERE name = $1`,
      [this.options.name])
    const current = row.rows[0]
    if (current === undefined) return
    this.lastHolder = current.holder
    const silent = Number(current.silent)
    if (silent <= this.staleMs) return
    // Only the backend that still holds the lock: a pid may have been reused since.
    const cut = await client.query<{ cut: boolean }>(
      `SELECT pg_terminate_backend(l.pid) AS cut FROM pg_locks l
       WHERE l.locktype = 'advisory' AND l.granted AND l.objsubid = 2 AND l.pid = $3
         AND l.classid = hashtext($1)::oid AND l.objid = hashtext($2)::oid`, [...this.keys, current.pid])
    if (cut.rows[0]?.cut === true) this.options.onEvent?.({ type: 'deposed', holder: current.holder, silentMs: Math.round(silent) })
  }

  /** The connection is unusable or the holding gone: start over as a contender. */
  private drop (reason: string, client: pg.Client | null = this.client): void {
    if (client !== this.client) return
    this.client = null
    void client?.end().catch(() => {})
    if (!this.held) return
    const epoch = this.heldEpoch
    this.heldEpoch = 0
    this.options.onEvent?.({ type: 'lost', epoch, reason })
    this.changed(false)
  }

  private changed (held: boolean): void {
    for (const listener of this.listeners) listener(held)
  }
}
