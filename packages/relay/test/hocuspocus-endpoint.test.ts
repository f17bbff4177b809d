/**
 * `/v1/hocuspocus` with the real `@hocuspocus/provider` from npm, 4.x and 3.x, unchanged.
 */
import { afterEach, describe, expect, it } from '@jest/globals'
import { SignJWT } from 'jose'
import WebSocket from 'ws'
import * as Y from 'yjs'
import { type DocStore, type HocuspocusMessage, decodeHocuspocusMessage, encodeHocuspocusMessage } from '@georelay/core'
import type { Relay } from '@georelay/relay'
import {
  type HocuspocusOptions, type HocuspocusSocket, type HocuspocusVersion, TestCluster, type TestHocuspocusProvider,
  connectHocuspocus, connectProvider, destroyHocuspocus, destroyProvider, hocuspocusSocket, nextAuthFailure, on,
  readStoredDoc, startTestRelay, storeOf, waitForText, waitHocuspocusSaved, waitHocuspocusSynced, waitSynced,
  waitUntil,
} from '@georelay/testkit'

const SECRET = 'a-test-secret-of-at-least-32-chars!!'
const token = (docs: Record<string, 'ro' | 'rw'>): Promise<string> =>
  new SignJWT({ docs }).setProtectedHeader({ alg: 'HS256' }).setExpirationTime('1h').sign(new TextEncoder().encode(SECRET))

const hocuspocusUrl = (url: string): string => `${url}/v1/hocuspocus`

const textIn = async (store: DocStore, name: string): Promise<string> => (await readStoredDoc(store, name)).getText('t').toString()
const storedText = (relay: Relay, name: string): Promise<string> => textIn(storeOf(relay), name)

