/**
 * A region of two nodes as one peer of the mesh: region a is two `georelay relay` processes on
 * one PostgreSQL schema and one redis-server, region b a single relay, with the WAN simulator
 * between them. b reaches region a through one address that leads to a live node, as a load
 * balancer would. One node of a holds the mesh lease and dials b; clients on either node and on
 * b see one document; a write on the node without the lease is acknowledged at `majority`; and
 * kill -9 of the holder hands the lease to the other node, with nothing lost.
 */
import { afterAll, afterEach, beforeAll, describe, expect, it } from '@jest/globals'
import * as Y from 'yjs'
import type { WebsocketProvider } from 'y-websocket'
import { GeoClient } from '@georelay/client'
import { Relay, parseRelayConfig, silentLogger } from '@georelay/relay'
import {
  type RedisServer, type RelayProcess, type TestSchema, WanSimulator, compareReplicas, connectProvider,
  destroyProvider, every, on, setFullCheck, startRedis, startRegionNodeProcess, testSchema, waitForExactSet, waitSynced,
  waitUntil,
} from '@georelay/testkit'

const SECRET = 'region-mesh-test-secret-0123456789abcdef'
const DELAY_MS = 20

interface RegionsView { regions: { name: string, self: boolean, meshNode?: string, nodes?: { name: string }[] }[] }

const meshNodeOf = async (node: RelayProcess): Promise<string | undefined> => {
  try {
    const res = await fetch(`${node.url.replace('ws:', 'http:')}/v1/regions`)
    const view = await res.json() as RegionsView
    return view.regions.find(r => r.self)?.meshNode
  } catch {
    return undefined
  }
}

const items = (doc: Y.Doc): string[] => doc.getArray<string>('set').toArray()

