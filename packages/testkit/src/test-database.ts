/**
 * A PostgreSQL schema of its own for one test, on the server jest's global setup started
 * (GEORELAY_TEST_POSTGRES_URL): stores are isolated by schema, so suites share one server.
 */
import crypto from 'node:crypto'
import pg from 'pg'
import { POSTGRES_URL_ENV } from './postgres-server.js'

export interface TestSchema {
  url: string
  schema: string
  /** Drops the schema and everything in it. */
  drop(): Promise<void>
}

const DROP_LOCK_TIMEOUT_MS = 5000

/** The shared test server's URL, or an error that says how to get one. */
export const testPostgresUrl = (): string => {
  const url = process.env[POSTGRES_URL_ENV]
  if (url === undefined || url === '') {
    throw new Error(`no test PostgreSQL (${POSTGRES_URL_ENV} is unset): jest's global setup starts one from Debian's postgresql package; apt-get install -y postgresql`)
  }
  return url
}

export const testSchema = async (prefix = 't'): Promise<TestSchema> => {
  const url = testPostgresUrl()
  const schema = `${prefix}_${crypto.randomBytes(6).toString('hex')}`
  return {
    url,
    schema,
    drop: async () => {
      // Bounded: a drop stuck behind a lock someone left (a paused relay, an open transaction)
      // must fail the test saying so, not hold it until jest's timeout says nothing.
      const client = new pg.Client({ connectionString: url, connectionTimeoutMillis: 5000, statement_timeout: 10_000 })
      await client.connect()
      try {
        await client.query(`SET lock_timeout = ${DROP_LOCK_TIMEOUT_MS}`)
        await client.query(`DROP SCHEMA IF EXISTS "${schema}" CASCADE`).catch((err: unknown) => {
          throw new Error(`could not drop test schema ${schema}: ${String(err)} (a connection still holds a lock on it: a store or relay not closed?)`)
        })
      } finally {
        await client.end()
      }
    },
  }
}
