import { afterEach, describe, expect, it } from '@jest/globals'
import WebSocket from 'ws'
import type { WebsocketProvider } from 'y-websocket'
import { streamLogger } from '@georelay/relay'
import { TEST_MESH_SECRET, TestCluster, connectProvider, destroyProvider, every, on, waitSynced, waitUntil } from '@georelay/testkit'

describe('peer links', () => {
  let cluster: TestCluster
  const log: string[] = []
  const providers: WebsocketProvider[] = []
  afterEach(async () => {
    for (const provider of providers.splice(0)) destroyProvider(provider)
    await cluster?.close()
    log.length = 0
  })

  /** Dials /v1/peer (offering compression, as an attacker would); resolves with the HTTP refusal. */
  const dialPeer = (
    url: string,
    headers: Record<string, string>,
  ): Promise<{ status: number, body: string }> => new Promise((resolve, reject) => {
    const ws = new WebSocket(`${url}/v1/peer`, { headers, perMessageDeflate: true })
    ws.on('unexpected-response', (_req, res) => {
      let body = ''
      res.setEncoding('utf8')
      res.on('data', (chunk: string) => { body += chunk })
      res.on('end', () => {
        resolve({ status: res.statusCode ?? 0, body: body.trim() })
        ws.terminate()
      })
    })
    ws.on('open', () => reject(new Error('the relay completed a peer upgrade it should have refused')))
    ws.on('error', () => {})
  })

  it('refuse a wrong or missing mesh secret with HTTP 401 before the upgrade, and never log the secret', async () => {
    cluster = await TestCluster.start({ regions: ['a', 'b'], logger: streamLogger(line => log.push(line), 'debug') })
    const url = cluster.url('a')
    // No WebSocket is made, so a socket without the secret never sends a frame to inflate.
    expect(await dialPeer(url, { 'x-georelay-region': 'b', authorization: 'Bearer not-the-secret-123' })).toEqual({ status: 401, body: 'wrong or missing mesh secret' })
    expect(await dialPeer(url, { 'x-georelay-region': 'b' })).toEqual({ status: 401, body: 'wrong or missing mesh secret' })
    expect(log.join('\n')).toMatch(/refused a peer link: wrong or missing mesh secret/)
    expect(log.join('\n')).not.toContain('not-the-secret-123')
    expect(log.join('\n')).not.toContain(TEST_MESH_SECRET)
    const metrics = await cluster.relay('a').metrics.getSingleMetricAsString('georelay_peer_links_refused_total')
    expect(metrics).toMatch(/reason="secret"[^}]*\} 2/)
  })

  it('refuse a region that is not a configured peer with HTTP 403', async () => {
    cluster = await TestCluster.start({ regions: ['a', 'b'] })
    const { status, body } = await dialPeer(cluster.url('a'), { 'x-georelay-region': 'mallory', authorization: `Bearer ${TEST_MESH_SECRET}` })
    expect(status).toBe(403)
    expect(body).toMatch(/"mallory" is not a configured peer/)
  })

  it('a relay dialling with the wrong secret shows the link down as refused-secret, without the words', async () => {
    cluster = await TestCluster.start({ regions: ['a', 'b'], configFor: region => region === 'b' ? { meshSecret: 'another-secret-of-at-least-32-bytes' } : {} })
    await waitUntil([on(cluster.relay('b'), 'peers'), every(100)], () => cluster.relay('b').regionInfo().peers[0]?.error === 'refused-secret', { what: 'b to see its link refused' })
    const body = await (await fetch(`${cluster.url('b').replace('ws:', 'http:')}/v1/regions`)).json() as { peers: { region: string, state: string, error?: string, url: string }[] }
    // Down, or dialling again (it retries with backoff): never up, and the kind without the words.
    expect(body.peers).toEqual([expect.objectContaining({ region: 'a', state: expect.stringMatching(/^(down|connecting)$/), error: 'refused-secret' })])
  })

  it('a refused link says why in the discovery view too, as a kind', async () => {
    cluster = await TestCluster.start({
      regions: ['a', 'b'],
      configFor: region => region === 'b' ? { meshSecret: 'another-secret-of-at-least-32-bytes', http: { regions: 'discovery' } } : {},
    })
    await waitUntil([on(cluster.relay('b'), 'peers'), every(100)], () => cluster.relay('b').regionInfo().peers[0]?.error === 'refused-secret', { what: 'b to see its link refused' })
    const body = await (await fetch(`${cluster.url('b').replace('ws:', 'http:')}/v1/regions`)).json() as Record<string, unknown>
    expect(body.peers).toBeUndefined()
    expect(body.regions).toEqual([
      expect.objectContaining({ name: 'b', self: true, state: 'up' }),
      { name: 'a', url: cluster.url('a'), self: false, state: 'down', error: 'refused-secret' },
    ])
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
