/**
 * An in-process relay on 127.0.0.1 and an ephemeral port, for tests that need to look at its
 * store or metrics directly. Defaults to the in-memory store and a silent log.
 */
import { type DocStore, MemoryStore } from '@georelay/core'
import { type Logger, Relay, type RelayConfigInput, parseRelayConfig, silentLogger } from '@georelay/relay'

export interface TestRelayOptions {
  config?: Partial<RelayConfigInput>
  store?: DocStore
  logger?: Logger
}

const stores = new WeakMap<Relay, DocStore>()

export const startTestRelay = async (
  { config = {}, store = new MemoryStore(), logger = silentLogger }: TestRelayOptions = {},
): Promise<Relay> => {
  const relay = await Relay.start({
    // Tests of everything but authentication connect without tokens.
    config: parseRelayConfig({ region: 'test', store: 'memory', ...config, auth: { anonymous: 'rw', ...config.auth }, listen: { host: '127.0.0.1', port: 0, ...config.listen } }),
    store,
    logger,
  })
  stores.set(relay, store)
  return relay
}

/** The store a test relay keeps its documents in: what a test reads to see what is durable. */
export const storeOf = (relay: Relay): DocStore => {
  const store = stores.get(relay)
  if (store === undefined) throw new Error('storeOf: this relay was not started by startTestRelay')
  return store
}
