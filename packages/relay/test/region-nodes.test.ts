/**
 * A region of two nodes on one real PostgreSQL schema and one real redis-server: stock
 * y-websocket clients on either node see each other's edits; Redis restarted, or a node's
 * subscription gone silent, delays updates and loses none, and the log reads say they did the
 * repair.
 */
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from '@jest/globals'
import * as Y from 'yjs'
import type { WebsocketProvider } from 'y-websocket'
import { EventEmitter } from 'node:events'
import { type Logger, Relay, parseRelayConfig, silentLogger, streamLogger } from '@georelay/relay'
import { PostgresStore } from '@georelay/store-postgres'
import {
  type RedisServer, type TestSchema, WanSimulator, connectProvider, destroyProvider, every, on, startRedis, testSchema,
  waitForExactSet, waitSynced, waitUntil,
} from '@georelay/testkit'

const REGION = 'eu-west'

/** A metric's value for one label set (0 when never counted). */
const metric = async (relay: Relay, name: string, labels: Record<string, string> = {}): Promise<number> => {
  const found = relay.metrics.getSingleMetric(name)
  if (found === undefined) throw new Error(`no metric ${name}`)
  const { values } = await found.get()
  return values
    .filter(v => Object.entries(labels).every(([key, value]) => v.labels[key] === value))
    .reduce((sum, v) => sum + v.value, 0)
}

const items = (doc: Y.Doc): string[] => doc.getArray<string>('set').toArray()

