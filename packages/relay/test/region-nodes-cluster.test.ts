/**
 * A region of two nodes on a real Redis Cluster of three masters: every document's channel
 * carries a hash tag, so it lives on one shard, and the nodes' sharded subscriptions reach
 * every shard. With the log poll set to a minute, what crosses between the nodes within the
 * test is carried by hints alone.
 */
import { afterAll, afterEach, beforeAll, describe, expect, it } from '@jest/globals'
import type { WebsocketProvider } from 'y-websocket'
import { Relay, parseRelayConfig, silentLogger } from '@georelay/relay'
import {
  type RedisClusterServer, type TestSchema, connectProvider, destroyProvider, on, startRedisCluster, testSchema,
  waitForExactSet, waitSynced, waitUntil,
} from '@georelay/testkit'

/** Names whose channels spread over the shards (slots differ by their hash tag's contents). */
const DOCS = ['cluster/a', 'cluster/b', 'cluster/c', 'cluster/d', 'cluster/e', 'cluster/f']

describe('a region of two nodes on a Redis Cluster', () => {
  let redis: RedisClusterServer
  let schema: TestSchema
  const cleanup: (() => unknown)[] = []
  beforeAll(async () => {
    redis = await startRedisCluster()
    schema = await testSchema('rcluster')
  })
  afterAll(async () => {
    await schema?.drop()
    await redis?.destroy()
  })
  afterEach(async () => {
    for (const step of cleanup.splice(0).reverse()) await step()
  })

  const startNode = async (node: string): Promise<Relay> => {
    const relay = await Relay.start({
      config: parseRelayConfig({
        region: 'eu-west',
        node,
        listen: { host: '127.0.0.1', port: 0 },
        store: 'postgres',
        storage: { postgres: { url: schema.url, schema: schema.schema, poolSize: 4 } },
        redis: { url: redis.url, cluster: true, pollMs: 60_000 },
        auth: { anonymous: 'rw' },
      }),
      logger: silentLogger,
    })
    cleanup.push(() => relay.close())
    await waitUntil([on(relay, 'redis')], () => relay.redisUp === true, { what: `${node} subscribed on the cluster` })
    return relay
  }
  const provider = async (relay: Relay, docName: string): Promise<WebsocketProvider> => {
    const p = connectProvider(relay.url, docName)
    cleanup.push(() => destroyProvider(p))
    await waitSynced(p)
    return p
  }

  it('carries hints of documents on every shard between the nodes, and lists both nodes', async () => {
    const a1 = await startNode('a1')
    const a2 = await startNode('a2')
    for (const doc of DOCS) {
      const on1 = await provider(a1, doc)
      const on2 = await provider(a2, doc)
      on1.doc.getArray<string>('set').push([`${doc} from a1`])
      on2.doc.getArray<string>('set').push([`${doc} from a2`])
      await waitForExactSet([on1.doc, on2.doc], [`${doc} from a1`, `${doc} from a2`], { what: `both nodes' edits of ${doc}` })
    }
    // The hints carried it: with the poll a minute away, a sibling's update reaches a node by
    // its hint, or by the read a node makes right after subscribing to a document when that read
    // comes after the sibling's write (a race, so both paths count here, and hints at least once).
    for (const relay of [a1, a2]) {
      const { values } = await (relay.metrics.getSingleMetric('georelay_node_updates_received_total') as { get(): Promise<{ values: { labels: Record<string, string>, value: number }[] }> }).get()
      const by = (path: string): number => values.filter(v => v.labels.path === path).reduce((n, v) => n + v.value, 0)
      expect(by('hint') + by('log')).toBeGreaterThanOrEqual(DOCS.length)
      expect(by('hint')).toBeGreaterThan(0)
    }
    // Both nodes announce themselves in keys of the region's hash tag: one shard, read with MGET.
    await waitUntil([on(a1, 'nodes')], () => a1.regionInfo().regions[0]?.nodes?.length === 2, { what: 'a1 to list both nodes' })
    expect(a1.regionInfo().regions[0]?.nodes?.map(n => n.name)).toEqual(['a1', 'a2'])
  })
})
