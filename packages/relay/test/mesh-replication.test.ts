import { afterEach, describe, expect, it } from '@jest/globals'
import type { WebsocketProvider } from 'y-websocket'
import { CompactBatchReader, type PeerMessage, decodePeerMessage } from '@georelay/core'
import {
  TestCluster, compareReplicas, connectProvider, decodeWsCapture, destroyProvider, on, setFullCheck, waitSynced,
  waitUntil,
} from '@georelay/testkit'

/** The peer messages one direction carried, decoded as its receivers did, connection by connection. */
const peerMessages = (connections: Buffer[]): PeerMessage[] => connections.flatMap(bytes => {
  const link = new CompactBatchReader()
  return decodeWsCapture(bytes).filter(m => m.opcode === 2).map(m => decodePeerMessage(new Uint8Array(m.payload), link))
})

/** Real one-way delays between three regions, within the 40–110 ms the scenario asks for. */
const DELAYS: Record<string, number> = { 'a:b': 40, 'a:c': 110, 'b:c': 75 }
const delayMs = (x: string, y: string): number => DELAYS[[x, y].sort().join(':')] ?? 0

describe('region mesh', () => {
  let cluster: TestCluster
  const providers: WebsocketProvider[] = []
  const connect = (region: string, doc: string): WebsocketProvider => {
    const provider = connectProvider(cluster.url(region), doc)
    providers.push(provider)
    return provider
  }
  const replicasOf = (list: WebsocketProvider[], names: string[]) =>
    Object.fromEntries(list.map((p, i) => [names[i] as string, p.doc]))
  /** Waits until every provider's array holds all `elements`. */
  const waitForAll = (list: WebsocketProvider[], elements: string[], what: string, timeoutMs = 20_000) =>
    Promise.all(list.map(p => waitUntil([on(p.doc, 'update')], () => {
      const have = new Set(p.doc.getArray<string>('set').toArray())
      return elements.every(e => have.has(e))
    }, { what, timeoutMs })))

  afterEach(async () => {
    for (const provider of providers.splice(0)) destroyProvider(provider)
    await cluster?.close()
  })

  it('converges: concurrent edits in three regions over 40–110 ms links', async () => {
    cluster = await TestCluster.start({ regions: ['a', 'b', 'c'], delayMs })
    const regions = ['a', 'b', 'c']
    const clients = regions.flatMap(region => [connect(region, 'doc'), connect(region, 'doc')])
    await Promise.all(clients.map(p => waitSynced(p)))
    const written: string[] = []
    for (let round = 0; round < 20; round++) {
      clients.forEach((client, i) => {
        const element = `r${round}-c${i}`
        client.doc.getArray<string>('set').push([element])
        client.doc.getText('t').insert(0, element)
        written.push(element)
      })
    }
    await waitForAll(clients, written, 'every client to hold every element')
    const report = compareReplicas(replicasOf(clients, clients.map((_, i) => `client${i}`)))
    expect(report.differing).toEqual([])
    // Each relay's own state agrees with the clients: a fresh reader per region sees it all.
    const readers = regions.map(region => connect(region, 'doc'))
    await Promise.all(readers.map(p => waitSynced(p)))
    expect(compareReplicas(replicasOf([clients[0] as WebsocketProvider, ...readers], ['client0', ...regions])).differing).toEqual([])
    expect(setFullCheck(written, replicasOf(readers, regions)).ok).toBe(true)
    // Region a knows its newest write is durable in every region: no peer lacks any of its writes.
    await waitUntil([on(cluster.relay('a'), 'peers')],
      () => cluster.relay('a').peers().every(p => p.pendingUpdates === 0), { what: 'b and c to acknowledge a\'s newest write' })
    expect(cluster.relay('a').peers().map(p => [p.region, p.pendingUpdates])).toEqual([['b', 0], ['c', 0]])
  })

  it('loses nothing across a partition: edits on both sides merge after heal', async () => {
    cluster = await TestCluster.start({ regions: ['a', 'b', 'c'], delayMs })
    const [a, b, c] = [connect('a', 'doc'), connect('b', 'doc'), connect('c', 'doc')] as [WebsocketProvider, WebsocketProvider, WebsocketProvider]
    await Promise.all([a, b, c].map(p => waitSynced(p)))
    cluster.wan.partition('c')
    // Both sides of the cut notice it through their own link timeouts.
    await waitUntil([on(cluster.relay('a'), 'peers')], () => cluster.relay('a').peers().find(p => p.region === 'c')?.state !== 'up', { what: 'a to see its link to c down' })
    const majority = Array.from({ length: 30 }, (_, i) => `ab-${i}`)
    const minority = Array.from({ length: 30 }, (_, i) => `c-${i}`)
    majority.forEach((e, i) => (i % 2 === 0 ? a : b).doc.getArray<string>('set').push([e]))
    minority.forEach(e => c.doc.getArray<string>('set').push([e]))
    await waitForAll([a, b], majority, 'a and b to share their side')
    expect(c.doc.getArray<string>('set').toArray().some(e => e.startsWith('ab-'))).toBe(false)
    cluster.wan.healAll()
    await waitForAll([a, b, c], [...majority, ...minority], 'all sides to merge after heal')
    const report = setFullCheck([...majority, ...minority], { a: a.doc, b: b.doc, c: c.doc })
    expect(report).toMatchObject({ ok: true, lost: {}, duplicated: {} })
    expect(compareReplicas({ a: a.doc, b: b.doc, c: c.doc }).identical).toBe(true)
  })

  it('routes around a cut link: a→c through b while a–c is cut, direct again after heal', async () => {
    cluster = await TestCluster.start({ regions: ['a', 'b', 'c'], delayMs })
    const [a, c] = [connect('a', 'doc'), connect('c', 'doc')] as [WebsocketProvider, WebsocketProvider]
    await Promise.all([a, c].map(p => waitSynced(p)))
    const forwardedByB = async (): Promise<number> => {
      const metrics = await cluster.relay('b').metrics.getSingleMetricAsString('georelay_peer_updates_sent_total')
      return Number(/peer="c"[^}]*\} (\d+)/.exec(metrics)?.[1] ?? 0)
    }
    cluster.wan.cut('a', 'c')
    await waitUntil([on(cluster.relay('b'), 'peers')], () => cluster.relay('b').peers().find(p => p.region === 'a')?.reaches.includes('c') === false,
      { what: 'b to learn that a no longer reaches c' })
    const bBefore = await forwardedByB()
    a.doc.getArray<string>('set').push(['during-cut'])
    await waitForAll([c], ['during-cut'], 'c to get a\'s edit through b')
    expect(await forwardedByB()).toBeGreaterThan(bBefore)

    cluster.wan.heal('a', 'c')
    await waitUntil([on(cluster.relay('b'), 'peers')], () => cluster.relay('b').peers().find(p => p.region === 'a')?.reaches.includes('c') === true,
      { what: 'b to learn that a reaches c again' })
    const bAfterHeal = await forwardedByB()
    a.doc.getArray<string>('set').push(['after-heal'])
    await waitForAll([c], ['after-heal'], 'c to get a\'s edit directly')
    // b has no edits of its own, so anything it sent c now would be a's, forwarded.
    expect(await forwardedByB()).toBe(bAfterHeal)
  })

  it('sends each region\'s link state only where it is news: none forwarded in a whole mesh, round a cut link', async () => {
    const replication = { heartbeatMs: 50, linkTimeoutMs: 500 }
    cluster = await TestCluster.start({ regions: ['a', 'b', 'c'], wan: { capture: true }, config: { replication } })
    const relays = ['a', 'b', 'c'].map(r => cluster.relay(r))
    const reachesAll = (): boolean => relays.every(relay => relay.peers().every(p => p.state === 'up' && p.reaches.length === 2))
    await waitUntil(relays.map(r => on(r, 'peers')), reachesAll, { what: 'every relay to hear that every other reaches both' })
    // From now on, whatever the direction, a link state on it is the sender's own: no copies of
    // the third region's (while links were coming up, forwarding was right).
    const statesOn = (from: string, to: string): string[] => peerMessages(cluster.wan.captureByConnection(from, to))
      .flatMap(m => m.type === 'link-state' ? [m.region] : [])
    const directions = [['a', 'b'], ['b', 'a'], ['a', 'c'], ['c', 'b']] as const
    const before = directions.map(([from, to]) => statesOn(from, to).length)
    await waitUntil(relays.map(r => on(r, 'peers')), () => directions.every(([from, to], i) => statesOn(from, to).length > (before[i] as number) + 3),
      { what: 'a few heartbeats of link state on every direction' })
    directions.forEach(([from, to], i) => expect(new Set(statesOn(from, to).slice(before[i]))).toEqual(new Set([from])))
    // a–c cut: a's word reaches c only through b, which must pass it on now.
    cluster.wan.cut('a', 'c')
    const c = cluster.relay('c')
    await waitUntil([on(c, 'peers')], () => c.peers().find(p => p.region === 'a')?.reaches.join() === 'b',
      { what: 'c to hear, through b, that a reaches only b' })
    expect(statesOn('b', 'c')).toContain('a')
  })

  it('takes a restarted region\'s link state at once, however long its previous run was', async () => {
    cluster = await TestCluster.start({ regions: ['a', 'b', 'c'], config: { replication: { heartbeatMs: 50, linkTimeoutMs: 500 } } })
    const b = cluster.relay('b')
    const aReachesBoth = (): boolean => ['b', 'c'].every(r => b.peers().find(p => p.region === 'a')?.reaches.includes(r) === true)
    await waitUntil([on(b, 'peers')], aReachesBoth, { what: 'b to hear that a reaches b and c' })
    // Let a announce many versions (each one b takes in is a 'peers' event).
    let heard = 0
    const count = (): void => { heard++ }
    b.on('peers', count)
    await waitUntil([on(b, 'peers')], () => heard >= 100, { what: 'a hundred link-state updates at b', timeoutMs: 20_000 })
    b.off('peers', count)
    await cluster.stopRegion('a')
    await waitUntil([on(b, 'peers')], () => !aReachesBoth(), { what: 'b to see a gone' })
    await cluster.startRegion('a')
    // A relay that counted its versions from 0 again had its word ignored here until its count
    // passed its previous run's (about as long as that run: seconds here, days in production).
    await waitUntil([on(b, 'peers')], aReachesBoth, { what: 'b to take the restarted a\'s link state', timeoutMs: 1500 })
  })

  it('catches a peer up by state vector when compaction passed its mark', async () => {
    cluster = await TestCluster.start({ regions: ['a', 'b'] })
    const [a, a2, b] = [connect('a', 'doc'), connect('a', 'doc'), connect('b', 'doc')] as [WebsocketProvider, WebsocketProvider, WebsocketProvider]
    await Promise.all([a, a2, b].map(p => waitSynced(p)))
    // Both links up first: a link still being dialled when the partition starts could slip through it.
    const linked = (): boolean => cluster.relay('a').peers()[0]?.state === 'up' && cluster.relay('b').peers()[0]?.state === 'up'
    await waitUntil([on(cluster.relay('a'), 'peers'), on(cluster.relay('b'), 'peers')], linked, { what: 'a and b to be linked' })
    cluster.wan.partition('b')
    await waitUntil([on(cluster.relay('a'), 'peers')], () => cluster.relay('a').peers()[0]?.state !== 'up', { what: 'a to see b gone' })
    const elements = Array.from({ length: 60 }, (_, i) => `while-away-${i}`)
    for (const e of elements) a.doc.getArray<string>('set').push([e])
    // a2 sees them only once they are durable in region a; then fold them past b's mark.
    await waitForAll([a2], elements, 'a2 to see a\'s edits')
    await cluster.store('a').compact('doc')
    const read = await cluster.store('a').readOrigin('', 0, 1000)
    expect(read.foldedUpTo).toBeGreaterThan(0)
    expect(read.entries).toEqual([])
    cluster.wan.healAll()
    await waitForAll([b], elements, 'b to catch up')
    const catchUps = await cluster.relay('a').metrics.getSingleMetricAsString('georelay_peer_catch_ups_total')
    expect(catchUps).toMatch(/peer="b"[^}]*\} [1-9]/)
    expect(setFullCheck(elements, { a: a.doc, b: b.doc }).ok).toBe(true)
  })

  it('shares awareness across regions and drops it when the client leaves', async () => {
    cluster = await TestCluster.start({ regions: ['a', 'b'], delayMs })
    const [a, b] = [connect('a', 'room'), connect('b', 'room')] as [WebsocketProvider, WebsocketProvider]
    await Promise.all([a, b].map(p => waitSynced(p)))
    a.awareness.setLocalStateField('user', { name: 'Ada in a' })
    await waitUntil([on(b.awareness, 'change')], () => b.awareness.getStates().get(a.awareness.clientID)?.user?.name === 'Ada in a', { what: 'b to see a\'s user' })
    a.disconnect()
    await waitUntil([on(b.awareness, 'change')], () => !b.awareness.getStates().has(a.awareness.clientID), { what: 'a\'s user to vanish in b' })
  })
})
