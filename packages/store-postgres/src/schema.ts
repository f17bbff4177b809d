/**
 * The tables of a PostgreSQL store, in a schema of their own (one per region when regions share
 * a database), created at first start and versioned by a `schema_version` row: a store refuses
 * data of a newer version rather than misread it.
 *
 * Sequence numbers come from one counter row, raised in the same statement that inserts the
 * entries. The row lock serialises appenders until they commit, so numbers become visible in
 * the order they were given and with no holes: a replication cursor that has read up to N can
 * never later find a committed entry numbered below N. (A Postgres sequence would hand out
 * numbers at insert time and let transactions commit in another order.)
 */
import type pg from 'pg'
import { StoreError } from '@georelay/core'

export const SCHEMA_VERSION = 1

/** Schema names are identifiers we quote: keep them to a safe alphabet. */
const SCHEMA_NAME = /^[a-z_][a-z0-9_]{0,62}$/

export const quoteSchema = (name: string): string => {
  if (!SCHEMA_NAME.test(name)) {
    throw new StoreError('ERR_STORE_IO', `"${name}" is not a schema name georelay uses: lowercase letters, digits and _, at most 63`)
  }
  return `"${name}"`
}

const tables = (s: string): string => `
  CREATE SCHEMA IF NOT EXISTS ${s};
  CREATE TABLE IF NOT EXISTS ${s}.meta (key text PRIMARY KEY, value text NOT NULL);
  -- One row: the highest sequence number given (see above).
  CREATE TABLE IF NOT EXISTS ${s}.counter (id int PRIMARY KEY CHECK (id = 1), seq bigint NOT NULL);
  INSERT INTO ${s}.counter (id, seq) VALUES (1, 0) ON CONFLICT (id) DO NOTHING;
  CREATE TABLE IF NOT EXISTS ${s}.log (
    seq bigint PRIMARY KEY,
    doc text NOT NULL,
    data bytea NOT NULL,
    origin text NOT NULL DEFAULT '',
    origin_seq bigint -- NULL for local entries: their origin sequence number is seq
  );
  CREATE INDEX IF NOT EXISTS log_by_doc ON ${s}.log (doc, seq);
  CREATE INDEX IF NOT EXISTS log_by_origin ON ${s}.log (origin, origin_seq) WHERE origin <> '';
  CREATE TABLE IF NOT EXISTS ${s}.snapshots (
    doc text PRIMARY KEY,
    data bytea NOT NULL,
    seq bigint NOT NULL,
    -- per origin, the highest origin sequence number folded into this snapshot
    folded jsonb NOT NULL DEFAULT '{}'
  );
  -- Per origin: the highest origin number folded into any snapshot, and how many folds did.
  CREATE TABLE IF NOT EXISTS ${s}.folded (origin text PRIMARY KEY, seq bigint NOT NULL, generation bigint NOT NULL);
  -- Per origin region, how far this store durably holds its entries (replication cursors).
  CREATE TABLE IF NOT EXISTS ${s}.have (origin text PRIMARY KEY, seq bigint NOT NULL);
  -- Leases among the relays sharing this schema (advisory-lease.ts): who holds which, since when.
  CREATE TABLE IF NOT EXISTS ${s}.lease (
    name text PRIMARY KEY, epoch bigint NOT NULL, holder text NOT NULL, pid int NOT NULL, renewed_at timestamptz NOT NULL
  );
  -- Erased documents: their data is gone, their names take nothing more.
  CREATE TABLE IF NOT EXISTS ${s}.erased (doc text PRIMARY KEY, at bigint NOT NULL, origin text NOT NULL);
  INSERT INTO ${s}.meta (key, value) VALUES ('schema_version', '${SCHEMA_VERSION}') ON CONFLICT (key) DO NOTHING;
`

/** Any constant: the advisory lock that keeps relays starting at once from creating tables twice. */
const MIGRATION_LOCK = 0x67656f72

/** Creates the schema on first use and checks its version; several relays may run this at once. */
export const migrate = async (pool: pg.Pool, schema: string): Promise<void> => {
  const s = quoteSchema(schema)
  const client = await pool.connect()
  try {
    await client.query('BEGIN')
    await client.query('SELECT pg_advisory_xact_lock($1)', [MIGRATION_LOCK])
    const exists = await client.query<{ found: boolean }>(
      'SELECT EXISTS (SELECT 1 FROM information_schema.tables WHERE table_schema = $1 AND table_name = \'meta\') AS found', [schema])
    if (exists.rows[0]?.found === true) {
      const found = await client.query<{ value: string }>(`SELECT value FROM ${s}.meta WHERE key = 'schema_version'`)
      const version = Number(found.rows[0]?.value ?? 0)
      if (version > SCHEMA_VERSION) {
        throw new StoreError('ERR_STORE_SCHEMA',
          `schema "${schema}" holds georelay data of schema ${version}; this georelay reads schema ${SCHEMA_VERSION}: run a newer georelay`)
      }
    }
    await client.query(tables(s))
    await client.query('COMMIT')
  } catch (err) {
    await client.query('ROLLBACK').catch(() => {})
    throw err
  } finally {
    client.release()
  }
}
