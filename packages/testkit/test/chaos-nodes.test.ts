/**
 * The chaos suite for a region of several nodes: region a is two `georelay relay` processes on
 * one PostgreSQL schema and one redis-server, region b one relay, the WAN simulator between
 * them. SDK clients in both regions insert unique elements at `local` and `majority` while a
 * nemesis kills a node with -9 (and starts it again on its port), restarts Redis empty, pauses
 * a node with SIGSTOP, and kills the node holding the mesh lease. Then every replica must hold
 * every element once: no acknowledged write lost, none twice.
 */
import { afterAll, afterEach, beforeAll, describe, expect, it } from '@jest/globals'
import * as Y from 'yjs'
import { GeoClient, type GeoSession } from '@georelay/client'
import { freePorts } from '@georelay/cluster'
import { Relay, parseRelayConfig, silentLogger } from '@georelay/relay'
import {
  type RedisServer, type RelayProcess, type TestSchema, WanSimulator, connectProvider, destroyProvider, setFullCheck,
  every, startRedis, startRegionNodeProcess, testSchema, waitForExactSet, waitSynced, waitUntil,
} from '../src/index.js'

const SECRET = 'chaos-nodes-test-secret-0123456789abcdef'
const NODES = ['a1', 'a2'] as const
type NodeName = (typeof NODES)[number]

/** Resolves after `ms`: the nemesis's schedule (what it waits for is time itself). */
const after = (ms: number): Promise<void> => new Promise(resolve => setTimeout(resolve, ms))

interface Writer {
  name: string
  session: GeoSession
  written: string[]
  acknowledged: Set<string>
  done: Promise<void>
}

