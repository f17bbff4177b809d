/**
 * ClusterPlan, the wiring under LocalCluster and the testkit's TestCluster: every region linked
 * to every other through the WAN simulator, peers dialled through it and shown with their own
 * URL, ports picked again when one is taken before its relay binds it, each region's starts and
 * stops in order.
 */
import { afterEach, describe, expect, it } from '@jest/globals'
import net from 'node:net'
import path from 'node:path'
import { ClusterPlan, freePorts } from '@georelay/cluster'
import { Relay, parseRelayConfig, silentLogger } from '@georelay/relay'
import { TEST_MESH_SECRET, on, waitUntil } from '@georelay/testkit'

const LINK_URL = /^ws:\/\/127\.0\.0\.1:\d+$/

const listenOn = (port: number): Promise<net.Server> => new Promise((resolve, reject) => {
  const server = net.createServer()
  server.once('error', reject)
  server.listen(port, '127.0.0.1', () => resolve(server))
})

describe('ClusterPlan', () => {
  const plans: ClusterPlan[] = []
  const relays: Relay[] = []
  const blockers: net.Server[] = []

  afterEach(async () => {
    await Promise.allSettled(relays.splice(0).map(r => r.close()))
    await Promise.allSettled(plans.splice(0).map(p => p.close()))
    await Promise.all(blockers.splice(0).map(b => new Promise(resolve => b.close(resolve))))
  })

  const plan = async (options: Parameters<typeof ClusterPlan.create>[0]): Promise<ClusterPlan> => {
    const created = await ClusterPlan.create({ meshSecret: TEST_MESH_SECRET, ...options })
    plans.push(created)
    return created
  }

  /** Starts each region as an in-process relay, counting the starts. */
  const startRelays = async (p: ClusterPlan, starts: string[]): Promise<Map<string, Relay>> => {
    const started = await p.startAll(region => {
      starts.push(region)
      return Relay.start({ config: parseRelayConfig({ ...p.relayConfig(region), store: 'memory' }), logger: silentLogger })
    }, (_, relay) => relay.close())
    relays.push(...started.values())
    return started
  }

  it('wires every region to every other through the WAN, with the peer\'s own URL for clients', async () => {
    const p = await plan({ regions: ['a', 'b', 'c'], dataDir: '/tmp/plan', delayMs: (x, y) => (x === 'a' ? 10 : 0) + (y === 'c' ? 20 : 0) })
    expect(p.relayConfig('a')).toEqual({
      region: 'a',
      listen: { host: '127.0.0.1', port: p.port('a') },
      peers: [
        { region: 'b', url: expect.stringMatching(LINK_URL), publicUrl: `ws://127.0.0.1:${p.port('b')}` },
        { region: 'c', url: expect.stringMatching(LINK_URL), publicUrl: `ws://127.0.0.1:${p.port('c')}` },
      ],
      meshSecret: TEST_MESH_SECRET,
      dataDir: path.join('/tmp/plan', 'a'),
    })
    const ports = p.regions.map(r => p.port(r))
    const linkPorts = p.regions.flatMap(r => p.peers(r).map(peer => Number(new URL(peer.url).port)))
    expect(new Set([...ports, ...linkPorts]).size).toBe(3 + 6)
    expect([p.wan.conditions('a', 'b').delayMs, p.wan.conditions('b', 'a').delayMs, p.wan.conditions('a', 'c').delayMs, p.wan.conditions('b', 'c').delayMs]).toEqual([10, 10, 30, 20])
    expect(() => p.port('z')).toThrow('no region "z" in this cluster (it has a, b, c)')
  })

  it('needs one or more distinct regions', async () => {
    await expect(ClusterPlan.create({ regions: [] })).rejects.toThrow(/distinct region names/)
    await expect(ClusterPlan.create({ regions: ['a', 'a'] })).rejects.toThrow(/distinct region names/)
  })

  it('picks other ports when one is taken before its relay binds it, and the links and peer lists follow', async () => {
    const p = await plan({ regions: ['a', 'b'] })
    const taken = p.port('b')
    blockers.push(await listenOn(taken))
    const starts: string[] = []
    const started = await startRelays(p, starts)
    expect(starts).toEqual(['a', 'b', 'a', 'b'])
    expect(p.port('b')).not.toBe(taken)
    const [a, b] = [started.get('a') as Relay, started.get('b') as Relay]
    expect(b.port).toBe(p.port('b'))
    expect(a.endpoints()).toContainEqual({ name: 'b', url: p.url('b') })
    await waitUntil([on(a, 'peers'), on(b, 'peers')], () => [a, b].every(r => r.peers()[0]?.state === 'up'), { what: 'a and b to link through the WAN at b\'s new port' })
  })

  it('with a fixed base port, a taken port is the caller\'s to handle: no other ports, no relay left running', async () => {
    const blocker = await listenOn(0)
    blockers.push(blocker)
    const base = (blocker.address() as net.AddressInfo).port
    const p = await plan({ regions: ['a', 'b'], basePort: base })
    expect([p.port('a'), p.port('b')]).toEqual([base, base + 1])
    const starts: string[] = []
    await expect(startRelays(p, starts)).rejects.toMatchObject({ code: 'EADDRINUSE' })
    expect(starts).toEqual(['a', 'b'])
    expect(relays).toEqual([])
  })

  it('runs the steps of one region in order, whatever the earlier ones did, and other regions alongside', async () => {
    const p = await plan({ regions: ['a', 'b'] })
    const order: string[] = []
    let release = (): void => {}
    const first = p.inOrder('a', () => new Promise<void>(resolve => { release = () => { order.push('a: first'); resolve() } }))
    const second = p.inOrder('a', async () => { order.push('a: second') })
    await p.inOrder('b', async () => { order.push('b') })
    release()
    await Promise.all([first, second])
    expect(order).toEqual(['b', 'a: first', 'a: second'])
    await expect(p.inOrder('a', async () => { throw new Error('failed start') })).rejects.toThrow('failed start')
    await expect(p.inOrder('a', async () => 'next')).resolves.toBe('next')
  })

  it('picks distinct free ports at once', async () => {
    const ports = await freePorts(16)
    expect(new Set(ports).size).toBe(16)
  })
})
