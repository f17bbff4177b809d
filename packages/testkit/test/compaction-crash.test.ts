import { afterEach, describe, expect, it } from '@jest/globals'
import path from 'node:path'
import * as Y from 'yjs'
import { type StoredDoc } from '@georelay/core'
import { SqliteStore } from '@georelay/store-sqlite'
import { GeoClient } from '@georelay/client'
import { TestCluster, connectProvider, destroyProvider, docOfStored, on, setFullCheck, waitSynced, waitUntil } from '@georelay/testkit'

/** Compaction starts with the append that brings a document's log to this many entries. */
const THRESHOLD = 2000
/** Padding makes the log big (5 MB), so the merge takes long (over 160 ms measured under load). */
const PAD = 'x'.repeat(2000)
const NEVER = { updates: 1e9, bytes: 1e12 }

/** The relay's store as it is on disk now (another connection; WAL lets it read a live file). */
const onDisk = async (cluster: TestCluster, docName: string): Promise<StoredDoc> => {
  const store = new SqliteStore(path.join(cluster.dataDir, 'a'), { compaction: NEVER })
  try {
    return await store.read(docName)
  } finally {
    await store.close()
  }
}

const contentOf = (stored: StoredDoc): string[] => docOfStored(stored).getArray<string>('set').toArray()

describe('a relay killed (-9) while it compacts a document', () => {
  let cluster: TestCluster
  afterEach(async () => { await cluster?.close() })

  it('loses no acknowledged write, and compacts again after the restart', async () => {
    cluster = await TestCluster.start({ regions: ['a'], mode: 'process', config: { storage: { compactAfterUpdates: THRESHOLD, compactAfterBytes: 1 << 30 } } })
    const landed: string[] = []
    // The compaction may finish before the freeze lands (a fast merge): then try a new document.
    for (let attempt = 1; attempt <= 4 && landed.length === 0; attempt++) {
      const docName = `crash/compaction-${attempt}`
      const client = new GeoClient({ regions: [{ name: 'a', url: cluster.url('a') }], probeIntervalMs: 0 })
      const doc = new Y.Doc()
      const session = client.open(docName, doc, { ack: 'local' })
      await session.synced
      // A fresh session numbers its writes 1, 2, 3…; each push is one write.
      const elements: string[] = []
      let acked = 0
      let frozen = false
      session.on('ack', writeId => {
        acked = Math.max(acked, writeId)
        // The append of write THRESHOLD started the compaction in the turn that acknowledged
        // it: freeze the relay right there, mid-merge, to look at its disk.
        if (acked >= THRESHOLD && !frozen) {
          cluster.pauseRegion('a')
          frozen = true
        }
      })
      for (let i = 1; i <= THRESHOLD + 500; i++) {
        const element = `${attempt}-${i}-${PAD}`
        elements.push(element)
        doc.getArray<string>('set').push([element])
      }
      await waitUntil([on(session, 'ack')], () => frozen, { what: `the acknowledgement of write ${THRESHOLD}`, timeoutMs: 20_000 })
      const atFreeze = await onDisk(cluster, docName)
      // Stopped (paused) while its compaction had started but not committed: no snapshot yet.
      if (atFreeze.snapshot === null && atFreeze.log.length >= THRESHOLD) landed.push(docName)
      await client.close() // the acknowledged set is final now
      const acknowledged = elements.slice(0, acked)
      await cluster.killRegion('a')
      await cluster.startRegion('a')

      const reader = connectProvider(cluster.url('a'), docName)
      try {
        await waitSynced(reader)
        const report = setFullCheck(acknowledged, { relay: reader.doc }, { written: elements })
        expect(report).toMatchObject({ ok: true, lost: {}, duplicated: {}, unexpected: {} })
        expect(acknowledged.length).toBeGreaterThanOrEqual(THRESHOLD)
      } finally {
        destroyProvider(reader)
      }
    }
    expect(landed.length).toBe(1)

    // Loading the document after the restart found its log past the threshold and compacted it;
    // a clean stop waits for that compaction to finish.
    await cluster.stopRegion('a')
    const after = await onDisk(cluster, landed[0] as string)
    expect(after.snapshot).not.toBeNull()
    const content = contentOf(after)
    expect(new Set(content).size).toBe(content.length)
    expect(content.length).toBeGreaterThanOrEqual(THRESHOLD)
  }, 90_000)
})
