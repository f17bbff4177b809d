import net from 'node:net'
import { afterEach, describe, expect, it } from '@jest/globals'
import WebSocket from 'ws'
import * as Y from 'yjs'
import { type MuxMessage, type YMessage, decodeFrame, decodeMuxMessage, encodeFrame, encodeMuxMessage } from '@georelay/core'
import type { Relay, RelayConfigInput } from '@georelay/relay'
import { every, nextEvent, on, recordingSocket, startTestRelay, waitUntil } from '@georelay/testkit'

const updateOfSize = (bytes: number, seed = 'x'): Uint8Array => {
  const doc = new Y.Doc()
  doc.getText('t').insert(0, seed.repeat(bytes))
  return Y.encodeStateAsUpdate(doc)
}

describe('limits', () => {
  let relay: Relay
  const sockets: WebSocket[] = []
  afterEach(async () => {
    for (const ws of sockets.splice(0)) ws.terminate()
    await relay?.close()
  })
  const start = async (limits: RelayConfigInput['limits']) => {
    relay = await startTestRelay({ config: { limits } })
  }
  const connect = (route: string) => {
    const client = recordingSocket(`${relay.url}/${route}`)
    sockets.push(client.ws)
    return client
  }
  const healthy = async (): Promise<void> => {
    expect((await fetch(`${relay.url.replace('ws', 'http')}/healthz`)).status).toBe(200)
    const other = connect('other/doc')
    await waitUntil([on(other.ws, 'message')], () => other.frames.length > 0, { what: 'another client to be served' })
  }
  const metrics = async (): Promise<string> => (await fetch(`${relay.url.replace('ws', 'http')}/metrics`)).text()

  // Rate limits (slowed first, closed only when sustained) are tested in abuse.test.ts.

  it('past maxConnections a socket is closed with 4429, and gets in once one left', async () => {
    await start({ maxConnections: 2 })
    const first = connect('notes/1')
    const second = connect('notes/2')
    await Promise.all([first, second].map(c => nextEvent(c.ws, 'open', { what: 'two sockets to open' })))
    const third = connect('notes/3')
    expect(await third.closed).toEqual({ code: 4429, reason: 'this relay is full (limits.maxConnections 2); try another region' })
    first.ws.close()
    await first.closed
    const fourth = connect('notes/4')
    await waitUntil([on(fourth.ws, 'message')], () => fourth.frames.length > 0, { what: 'a socket to get in after one left' })
  })

  it('a write that would make a document larger than maxDocumentBytes is refused; the document stays readable', async () => {
    await start({ maxDocumentBytes: 4096 })
    const writer = connect('big/1')
    await nextEvent(writer.ws, 'open', { what: 'the writer to open' })
    writer.ws.send(encodeFrame({ type: 'sync-update', update: updateOfSize(3000, 'a') }))
    writer.ws.send(encodeFrame({ type: 'sync-update', update: updateOfSize(3000, 'b') }))
    const refusals = (): YMessage[] => writer.frames.flatMap(f => decodeFrame(f)).filter(m => m.type === 'auth-denied')
    await waitUntil([on(writer.ws, 'message')], () => refusals().length > 0, { what: 'the oversize write to be refused' })
    expect(refusals()[0]).toEqual({ type: 'auth-denied', reason: expect.stringMatching(/"big\/1" would grow past 4096 bytes \(limits\.maxDocumentBytes\); it stays readable/) })
    expect(writer.ws.readyState).toBe(WebSocket.OPEN)
    // On the multiplexed socket: an error 4413 for that document.
    const mux = connect('v1/mux')
    await nextEvent(mux.ws, 'open', { what: 'the mux socket to open' })
    mux.ws.send(encodeMuxMessage({ type: 'open', docId: 1, docName: 'big/1', ack: 'local' }))
    mux.ws.send(encodeMuxMessage({ type: 'write', docId: 1, writeId: 1, update: updateOfSize(3000, 'c') }))
    const muxed = (): MuxMessage[] => mux.frames.map(f => decodeMuxMessage(f))
    await waitUntil([on(mux.ws, 'message')], () => muxed().some(m => m.type === 'error'), { what: 'the mux refusal' })
    expect(muxed().find(m => m.type === 'error')).toMatchObject({ code: 4413 })
    // A new reader gets the document as it was before the refused writes.
    const reader = connect('big/1')
    await nextEvent(reader.ws, 'open', { what: 'the reader to open' })
    reader.ws.send(encodeFrame({ type: 'sync-step1', stateVector: new Uint8Array([0]) }))
    const replica = new Y.Doc()
    await waitUntil([on(reader.ws, 'message')], () => {
      for (const m of reader.frames.splice(0).flatMap(f => decodeFrame(f))) if (m.type === 'sync-step2') Y.applyUpdate(replica, m.update)
      return replica.getText('t').length === 3000
    }, { what: 'the reader to read the document' })
    expect(replica.getText('t').toString()).toBe('a'.repeat(3000))
    expect(await metrics()).toMatch(/georelay_messages_rejected_total\{code="ERR_DOC_TOO_LARGE",region="test"\} 2/)
  })

  it('a reader that stops reading is cut once its send buffer passes maxBufferedBytes', async () => {
    await start({ maxBufferedBytes: 64 * 1024, messagesPerSecond: { rate: 0, burst: 0 } })
    // A client that completes the handshake and then never reads again.
    const stalled = net.connect(relay.port, '127.0.0.1')
    stalled.write('GET /flood/1 HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n')
    await nextEvent(stalled, 'data', { what: 'the handshake answer' })
    stalled.pause()
    const writer = connect('flood/1')
    await nextEvent(writer.ws, 'open', { what: 'the writer to open' })
    // Far more than the loopback socket buffers hold, in updates the store accepts.
    const chunk = 200 * 1024
    for (let i = 0; i < 80; i++) writer.ws.send(encodeFrame({ type: 'sync-update', update: updateOfSize(chunk, String.fromCharCode(97 + (i % 26))) }))
    let text = ''
    await waitUntil([every(50)], () => { void metrics().then(t => { text = t }); return /ERR_SLOW_READER/.test(text) }, { what: 'the slow reader to be cut', timeoutMs: 20_000 })
    expect(text).toMatch(/georelay_messages_rejected_total\{code="ERR_SLOW_READER",region="test"\} 1/)
    stalled.destroy()
    expect(writer.ws.readyState).toBe(WebSocket.OPEN)
    await healthy()
  })
})