describe.each([4, 3] as HocuspocusVersion[])('@hocuspocus/provider %s.x', version => {
  let relay: Relay | undefined
  let cluster: TestCluster | undefined
  const closers: (() => void)[] = []
  const connect = (url: string, name: string, options: HocuspocusOptions = {}): TestHocuspocusProvider => {
    const provider = connectHocuspocus(version, hocuspocusUrl(url), name, options)
    closers.push(() => destroyHocuspocus(provider))
    return provider
  }

  afterEach(async () => {
    for (const close of closers.splice(0).reverse()) close()
    await relay?.close()
    await cluster?.close()
    relay = cluster = undefined
  })

  it('converges with a stock y-websocket client of another region, and saves what it writes', async () => {
    cluster = await TestCluster.start({ regions: ['eu-west', 'us-east'], delayMs: () => 20 })
    const tiptap = connect(cluster.url('eu-west'), 'notes/hp')
    const stock = connectProvider(cluster.url('us-east'), 'notes/hp')
    closers.push(() => destroyProvider(stock))
    await Promise.all([waitHocuspocusSynced(tiptap), waitSynced(stock)])
    expect(tiptap.isAuthenticated).toBe(true)
    expect(tiptap.authorizedScope).toBe('read-write')
    tiptap.document.getText('t').insert(0, 'from hocuspocus ')
    stock.doc.getText('t').insert(0, 'from y-websocket ')
    const both = (text: string): boolean => text.includes('from hocuspocus') && text.includes('from y-websocket')
    await Promise.all([
      waitForText(tiptap.document, both, 'the Hocuspocus provider to see both edits'),
      waitForText(stock.doc, both, 'the y-websocket client to see both edits'),
    ])
    expect(tiptap.document.getText('t').toString()).toBe(stock.doc.getText('t').toString())
    // SyncStatus came back for each change once it was durable in eu-west.
    await waitHocuspocusSaved(tiptap)
    expect(await textIn(cluster.store('eu-west'), 'notes/hp')).toContain('from hocuspocus')
  })

  it('carries many documents on one socket, each with its own content and presence', async () => {
    relay = await startTestRelay()
    const socket: HocuspocusSocket = hocuspocusSocket(version, hocuspocusUrl(relay.url))
    closers.push(() => socket.destroy())
    const a = connect(relay.url, 'multi/a', { socket })
    const b = connect(relay.url, 'multi/b', { socket })
    const readerA = connect(relay.url, 'multi/a')
    await Promise.all([a, b, readerA].map(p => waitHocuspocusSynced(p)))
    a.document.getText('t').insert(0, 'A')
    b.document.getText('t').insert(0, 'B')
    a.awareness?.setLocalStateField('user', { name: 'Ada' })
    await waitForText(readerA.document, text => text === 'A', 'the reader of multi/a to get A')
    await waitUntil([on(readerA.awareness as never, 'change')], () => readerA.awareness?.getStates().get(a.document.clientID)?.user?.name === 'Ada', { what: 'the reader to see Ada' })
    await Promise.all([waitHocuspocusSaved(a), waitHocuspocusSaved(b)])
    expect(await storedText(relay, 'multi/b')).toBe('B')
    expect(readerA.document.getText('t').toString()).toBe('A')
  })

  it('tells a read-only token readonly, and refuses its writes with SyncStatus without storing them', async () => {
    relay = await startTestRelay({ config: { auth: { jwtSecret: SECRET, anonymous: 'none' } } })
    const writer = connect(relay.url, 'ro/doc', { token: await token({ 'ro/**': 'rw' }) })
    await waitHocuspocusSynced(writer)
    writer.document.getText('t').insert(0, 'original')
    await waitHocuspocusSaved(writer)
    const reader = connect(relay.url, 'ro/doc', { token: await token({ 'ro/**': 'ro' }) })
    await waitHocuspocusSynced(reader)
    expect(reader.authorizedScope).toBe('readonly')
    expect(reader.document.getText('t').toString()).toBe('original')
    reader.document.getText('t').insert(0, 'vandal ')
    // The relay answers each write; a refused one leaves the change counted as unsynced.
    await waitUntil([on(reader, 'unsyncedChanges')], () => reader.synced, { what: 'the reader to sync' })
    writer.document.getText('t').insert(8, '!')
    await waitForText(reader.document, text => text.includes('!'), 'the reader to keep receiving')
    expect(reader.unsyncedChanges).toBeGreaterThan(0)
    expect(await storedText(relay, 'ro/doc')).toBe('original!')
    expect(writer.document.getText('t').toString()).toBe('original!')
  })

  it('refuses a missing token, a bad one and one for other documents through the Auth message', async () => {
    relay = await startTestRelay({ config: { auth: { jwtSecret: SECRET, anonymous: 'none' } } })
    const none = connect(relay.url, 'secret/doc')
    expect(await nextAuthFailure(none)).toMatch(/a token is required/)
    const forged = connect(relay.url, 'secret/doc', { token: 'eyJhbGciOiJIUzI1NiJ9.eyJkb2NzIjp7IioqIjoicncifX0.c2lnbmF0dXJl' })
    expect(await nextAuthFailure(forged)).toMatch(/signature/)
    const elsewhere = connect(relay.url, 'secret/doc', { token: await token({ 'public/**': 'rw' }) })
    expect(await nextAuthFailure(elsewhere)).toMatch(/does not allow "secret\/doc"/)
    for (const p of [none, forged, elsewhere]) expect(p.isAuthenticated).toBe(false)
    expect((await storeOf(relay).read('secret/doc')).log).toEqual([])
  })

  it('names the region to use for a document that lives elsewhere', async () => {
    cluster = await TestCluster.start({ regions: ['eu-west', 'us-east'], config: { namespaces: [{ match: 'eu/**', regions: ['eu-west'] }] } })
    const misplaced = connect(cluster.url('us-east'), 'eu/record')
    const reason = await nextAuthFailure(misplaced)
    expect(reason).toContain(`eu-west ${cluster.url('eu-west')}/v1/hocuspocus : `)
    expect(reason).toContain('"eu/record" lives in eu-west')
  })
})

