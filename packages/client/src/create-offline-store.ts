import type { OfflineStore } from './offline-store.js'
import { MemoryOfflineStore } from './memory-offline-store.js'
import { IndexedDbOfflineStore } from './indexeddb-offline-store.js'

/**
 * Where a client keeps its pending writes: `'memory'` (lost with the process), `'indexeddb'`
 * (browsers), `'file:PATH'` (Node; the directory must exist), or any `OfflineStore`.
 */
export type OfflineStoreSpec = 'memory' | 'indexeddb' | `file:${string}` | OfflineStore

const isOfflineStore = (value: unknown): value is OfflineStore =>
  typeof value === 'object' && value !== null
  && ['load', 'put', 'remove', 'close'].every(method => typeof (value as Record<string, unknown>)[method] === 'function')

const USAGE = "use 'memory', 'indexeddb' (browsers), 'file:/path/to/pending-writes.log' (Node), or an object implementing OfflineStore"

export const createOfflineStore = async (spec: OfflineStoreSpec): Promise<OfflineStore> => {
  if (isOfflineStore(spec)) return spec
  if (spec === 'memory') return new MemoryOfflineStore()
  if (spec === 'indexeddb') {
    if (typeof indexedDB === 'undefined') {
      throw new Error("offline store 'indexeddb' needs IndexedDB, which this runtime lacks (globalThis.indexedDB is undefined); in Node use 'file:/path/to/pending-writes.log' or 'memory'")
    }
    return IndexedDbOfflineStore.open()
  }
  if (typeof spec === 'string' && spec.startsWith('file:')) {
    const file = spec.slice('file:'.length)
    if (file === '') throw new Error(`offline store 'file:' has no path; ${USAGE}`)
    // Dynamic, so that browser bundles (where package.json maps this module to nothing) leave
    // node:fs out.
    const { FileOfflineStore } = await import('./file-offline-store.js') as Partial<typeof import('./file-offline-store.js')>
    if (FileOfflineStore === undefined) {
      throw new Error(`offline store '${spec}' needs Node's file system, which this runtime lacks; in a browser use 'indexeddb'`)
    }
    return FileOfflineStore.open(file.startsWith('//') ? spec : file)
  }
  throw new Error(`unknown offline store ${JSON.stringify(spec) ?? String(spec)}; ${USAGE}`)
}
