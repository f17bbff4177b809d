import { describe, expect, it } from '@jest/globals'
import * as Y from 'yjs'
import { GeoClient, MemoryOfflineStore } from '@georelay/client'

const updateOf = (text: string, doc = new Y.Doc()): Uint8Array => {
  const before = Y.encodeStateVector(doc)
  doc.getText('t').insert(doc.getText('t').length, text)
  return Y.encodeStateAsUpdate(doc, before)
}

/** A client that never reaches a relay: everything stays pending in its offline store. */
const offlineClient = (store: MemoryOfflineStore): GeoClient =>
  new GeoClient({ regions: [{ name: 'nowhere', url: 'ws://127.0.0.1:9' }], offline: store, probeIntervalMs: 0, fetch: async () => { throw new Error('unreachable') } })

describe('GeoSession and the offline store', () => {
  it('keeps restored edits and edits made while restoring, with growing write ids', async () => {
    const store = new MemoryOfflineStore()
    const earlier = new Y.Doc()
    await store.put('notes', { writeId: 1, update: updateOf('first ', earlier) })
    await store.put('notes', { writeId: 2, update: updateOf('second ', earlier) })
    const client = offlineClient(store)
    const doc = new Y.Doc()
    const session = client.open('notes', doc)
    // An edit typed at once, before the restore could finish.
    doc.getText('new').insert(0, 'typed at once')
    await session.whenKept()
    const kept = await store.load('notes')
    expect(kept.map(w => w.writeId)).toEqual([1, 2, 3])
    expect(doc.getText('t').toString()).toBe('first second ')
    expect(doc.getText('new').toString()).toBe('typed at once')
    expect(session.pendingWrites).toBe(3)
    await client.close()
  })

  it('flush() counts restored edits: it does not resolve while they are unacknowledged', async () => {
    const store = new MemoryOfflineStore()
    await store.put('notes', { writeId: 1, update: updateOf('pending from before') })
    const client = offlineClient(store)
    const session = client.open('notes', new Y.Doc())
    await expect(session.flush(200)).rejects.toThrow(/^flush of "notes" timed out after 200 ms: .*1 edit not yet durable in any region: no relay is reachable \(status offline\)/)
    await client.close()
  })
})
