/**
 * The store a configuration names, opened. Postgres is loaded only when asked for, so an
 * embedded relay never loads the driver. What a store says about itself (a lost database, its
 * location) is logged here with any password taken out.
 */
import { type DocStore, MemoryStore } from '@georelay/core'
import { SqliteStore } from '@georelay/store-sqlite'
import { type RelayConfig, dataDirOf } from '../config/index.js'
import type { Logger } from '../observability/index.js'

export interface OpenedStore {
  store: DocStore
  /** Where the data is, fit to print: a path, a URL without its password, or "memory". */
  where: string
}

export const openStore = async (
  config: RelayConfig,
  logger: Logger,
  onAvailability: (available: boolean) => void,
): Promise<OpenedStore> => {
  const compaction = { updates: config.storage.compactAfterUpdates, bytes: config.storage.compactAfterBytes }
  const onCompactionError = (doc: string, err: unknown): void =>
    logger.log('error', 'compaction failed; the log is kept and compaction retried later', { doc, error: (err as Error).message })
  if (config.store === 'memory') return { store: new MemoryStore({ compaction, onCompactionError }), where: 'memory (not durable)' }
  if (config.store === 'sqlite') {
    const dir = dataDirOf(config)
    return { store: new SqliteStore(dir, { compaction, onCompactionError, synchronous: config.storage.synchronous }), where: `sqlite ${dir}` }
  }
  const { PostgresStore, describeUrl } = await import('@georelay/store-postgres')
  const { url = '', schema, poolSize, statementTimeoutMs } = config.storage.postgres
  const where = `postgres ${describeUrl(url)} schema ${schema}`
  const store = await PostgresStore.open({
    url,
    schema,
    poolSize,
    statementTimeoutMs,
    compaction,
    onCompactionError,
    onAvailability: (available, reason) => {
      if (available) logger.log('info', 'the database answers again: writes are accepted', { store: where })
      else logger.log('error', 'the database does not answer: writes are refused (clients keep them and retry), loaded documents are still served, /readyz says not ready', { store: where, reason })
      onAvailability(available)
    },
  })
  return { store, where }
}
