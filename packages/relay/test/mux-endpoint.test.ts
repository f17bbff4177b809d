import { afterEach, describe, expect, it } from '@jest/globals'
import WebSocket from 'ws'
import * as Y from 'yjs'
import { type MuxMessage, decodeFrame, decodeMuxMessage, encodeFrame, encodeMuxMessage } from '@georelay/core'
import type { Relay } from '@georelay/relay'
import { nextEvent, on, startTestRelay, waitUntil } from '@georelay/testkit'

/** A raw mux socket that records every message the relay sends. */
const openMux = async (
  relay: Relay,
): Promise<{ ws: WebSocket, received: MuxMessage[], send: (m: MuxMessage) => void }> => {
  const ws = new WebSocket(`${relay.url}/v1/mux`)
  const received: MuxMessage[] = []
  ws.on('message', (data: Buffer) => received.push(decodeMuxMessage(new Uint8Array(data))))
  await nextEvent(ws, 'open', { what: 'the mux socket to open' })
  return { ws, received, send: m => ws.send(encodeMuxMessage(m)) }
}

const update = (text: string): Uint8Array => {
  const doc = new Y.Doc()
  doc.getText('t').insert(0, text)
  return Y.encodeStateAsUpdate(doc)
}

describe('/v1/mux', () => {
  let relay: Relay
  afterEach(async () => { await relay.close() })

  it('welcomes with the region, syncs each document, and acknowledges writes', async () => {
    relay = await startTestRelay({ config: { region: 'eu-west' } })
    const { ws, received, send } = await openMux(relay)
    await waitUntil([on(ws, 'message')], () => received.some(m => m.type === 'welcome'), { what: 'the welcome' })
    expect(received[0]).toMatchObject({ type: 'welcome', region: 'eu-west', regions: [{ name: 'eu-west', url: relay.url }] })
    send({ type: 'open', docId: 1, docName: 'a', ack: 'all' })
    send({ type: 'open', docId: 2, docName: 'b', ack: 'local' })
    send({ type: 'write', docId: 1, writeId: 1, update: update('hello') })
    // A single region is a majority and all of its regions.
    await waitUntil([on(ws, 'message')], () => received.filter(m => m.type === 'ack').length === 3, { what: 'three acks' })
    expect(received.filter(m => m.type === 'ack')).toEqual([
      { type: 'ack', docId: 1, writeId: 1, level: 'local' },
      { type: 'ack', docId: 1, writeId: 1, level: 'majority' },
      { type: 'ack', docId: 1, writeId: 1, level: 'all' },
    ])
    // Each document got its own sync step 1; document 2 knows nothing of document 1's write.
    send({ type: 'sync', docId: 2, payload: encodeFrame({ type: 'sync-step1', stateVector: new Uint8Array([0]) }) })
    await waitUntil([on(ws, 'message')], () => received.some(m => m.type === 'sync' && m.docId === 2 && decodeFrame(m.payload)[0]?.type === 'sync-step2'), { what: 'doc 2 step 2' })
    send({ type: 'ping', nonce: 42 })
    await waitUntil([on(ws, 'message')], () => received.some(m => m.type === 'pong' && m.nonce === 42), { what: 'the pong' })
    ws.close()
  })

  it('answers a bad document with an error for that document only', async () => {
    relay = await startTestRelay({ config: { limits: { maxDocsPerConnection: 2 } } })
    const { ws, received, send } = await openMux(relay)
    send({ type: 'open', docId: 1, docName: 'fine', ack: 'local' })
    send({ type: 'open', docId: 2, docName: 'v1/reserved', ack: 'local' })
    send({ type: 'open', docId: 3, docName: 'bad', ack: 'local' })
    send({ type: 'open', docId: 4, docName: 'one-too-many', ack: 'local' })
    send({ type: 'write', docId: 3, writeId: 1, update: new Uint8Array([9, 9, 9]) })
    send({ type: 'write', docId: 1, writeId: 1, update: update('still fine') })
    await waitUntil([on(ws, 'message')], () => received.filter(m => m.type === 'error').length === 3 && received.some(m => m.type === 'ack'), { what: 'three errors and an ack' })
    const errors = received.filter(m => m.type === 'error')
    expect(errors.map(e => e.type === 'error' && [e.docId, e.code])).toEqual([[2, 4400], [4, 4429], [3, 4400]])
    expect(errors.map(e => e.type === 'error' ? e.reason : '')).toEqual([
      expect.stringMatching(/reserved/), expect.stringMatching(/at most 2 documents per connection/), expect.stringMatching(/not a valid Yjs update/),
    ])
    expect(received.find(m => m.type === 'ack')).toEqual({ type: 'ack', docId: 1, writeId: 1, level: 'local' })
    expect(ws.readyState).toBe(WebSocket.OPEN)
    ws.close()
  })

  it('closes the socket with 4400 on a frame that is not a mux message', async () => {
    relay = await startTestRelay()
    const { ws } = await openMux(relay)
    const closed = nextEvent<[number, Buffer]>(ws, 'close', { what: 'the close' })
    ws.send(new Uint8Array([100]))
    const [code, reason] = await closed
    expect(code).toBe(4400)
    expect(reason.toString()).toMatch(/unknown mux message type 100/)
  })
})
