import { afterEach, describe, expect, it } from '@jest/globals'
import * as Y from 'yjs'
import { GeoClient, type GeoSession } from '@georelay/client'
import { TestCluster, connectProvider, destroyProvider, on, waitSynced, waitUntil } from '@georelay/testkit'

describe('one socket, many documents, acknowledged writes', () => {
  let cluster: TestCluster
  const clients: GeoClient[] = []
  afterEach(async () => {
    for (const c of clients.splice(0)) await c.close()
    await cluster?.close()
  })

  it('syncs 200 documents on one socket; an error on one leaves the other 199 working', async () => {
    cluster = await TestCluster.start({ regions: ['a'], config: { limits: { maxMessageBytes: 64 * 1024, maxDocsPerConnection: 256 } } })
    const client = new GeoClient({ regions: [{ name: 'a', url: cluster.url('a') }], probeIntervalMs: 0 })
    clients.push(client)
    const sessions: GeoSession[] = []
    for (let i = 0; i < 200; i++) sessions.push(client.open(`many/${i}`, new Y.Doc()))
    await Promise.all(sessions.map(s => s.synced))
    const metrics = await cluster.relay('a').metrics.getSingleMetricAsString('georelay_connections')
    expect(metrics).toMatch(/endpoint="mux"[^}]*\} 1/)

    // Document 13 gets an update the relay must refuse (larger than maxMessageBytes would close
    // the socket, so: a well-framed write whose update is not a Yjs update).
    const victim = sessions[13] as GeoSession
    const refused = new Promise<Error & { code: number }>(resolve => victim.on('error', e => resolve(e)))
    ;(client as unknown as { send: (m: unknown) => void }).send({ type: 'write', docId: victim.docId, writeId: 999, update: new Uint8Array([7, 7, 7]) })
    const error = await refused
    expect(error.code).toBe(4400)
    expect(error.message).toMatch(/not a valid Yjs update/)

    // Every other document still syncs both ways.
    sessions.forEach((s, i) => { if (i !== 13) s.doc.getText('t').insert(0, `doc ${i}`) })
    await Promise.all(sessions.filter((_, i) => i !== 13).map(s => s.flush(10_000)))
    const reader = connectProvider(cluster.url('a'), 'many/199')
    await waitSynced(reader)
    expect(reader.doc.getText('t').toString()).toBe('doc 199')
    reader.doc.getText('t').insert(0, 'back: ')
    const last = sessions[199] as GeoSession
    await waitUntil([on(last.doc, 'update')], () => last.doc.getText('t').toString() === 'back: doc 199', { what: 'doc 199 to get the reader\'s edit' })
    destroyProvider(reader)
  })

  it('flush() resolves per level: local at once, majority with one region cut, all only after heal', async () => {
    cluster = await TestCluster.start({ regions: ['a', 'b', 'c'], delayMs: () => 20 })
    const endpoints = [{ name: 'a', url: cluster.url('a') }, { name: 'b', url: cluster.url('b') }, { name: 'c', url: cluster.url('c') }]
    const open = async (level: 'local' | 'majority' | 'all'): Promise<GeoSession> => {
      const client = new GeoClient({ regions: endpoints.filter(e => e.name === 'a'), probeIntervalMs: 0 })
      clients.push(client)
      const session = client.open(`acks/${level}`, new Y.Doc(), { ack: level })
      await session.synced
      return session
    }
    const [local, majority, all] = [await open('local'), await open('majority'), await open('all')]
    // Wait until a's links to b and c are up, so majority is reachable before the cut.
    await waitUntil([on(cluster.relay('a'), 'peers')], () => cluster.relay('a').peers().every(p => p.state === 'up'), { what: 'a\'s links up' })
    cluster.wan.partition('c')
    await waitUntil([on(cluster.relay('a'), 'peers')], () => cluster.relay('a').peers().find(p => p.region === 'c')?.state !== 'up', { what: 'a to see c gone' })

    const timed = async (session: GeoSession, timeoutMs: number): Promise<number> => {
      session.doc.getText('t').insert(0, 'x')
      const started = performance.now()
      await session.flush(timeoutMs)
      return performance.now() - started
    }
    const localMs = await timed(local, 2000)
    const majorityMs = await timed(majority, 5000)
    expect(local.status).toBe('synced')
    // 'all' cannot complete while c is cut…
    all.doc.getText('t').insert(0, 'x')
    await expect(all.flush(1500)).rejects.toThrow(/timed out after 1500 ms: 1 edit durable in 1 of the document's 3 regions \(\w+\); 'all' needs 3; waiting for /)
    // …and completes once it heals.
    const healedAt = performance.now()
    cluster.wan.healAll()
    await all.flush(15_000)
    const allAfterHealMs = performance.now() - healedAt
    const allMs = await timed(all, 5000)
    console.log(`flush latency with 20 ms one-way between regions: local ${localMs.toFixed(1)} ms, majority (c cut) ${majorityMs.toFixed(1)} ms, all ${allMs.toFixed(1)} ms (after heal, the blocked flush took ${allAfterHealMs.toFixed(0)} ms)`)
    expect(localMs).toBeLessThan(majorityMs)
  })
})