describe('a region of two nodes in a mesh', () => {
  let redis: RedisServer
  const cleanup: (() => unknown)[] = []
  beforeAll(async () => { redis = await startRedis() })
  afterAll(async () => { await redis?.destroy() })
  afterEach(async () => {
    for (const step of cleanup.splice(0).reverse()) await step()
  })

  /**
   * Region a (nodes a1, a2 as processes) and region b, linked through the WAN simulator. b's
   * link to a lands on the first live node, or (`bDialsHolder`) on the lease holder, so that
   * the other node hears of b only through its sibling. With `nodeUrls`, b is given each
   * node's address (`--peer a=URL,URL`, the holder's first) instead of one balanced address.
   */
  interface Mesh { a: Map<string, RelayProcess>, b: Relay, holder: () => Promise<string> }
  const start = async ({ bDialsHolder = false, nodeUrls = false } = {}): Promise<Mesh> => {
    const schema: TestSchema = await testSchema('mesh')
    cleanup.push(() => schema.drop())
    const wan = new WanSimulator({ defaultDelayMs: DELAY_MS })
    cleanup.push(() => wan.close())
    const a = new Map<string, RelayProcess>()
    let b: Relay | undefined
    let preferred: string | undefined
    const toB = await wan.link('a', 'b', () => b === undefined ? undefined : { port: b.port })
    // b's one address for region a: whichever node is alive, as a load balancer would pick.
    const toA = await wan.link('b', 'a', () => {
      const live = [...a.entries()]
        .filter(([, node]) => node.child.exitCode === null && node.child.signalCode === null)
        .sort(([x], [y]) => Number(y === preferred) - Number(x === preferred))[0]?.[1]
      return live === undefined ? undefined : { port: live.port }
    })
    const toNode = new Map<string, string>()
    for (const node of ['a1', 'a2']) {
      const link = await wan.link('b', 'a', () => {
        const target = a.get(node)
        const alive = target !== undefined && target.child.exitCode === null && target.child.signalCode === null
        return alive ? { port: target.port } : undefined
      })
      toNode.set(node, link.url)
    }
    for (const node of ['a1', 'a2']) {
      const started = await startRegionNodeProcess({
        region: 'a', node, postgres: schema, redisUrl: redis.url, peers: [{ region: 'b', url: toB.url }], meshSecret: SECRET,
      })
      cleanup.push(() => started.kill9())
      a.set(node, started)
    }
    const holder = (): Promise<string> => waitUntil([every(50)], async () => {
      const live = [...a.values()].filter(node => node.child.exitCode === null && node.child.signalCode === null)
      const seen = await Promise.all(live.map(meshNodeOf))
      // Every live node names the same holder, and it is one of them.
      const first = seen[0]
      const agreed = first !== undefined && seen.every(s => s === first) && live.some(n => a.get(first) === n)
      return agreed ? first : undefined
    }, { what: 'the nodes of a to agree on a live mesh lease holder', timeoutMs: 15_000 })
    if (bDialsHolder || nodeUrls) preferred = await holder()
    const [first, ...more] = [...toNode.entries()]
      .sort(([x], [y]) => Number(y === preferred) - Number(x === preferred))
      .map(([, url]) => url)
    const peerA = nodeUrls ? { region: 'a', url: first as string, urls: more } : { region: 'a', url: toA.url }
    b = await Relay.start({
      config: parseRelayConfig({
        region: 'b', listen: { host: '127.0.0.1', port: 0 }, store: 'memory', auth: { anonymous: 'rw' },
        peers: [peerA], meshSecret: SECRET,
      }),
      logger: silentLogger,
    })
    cleanup.push(() => b?.close())
    return { a, b, holder }
  }

  const provider = async (url: string, docName: string): Promise<WebsocketProvider> => {
    const p = connectProvider(url, docName)
    cleanup.push(() => destroyProvider(p))
    await waitSynced(p)
    return p
  }
  const converged = (providers: WebsocketProvider[], expected: string[], what: string): Promise<true> =>
    waitForExactSet(providers.map(p => p.doc), expected, { what, timeoutMs: 20_000 })

  it('is one peer to b: clients on a1, a2 and b edit one document and all replicas agree', async () => {
    const { a, b, holder } = await start()
    const leader = await holder()
    expect(['a1', 'a2']).toContain(leader)
    const clients = [
      await provider((a.get('a1') as RelayProcess).url, 'mesh/doc'),
      await provider((a.get('a2') as RelayProcess).url, 'mesh/doc'),
      await provider(b.url, 'mesh/doc'),
    ]
    const expected: string[] = []
    for (let i = 0; i < 30; i++) {
      clients.forEach((client, c) => {
        client.doc.getArray<string>('set').push([`c${c}-${i}`])
        expected.push(`c${c}-${i}`)
      })
    }
    await converged(clients, expected, 'clients on a1, a2 and b to hold all 90 items')
    const [a1, a2, b1] = clients.map(c => c.doc) as [Y.Doc, Y.Doc, Y.Doc]
    expect(compareReplicas({ a1, a2, b: b1 }).identical).toBe(true)
    // b dials region a and is dialled by it: the one link from a comes from the holder alone.
    await waitUntil([on(b, 'peers')], () => b.peers().find(p => p.region === 'a')?.inbound === true, { what: 'b to see a\'s link' })
    expect(b.peers().map(p => [p.region, p.state, p.inbound])).toEqual([['a', 'up', true]])
  })

  it('acknowledges a write at majority on the node that does not hold the lease', async () => {
    // b's link lands on the holder: the other node learns b's acknowledgements from its sibling.
    const { a, holder } = await start({ bDialsHolder: true })
    const leader = await holder()
    const other = a.get(leader === 'a1' ? 'a2' : 'a1') as RelayProcess
    const client = new GeoClient({ regions: [{ name: 'a', url: other.url }], probeIntervalMs: 0 })
    cleanup.push(() => client.close())
    const session = client.open('mesh/majority', new Y.Doc(), { ack: 'majority' })
    await session.synced
    session.doc.getText('t').insert(0, 'held by b too')
    // b's acknowledgement reaches the holder's link; the holder tells its sibling over Redis.
    await session.flush(15_000)
    expect(session.doc.getText('t').toString()).toBe('held by b too')
  })

  it('carries presence between b and the node that holds no link to b, through the holder', async () => {
    const { a, b, holder } = await start({ bDialsHolder: true })
    const leader = await holder()
    const other = a.get(leader === 'a1' ? 'a2' : 'a1') as RelayProcess
    const onOther = await provider(other.url, 'mesh/presence')
    const onB = await provider(b.url, 'mesh/presence')
    // Once the holder pushes the other node's write to b, its link to b is up, b's rules known.
    onOther.doc.getArray<string>('set').push(['link up'])
    await waitForExactSet([onB.doc], ['link up'], { what: 'the other node\'s write to reach b' })
    onOther.awareness.setLocalStateField('user', { name: 'Ann on the other node' })
    onB.awareness.setLocalStateField('user', { name: 'Bo in b' })
    const sees = (p: WebsocketProvider, name: string): boolean =>
      [...p.awareness.getStates().values()].some(s => (s as { user?: { name?: string } }).user?.name === name)
    await waitUntil([on(onB.awareness, 'change')], () => sees(onB, 'Ann on the other node'), { what: 'b\'s client to see Ann' })
    await waitUntil([on(onOther.awareness, 'change')], () => sees(onOther, 'Bo in b'), { what: 'the other node\'s client to see Bo' })
  })

  it('survives kill -9 of the lease holder: the other node takes over and replication to b goes on', async () => {
    // b dials the holder first of a's two node URLs: the kill makes it dial the other.
    const { a, b, holder } = await start({ nodeUrls: true })
    const leader = await holder()
    const survivorName = leader === 'a1' ? 'a2' : 'a1'
    const survivor = a.get(survivorName) as RelayProcess
    const onSurvivor = await provider(survivor.url, 'mesh/kill')
    const onB = await provider(b.url, 'mesh/kill')
    const expected: string[] = []
    const write = (client: WebsocketProvider, prefix: string, n: number): void => {
      for (let i = 0; i < n; i++) {
        client.doc.getArray<string>('set').push([`${prefix}-${i}`])
        expected.push(`${prefix}-${i}`)
      }
    }
    write(onSurvivor, 'before-a', 20)
    write(onB, 'before-b', 20)
    await converged([onSurvivor, onB], expected, 'the writes before the kill on both sides')

    await (a.get(leader) as RelayProcess).kill9()
    write(onSurvivor, 'after-a', 20)
    write(onB, 'after-b', 20)
    expect(await holder()).toBe(survivorName)
    // b's writes reach a only over b's own link, which had to move to the survivor's address.
    await converged([onSurvivor, onB], expected, 'the writes after the kill on both sides')
    expect(b.peers().map(p => [p.region, p.state])).toEqual([['a', 'up']])
    expect(setFullCheck(expected, { a: onSurvivor.doc, b: onB.doc }))
      .toMatchObject({ ok: true, lost: {}, duplicated: {} })
    // A fresh reader on b loads from b's own store: what a wrote after the kill reached it.
    const fresh = await provider(b.url, 'mesh/kill')
    expect(items(fresh.doc).sort()).toEqual([...expected].sort())
  })
})
