// Jest's global setup: one real PostgreSQL for the whole run (see src/postgres-server.ts). Each
// suite that needs it takes a schema of its own (testSchema). Built testkit required: `npm test`
// runs `tsc -b` first.
import { POSTGRES_URL_ENV, startPostgres } from '../dist/postgres-server.js'

export default async () => {
  const server = await startPostgres()
  process.env[POSTGRES_URL_ENV] = server.url
  globalThis.georelayTestPostgres = server
}
