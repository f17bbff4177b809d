import { afterAll, afterEach, beforeAll, describe, expect, it } from '@jest/globals'
import type { IncomingMessage } from 'node:http'
import WebSocket from 'ws'
import type { WebsocketProvider } from 'y-websocket'
import { MemoryStore } from '@georelay/core'
import { type Relay, streamLogger } from '@georelay/relay'
import { connectProvider, DEFAULT_TIMEOUT_MS, destroyProvider, nextEvent, startTestRelay, waitForText, waitSynced } from '@georelay/testkit'

const httpUrl = (relay: Relay, path: string): string => `${relay.url.replace(/^ws:/, 'http:')}${path}`

const metricsText = async (relay: Relay): Promise<string> => {
  const res = await fetch(httpUrl(relay, '/metrics'))
  expect(res.status).toBe(200)
  return res.text()
}

/** The value of one sample in Prometheus text, or undefined when the series has none yet. */
const sample = (text: string, series: string): number | undefined => {
  const line = text.split('\n').find(l => l.startsWith(series + ' '))
  return line === undefined ? undefined : Number(line.slice(series.length + 1))
}

/**
 * Scrapes until `ok` holds. The relay updates a gauge on its side of a socket close, which can
 * land just after the client saw the close; each new scrape is triggered by the previous one's
 * answer, never by a timer.
 */
