import { afterEach, describe, expect, it } from '@jest/globals'
import WebSocket from 'ws'
import type { WebsocketProvider } from 'y-websocket'
import type { Relay } from '@georelay/relay'
import { TEST_MESH_SECRET, TestCluster, connectProvider, destroyProvider, on, setFullCheck, waitSynced, waitUntil } from '@georelay/testkit'

const REGIONS = ['a', 'b', 'c']

/** The HTTP status a peer upgrade offering `secret` gets (101 when taken). */
const peerUpgradeStatus = (url: string, secret: string): Promise<number> => new Promise(resolve => {
  const ws = new WebSocket(`${url}/v1/peer`, { headers: { authorization: `Bearer ${secret}`, 'x-georelay-region': 'a' } })
  ws.on('unexpected-response', (_req, res) => { resolve(res.statusCode ?? 0); ws.terminate() })
  ws.on('open', () => { resolve(101); ws.terminate() })
  ws.on('error', () => {})
})
const NEW_SECRET = 'the-rotated-mesh-secret-of-at-least-32-bytes'

describe('rotating the mesh secret', () => {
  let cluster: TestCluster
  const providers: WebsocketProvider[] = []
  afterEach(async () => {
    for (const provider of providers.splice(0)) destroyProvider(provider)
    await cluster?.close()
  })

  it('one relay at a time under traffic: no link is ever refused, nothing is lost', async () => {
    const secrets = new Map<string, { meshSecret: string, previousMeshSecrets: string[] }>(
      REGIONS.map(r => [r, { meshSecret: TEST_MESH_SECRET, previousMeshSecrets: [] }]))
    cluster = await TestCluster.start({ regions: REGIONS, store: 'sqlite', configFor: region => secrets.get(region) ?? {} })
    const relays = (): Relay[] => REGIONS.map(r => cluster.relay(r))
    const allUp = (): boolean => relays().every(relay => relay.peers().every(p => p.state === 'up' && p.inbound))
    // Every link state every relay reports, watched throughout: a secret refusal shows as its error.
    const refusals: string[] = []
    const watch = (): void => {
      for (const relay of relays()) {
        relay.on('peers', () => {
          for (const p of relay.peers()) if (p.error === 'refused-secret') refusals.push(`${relay.region}→${p.region}`)
        })
      }
    }
    const waitAllUp = (what: string): Promise<unknown> => waitUntil(relays().map(r => on(r, 'peers')), allUp, { what, timeoutMs: 20_000 })
    await waitAllUp('the mesh to come up')
    watch()

    // Traffic: a writer in each region, an item every few ms, through every restart.
    const writers = REGIONS.map(r => { const p = connectProvider(cluster.url(r), 'rotation/doc'); providers.push(p); return p })
    await Promise.all(writers.map(p => waitSynced(p)))
    const written: string[] = []
    let n = 0
    const timer = setInterval(() => {
      const writer = writers[n % writers.length] as WebsocketProvider
      const item = `w${n++}`
      writer.doc.getArray<string>('items').push([item])
      written.push(item)
    }, 5)
    type Secrets = { meshSecret: string, previousMeshSecrets: string[] }
    const restartWith = async (region: string, secret: Secrets): Promise<void> => {
      secrets.set(region, secret)
      await cluster.stopRegion(region)
      await cluster.startRegion(region)
      watch()
      await waitAllUp(`every link up after ${region} restarted`)
      // Writes went on around this restart too (the writers' regions kept their links).
      const before = written.length
      await waitUntil([on(writers[0]?.doc as WebsocketProvider['doc'], 'update')], () => written.length > before + 5, { what: 'writes after the restart' })
    }
    try {
      // 1: each relay in turn dials with the new secret and still takes the old one.
      const both = { meshSecret: NEW_SECRET, previousMeshSecrets: [TEST_MESH_SECRET] }
      for (const region of REGIONS) await restartWith(region, both)
      // 2: each relay in turn drops the old one.
      for (const region of REGIONS) await restartWith(region, { meshSecret: NEW_SECRET, previousMeshSecrets: [] })
    } finally {
      clearInterval(timer)
    }
    expect(refusals).toEqual([])
    // The old secret no longer opens a link anywhere.
    for (const region of REGIONS) expect(await peerUpgradeStatus(cluster.url(region), TEST_MESH_SECRET)).toBe(401)
    const readers = REGIONS.map(r => { const p = connectProvider(cluster.url(r), 'rotation/doc'); providers.push(p); return p })
    await Promise.all(readers.map(reader => waitUntil([on(reader.doc, 'update')], () => reader.doc.getArray<string>('items').length >= written.length,
      { what: 'every region to hold every item', timeoutMs: 20_000 })))
    const report = setFullCheck(written, Object.fromEntries(readers.map((r, i) => [REGIONS[i] as string, r.doc])), { name: 'items' })
    expect(report).toMatchObject({ ok: true, lost: {}, duplicated: {} })
  }, 90_000)
})
