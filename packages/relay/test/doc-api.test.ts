/**
 * The HTTP document API, /v1/docs/{name}: every status code it answers, against real relays.
 */
import http from 'node:http'
import { afterEach, describe, expect, it } from '@jest/globals'
import { SignJWT } from 'jose'
import * as Y from 'yjs'
import type { Relay } from '@georelay/relay'
import {
  TestCluster, connectProvider, destroyProvider, every, on, startTestRelay, waitForText, waitSynced, waitUntil,
} from '@georelay/testkit'

const SECRET = 'a-test-secret-of-at-least-32-chars!!'
const token = (docs: Record<string, 'ro' | 'rw'>): Promise<string> =>
  new SignJWT({ docs }).setProtectedHeader({ alg: 'HS256' }).setExpirationTime('1h').sign(new TextEncoder().encode(SECRET))

const httpUrl = (wsUrl: string): string => wsUrl.replace(/^ws/, 'http')
const docUrl = (wsUrl: string, name: string, query = ''): string => `${httpUrl(wsUrl)}/v1/docs/${encodeURIComponent(name)}${query}`

const textUpdate = (text: string, doc = new Y.Doc()): Uint8Array => {
  doc.getText('t').insert(0, text)
  return Y.encodeStateAsUpdate(doc)
}
const textOf = (update: Uint8Array): string => {
  const doc = new Y.Doc()
  Y.applyUpdate(doc, update)
  return doc.getText('t').toString()
}

interface Answer { status: number, headers: Headers, json: Record<string, unknown> | null, bytes: Uint8Array }

const request = async (url: string, init: RequestInit = {}): Promise<Answer> => {
  const res = await fetch(url, { redirect: 'manual', ...init })
  const bytes = new Uint8Array(await res.arrayBuffer())
  const json = (res.headers.get('content-type') ?? '').startsWith('application/json') ? JSON.parse(Buffer.from(bytes).toString()) as Record<string, unknown> : null
  return { status: res.status, headers: res.headers, json, bytes }
}
const post = (url: string, body: Uint8Array, headers: Record<string, string> = {}): Promise<Answer> =>
  request(url, { method: 'POST', body: Buffer.from(body), headers: { 'content-type': 'application/octet-stream', ...headers } })

