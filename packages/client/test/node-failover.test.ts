/**
 * The SDK and a region of two nodes (relay processes on one real PostgreSQL schema and one real
 * redis-server): when the node in use dies with kill -9 the client moves to the region's other
 * node, not to a nearer other region, and no acknowledged write is lost.
 */
import { afterEach, describe, expect, it } from '@jest/globals'
import * as Y from 'yjs'
import { GeoClient, type RegionChange } from '@georelay/client'
import { Relay, parseRelayConfig, silentLogger } from '@georelay/relay'
import {
  type RedisServer, type RelayProcess, WanSimulator, connectProvider, destroyProvider, on, startRedis,
  startRegionNodeProcess, testSchema, waitSynced, waitUntil,
} from '@georelay/testkit'

const items = (doc: Y.Doc): string[] => doc.getArray<string>('set').toArray()

describe('GeoClient and a region of several nodes', () => {
  const cleanup: (() => unknown)[] = []
  afterEach(async () => {
    for (const step of cleanup.splice(0).reverse()) await step()
  })

  it('moves to the region\'s other node after kill -9, before a nearer region, losing no acknowledged write', async () => {
    const schema = await testSchema('sdk_nodes')
    cleanup.push(() => schema.drop())
    const redis: RedisServer = await startRedis()
    cleanup.push(() => redis.destroy())
    const node = async (name: string): Promise<RelayProcess> => {
      const relay = await startRegionNodeProcess({ region: 'eu-west', node: name, postgres: schema, redisUrl: redis.url })
      cleanup.push(() => relay.stop())
      return relay
    }
    const a1 = await node('a1')
    const a2 = await node('a2')
    // Another region, nearer than a2: a failover that ignored nodes would go there.
    const b = await Relay.start({
      config: parseRelayConfig({ region: 'us-east', store: 'memory', listen: { host: '127.0.0.1', port: 0 }, auth: { anonymous: 'rw' } }),
      logger: silentLogger,
    })
    cleanup.push(() => b.close())
    const wan = new WanSimulator()
    cleanup.push(() => wan.close())
    const via = async (to: string, port: number, delayMs: number): Promise<string> => {
      const link = await wan.link('client', to, { port })
      wan.setConditions('client', to, { delayMs })
      return link.url
    }
    const urls = { a1: await via('a1', a1.port, 2), a2: await via('a2', a2.port, 80), b: await via('b', b.port, 30) }
    const client = new GeoClient({
      regions: [{ name: 'eu-west', urls: [urls.a1, urls.a2] }, { name: 'us-east', url: urls.b }],
      heartbeatMs: 100,
      heartbeatTimeoutMs: 500,
      probeIntervalMs: 0,
    })
    cleanup.push(() => client.close())
    const changes: RegionChange[] = []
    client.on('region', change => { changes.push(change) })
    const doc = new Y.Doc()
    const session = client.open('nodes/failover', doc, { ack: 'local' })
    await session.synced
    expect(client.node).toBe(urls.a1)

    const acknowledged: string[] = []
    const write = async (name: string): Promise<void> => {
      doc.getArray<string>('set').push([name])
      await session.flush(10_000)
      acknowledged.push(name)
    }
    for (let i = 0; i < 20; i++) await write(`before-${i}`)
    doc.getArray<string>('set').push(['in-flight']) // may or may not be durable when a1 dies
    await a1.kill9()
    const killedAt = performance.now()
    await write('after-0')
    const failoverMs = performance.now() - killedAt
    for (let i = 1; i < 20; i++) await write(`after-${i}`)
    console.log(`node failover after kill -9: writes acknowledged again by the other node ${failoverMs.toFixed(0)} ms after the kill (heartbeat timeout 500 ms)`)

    expect(client.region).toBe('eu-west')
    expect(client.node).toBe(urls.a2)
    expect(changes.map(c => `${c.reason}:${c.region}:${c.node === urls.a1 ? 'a1' : c.node === urls.a2 ? 'a2' : 'b'}`))
      .toEqual(['initial:eu-west:a1', 'failover:eu-west:a2'])
    // Set-full: a reader on the surviving node holds every acknowledged write exactly once.
    const reader = connectProvider(a2.url, 'nodes/failover')
    cleanup.push(() => destroyProvider(reader))
    await waitSynced(reader)
    await waitUntil([on(reader.doc, 'update')], () => acknowledged.every(name => items(reader.doc).includes(name)), { what: 'every acknowledged write on a2' })
    const seen = items(reader.doc)
    for (const name of acknowledged) expect(seen.filter(s => s === name)).toHaveLength(1)
  })
})
