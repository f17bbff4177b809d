/**
 * What a newcomer's mistakes look like: options checked when the client is made, a refused
 * token told once as an error (no retry loop until setToken), and `offline` saying why and when.
 */
import { afterEach, describe, expect, it } from '@jest/globals'
import { SignJWT } from 'jose'
import * as Y from 'yjs'
import { GeoClient, type OfflineInfo } from '@georelay/client'
import type { Relay } from '@georelay/relay'
import { nextEvent, startTestRelay, waitForText, waitUntil, on } from '@georelay/testkit'
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

  it('tells a document the token does not allow once: nothing more is sent for it, on this socket or the next, until setToken()', async () => {
    const lines: string[] = []
    const capture = { log: (_level: string, message: string, fields?: Record<string, unknown>) => { lines.push(`${message} ${JSON.stringify(fields)}`) } }
    const auth = { jwtSecret: SECRET, anonymous: 'none' as const }
    relay = await startTestRelay({ config: { region: 'eu', auth }, logger: capture })
    const second = await startTestRelay({ config: { region: 'us', auth } })
    const first = relay
    try {
      const client = new GeoClient({
        regions: [{ name: 'eu', url: first.url }, { name: 'us', url: second.url }], preferRegion: 'eu',
        token: await token({ 'other/**': 'rw' }), probeIntervalMs: 0, failoverJitterMs: 0,
      })
      clients.push(client)
      const errors: (Error & { code: number })[] = []
      const session = client.open('notes/1', new Y.Doc())
      session.on('error', e => errors.push(e))
      const allowed = client.open('other/1', new Y.Doc())
      await allowed.synced
      await waitUntil([on(session, 'error')], () => errors.length > 0, { what: 'the refusal' })
      expect(errors.map(e => [e.code, e.message])).toEqual([[4403, 'the relay refused document "notes/1": this token does not allow "notes/1" (4403)']])
      expect(session.refusal?.code).toBe(4403)
      // Edits of the refused document, and a move to another region, send nothing for it.
      session.doc.getText('t').insert(0, 'kept')
      const moved = nextEvent(client, 'region', { what: 'the client to move to us' })
      await first.close()
      relay = undefined
      await moved
      allowed.doc.getText('t').insert(0, 'x')
      await allowed.flush()
      const rejected = async (r: Relay): Promise<Record<string, number>> => {
        const { values } = await (r.metrics.getSingleMetric('georelay_messages_rejected_total') as { get(): Promise<{ values: { labels: Record<string, string>, value: number }[] }> }).get()
        return Object.fromEntries(values.map(v => [v.labels.code, v.value]))
      }
      expect(await rejected(second)).toEqual({})
      expect(lines.filter(l => l.startsWith('document refused'))).toEqual([expect.stringContaining('"code":"ERR_FORBIDDEN","reason":"this token does not allow \\"notes/1\\""')])
      expect(errors).toHaveLength(1)
      expect(session.pendingWrites).toBeGreaterThan(0)
      // A token that allows it: the document opens where the client is, and the kept edit is stored.
      client.setToken(await token({ '**': 'rw' }))
      await session.flush()
      expect(session.refusal).toBeNull()
    } finally {
      await second.close()
    }
  })

  it('tells a read-only refusal once, keeps the edits pending and the document open for reading', async () => {
    relay = await startTestRelay({ config: { auth: { jwtSecret: SECRET, anonymous: 'none' } } })
    const reader = new GeoClient({ regions: [{ name: 'test', url: relay.url }], token: await token({ 'notes/**': 'ro' }), probeIntervalMs: 0 })
    const writer = new GeoClient({ regions: [{ name: 'test', url: relay.url }], token: await token({ 'notes/**': 'rw' }), probeIntervalMs: 0 })
    clients.push(reader, writer)
    const errors: (Error & { code: number })[] = []
    const session = reader.open('notes/ro', new Y.Doc())
    session.on('error', e => errors.push(e))
    await session.synced
    session.doc.getText('t').insert(0, 'a')
    await waitUntil([on(session, 'error')], () => errors.length > 0, { what: 'the read-only refusal' })
    session.doc.getText('t').insert(0, 'b')
    const written = writer.open('notes/ro', new Y.Doc())
    written.doc.getText('w').insert(0, 'from the writer')
    await written.flush()
    await waitForText(session.doc, t => t === 'from the writer', 'the reader to receive the writer\'s edit', 'w')
    expect(errors.map(e => e.code)).toEqual([4403])
    expect(errors[0]?.message).toMatch(/read-only: this client may read "notes\/ro" but not write it/)
    expect(session.pendingWrites).toBe(2)
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
