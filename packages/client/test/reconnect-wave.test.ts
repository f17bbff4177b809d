import { afterAll, describe, expect, it } from '@jest/globals'
import * as Y from 'yjs'
import { GeoClient, type GeoSession } from '@georelay/client'
import { TestCluster, compareReplicas, on, waitUntil } from '@georelay/testkit'

const CLIENTS = 500
const DOCS = 10

describe('500 clients whose relay dies', () => {
  let cluster: TestCluster
  const clients: GeoClient[] = []
  afterAll(async () => {
    await Promise.all(clients.map(c => c.close()))
    await cluster?.close()
  })

  it('reconnect spread over time, and all converge', async () => {
    process.setMaxListeners(CLIENTS + 20)
    cluster = await TestCluster.start({ regions: ['a', 'b'], mode: 'process' })
    const regions = [{ name: 'a', url: cluster.url('a') }, { name: 'b', url: cluster.url('b') }]
    const sessions: GeoSession[] = []
    const movedAt: number[] = []
    for (let i = 0; i < CLIENTS; i++) {
      // Fixed round trips (no probing): every client prefers a, as clients near one region would.
      // A generous welcome/heartbeat timeout: 500 sockets opening at once on a busy machine must
      // not count as a dead relay (the kill below closes the sockets, which needs no timeout).
      const client = new GeoClient({ regions, probeIntervalMs: 0, heartbeatTimeoutMs: 10_000, fetch: async url => ({ ok: true, text: async () => (url.includes(new URL(regions[0]?.url ?? '').host) ? '' : await slow()) }) })
      clients.push(client)
      client.on('region', change => { if (change.reason === 'failover') movedAt[i] = performance.now() })
      sessions.push(client.open(`wave/${i % DOCS}`, new Y.Doc()))
    }
    await Promise.all(sessions.map(s => s.synced))
    expect(clients.filter(c => c.region !== 'a').map(c => c.region)).toEqual([])

    const killedAt = performance.now()
    await cluster.killRegion('a')
    await Promise.all(clients.map(c => waitUntil([on(c, 'region')], () => c.region === 'b', { what: 'every client to fail over to b', timeoutMs: 20_000 })))
    const offsets = movedAt.map(t => t - killedAt).sort((x, y) => x - y)
    const spread = (offsets[offsets.length - 1] as number) - (offsets[0] as number)
    console.log(`${CLIENTS} clients failed over: first ${offsets[0]?.toFixed(0)} ms, median ${offsets[CLIENTS / 2]?.toFixed(0)} ms, last ${offsets[CLIENTS - 1]?.toFixed(0)} ms after the kill (spread ${spread.toFixed(0)} ms)`)
    // Spread out, not one wave: the middle half of the clients span a good part of the jitter window.
    const middleHalfMs = (offsets[Math.floor(CLIENTS * 0.75)] as number)
      - (offsets[Math.floor(CLIENTS * 0.25)] as number)
    expect(middleHalfMs).toBeGreaterThan(50)

    sessions.forEach((s, i) => s.doc.getArray<string>('set').push([`client-${i}`]))
    await Promise.all(sessions.map(s => s.flush(20_000)))
    const expected = (doc: number): string[] => sessions.map((_, i) => `client-${i}`).filter((_, i) => i % DOCS === doc)
    await Promise.all(sessions.map((s, i) => waitUntil([on(s.doc, 'update')], () => {
      const have = new Set(s.doc.getArray<string>('set').toArray())
      return expected(i % DOCS).every(e => have.has(e))
    }, { what: 'every client to hold every element of its document', timeoutMs: 20_000 })))
    for (let d = 0; d < DOCS; d++) {
      const replicas = Object.fromEntries(sessions.filter((_, i) => i % DOCS === d).map((s, i) => [`client${i}`, s.doc]))
      expect(compareReplicas(replicas).differing).toEqual([])
    }
  }, 90_000)
})

/** A region that answers its health probe later than a, so a ranks first. */
const slow = (): Promise<string> => new Promise(resolve => setTimeout(() => resolve(''), 300))
