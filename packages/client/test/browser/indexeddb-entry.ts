/**
 * Runs in the page: the shared offline-store checks against IndexedDbOfflineStore, plus helpers
 * the Node test calls across a reload or a browser restart. Bytes cross page.evaluate as number
 * arrays, which survive its serialization exactly.
 */
import { IndexedDbOfflineStore } from '../../src/indexeddb-offline-store.js'
import { checksFor, runCheck, trackingFixture } from '../offline-store-conformance.js'

export interface PlainWrite { writeId: number, update: number[] }
export type CheckResult = { ok: true } | { ok: false, error: string }

export interface IndexedDbTestApi {
  /** Runs one conformance check on a database of its own, deleted afterwards. */
  run(checkName: string): Promise<CheckResult>
  put(database: string, docName: string, writes: PlainWrite[]): Promise<void>
  remove(database: string, docName: string, upToWriteId: number): Promise<void>
  load(database: string, docName: string): Promise<PlainWrite[]>
}

/**
 * 'blocked' also fires while a closed store's last transactions finish, and the deletion goes
 * on once they have; only a connection that stays open is a failure.
 */
const deleteDatabase = (name: string): Promise<void> =>
  new Promise((resolve, reject) => {
    const req = indexedDB.deleteDatabase(name)
    let timer: ReturnType<typeof setTimeout> | undefined
    req.onsuccess = () => { clearTimeout(timer); resolve() }
    req.onerror = () => { clearTimeout(timer); reject(req.error) }
    req.onblocked = () => {
      timer ??= setTimeout(() => reject(new Error(`deleting IndexedDB '${name}' stayed blocked for 5 s: a connection to it was left open`)), 5000)
    }
  })

let databases = 0

/** Opens, acts, closes: each call is a separate store, as separate page lifetimes would be. */
const withStore = async <T>(database: string, act: (store: IndexedDbOfflineStore) => Promise<T>): Promise<T> => {
  const store = await IndexedDbOfflineStore.open({ name: database })
  try {
    return await act(store)
  } finally {
    await store.close()
  }
}

const api: IndexedDbTestApi = {
  run: async checkName => {
    const check = checksFor(true).find(c => c.name === checkName)
    if (check === undefined) return { ok: false, error: `no check named "${checkName}" in the page` }
    const name = `conformance-${databases++}-${Date.now()}`
    try {
      await runCheck(check, async () => trackingFixture(
        true,
        () => IndexedDbOfflineStore.open({ name }),
        () => deleteDatabase(name),
      ))
      return { ok: true }
    } catch (err) {
      return { ok: false, error: err instanceof Error ? `${err.name}: ${err.message}\n${err.stack ?? ''}` : String(err) }
    }
  },
  put: (database, docName, writes) => withStore(database, async store => {
    for (const w of writes) await store.put(docName, { writeId: w.writeId, update: Uint8Array.from(w.update) })
  }),
  remove: (database, docName, upToWriteId) => withStore(database, store => store.remove(docName, upToWriteId)),
  load: (database, docName) => withStore(database, async store =>
    (await store.load(docName)).map(w => ({ writeId: w.writeId, update: Array.from(w.update) }))),
}

;(globalThis as unknown as { georelayIndexedDb: IndexedDbTestApi }).georelayIndexedDb = api
