/**
 * Residency against hostile input: names that escape line-based matching, peers asking about
 * documents they may not have, and frames that arrive after a redirect. The broad residency
 * test (residency.test.ts) covers what honest traffic does.
 */
import { afterEach, describe, expect, it } from '@jest/globals'
import WebSocket from 'ws'
import * as Y from 'yjs'
import {
  type MuxMessage, type PeerMessage, canonicalRules, decodeMuxMessage, decodePeerMessage, encodeFrame, encodeMuxMessage,
  encodePeerMessage,
} from '@georelay/core'
import { streamLogger } from '@georelay/relay'
import {
  TEST_MESH_SECRET, TestCluster, connectProvider, destroyProvider, every, nextEvent, on, rawWebSocket, recordingSocket,
  waitSynced, waitUntil,
} from '@georelay/testkit'

const RULES = [{ match: 'eu/**', regions: ['eu-west', 'eu-central'] }]
const SEPARATOR_NAME = 'eu/patients/\u2028' + '42'

const updateOf = (text: string): Uint8Array => {
  const doc = new Y.Doc()
  doc.getText('t').insert(0, text)
  return Y.encodeStateAsUpdate(doc)
}

/** A fake peer: dials `url` as `region` with the mesh secret, and records what it is sent. */
const fakePeer = async (
  url: string,
  region: string,
): Promise<{ ws: WebSocket, received: PeerMessage[], closed: Promise<number> }> => {
  const ws = new WebSocket(`${url}/v1/peer`, { headers: { authorization: `Bearer ${TEST_MESH_SECRET}`, 'x-georelay-region': region } })
  const received: PeerMessage[] = []
  ws.on('message', (data: Buffer) => received.push(decodePeerMessage(new Uint8Array(data))))
  const closed = nextEvent<[number]>(ws, 'close', { what: 'the fake peer to close', timeoutMs: 20_000 }).then(([code]) => code)
  closed.catch(() => {})
  await nextEvent(ws, 'open', { what: 'the fake peer to connect' })
  ws.send(encodePeerMessage({ type: 'policy', rules: canonicalRules(RULES) }))
  return { ws, received, closed }
}

describe('residency against hostile input', () => {
  let cluster: TestCluster
  const logs = new Map<string, string[]>()
  const sockets: WebSocket[] = []
  afterEach(async () => {
    for (const ws of sockets.splice(0)) ws.terminate()
    await cluster?.close()
    logs.clear()
  })
  const start = async (): Promise<void> => {
    cluster = await TestCluster.start({
      regions: ['us-east', 'eu-west', 'eu-central'],
      config: { namespaces: RULES },
      logger: region => streamLogger(line => { logs.set(region, [...(logs.get(region) ?? []), line]) }, 'debug'),
    })
  }

  it('a name with a Unicode line separator is refused on every endpoint, and never stored outside its regions', async () => {
    await start()
    for (const region of ['us-east', 'eu-west']) {
      const raw = await rawWebSocket(`${cluster.url(region)}/${encodeURIComponent(SEPARATOR_NAME)}`)
      expect(await raw.closeFrame).toEqual({ code: 4400, reason: expect.stringContaining('holds U+2028') })
      raw.destroy()
      const mux = recordingSocket(`${cluster.url(region)}/v1/mux`)
      sockets.push(mux.ws)
      await nextEvent(mux.ws, 'open', { what: 'the mux socket' })
      mux.ws.send(encodeMuxMessage({ type: 'open', docId: 1, docName: SEPARATOR_NAME, ack: 'local' }))
      mux.ws.send(encodeMuxMessage({ type: 'write', docId: 1, writeId: 1, update: updateOf('secret') }))
      const muxed = (): MuxMessage[] => mux.frames.map(f => decodeMuxMessage(f))
      await waitUntil([on(mux.ws, 'message')], () => muxed().some(m => m.type === 'error'), { what: 'the mux refusal' })
      expect(muxed().find(m => m.type === 'error')).toMatchObject({ docId: 1, code: 4400, reason: expect.stringContaining('holds U+2028') })
    }
    // From a peer too: the inbound link is closed as malformed, nothing stored. The region the
    // fake peer claims to be is stopped first: its real relay, redialling, would replace the
    // fake's link (a newer link from a region wins) and end it with 1006 before the 4400.
    await cluster.stopRegion('eu-west')
    const peer = await fakePeer(cluster.url('us-east'), 'eu-west')
    peer.ws.send(encodePeerMessage({ type: 'batch', entries: [{ docName: SEPARATOR_NAME, origin: 'eu-west', originSeq: 1, update: updateOf('secret') }], upTo: { 'eu-west': 1 } }))
    expect(await peer.closed).toBe(4400)
    expect(await cluster.store('us-east').listDocs()).not.toContain(SEPARATOR_NAME)
  })

  it('a peer asking for state vectors of documents it may not hold gets none', async () => {
    await start()
    const writer = connectProvider(cluster.url('eu-west'), 'eu/patients/7')
    await waitSynced(writer)
    writer.doc.getText('t').insert(0, 'kept in the EU')
    await waitUntil([every(100)], async () => (await cluster.store('eu-west').listDocs()).includes('eu/patients/7'), { what: 'the document to be stored' })
    destroyProvider(writer)
    // us-east holds the secret, but the document may never reach it. (Its real relay is stopped
    // so that it does not replace the fake's link.)
    await cluster.stopRegion('us-east')
    const peer = await fakePeer(cluster.url('eu-west'), 'us-east')
    peer.ws.send(encodePeerMessage({ type: 'sv-request', docNames: ['eu/patients/7', 'shared/1'] }))
    await waitUntil([on(peer.ws, 'message')], () => peer.received.some(m => m.type === 'sv-reply'), { what: 'the reply' })
    const reply = peer.received.find(m => m.type === 'sv-reply') as { docs: { docName: string }[] }
    expect(reply.docs.map(d => d.docName)).toEqual(['shared/1'])
    peer.ws.terminate()
  })

  it('frames that arrive after a residency redirect are not handled, and the restricted name is never logged there', async () => {
    await start()
    const raw = await rawWebSocket(`${cluster.url('us-east')}/${encodeURIComponent('eu/patients/42')}`)
    const closed = await raw.closeFrame
    expect(closed.code).toBe(4307)
    // The client goes on sending, malformed frames among them, before it has read the close.
    raw.send(encodeFrame({ type: 'sync-update', update: updateOf('leak?') }))
    raw.send(new Uint8Array([9, 9, 9]))
    await raw.ended
    const usLog = (logs.get('us-east') ?? []).join('\n')
    expect(usLog).not.toContain('eu/patients/42')
    expect(usLog).not.toContain('eu%2Fpatients')
    expect(await cluster.store('us-east').listDocs()).toEqual([])
  })
})