describe('HTTP document API', () => {
  let relay: Relay | undefined
  let cluster: TestCluster | undefined
  const closers: (() => void)[] = []

  afterEach(async () => {
    for (const close of closers.splice(0)) close()
    await relay?.close()
    await cluster?.close()
    relay = cluster = undefined
  })

  it('writes an update (200 with its seq), reads the state back, and a diff against a state vector', async () => {
    relay = await startTestRelay()
    const url = docUrl(relay.url, 'api/notes 1')
    expect((await request(url)).status).toBe(404)
    const author = new Y.Doc()
    const first = await post(url, textUpdate('hello', author))
    expect(first.status).toBe(200)
    expect(first.json).toMatchObject({ ack: 'local', region: 'test' })
    expect(typeof first.json?.seq).toBe('number')
    const read = await request(url)
    expect(read.status).toBe(200)
    expect(read.headers.get('content-type')).toBe('application/octet-stream')
    expect(textOf(read.bytes)).toBe('hello')
    // The state vector it returned asks next time for only what changed since.
    const sv = read.headers.get('x-georelay-state-vector') as string
    const before = Y.encodeStateVector(author)
    author.getText('t').insert(5, ' world')
    expect((await post(url, Y.encodeStateAsUpdate(author, before))).status).toBe(200)
    const diff = await request(docUrl(relay.url, 'api/notes 1', `?sv=${sv}`))
    expect(diff.status).toBe(200)
    expect(diff.bytes.length).toBeLessThan((await request(url)).bytes.length)
    const reader = new Y.Doc()
    Y.applyUpdate(reader, read.bytes)
    Y.applyUpdate(reader, diff.bytes)
    expect(reader.getText('t').toString()).toBe('hello world')
  })

  it('hands an HTTP write to WebSocket clients of the document, and theirs to GET', async () => {
    relay = await startTestRelay()
    const provider = connectProvider(relay.url, 'api/live')
    closers.push(() => destroyProvider(provider))
    await waitSynced(provider)
    expect((await post(docUrl(relay.url, 'api/live'), textUpdate('from a server'))).status).toBe(200)
    await waitForText(provider.doc, text => text === 'from a server', 'the WebSocket client to get the HTTP write')
    // A second client sees the edit once the relay stored it (it forwards only what is durable).
    const observer = connectProvider(relay.url, 'api/live')
    closers.push(() => destroyProvider(observer))
    provider.doc.getText('t').insert(0, '> ')
    await waitForText(observer.doc, text => text === '> from a server', 'the observer to get the client\'s edit')
    expect(textOf((await request(docUrl(relay.url, 'api/live'))).bytes)).toBe('> from a server')
  })

  it('refuses bad input with 400, 405 and 413, storing nothing', async () => {
    relay = await startTestRelay({ config: { limits: { maxMessageBytes: 4096, maxDocumentBytes: 2048 } } })
    const url = docUrl(relay.url, 'api/bad')
    const garbage = await post(url, new Uint8Array([1, 2, 3, 4, 5]))
    expect(garbage.status).toBe(400)
    expect(garbage.json).toMatchObject({ error: 'ERR_INVALID_UPDATE' })
    expect(String(garbage.json?.message)).toMatch(/not a Yjs update/)
    expect((await post(docUrl(relay.url, 'api/bad', '?ack=sometimes'), textUpdate('x'))).json).toMatchObject({ error: 'ERR_BAD_ACK' })
    expect((await request(docUrl(relay.url, 'api/bad', '?sv=***'))).json).toMatchObject({ error: 'ERR_BAD_STATE_VECTOR' })
    expect((await request(`${httpUrl(relay.url)}/v1/docs/%E0%A4%A`)).json).toMatchObject({ error: 'ERR_BAD_NAME' })
    const put = await request(url, { method: 'PUT', body: 'x' })
    expect(put.status).toBe(405)
    expect(put.headers.get('allow')).toBe('GET, HEAD, POST, DELETE')
    // Past limits.maxMessageBytes: refused by its declared length…
    const big = await post(url, textUpdate('x'.repeat(8000)))
    expect(big.status).toBe(413)
    expect(big.json).toMatchObject({ error: 'ERR_TOO_LARGE' })
    // …or, sent in chunks without one, once that many bytes arrived, without reading the rest.
    const streamed = await new Promise<number>((resolve, reject) => {
      const req = http.request(url, { method: 'POST', headers: { 'transfer-encoding': 'chunked' } }, res => {
        res.resume()
        resolve(res.statusCode ?? 0)
      })
      req.on('error', reject)
      const chunk = Buffer.alloc(1024, 1)
      let sent = 0
      const pump = (): void => {
        while (sent < 64 && req.write(chunk)) sent++
        if (sent < 64) req.once('drain', pump)
        else req.end()
      }
      pump()
    })
    expect(streamed).toBe(413)
    // Past limits.maxDocumentBytes: the document stays as it was.
    const author = new Y.Doc()
    expect((await post(url, textUpdate('y'.repeat(1500), author))).status).toBe(200)
    const before = Y.encodeStateVector(author)
    author.getText('t').insert(0, 'z'.repeat(1500))
    const grown = await post(url, Y.encodeStateAsUpdate(author, before))
    expect(grown.status).toBe(413)
    expect(grown.json).toMatchObject({ error: 'ERR_DOC_TOO_LARGE' })
    expect(textOf((await request(url)).bytes)).toBe('y'.repeat(1500))
  })

  it('checks Bearer tokens as the sockets do: 401 without or with a bad one, 403 outside its grants or read-only', async () => {
    relay = await startTestRelay({ config: { auth: { jwtSecret: SECRET, anonymous: 'none' } } })
    const url = docUrl(relay.url, 'team/plan')
    const none = await request(url)
    expect(none.status).toBe(401)
    expect(none.json).toMatchObject({ error: 'ERR_TOKEN_MISSING' })
    expect(none.headers.get('www-authenticate')).toBe('Bearer')
    expect((await request(url, { headers: { authorization: 'Basic abc' } })).status).toBe(401)
    expect((await request(url, { headers: { authorization: 'Bearer not.a.jwt' } })).status).toBe(401)
    const other = await request(url, { headers: { authorization: `Bearer ${await token({ 'public/**': 'rw' })}` } })
    expect(other.status).toBe(403)
    expect(other.json).toMatchObject({ error: 'ERR_FORBIDDEN' })
    const ro = `Bearer ${await token({ 'team/**': 'ro' })}`
    const refused = await post(url, textUpdate('no'), { authorization: ro })
    expect(refused.status).toBe(403)
    expect(refused.json).toMatchObject({ error: 'ERR_READ_ONLY' })
    const rw = `Bearer ${await token({ 'team/**': 'rw' })}`
    expect((await post(url, textUpdate('yes'), { authorization: rw })).status).toBe(200)
    const read = await request(url, { headers: { authorization: ro } })
    expect(read.status).toBe(200)
    expect(textOf(read.bytes)).toBe('yes')
  })

  it('answers 429 with Retry-After to an address over its rate', async () => {
    relay = await startTestRelay({ config: { limits: { messagesPerSecond: { rate: 1, burst: 2 } } } })
    const url = docUrl(relay.url, 'api/rate')
    const statuses: number[] = []
    for (let i = 0; i < 4; i++) statuses.push((await post(url, textUpdate(`w${i}`))).status)
    expect(statuses.slice(0, 2)).toEqual([200, 200])
    const limited = await post(url, textUpdate('more'))
    expect(limited.status).toBe(429)
    expect(Number(limited.headers.get('retry-after'))).toBeGreaterThanOrEqual(1)
  })

  it('redirects a document of other regions with 307, and waits for ?ack=majority (504 when it cannot be had)', async () => {
    cluster = await TestCluster.start({
      regions: ['eu-west', 'us-east'],
      delayMs: () => 20,
      config: { namespaces: [{ match: 'eu/**', regions: ['eu-west'] }] },
    })
    const moved = await post(docUrl(cluster.url('us-east'), 'eu/record', '?ack=local'), textUpdate('x'))
    expect(moved.status).toBe(307)
    expect(moved.json).toMatchObject({ error: 'ERR_MOVED' })
    expect(moved.headers.get('location')).toBe(`${httpUrl(cluster.url('eu-west'))}/v1/docs/eu%2Frecord?ack=local`)
    const acked = await post(docUrl(cluster.url('us-east'), 'shared/one', '?ack=majority'), textUpdate('both'))
    expect(acked.status).toBe(200)
    expect(acked.json).toMatchObject({ ack: 'majority', region: 'us-east' })
    // Durable in both regions: eu-west serves it already.
    expect(textOf((await request(docUrl(cluster.url('eu-west'), 'shared/one'))).bytes)).toBe('both')
    await cluster.stopRegion('eu-west')
    const late = await post(docUrl(cluster.url('us-east'), 'shared/one', '?ack=majority&timeoutMs=300'), textUpdate('alone'))
    expect(late.status).toBe(504)
    expect(late.json).toMatchObject({ error: 'ERR_ACK_TIMEOUT' })
    expect(String(late.json?.message)).toMatch(/durable here/)
  })

  it('answers 503 with Retry-After to a write whose active-passive writer is out of reach, and still serves reads', async () => {
    cluster = await TestCluster.start({
      regions: ['us-east', 'eu-west'],
      // No standby: eu-west holds writes while us-east is away.
      config: { namespaces: [{ match: 'billing/**', mode: 'active-passive', primary: 'us-east', standby: [] }] },
    })
    expect((await post(docUrl(cluster.url('us-east'), 'billing/1'), textUpdate('paid'))).status).toBe(200)
    const running = cluster
    const euWest = running.relay('eu-west')
    // While its writer is up, eu-west redirects the document's requests there.
    expect((await request(docUrl(running.url('eu-west'), 'billing/1'))).status).toBe(307)
    await waitUntil([every(50)], async () => (await running.store('eu-west').read('billing/1')).log.length > 0, { what: 'eu-west to hold the invoice' })
    await cluster.stopRegion('us-east')
    await waitUntil([on(euWest, 'peers')], () => euWest.peers().every(p => p.state !== 'up'), { what: 'eu-west to lose us-east' })
    const held = await post(docUrl(cluster.url('eu-west'), 'billing/1'), textUpdate('more'))
    expect(held.status).toBe(503)
    expect(held.json).toMatchObject({ error: 'ERR_NO_WRITER' })
    expect(held.headers.get('retry-after')).toBe('1')
    expect(textOf((await request(docUrl(cluster.url('eu-west'), 'billing/1'))).bytes)).toBe('paid')
  })
})
