import fs from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import { afterEach, describe, expect, it } from '@jest/globals'
import { SignJWT, exportJWK, generateKeyPair } from 'jose'
import WebSocket from 'ws'
import * as Y from 'yjs'
import { type MuxMessage, type YMessage, decodeFrame, decodeMuxMessage, encodeFrame, encodeMuxMessage } from '@georelay/core'
import { type Relay, streamLogger } from '@georelay/relay'
import { nextEvent, on, rawWebSocket, recordingSocket, startTestRelay, storeOf, waitUntil } from '@georelay/testkit'

const SECRET = 'a-test-secret-of-at-least-32-chars!!'
const key = new TextEncoder().encode(SECRET)

const token = (docs: Record<string, 'rw' | 'ro'>, { expiresIn = '1h', secret = key }: { expiresIn?: string | number, secret?: Uint8Array } = {}): Promise<string> =>
  new SignJWT({ docs }).setProtectedHeader({ alg: 'HS256' }).setSubject('ada').setIssuedAt().setExpirationTime(expiresIn).sign(secret)

const updateWith = (text: string): Uint8Array => {
  const doc = new Y.Doc()
  doc.getText('t').insert(0, text)
  return Y.encodeStateAsUpdate(doc)
}

const yMessages = (frames: Uint8Array[]): YMessage[] => frames.flatMap(f => decodeFrame(f))
const muxMessages = (frames: Uint8Array[]): MuxMessage[] => frames.map(f => decodeMuxMessage(f))