describe('/v1/hocuspocus frames', () => {
  let relay: Relay
  afterEach(async () => { await relay.close() })

  type Match = (m: HocuspocusMessage) => boolean
  interface RawSocket {
    ws: WebSocket
    received: HocuspocusMessage[]
    next: (what: string, match: Match, timeoutMs?: number) => Promise<HocuspocusMessage>
  }
  const open = async (): Promise<RawSocket> => {
    const ws = new WebSocket(`${relay.url}/v1/hocuspocus`)
    const received: HocuspocusMessage[] = []
    ws.on('message', data => received.push(decodeHocuspocusMessage(new Uint8Array(data as Buffer))))
    await new Promise(resolve => ws.once('open', resolve))
    const next = async (what: string, match: Match, timeoutMs = 10_000): Promise<HocuspocusMessage> => {
      await waitUntil([on(ws, 'message')], () => received.some(match), { what, timeoutMs })
      return received.find(match) as HocuspocusMessage
    }
    return { ws, received, next }
  }
  const send = (ws: WebSocket, message: HocuspocusMessage): void => ws.send(encodeHocuspocusMessage(message))

  it('holds a document\'s messages until its Auth, answers step 1 with step 2 then its own step 1, and pings back', async () => {
    relay = await startTestRelay()
    const { ws, received, next } = await open()
    const update = (() => { const d = new Y.Doc(); d.getText('t').insert(0, 'early'); return Y.encodeStateAsUpdate(d) })()
    // An update sent before the Auth message waits for it, then is stored.
    send(ws, { type: 'y', key: 'frames/1', message: { type: 'sync-update', update } })
    send(ws, { type: 'token', key: 'frames/1', token: '', version: '4.8.0' })
    send(ws, { type: 'y', key: 'frames/1', message: { type: 'sync-step1', stateVector: new Uint8Array([0]) } })
    await next('the sync status of the early update', m => m.type === 'sync-status')
    await next('the relay\'s own step 1', m => m.type === 'y' && m.message.type === 'sync-step1')
    const kinds = received.map(m => m.type === 'y' ? m.message.type : m.type)
    expect(kinds.indexOf('authenticated')).toBe(0)
    expect(kinds.indexOf('sync-step2')).toBeLessThan(kinds.indexOf('sync-step1'))
    expect(received.find(m => m.type === 'sync-status')).toEqual({ type: 'sync-status', key: 'frames/1', applied: true })
    expect(await storedText(relay, 'frames/1')).toBe('early')
    ws.send(new Uint8Array([9]))
    await next('a pong', m => m.type === 'pong')
    ws.close()
  })

  it('closes one document that sends a bad update with a Close for it, and keeps the others', async () => {
    relay = await startTestRelay()
    const { ws, next } = await open()
    for (const key of ['good', 'bad']) send(ws, { type: 'token', key, token: '', version: null })
    await next('bad to be authenticated', m => m.type === 'authenticated' && m.key === 'bad')
    send(ws, { type: 'y', key: 'bad', message: { type: 'sync-update', update: new Uint8Array([1, 2, 3]) } })
    const closed = await next('a Close for bad', m => m.type === 'close')
    expect(closed).toMatchObject({ type: 'close', key: 'bad' })
    const d = new Y.Doc()
    d.getText('t').insert(0, 'still here')
    send(ws, { type: 'y', key: 'good', message: { type: 'sync-update', update: Y.encodeStateAsUpdate(d) } })
    await next('good to keep working', m => m.type === 'sync-status' && m.key === 'good')
    expect(ws.readyState).toBe(WebSocket.OPEN)
    // A frame that is not a Hocuspocus message at all closes the socket.
    const code = new Promise(resolve => ws.once('close', resolve))
    ws.send(new Uint8Array([200]))
    expect(await code).toBe(4400)
  })

  it('keeps a quiet socket inside the provider\'s 30 s timeout: a Ping for 4.x, a frame for no document for 3.x', async () => {
    relay = await startTestRelay()
    const v4 = await open()
    const v3 = await open()
    send(v4.ws, { type: 'token', key: 'quiet/4', token: '', version: '4.8.0' })
    send(v3.ws, { type: 'token', key: 'quiet/3', token: '', version: null })
    await Promise.all([v4.next('4.x to be authenticated', m => m.type === 'authenticated'), v3.next('3.x to be authenticated', m => m.type === 'authenticated')])
    const pinged = Date.now()
    await Promise.all([
      v4.next('a ping', m => m.type === 'ping', 20_000),
      v3.next('a frame for no document', m => m.type !== 'authenticated' && 'key' in m && m.key === '', 20_000),
    ])
    // Nothing was sent on either socket meanwhile, so the keepalive is what reset the provider's timer.
    expect(Date.now() - pinged).toBeLessThan(20_000)
    v4.ws.close()
    v3.ws.close()
  }, 30_000)
})