const scrapeUntil = async (
  relay: Relay,
  ok: (text: string) => boolean,
  what: string,
  timeoutMs = DEFAULT_TIMEOUT_MS,
): Promise<string> => {
  const deadline = Date.now() + timeoutMs
  for (;;) {
    const text = await metricsText(relay)
    if (ok(text)) return text
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`)
  }
}

/** Tries a WebSocket upgrade the relay should refuse; resolves with the HTTP answer. */
const refusedUpgrade = (url: string): Promise<{ status: number, body: string }> =>
  new Promise((resolve, reject) => {
    const ws = new WebSocket(url)
    const timer = setTimeout(() => reject(new Error(`no answer to the upgrade of ${url}`)), DEFAULT_TIMEOUT_MS)
    const fail = (err: Error): void => { clearTimeout(timer); reject(err) }
    ws.once('open', () => { ws.terminate(); fail(new Error(`${url} was accepted as a WebSocket`)) })
    ws.once('error', fail)
    ws.once('unexpected-response', (req, res: IncomingMessage) => {
      let body = ''
      res.setEncoding('utf8').on('data', (chunk: string) => { body += chunk })
      res.once('end', () => {
        clearTimeout(timer)
        req.destroy()
        resolve({ status: res.statusCode ?? 0, body })
      })
    })
  })

const openSocket = async (url: string): Promise<WebSocket> => {
  const ws = new WebSocket(url)
  await nextEvent(ws, 'open', { what: `a socket to ${url} to open` })
  return ws
}

const closeSocket = async (ws: WebSocket): Promise<void> => {
  if (ws.readyState === ws.CLOSED) return
  const closed = nextEvent(ws, 'close', { what: 'a client socket to close' })
  ws.close()
  await closed
}

describe('HTTP endpoints', () => {
  let relay: Relay

  beforeAll(async () => { relay = await startTestRelay({ config: { region: 'eu-west' } }) })
  afterAll(async () => { await relay.close() })

  it('GET /healthz answers 200 ok', async () => {
    const res = await fetch(httpUrl(relay, '/healthz'))
    expect(res.status).toBe(200)
    expect(res.headers.get('cache-control')).toBe('no-store')
    expect(await res.text()).toBe('ok\n')
  })

  it('GET /readyz answers 200 while the relay runs, and ignores a query string', async () => {
    const res = await fetch(httpUrl(relay, '/readyz?probe=k8s'))
    expect(res.status).toBe(200)
    expect(await res.text()).toBe('ready\n')
  })

  it('HEAD is answered like GET, without a body', async () => {
    const res = await fetch(httpUrl(relay, '/healthz'), { method: 'HEAD' })
    expect(res.status).toBe(200)
    expect(await res.text()).toBe('')
  })

  it('GET /metrics is Prometheus text with the relay\'s series, labelled with its region', async () => {
    const res = await fetch(httpUrl(relay, '/metrics'))
    expect(res.status).toBe(200)
    expect(res.headers.get('content-type')).toMatch(/^text\/plain; version=0\.0\.4/)
    const text = await res.text()
    expect(text).toContain('# TYPE georelay_connections gauge')
    expect(text).toContain('# TYPE georelay_documents_loaded gauge')
    expect(text).toContain('# TYPE georelay_updates_received_total counter')
    expect(text).toContain('# TYPE georelay_store_append_seconds histogram')
    expect(text).toMatch(/^georelay_documents_loaded\{region="eu-west"\} \d+$/m)
    expect(text).toMatch(/^georelay_store_append_seconds_bucket\{le="0\.001",region="eu-west"\} \d+$/m)
    // Process metrics too, so one scrape shows the relay's memory next to its documents.
    expect(text).toMatch(/^georelay_process_resident_memory_bytes\{region="eu-west"\} \d+/m)
  })

  it('GET /v1/regions shows anyone what discovery needs: regions, public URLs, up or down', async () => {
    const res = await fetch(httpUrl(relay, '/v1/regions'))
    expect(res.status).toBe(200)
    expect(res.headers.get('content-type')).toBe('application/json; charset=utf-8')
    expect(res.headers.get('access-control-allow-origin')).toBe('*')
    expect(await res.json()).toEqual({
      region: 'eu-west',
      publicUrl: relay.url,
      regions: [{ name: 'eu-west', url: relay.url, self: true, state: 'up' }],
    })
  })

  it('answers an unknown path with 404 and JSON that says what is served', async () => {
    const res = await fetch(httpUrl(relay, '/notes/42'))
    expect(res.status).toBe(404)
    expect(res.headers.get('content-type')).toMatch(/^application\/json/)
    const body = await res.json() as { error: string }
    expect(body.error).toMatch(/no endpoint at \/notes\/42/)
    expect(body.error).toMatch(/ws:\/\/HOST:PORT\/<document>/)
    expect(body.error).toMatch(/\/healthz, \/readyz, \/metrics, \/v1\/regions and \/v1\/docs\/<document>/)
  })

  it.each(['POST', 'PUT', 'DELETE'])('answers %s with 405 and an Allow header', async method => {
    const res = await fetch(httpUrl(relay, '/healthz'), { method, body: method === 'DELETE' ? null : '{}' })
    expect(res.status).toBe(405)
    expect(res.headers.get('allow')).toBe('GET, HEAD')
    expect((await res.json() as { error: string }).error).toMatch(new RegExp(`${method} is not allowed`))
  })

  it.each(['/healthz', '/readyz', '/metrics', '/v1/anything', '/v1/regions', '/v1%2Fnothing'])(
    'refuses a WebSocket upgrade to the reserved %s with HTTP 404',
    async path => {
      const { status, body } = await refusedUpgrade(`${relay.url}${path}`)
      expect(status).toBe(404)
      expect(body).toMatch(/is reserved and not a WebSocket endpoint/)
    },
  )

  it.each([
    ['no document name', '/', /no document name/],
    ['only a query string', '/?token=t', /no document name/],
    ['broken percent-encoding', '/%E0%A4%A', /not valid percent-encoding/],
    ['a control character', '/a%00b', /control characters/],
    ['a name over 512 bytes', '/' + 'n'.repeat(513), /longer than 512 bytes/],
    ['a "?" in the name, as a stock provider sends it', '/notes/?q?token=t', /did the document name hold "\?"\?/],
  ])('closes a socket for %s with 4400 and the reason', async (_what, path, reason) => {
    const ws = new WebSocket(`${relay.url}${path}`)
    const [code, why] = await nextEvent(ws, 'close', { what: `the relay to close ${path}` }) as [number, Buffer]
    expect(code).toBe(4400)
    expect(why.toString()).toMatch(reason)
  })
})

describe('HTTP endpoints with a configured public URL', () => {
  it('/v1/regions advertises the public URL, not the listening address', async () => {
    const relay = await startTestRelay({ config: { region: 'us-east', publicUrl: 'wss://us-east.relay.example.com' } })
    try {
      const regions = await (await fetch(httpUrl(relay, '/v1/regions'))).json()
      expect(regions).toEqual({
        region: 'us-east',
        publicUrl: 'wss://us-east.relay.example.com',
        regions: [{ name: 'us-east', url: 'wss://us-east.relay.example.com', self: true, state: 'up' }],
      })
    } finally {
      await relay.close()
    }
  })
})

describe('a failing HTTP handler', () => {
  it('logs the path without its query, which may hold a token', async () => {
    const lines: string[] = []
    const relay = await startTestRelay({ logger: streamLogger(line => lines.push(line), 'debug') })
    try {
      // The one way to make a handler throw from outside: a metrics registry that fails.
      relay.metrics.metrics = () => Promise.reject(new Error('collect failed'))
      const res = await fetch(httpUrl(relay, '/metrics?token=eyJ.secret.token'))
      expect(res.status).toBe(500)
      const line = lines.find(l => /http handler failed/.test(l))
      expect(line).toMatch(/path=\/metrics /)
      expect(lines.join('\n')).not.toContain('eyJ.secret.token')
    } finally {
      await relay.close()
    }
  })
})

describe('/v1/regions exposure', () => {
  const ADMIN = 'admin-token-of-at-least-32-bytes!'
  let relay: Relay
  afterEach(async () => { await relay?.close() })

  it('http.regions "full" adds peers with their public URLs and an error kind, and the rules', async () => {
    relay = await startTestRelay({
      config: {
        region: 'eu-west', http: { regions: 'full' }, meshSecret: 'm'.repeat(32),
        peers: [{ region: 'us-east', url: 'ws://10.0.0.9:1', publicUrl: 'wss://us-east.example.com' }],
      },
    })
    const body = await (await fetch(httpUrl(relay, '/v1/regions'))).json() as { peers: Record<string, unknown>[], policy: unknown, regions: unknown[] }
    expect(body.regions).toEqual([
      { name: 'eu-west', url: relay.url, self: true, state: 'up' },
      // With why, once the first dial has failed.
      { name: 'us-east', url: 'wss://us-east.example.com', self: false, state: 'down', ...(body.peers[0]?.error === undefined ? {} : { error: body.peers[0].error }) },
    ])
    expect(body.peers[0]).toMatchObject({ region: 'us-east', url: 'wss://us-east.example.com' })
    // The internal address this relay dials is never shown, nor an error's words.
    expect(JSON.stringify(body)).not.toContain('10.0.0.9')
    if (body.peers[0]?.error !== undefined) expect(body.peers[0]?.error).toMatch(/^[a-z-]+$/)
    expect(body.policy).toEqual({ digest: expect.stringMatching(/^[0-9a-f]{16}$/), namespaces: [] })
  })

  it('shows each namespace rule with its regions, ack level and writers, so that residency can be checked from outside', async () => {
    relay = await startTestRelay({
      config: {
        region: 'eu-west', http: { regions: 'full' }, meshSecret: 'm'.repeat(32),
        peers: [{ region: 'us-east', url: 'ws://127.0.0.1:1' }],
        namespaces: [
          { match: 'eu/**', regions: ['eu-west'], ack: 'majority' },
          { match: 'billing/**', mode: 'active-passive', primary: 'eu-west', standby: ['us-east'] },
          { match: '**' },
        ],
      },
    })
    const body = await (await fetch(httpUrl(relay, '/v1/regions'))).json() as { policy: { namespaces: unknown[] } }
    expect(body.policy.namespaces).toEqual([
      { match: 'eu/**', mode: 'active-active', regions: ['eu-west'], ack: 'majority' },
      { match: 'billing/**', mode: 'active-passive', regions: ['eu-west', 'us-east'], primary: 'eu-west', standby: ['us-east'], writer: 'eu-west' },
      { match: '**', mode: 'active-active', regions: ['eu-west', 'us-east'] },
    ])
  })

  it('http.regions "off" answers 404; the admin token still gets the full view', async () => {
    relay = await startTestRelay({ config: { region: 'eu-west', http: { regions: 'off', adminToken: ADMIN } } })
    expect((await fetch(httpUrl(relay, '/v1/regions'))).status).toBe(404)
    expect((await fetch(httpUrl(relay, '/v1/regions'), { headers: { authorization: 'Bearer wrong' } })).status).toBe(404)
    const full = await fetch(httpUrl(relay, '/v1/regions'), { headers: { authorization: `Bearer ${ADMIN}` } })
    expect(full.status).toBe(200)
    expect(await full.json()).toMatchObject({ peers: [], policy: { namespaces: [] } })
  })

  it('http.allowOrigins limits which browser origins may read it', async () => {
    relay = await startTestRelay({ config: { region: 'eu-west', http: { allowOrigins: ['https://app.example.com'] } } })
    const allowed = await fetch(httpUrl(relay, '/v1/regions'), { headers: { origin: 'https://app.example.com' } })
    expect(allowed.headers.get('access-control-allow-origin')).toBe('https://app.example.com')
    const other = await fetch(httpUrl(relay, '/healthz'), { headers: { origin: 'https://evil.example.com' } })
    expect(other.headers.get('access-control-allow-origin')).toBeNull()
  })
})

describe('documents and metrics over the client endpoint', () => {
  let relay: Relay
  let store: MemoryStore
  const providers: WebsocketProvider[] = []
  const sockets: WebSocket[] = []
  const connect = (name: string): WebsocketProvider => {
    const provider = connectProvider(relay.url, name)
    providers.push(provider)
    return provider
  }

  afterEach(async () => {
    for (const provider of providers.splice(0)) destroyProvider(provider)
    await Promise.all(sockets.splice(0).map(closeSocket))
    await relay.close()
  })

  it('an encoded and a plain document name reach the same document', async () => {
    store = new MemoryStore()
    relay = await startTestRelay({ store })
    // y-websocket appends the room name to the URL as given, so this one travels as
    // /eu%2Fnotes%2F42 and the other as /eu/notes/42.
    const encoded = connect('eu%2Fnotes%2F42')
    const plain = connect('eu/notes/42')
    expect(encoded.url).toMatch(/\/eu%2Fnotes%2F42$/)
    await Promise.all([waitSynced(encoded), waitSynced(plain)])
    encoded.doc.getText('t').insert(0, 'via encoded;')
    await waitForText(plain.doc, t => t.includes('via encoded;'), 'the plain-name client to see the encoded-name write')
    plain.doc.getText('t').insert(0, 'via plain;')
    await waitForText(encoded.doc, t => t.includes('via plain;'), 'the encoded-name client to see the plain-name write')
    expect(relay.loadedDocuments).toBe(1)
    expect((await store.read('eu/notes/42')).log.length).toBeGreaterThanOrEqual(2)
    expect((await store.read('eu%2Fnotes%2F42')).log).toEqual([])
  })

  it('metrics count updates, their store appends and loaded documents', async () => {
    relay = await startTestRelay({ config: { region: 'ap-south' } })
    const writer = connect('metrics/doc')
    const reader = connect('metrics/doc')
    await Promise.all([waitSynced(writer), waitSynced(reader)])
    const before = sample(await metricsText(relay), 'georelay_updates_received_total{source="client",region="ap-south"}') ?? 0
    writer.doc.getText('t').insert(0, 'one')
    writer.doc.getText('t').insert(3, 'two')
    // The relay forwards an update only after storing and counting it.
    await waitForText(reader.doc, t => t === 'onetwo', 'the reader to see both writes')
    const text = await metricsText(relay)
    expect(sample(text, 'georelay_updates_received_total{source="client",region="ap-south"}')).toBe(before + 2)
    expect(sample(text, 'georelay_store_append_seconds_count{region="ap-south"}')).toBeGreaterThanOrEqual(2)
    expect(sample(text, 'georelay_documents_loaded{region="ap-south"}')).toBe(1)
    expect(sample(text, 'georelay_update_bytes_received_total{source="client",region="ap-south"}')).toBeGreaterThan(0)
  })

  it('georelay_connections rises with each client and falls back as they leave', async () => {
    relay = await startTestRelay()
    const series = 'georelay_connections{endpoint="y-websocket",region="test"}'
    const a = await openSocket(`${relay.url}/gauge`)
    sockets.push(a)
    // The relay counts a socket before it answers the upgrade, so no wait is needed here.
    expect(sample(await metricsText(relay), series)).toBe(1)
    const b = await openSocket(`${relay.url}/gauge/other`)
    sockets.push(b)
    expect(sample(await metricsText(relay), series)).toBe(2)
    await closeSocket(a)
    await scrapeUntil(relay, text => sample(text, series) === 1, 'the gauge to drop to 1')
    await closeSocket(b)
    await scrapeUntil(relay, text => sample(text, series) === 0, 'the gauge to drop to 0')
  })
})

describe('a closed relay', () => {
  it('stops answering: /readyz no longer returns 200', async () => {
    const relay = await startTestRelay()
    const url = httpUrl(relay, '/readyz')
    expect((await fetch(url)).status).toBe(200)
    await relay.close()
    // Not listening any more: the request cannot even connect.
    await expect(fetch(url)).rejects.toThrow(/fetch failed/)
  })

  it('refuses new sockets after close, and closes open ones with 1001', async () => {
    const relay = await startTestRelay()
    // relay.url needs a listening server, so it is taken while there is one.
    const url = `${relay.url}/doc`
    const ws = await openSocket(url)
    const closed = nextEvent<[number, Buffer]>(ws, 'close', { what: 'the relay to close the client socket' })
    await relay.close()
    const [code, reason] = await closed
    expect(code).toBe(1001)
    expect(reason.toString()).toMatch(/shutting down/)
    const late = new WebSocket(url)
    const [err] = await nextEvent<[Error]>(late, 'error', { what: 'a late socket to fail' })
    expect((err as NodeJS.ErrnoException).code).toBe('ECONNREFUSED')
  })
})
