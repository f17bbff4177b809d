import { MemoryStore } from '@georelay/core'
import { describeDocStore } from '@georelay/core/testing'

describeDocStore('MemoryStore', async options => {
  const store = new MemoryStore(options)
  return { store, teardown: () => store.close() }
})
