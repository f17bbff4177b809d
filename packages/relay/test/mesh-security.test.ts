import { afterEach, describe, expect, it } from '@jest/globals'
import WebSocket from 'ws'
import type { WebsocketProvider } from 'y-websocket'
import { streamLogger } from '@georelay/relay'
import { TEST_MESH_SECRET, TestCluster, connectProvider, destroyProvider, nextEvent, on, waitSynced, waitUntil } from '@georelay/testkit'

describe('peer links', () => {
  let cluster: TestCluster
  const log: string[] = []
  const providers: WebsocketProvider[] = []
  afterEach(async () => {
    for (const provider of providers.splice(0)) destroyProvider(provider)
    await cluster?.close()
    log.length = 0
  })

  const dialPeer = async (url: string, headers: Record<string, string>): Promise<[number, string]> => {
    const ws = new WebSocket(`${url}/v1/peer`, { headers })
    const [code, reason] = await nextEvent<[number, Buffer]>(ws, 'close', { what: 'the relay to close the peer socket' })
    return [code, reason.toString()]
  }

  it('refuse a wrong or missing mesh secret with 4401 and never log the secret', async () => {
    cluster = await TestCluster.start({ regions: ['a', 'b'], logger: streamLogger(line => log.push(line), 'debug') })
    const url = cluster.url('a')
    expect(await dialPeer(url, { 'x-georelay-region': 'b', authorization: 'Bearer not-the-secret-123' })).toEqual([4401, 'wrong or missing mesh secret'])
    expect(await dialPeer(url, { 'x-georelay-region': 'b' })).toEqual([4401, 'wrong or missing mesh secret'])
    expect(log.join('\n')).toMatch(/refused a peer link: wrong or missing mesh secret/)
    expect(log.join('\n')).not.toContain('not-the-secret-123')
    expect(log.join('\n')).not.toContain(TEST_MESH_SECRET)
    const metrics = await cluster.relay('a').metrics.registry.getSingleMetricAsString('georelay_peer_links_refused_total')
    expect(metrics).toMatch(/reason="secret"[^}]*\} 2/)
  })

  it('refuse a region that is not a configured peer with 4403', async () => {
    cluster = await TestCluster.start({ regions: ['a', 'b'] })
    const [code, reason] = await dialPeer(cluster.url('a'), { 'x-georelay-region': 'mallory', authorization: `Bearer ${TEST_MESH_SECRET}` })
    expect(code).toBe(4403)
    expect(reason).toMatch(/"mallory" is not a configured peer/)
  })

  it('drop the presence of a region that went silent', async () => {
    cluster = await TestCluster.start({ regions: ['a', 'b'] })
    const [a, b] = [connectProvider(cluster.url('a'), 'room'), connectProvider(cluster.url('b'), 'room')]
    providers.push(a, b)
    await Promise.all([a, b].map(p => waitSynced(p)))
    b.awareness.setLocalStateField('user', { name: 'Bo in b' })
    await waitUntil([on(a.awareness, 'change')], () => a.awareness.getStates().has(b.awareness.clientID), { what: 'a to see Bo' })
    // b's client stays connected to b, but region b disappears from a's view.
    cluster.wan.partition('b')
    await waitUntil([on(a.awareness, 'change')], () => !a.awareness.getStates().has(b.awareness.clientID), { what: 'Bo to vanish from a once b is unreachable' })
    expect(b.awareness.getStates().has(b.awareness.clientID)).toBe(true)
  })
})