describe('client authentication', () => {
  let relay: Relay
  const sockets: WebSocket[] = []
  afterEach(async () => {
    for (const ws of sockets.splice(0)) ws.terminate()
    await relay?.close()
  })
  const connect = (route: string, tokenText?: string) => {
    const client = recordingSocket(`${relay.url}/${route}${tokenText === undefined ? '' : `?token=${tokenText}`}`)
    sockets.push(client.ws)
    return client
  }
  const startWithSecret = async (anonymous: 'none' | 'ro' | 'rw' = 'none') => {
    relay = await startTestRelay({ config: { auth: { jwtSecret: SECRET, anonymous } } })
  }

  it.each([
    ['no token', async () => undefined, /a token is required/],
    ['an expired token', async () => token({ 'notes/**': 'rw' }, { expiresIn: Math.floor(Date.now() / 1000) - 10 }), /expired/],
    ['a wrong signature', async () => token({ 'notes/**': 'rw' }, { secret: new TextEncoder().encode('another-secret-of-at-least-32-chars!') }), /signature/],
    ['garbage', async () => 'not.a.jwt', /not a well-formed JWT/],
  ])('refuses %s with 4401 on both endpoints, saying why', async (_what, make, words) => {
    await startWithSecret()
    const tokenText = await make()
    for (const route of ['notes/1', 'v1/mux']) {
      const { closed } = connect(route, tokenText)
      const { code, reason } = await closed
      expect(code).toBe(4401)
      expect(reason).toMatch(words)
    }
    expect(await storeOf(relay).listDocs()).toEqual([])
  })

  it('refuses a document the token does not name: 4403 on y-websocket, an error for that document on mux', async () => {
    await startWithSecret()
    const tokenText = await token({ 'notes/**': 'rw' })
    const stock = connect('other/1', tokenText)
    expect(await stock.closed).toEqual({ code: 4403, reason: 'this token does not allow "other/1"' })
    const mux = connect('v1/mux', tokenText)
    await nextEvent(mux.ws, 'open', { what: 'the mux socket to open' })
    mux.ws.send(encodeMuxMessage({ type: 'open', docId: 1, docName: 'other/1', ack: 'local' }))
    mux.ws.send(encodeMuxMessage({ type: 'open', docId: 2, docName: 'notes/1', ack: 'local' }))
    mux.ws.send(encodeMuxMessage({ type: 'write', docId: 2, writeId: 1, update: updateWith('allowed') }))
    await waitUntil([on(mux.ws, 'message')], () => muxMessages(mux.frames).some(m => m.type === 'ack'), { what: 'the allowed write to be acknowledged' })
    expect(muxMessages(mux.frames)).toContainEqual({ type: 'error', docId: 1, code: 4403, reason: 'this token does not allow "other/1"' })
    expect(await storeOf(relay).listDocs()).toEqual(['notes/1'])
  })

  it('a read-only token syncs and sees updates, and its writes are refused without closing anything', async () => {
    await startWithSecret()
    const writer = connect('public/1', await token({ 'public/**': 'rw' }))
    const reader = connect('public/1', await token({ 'public/**': 'ro' }))
    await Promise.all([writer, reader].map(c => nextEvent(c.ws, 'open', { what: 'the sockets to open' })))
    writer.ws.send(encodeFrame({ type: 'sync-update', update: updateWith('from the writer') }))
    const replica = new Y.Doc()
    await waitUntil([on(reader.ws, 'message')], () => {
      for (const m of yMessages(reader.frames)) if (m.type === 'sync-update' || m.type === 'sync-step2') Y.applyUpdate(replica, m.update)
      reader.frames.length = 0
      return replica.getText('t').toString() === 'from the writer'
    }, { what: 'the reader to receive the writer\'s update' })
    reader.ws.send(encodeFrame({ type: 'sync-update', update: updateWith('from the reader') }))
    await waitUntil([on(reader.ws, 'message')], () => yMessages(reader.frames).some(m => m.type === 'auth-denied'), { what: 'the refusal' })
    expect(yMessages(reader.frames)).toContainEqual({ type: 'auth-denied', reason: 'read-only: this client may read "public/1" but not write it' })
    expect(reader.ws.readyState).toBe(WebSocket.OPEN)
    const stored = await storeOf(relay).read('public/1')
    expect(stored.log).toHaveLength(1)

    // The same on the multiplexed socket: an error for the write, the document stays open.
    const mux = connect('v1/mux', await token({ 'public/**': 'ro' }))
    await nextEvent(mux.ws, 'open', { what: 'the mux socket to open' })
    mux.ws.send(encodeMuxMessage({ type: 'open', docId: 1, docName: 'public/1', ack: 'local' }))
    mux.ws.send(encodeMuxMessage({ type: 'write', docId: 1, writeId: 1, update: updateWith('from mux') }))
    await waitUntil([on(mux.ws, 'message')], () => muxMessages(mux.frames).some(m => m.type === 'error'), { what: 'the mux refusal' })
    expect(muxMessages(mux.frames)).toContainEqual({ type: 'error', docId: 1, code: 4403, reason: 'read-only: this client may read "public/1" but not write it' })
    mux.frames.length = 0
    writer.ws.send(encodeFrame({ type: 'sync-update', update: updateWith('later') }))
    await waitUntil([on(mux.ws, 'message')], () => muxMessages(mux.frames).some(m => m.type === 'sync'), { what: 'the read-only mux document to keep receiving updates' })
    expect((await storeOf(relay).read('public/1')).log).toHaveLength(2)
  })

  it('matches a token\'s globs without backtracking, and refuses a token with too many', async () => {
    await startWithSecret()
    // As a backtracking regular expression this glob took 18.7 s against 72 characters.
    const evil = await token({ '*a*a*a*a*a*a*a*a*a*a*a*a*a*b': 'rw' })
    const name = 'a'.repeat(400)
    const refused = connect(name, evil)
    expect(await refused.closed).toEqual({ code: 4403, reason: expect.stringMatching(/does not allow/) })
    const many = await token(Object.fromEntries(Array.from({ length: 65 }, (_, i) => [`n${i}/**`, 'rw' as const])))
    expect(await connect('n1/x', many).closed).toEqual({ code: 4401, reason: expect.stringMatching(/65 globs; at most 64/) })
  })

  it('a refused socket that never answers the close is cut at once, and a flood of bad tokens writes a bounded log', async () => {
    const lines: string[] = []
    relay = await startTestRelay({ config: { auth: { jwtSecret: SECRET, anonymous: 'none' } }, logger: streamLogger(line => lines.push(line), 'debug') })
    const raw = await rawWebSocket(`${relay.url}/notes/1?token=nope`)
    expect((await raw.closeFrame).code).toBe(4401)
    await raw.ended // not held for ws's 30 s close timeout
    const refusals = Array.from({ length: 60 }, () => connect('notes/1', 'not-a-jwt'))
    await Promise.all(refusals.map(r => r.closed))
    expect(lines.filter(l => /refused a client: authentication failed/.test(l)).length).toBeLessThanOrEqual(20)
  })

  it('anonymous access follows the configuration: ro reads, rw writes', async () => {
    await startWithSecret('ro')
    const anonymous = connect('public/1')
    await nextEvent(anonymous.ws, 'open', { what: 'the anonymous socket to open' })
    anonymous.ws.send(encodeFrame({ type: 'sync-update', update: updateWith('anonymous') }))
    await waitUntil([on(anonymous.ws, 'message')], () => yMessages(anonymous.frames).some(m => m.type === 'auth-denied'), { what: 'the anonymous write to be refused' })
    expect(await storeOf(relay).listDocs()).toEqual([])
  })

  it('verifies EdDSA tokens against a JWKS file', async () => {
    const { publicKey, privateKey } = await generateKeyPair('EdDSA', { crv: 'Ed25519' })
    const other = await generateKeyPair('EdDSA', { crv: 'Ed25519' })
    const jwk = { ...await exportJWK(publicKey), kid: 'k1', alg: 'EdDSA' }
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'georelay-jwks-'))
    const jwksFile = path.join(dir, 'jwks.json')
    fs.writeFileSync(jwksFile, JSON.stringify({ keys: [jwk] }))
    relay = await startTestRelay({ config: { auth: { jwksFile, anonymous: 'none' } } })
    const sign = (k: CryptoKey) => new SignJWT({ docs: { 'notes/**': 'rw' } }).setProtectedHeader({ alg: 'EdDSA', kid: 'k1' }).setExpirationTime('1h').sign(k)
    const good = connect('notes/1', await sign(privateKey))
    // The relay opens the sync once the session exists: proof the token was accepted.
    await waitUntil([on(good.ws, 'message')], () => yMessages(good.frames).some(m => m.type === 'sync-step1'), { what: 'the EdDSA client to get in' })
    const bad = connect('notes/1', await sign(other.privateKey))
    expect((await bad.closed).code).toBe(4401)
    fs.rmSync(dir, { recursive: true, force: true })
  })

  it('a mux client refreshes its token without reopening, and the socket closes when a token expires', async () => {
    await startWithSecret()
    const mux = connect('v1/mux', await token({ 'notes/**': 'rw', 'drafts/**': 'rw' }, { expiresIn: '3s' }))
    await nextEvent(mux.ws, 'open', { what: 'the mux socket to open' })
    mux.ws.send(encodeMuxMessage({ type: 'open', docId: 1, docName: 'notes/1', ack: 'local' }))
    mux.ws.send(encodeMuxMessage({ type: 'open', docId: 2, docName: 'drafts/1', ack: 'local' }))
    // The new token keeps notes read-only and drops drafts.
    mux.ws.send(encodeMuxMessage({ type: 'auth', token: await token({ 'notes/**': 'ro' }, { expiresIn: '4s' }) }))
    mux.ws.send(encodeMuxMessage({ type: 'write', docId: 1, writeId: 1, update: updateWith('after refresh') }))
    await waitUntil([on(mux.ws, 'message')], () => muxMessages(mux.frames).filter(m => m.type === 'error').length === 2, { what: 'both refusals' })
    expect(muxMessages(mux.frames).filter(m => m.type === 'error')).toEqual([
      { type: 'error', docId: 2, code: 4403, reason: 'the new token does not allow "drafts/1"' },
      { type: 'error', docId: 1, code: 4403, reason: 'read-only: this client may read "notes/1" but not write it' },
    ])
    // When the token in force expires, the socket closes.
    const { code, reason } = await mux.closed
    expect({ code, reason }).toEqual({ code: 4401, reason: 'the token has expired: reconnect with a fresh one' })
  })
})
