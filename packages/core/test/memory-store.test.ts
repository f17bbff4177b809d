import { MemoryStore } from '@georelay/core'
import { describeDocStore } from './doc-store-conformance.js'

describeDocStore('MemoryStore', async options => {
  const store = new MemoryStore(options)
  return { store, teardown: () => store.close() }
})