describe('chaos: a region of two nodes under node kills, a Redis restart and a paused node', () => {
  let redis: RedisServer
  let schema: TestSchema
  const cleanup: (() => unknown)[] = []
  beforeAll(async () => {
    redis = await startRedis()
    schema = await testSchema('chaosnodes')
  })
  afterAll(async () => {
    await schema?.drop()
    await redis?.destroy()
  })
  afterEach(async () => {
    for (const step of cleanup.splice(0).reverse()) await step()
  })

  it('loses no acknowledged write and ends with identical replicas', async () => {
    const wan = new WanSimulator({ defaultDelayMs: 15 })
    cleanup.push(() => wan.close())
    const ports = await freePorts(NODES.length)
    const portOf = (node: NodeName): number => ports[NODES.indexOf(node)] as number
    const nodes = new Map<NodeName, RelayProcess>()
    const alive = (node: NodeName): boolean => {
      const p = nodes.get(node)
      return p !== undefined && p.child.exitCode === null && p.child.signalCode === null
    }
    let b: Relay | undefined
    const toB = await wan.link('a', 'b', () => b === undefined ? undefined : { port: b.port })
    const toA = await Promise.all(NODES.map(node => wan.link('b', 'a', () => alive(node) ? { port: portOf(node) } : undefined)))
    const startNode = async (node: NodeName): Promise<void> => {
      const started = await startRegionNodeProcess({
        region: 'a', node, postgres: schema, redisUrl: redis.url, peers: [{ region: 'b', url: toB.url }], meshSecret: SECRET, port: portOf(node),
      })
      nodes.set(node, started)
    }
    cleanup.push(() => Promise.all([...nodes.values()].map(p => {
      if (p.child.exitCode === null && p.child.signalCode === null) p.child.kill('SIGCONT')
      return p.kill9()
    })))
    for (const node of NODES) await startNode(node)
    b = await Relay.start({
      config: parseRelayConfig({
        region: 'b', listen: { host: '127.0.0.1', port: 0 }, store: 'memory', auth: { anonymous: 'rw' },
        peers: [{ region: 'a', url: toA[0]?.url as string, urls: [toA[1]?.url as string] }], meshSecret: SECRET,
      }),
      logger: silentLogger,
    })
    cleanup.push(() => b?.close())
    const aUrls = NODES.map(node => `ws://127.0.0.1:${portOf(node)}`)

    // Writers: two in region a (its nodes in turn), one in b; each waits for its level before the next write.
    let writing = true
    const writer = (name: string, regions: ConstructorParameters<typeof GeoClient>[0]['regions'], ack: 'local' | 'majority'): Writer => {
      const client = new GeoClient({ regions, probeIntervalMs: 0 })
      cleanup.push(() => client.close())
      const session = client.open('chaos/nodes', new Y.Doc(), { ack })
      const w: Writer = { name, session, written: [], acknowledged: new Set(), done: Promise.resolve() }
      w.done = (async () => {
        await session.synced
        for (let i = 0; writing; i++) {
          const element = `${name}-${i}`
          session.doc.getArray<string>('set').push([element])
          w.written.push(element)
          await session.flush(30_000).then(() => { w.acknowledged.add(element) }, () => {})
        }
      })()
      return w
    }
    const writers = [
      writer('a-local', [{ name: 'a', urls: aUrls }], 'local'),
      writer('a-majority', [{ name: 'a', urls: [...aUrls].reverse() }], 'majority'),
      writer('b-majority', [{ name: 'b', url: b.url }], 'majority'),
    ]
    await Promise.all(writers.map(w => w.session.synced))

    const faults: string[] = []
    const holder = async (): Promise<NodeName> => waitUntil([every(50)], async () => {
      for (const node of NODES.filter(alive)) {
        try {
          const view = await (await fetch(`http://127.0.0.1:${portOf(node)}/v1/regions`)).json() as { regions: { self: boolean, meshNode?: string }[] }
          const named = view.regions.find(r => r.self)?.meshNode as NodeName | undefined
          if (named !== undefined && alive(named)) return named
        } catch {
          // Not answering (just killed, or paused): ask the other node.
        }
      }
      return undefined
    }, { what: 'a live holder of a\'s mesh lease', timeoutMs: 15_000 })

    // The nemesis, one fault at a time, each healed before the next.
    await after(1500)
    faults.push('kill -9 a1')
    await nodes.get('a1')?.kill9()
    await after(1000)
    await startNode('a1')
    await after(1500)
    faults.push('redis restart')
    await redis.stop()
    await after(1000)
    await redis.start()
    await after(1500)
    faults.push('SIGSTOP a2')
    nodes.get('a2')?.child.kill('SIGSTOP')
    await after(2000)
    nodes.get('a2')?.child.kill('SIGCONT')
    await after(1500)
    const leader = await holder()
    faults.push(`kill -9 ${leader} (lease holder)`)
    await nodes.get(leader)?.kill9()
    await after(1500)
    await startNode(leader)
    await after(1500)
    writing = false
    await Promise.all(writers.map(w => w.done))
    // Everything written is acknowledged in the end: the SDK keeps what it has not had acknowledged and sends it again.
    await Promise.all(writers.map(w => w.session.flush(30_000)))

    const written = writers.flatMap(w => w.written)
    const readers = [...aUrls, b.url].map(url => {
      const reader = connectProvider(url, 'chaos/nodes')
      cleanup.push(() => destroyProvider(reader))
      return reader
    })
    await Promise.all(readers.map(r => waitSynced(r, 15_000)))
    await waitForExactSet(readers.map(r => r.doc), written, { what: 'every node and b to hold every element once', timeoutMs: 30_000 })
    const acknowledged = writers.flatMap(w => [...w.acknowledged])
    const [a1, a2, b1] = readers.map(r => r.doc) as [Y.Doc, Y.Doc, Y.Doc]
    const report = setFullCheck(acknowledged, { a1, a2, b: b1 })
    console.log(`chaos (region of two nodes): ${written.length} written, ${acknowledged.length} acknowledged, each before the next write (${writers.map(w => `${w.name} ${w.acknowledged.size}/${w.written.length}`).join(', ')}); faults: ${faults.join(', ')}; lost ${Object.values(report.lost).flat().length}, duplicated ${Object.values(report.duplicated).flat().length}`)
    expect(report).toMatchObject({ ok: true, lost: {}, duplicated: {} })
    expect(faults).toHaveLength(4)
    for (const w of writers) expect(w.acknowledged.size).toBeGreaterThan(10)
  }, 120_000)
})
