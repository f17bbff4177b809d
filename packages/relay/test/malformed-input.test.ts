import { afterAll, beforeAll, describe, expect, it } from '@jest/globals'
import WebSocket from 'ws'
import * as Y from 'yjs'
import type { WebsocketProvider } from 'y-websocket'
import { encodeFrame, MemoryStore, validateUpdate } from '@georelay/core'
import type { Relay } from '@georelay/relay'
import { connectProvider, destroyProvider, nextEvent, startTestRelay, waitForText, waitSynced } from '@georelay/testkit'

const DOC = 'shared/doc'
const MAX_MESSAGE_BYTES = 4096

/** A real update cut short: well framed, but not a Yjs update. */
const brokenUpdate = (): Uint8Array => {
  const doc = new Y.Doc()
  doc.getText('t').insert(0, 'x'.repeat(40))
  const update = Y.encodeStateAsUpdate(doc)
  return update.slice(0, update.length - 10)
}

const CASES: { name: string, frame: () => Uint8Array | string, code: number, reason: RegExp }[] = [
  { name: 'garbage bytes', frame: () => new Uint8Array([0x47, 0x45, 0x54, 0x20, 0x2f]), code: 4400, reason: /unknown message type/ },
  { name: 'a truncated varint', frame: () => new Uint8Array([0x80]), code: 4400, reason: /truncated/ },
  { name: 'an absurd length prefix', frame: () => new Uint8Array([0, 2, 0xff, 0xff, 0xff, 0x7f, 1, 2, 3]), code: 4400, reason: /claims \d+ bytes/ },
  { name: 'an unknown message type', frame: () => new Uint8Array([9]), code: 4400, reason: /unknown message type 9/ },
  { name: 'an unknown sync sub-type', frame: () => new Uint8Array([0, 7, 0]), code: 4400, reason: /unknown sync message type 7/ },
  { name: 'a well-framed invalid Yjs update', frame: () => encodeFrame({ type: 'sync-update', update: brokenUpdate() }), code: 4400, reason: /not a valid Yjs update/ },
  { name: 'an invalid awareness update', frame: () => encodeFrame({ type: 'awareness', update: new Uint8Array([1, 5, 1, 3, 0x7b, 0x7b, 0x7b]) }), code: 4400, reason: /awareness/ },
  { name: 'a valid update followed by garbage in one frame', frame: () => new Uint8Array([...encodeFrame({ type: 'sync-update', update: validUpdate('never stored') }), 0x80]), code: 4400, reason: /truncated/ },
  { name: 'a text frame', frame: () => 'hello', code: 4400, reason: /text frames/ },
  { name: 'a message over maxMessageBytes', frame: () => encodeFrame({ type: 'sync-update', update: validUpdate('y'.repeat(MAX_MESSAGE_BYTES)) }), code: 4413, reason: /limit is 4096 bytes/ },
]

function validUpdate (text: string): Uint8Array {
  const doc = new Y.Doc()
  doc.getText('t').insert(0, text)
  return Y.encodeStateAsUpdate(doc)
}

const snapshot = async (store: MemoryStore): Promise<string> =>
  JSON.stringify(await store.read(DOC), (_k, v: unknown) => v instanceof Uint8Array ? [...v] : v)

describe('malformed input', () => {
  let relay: Relay
  let store: MemoryStore
  let a: WebsocketProvider
  let b: WebsocketProvider

  beforeAll(async () => {
    store = new MemoryStore()
    relay = await startTestRelay({ store, config: { limits: { maxMessageBytes: MAX_MESSAGE_BYTES } } })
    a = connectProvider(relay.url, DOC)
    b = connectProvider(relay.url, DOC)
    await Promise.all([waitSynced(a), waitSynced(b)])
    a.doc.getText('t').insert(0, 'before;')
    await waitForText(b.doc, t => t.includes('before;'), 'b to see the first edit')
  })

  afterAll(async () => {
    destroyProvider(a)
    destroyProvider(b)
    await relay.close()
  })

  it('uses an invalid update that Yjs really refuses', () => {
    expect(() => validateUpdate(brokenUpdate())).toThrow(/not a valid Yjs update/)
  })

  it.each(CASES)('closes the socket of $name with its code; the relay and other clients go on', async ({ frame, code, reason }) => {
    const before = await snapshot(store)
    const ws = new WebSocket(`${relay.url}/${DOC}`)
    await nextEvent(ws, 'open', { what: 'the raw socket to open' })
    const closed = nextEvent<[number, Buffer]>(ws, 'close', { what: 'the relay to close the bad socket' })
    ws.send(frame())
    const [closeCode, closeReason] = await closed
    expect(closeCode).toBe(code)
    expect(closeReason.toString()).toMatch(reason)
    // Nothing of the message reached the store…
    expect(await snapshot(store)).toBe(before)
    // …and everyone else is still served.
    const health = await fetch(`${relay.url.replace('ws:', 'http:')}/healthz`)
    expect(health.status).toBe(200)
    const marker = `after ${code} ${Math.random()};`
    a.doc.getText('t').insert(0, marker)
    await waitForText(b.doc, t => t.includes(marker), 'b to see an edit made after the bad message')
    expect(b.doc.getText('t').toString()).not.toContain('never stored')
  })

  it('counts refused messages in the metrics', async () => {
    const metrics = await (await fetch(`${relay.url.replace('ws:', 'http:')}/metrics`)).text()
    expect(metrics).toMatch(/georelay_messages_rejected_total\{code="ERR_INVALID_UPDATE",region="test"\} 1/)
  })
})