describe('a region of two nodes', () => {
  let redis: RedisServer
  let schema: TestSchema
  const cleanup: (() => unknown)[] = []
  beforeAll(async () => {
    redis = await startRedis()
  })
  afterAll(async () => { await redis?.destroy() })
  afterEach(async () => {
    for (const step of cleanup.splice(0).reverse()) await step()
  })

  const startNode = async (
    node: string, redisUrl = redis.url, logger: Logger = silentLogger, pollMs = 250,
  ): Promise<Relay> => {
    const relay = await Relay.start({
      config: parseRelayConfig({
        region: REGION,
        node,
        listen: { host: '127.0.0.1', port: 0 },
        store: 'postgres',
        storage: { postgres: { url: schema.url, schema: schema.schema, poolSize: 4 } },
        redis: { url: redisUrl, pollMs },
        auth: { anonymous: 'rw' },
      }),
      logger,
    })
    cleanup.push(() => relay.close())
    return relay
  }
  const provider = async (relay: Relay, docName: string): Promise<WebsocketProvider> => {
    const p = connectProvider(relay.url, docName)
    cleanup.push(() => destroyProvider(p))
    await waitSynced(p)
    return p
  }
  /** Waits until every provider's set holds exactly `expected` (no loss, no duplicate). */
  const converged = (providers: WebsocketProvider[], expected: string[], what: string): Promise<true> =>
    waitForExactSet(providers.map(p => p.doc), expected, { what })
  const redisUp = (relay: Relay): Promise<true> =>
    waitUntil([on(relay, 'redis')], () => relay.redisUp === true, { what: `${relay.node} subscribed on Redis` })

  beforeEach(async () => {
    schema = await testSchema('nodes')
    cleanup.push(() => schema.drop())
  })

  it('gives stock y-websocket clients on either node one document, concurrently edited', async () => {
    // No poll within the test: what crosses between the nodes, the hints alone carry.
    const a1 = await startNode('a1', redis.url, silentLogger, 60_000)
    const a2 = await startNode('a2', redis.url, silentLogger, 60_000)
    await Promise.all([redisUp(a1), redisUp(a2)])
    const on1 = await provider(a1, 'notes/shared')
    const on2 = await provider(a2, 'notes/shared')
    const expected: string[] = []
    for (let i = 0; i < 40; i++) {
      on1.doc.getArray<string>('set').push([`a1-${i}`])
      on2.doc.getArray<string>('set').push([`a2-${i}`])
      expected.push(`a1-${i}`, `a2-${i}`)
    }
    await converged([on1, on2], expected, 'both clients to hold all 80 items')
    // Small updates ride in their hints, both ways; nothing needed the log.
    expect(await metric(a2, 'georelay_node_updates_received_total', { path: 'hint' })).toBeGreaterThan(0)
    expect(await metric(a1, 'georelay_node_updates_received_total', { path: 'hint' })).toBeGreaterThan(0)
    expect(await metric(a1, 'georelay_node_updates_received_total', { path: 'log' })).toBe(0)
    expect(await metric(a2, 'georelay_node_updates_received_total', { path: 'log' })).toBe(0)
    // A late client on either node loads it all from the shared store.
    const late = await provider(a1, 'notes/shared')
    expect(items(late.doc).sort()).toEqual([...expected].sort())
  })

  it('loses nothing while Redis is down and comes back empty; the log reads repair it', async () => {
    const a1 = await startNode('a1')
    const a2 = await startNode('a2')
    await Promise.all([redisUp(a1), redisUp(a2)])
    const on1 = await provider(a1, 'notes/restart')
    const on2 = await provider(a2, 'notes/restart')
    const expected: string[] = []
    const write = (p: WebsocketProvider, name: string): void => {
      p.doc.getArray<string>('set').push([name])
      expected.push(name)
    }
    write(on1, 'before')
    await converged([on1, on2], expected, 'the first write on both nodes')
    const logBefore = await metric(a2, 'georelay_node_updates_received_total', { path: 'log' })

    await redis.stop()
    let restarted = false
    // Should this test fail while Redis is down, the next tests still get one.
    cleanup.push(async () => { if (!restarted) await redis.start() })
    await waitUntil([on(a1, 'redis'), on(a2, 'redis')], () => a1.redisUp === false && a2.redisUp === false, { what: 'both nodes to notice Redis is gone' })
    for (let i = 0; i < 10; i++) write(on1, `down-a1-${i}`)
    for (let i = 0; i < 10; i++) write(on2, `down-a2-${i}`)
    // No hint can arrive now: only the poll of the shared log brings these across.
    await converged([on1, on2], expected, 'writes made while Redis is down to reach the other node')
    expect(await metric(a2, 'georelay_node_updates_received_total', { path: 'log' })).toBeGreaterThan(logBefore)

    await redis.start()
    restarted = true
    await Promise.all([redisUp(a1), redisUp(a2)])
    expect(await metric(a1, 'georelay_node_log_reads_total', { reason: 'redis' })).toBeGreaterThan(0)
    for (let i = 0; i < 10; i++) write(on2, `after-${i}`)
    await converged([on1, on2], expected, 'writes after Redis is back')
    const fresh = await provider(a2, 'notes/restart')
    expect(items(fresh.doc).sort()).toEqual([...expected].sort())
  })

  it('catches up from the log when a node\'s subscription goes silent without it noticing', async () => {
    const wan = new WanSimulator()
    cleanup.push(() => wan.close())
    // a2 reaches Redis through a link that can hold Redis's bytes to it: a subscription that
    // stays open and says nothing, as a dropped one behind a proxy does.
    const link = await wan.link('a2', 'redis', { port: redis.port })
    const a1 = await startNode('a1')
    const a2 = await startNode('a2', `redis://127.0.0.1:${link.port}`)
    await Promise.all([redisUp(a1), redisUp(a2)])
    const on1 = await provider(a1, 'notes/silent')
    const on2 = await provider(a2, 'notes/silent')
    const expected: string[] = []
    on1.doc.getArray<string>('set').push(['first'])
    expected.push('first')
    await converged([on1, on2], expected, 'the first write on both nodes')

    wan.cut('redis', 'a2', { oneWay: true })
    const logBefore = await metric(a2, 'georelay_node_updates_received_total', { path: 'log' })
    const hintsBefore = await metric(a2, 'georelay_node_updates_received_total', { path: 'hint' })
    for (let i = 0; i < 20; i++) {
      on1.doc.getArray<string>('set').push([`silent-${i}`])
      expected.push(`silent-${i}`)
    }
    await converged([on1, on2], expected, 'a1\'s writes to reach a2\'s client with no hint')
    expect(a2.redisUp).toBe(true) // it never noticed
    expect(await metric(a2, 'georelay_node_updates_received_total', { path: 'hint' })).toBe(hintsBefore)
    expect(await metric(a2, 'georelay_node_updates_received_total', { path: 'log' })).toBeGreaterThan(logBefore)
    // The held hints arrive after the heal and change nothing.
    wan.heal('redis', 'a2', { oneWay: true })
    on2.doc.getArray<string>('set').push(['healed'])
    expected.push('healed')
    await converged([on1, on2], expected, 'a write after the heal')
  })

  it('lists the region\'s live nodes in /v1/regions, and drops one that stops', async () => {
    const a1 = await startNode('a1')
    const a2 = await startNode('a2')
    type Regions = { regions: { name: string, self: boolean, nodes?: { name: string, url: string }[] }[] }
    const nodesSeenBy = async (relay: Relay): Promise<string[]> => {
      const body = await (await fetch(`${relay.url.replace('ws://', 'http://')}/v1/regions`)).json() as Regions
      return (body.regions.find(r => r.self)?.nodes ?? []).map(n => `${n.name} ${n.url}`)
    }
    const both = [`a1 ${a1.url}`, `a2 ${a2.url}`]
    await waitUntil([on(a1, 'nodes')], async () => JSON.stringify(await nodesSeenBy(a1)) === JSON.stringify(both), { what: 'a1 to list both nodes' })
    await a2.close()
    await waitUntil([on(a1, 'nodes')], async () => JSON.stringify(await nodesSeenBy(a1)) === JSON.stringify([`a1 ${a1.url}`]), { what: 'a1 to list itself alone' })
  })

  it('says so when two nodes of the region share a name', async () => {
    const lines = new EventEmitter<{ line: [string] }>()
    const seen: string[] = []
    const logger = streamLogger(line => { seen.push(line); lines.emit('line', line) }, 'warn')
    await startNode('twin', redis.url, logger)
    await startNode('twin', redis.url, logger)
    await waitUntil([on(lines, 'line')], () => seen.some(line => line.includes('node name "twin" is also announced at ws://127.0.0.1:')),
      { what: 'a warning that two nodes share the name "twin"' })
    expect(seen.find(line => line.includes('share a name'))).toMatch(/give each node its own --node/)
  })

  it('carries presence between the nodes', async () => {
    const a1 = await startNode('a1')
    const a2 = await startNode('a2')
    await Promise.all([redisUp(a1), redisUp(a2)])
    const on1 = await provider(a1, 'notes/presence')
    const on2 = await provider(a2, 'notes/presence')
    on1.awareness.setLocalStateField('user', { name: 'ada' })
    await waitUntil([on(on2.awareness, 'change')], () =>
      [...on2.awareness.getStates().values()].some(s => (s as { user?: { name?: string } }).user?.name === 'ada'),
    { what: 'a1\'s client\'s presence at a2\'s client' })
    const id = on1.awareness.clientID
    destroyProvider(on1)
    await waitUntil([on(on2.awareness, 'change')], () => !on2.awareness.getStates().has(id), { what: 'the presence to go when its client leaves' })
  })

  it('closes a sibling node\'s clients of an erased document within a poll, and refuses its writes', async () => {
    const a1 = await startNode('a1')
    const a2 = await startNode('a2')
    await Promise.all([redisUp(a1), redisUp(a2)])
    const on2 = await provider(a2, 'notes/erased')
    on2.doc.getArray<string>('set').push(['before'])
    const http = (relay: Relay): string => `${relay.url.replace(/^ws/, 'http')}/v1/docs/notes%2Ferased`
    await waitUntil([every(50)], async () => (await fetch(http(a1))).status === 200, { what: 'a1 to read the document' })
    const closed = new Promise<number>(resolve => on2.once('connection-close', (event: { code: number } | null) => resolve(event?.code ?? 0)))
    expect((await fetch(http(a1), { method: 'DELETE' })).status).toBe(200)
    expect(await closed).toBe(4410)
    on2.shouldConnect = false
    expect((await fetch(http(a2))).status).toBe(410)
    const write = new Y.Doc()
    write.getArray<string>('set').push(['after'])
    expect((await fetch(http(a2), { method: 'POST', body: Buffer.from(Y.encodeStateAsUpdate(write)) })).status).toBe(410)
    // What a2 stored of the document before it knew is gone too, and the name stays erased.
    const store = await PostgresStore.open({ url: schema.url, schema: schema.schema })
    cleanup.push(() => store.close())
    expect(await store.read('notes/erased')).toEqual({ snapshot: null, snapshotSeq: 0, log: [] })
    expect((await store.readErased()).map(t => t.docName)).toEqual(['notes/erased'])
  })
})
