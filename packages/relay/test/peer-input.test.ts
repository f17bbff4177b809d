import { afterEach, describe, expect, it } from '@jest/globals'
import WebSocket from 'ws'
import * as Y from 'yjs'
import { type PeerMessage, decodePeerMessage, encodePeerMessage } from '@georelay/core'
import type { Relay } from '@georelay/relay'
import { nextEvent, startTestRelay, storeOf } from '@georelay/testkit'

const SECRET = 'peer-input-secret-of-at-least-32-bytes'
const good = (): Uint8Array => {
  const doc = new Y.Doc()
  doc.getText('t').insert(0, 'hello')
  return Y.encodeStateAsUpdate(doc)
}

/** Found by the relay fuzzer: contents a peer must not get stored, and frames of the wrong kind. */
describe('what a peer sends is checked before anything is stored', () => {
  let relay: Relay
  afterEach(async () => { await relay?.close() })

  const send = async (frame: Uint8Array | string): Promise<{ code: number, reason: string, replies: string[] }> => {
    relay = await startTestRelay({ config: { meshSecret: SECRET, peers: [{ region: 'p', url: 'ws://127.0.0.1:9' }] } })
    const ws = new WebSocket(`${relay.url}/v1/peer`, { headers: { authorization: `Bearer ${SECRET}`, 'x-georelay-region': 'p' } })
    const replies: string[] = []
    ws.on('message', (data: Buffer) => { replies.push(decodePeerMessage(new Uint8Array(data)).type) })
    await nextEvent(ws, 'open', { what: 'the peer link to open' })
    ws.send(frame, { binary: typeof frame !== 'string' })
    const [code, reason] = await nextEvent(ws, 'close', { what: 'the relay to close the link' }) as [number, Buffer]
    return { code, reason: String(reason), replies }
  }
  const batch = (
    entries: { docName: string, origin: string, originSeq: number, update: Uint8Array }[],
    upTo: Record<string, number>,
  ): Uint8Array =>
    encodePeerMessage({ type: 'batch', entries, upTo } satisfies PeerMessage)

  it.each([
    ['an update that is not a valid Yjs update', () => batch([{ docName: 'peer/bad', origin: 'p', originSeq: 1, update: good().slice(0, -4) }], { p: 1 }), /not a valid Yjs update/],
    ['an empty origin (the store\'s name for local writes)', () => batch([{ docName: 'peer/x', origin: '', originSeq: 1, update: good() }], { '': 900 }), /empty region name/],
    ['a catch-up that is not a valid update', () => encodePeerMessage({ type: 'catch-up', docName: 'peer/bad', update: new Uint8Array([1, 2, 3]) }), /not a valid Yjs update/],
  ])('%s closes the link with 4400 and stores nothing', async (_what, frame, words) => {
    const { code, reason, replies } = await send(frame())
    expect(code).toBe(4400)
    expect(reason).toMatch(words)
    expect(replies).not.toContain('ack')
    expect(await storeOf(relay).listDocs()).toEqual([])
    expect(await storeOf(relay).readHave()).toEqual({})
  })

  it('a text frame closes the link with 4400', async () => {
    const { code } = await send('{"type":"batch"}')
    expect(code).toBe(4400)
  })
})
