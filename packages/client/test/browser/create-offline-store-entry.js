// Plain JavaScript on purpose: it imports the compiled package (dist), so that esbuild applies
// the package.json `browser` field exactly as an application's bundler would.
import { createOfflineStore } from '../../dist/create-offline-store.js'

globalThis.georelayCreate = {
  async roundTrip () {
    const store = await createOfflineStore('indexeddb')
    await store.put('doc', { writeId: 1, update: Uint8Array.of(1, 2, 3) })
    const loaded = await store.load('doc')
    await store.remove('doc', 1)
    await store.close()
    return loaded.map(w => ({ writeId: w.writeId, update: Array.from(w.update) }))
  },
  async fileStoreError () {
    try {
      await createOfflineStore('file:/tmp/pending.log')
      return 'resolved'
    } catch (err) {
      return String(err instanceof Error ? err.message : err)
    }
  },
}
