/**
 * What a newcomer's mistakes look like: options checked when the client is made, a refused
 * token told once as an error (no retry loop until setToken), and `offline` saying why and when.
 */
import { afterEach, describe, expect, it } from '@jest/globals'
import { SignJWT } from 'jose'
import * as Y from 'yjs'
import { GeoClient, type OfflineInfo } from '@georelay/client'
import type { Relay } from '@georelay/relay'
import { startTestRelay } from '@georelay/testkit'
import { freePort } from '@georelay/cluster'

const SECRET = 'a-test-secret-of-at-least-32-chars!!'
const token = (docs: Record<string, 'ro' | 'rw'>): Promise<string> =>
  new SignJWT({ docs }).setProtectedHeader({ alg: 'HS256' }).setExpirationTime('1h').sign(new TextEncoder().encode(SECRET))

describe('the SDK, as a newcomer meets it', () => {
  let relay: Relay | undefined
  const clients: GeoClient[] = []
  afterEach(async () => {
    for (const c of clients.splice(0)) await c.close()
    await relay?.close()
    relay = undefined
  })

  it('refuses region URLs with a path, a query or another scheme, naming the field', () => {
    expect(() => new GeoClient({ regions: [{ name: 'eu', url: 'ws://127.0.0.1:4001/v1/mux' }] }))
      .toThrow(/regions\[0\]\.url "ws:\/\/127\.0\.0\.1:4001\/v1\/mux" has a path \(\/v1\/mux\): give the relay's base URL, like ws:\/\/127\.0\.0\.1:4001/)
    expect(() => new GeoClient({ regions: [{ name: 'eu', url: 'http://127.0.0.1:4001' }] })).toThrow(/regions\[0\]\.url .* is not ws:\/\/ or wss:\/\//)
    expect(() => new GeoClient({ regions: [{ name: 'eu', url: 'ws://a:1' }, { name: 'us', urls: ['ws://b:1', 'ws://c:1?token=x'] }] }))
      .toThrow(/regions\[1\]\.urls\[1\] .* has a query/)
    expect(() => new GeoClient({ regions: [{ name: '', url: 'ws://a:1' }] })).toThrow(/regions\[0\]\.name/)
  })

  it('tells a refused token once, with the relay\'s reason, and connects only after setToken()', async () => {
    relay = await startTestRelay({ config: { auth: { jwtSecret: SECRET, anonymous: 'none' } } })
    const running = relay
    // Retries, if there were any, would come every few ms.
    const client = new GeoClient({ regions: [{ name: 'test', url: running.url }], token: 'not-a-jwt', probeIntervalMs: 0, backoff: { baseMs: 1, maxMs: 5 } })
    clients.push(client)
    const offline: OfflineInfo[] = []
    client.on('offline', info => offline.push(info))
    const refused = new Promise<Error & { code: number }>(resolve => client.on('error', resolve))
    const session = client.open('notes/1', new Y.Doc())
    const error = await refused
    expect(error.code).toBe(4401)
    expect(error.message).toMatch(/the relay refused this client's token: the token is not a well-formed JWT; call setToken\(\)/)
    expect(session.status).toBe('offline')
    // Meanwhile another client comes and goes: time enough for a retry loop to show.
    const other = new GeoClient({ regions: [{ name: 'test', url: running.url }], token: await token({ '**': 'rw' }), probeIntervalMs: 0 })
    clients.push(other)
    await other.open('notes/2', new Y.Doc()).synced
    const refusals = async (): Promise<number> => {
      const { values } = await (running.metrics.getSingleMetric('georelay_messages_rejected_total') as { get(): Promise<{ values: { labels: Record<string, string>, value: number }[] }> }).get()
      return values.filter(v => v.labels.code === 'ERR_TOKEN_MALFORMED').reduce((n, v) => n + v.value, 0)
    }
    expect(await refusals()).toBe(1)
    expect(offline).toEqual([])
    client.setToken(await token({ 'notes/**': 'rw' }))
    await session.synced
    expect(session.status).toBe('synced')
  })

  it('says in `offline` why every region failed and when it tries again', async () => {
    const port = await freePort()
    const client = new GeoClient({ regions: [{ name: 'nowhere', url: `ws://127.0.0.1:${port}` }], probeIntervalMs: 0, backoff: { baseMs: 50, maxMs: 100 } })
    clients.push(client)
    const info = await new Promise<OfflineInfo>(resolve => client.on('offline', resolve))
    expect(info.reason).toMatch(/^nowhere \(ws:\/\/127\.0\.0\.1:\d+\) refused the connection \(1006/)
    expect(info.retryInMs).toBeGreaterThanOrEqual(0)
    expect(info.retryAt).toBeGreaterThanOrEqual(Date.now() - 1000)
  })
})
