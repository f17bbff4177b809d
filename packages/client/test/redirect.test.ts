import { afterEach, describe, expect, it } from '@jest/globals'
import { WebSocketServer } from 'ws'
import * as Y from 'yjs'
import { MUX_PROTOCOL_VERSION, decodeMuxMessage, encodeMuxMessage } from '@georelay/core'
import { GeoClient, type RegionChange } from '@georelay/client'
import type { Relay } from '@georelay/relay'
import { nextEvent, on, startTestRelay, waitUntil } from '@georelay/testkit'

/**
 * A stand-in for a relay of a region that does not hold the client's documents: it welcomes
 * the client, then either sends a `redirect` for the first document opened or closes with 4307.
 */
const startRedirector = async (target: () => string, how: 'message' | 'close') => {
  const server = new WebSocketServer({ host: '127.0.0.1', port: 0 })
  await nextEvent(server, 'listening', { what: 'the redirector to listen' })
  server.on('connection', ws => {
    ws.send(encodeMuxMessage({ type: 'welcome', version: MUX_PROTOCOL_VERSION, region: 'us-east', regions: [], maxMessageBytes: 1 << 20 }))
    ws.on('message', (data: Buffer) => {
      const message = decodeMuxMessage(new Uint8Array(data))
      if (message.type !== 'open') return
      if (how === 'message') ws.send(encodeMuxMessage({ type: 'redirect', docId: message.docId, region: 'eu-west', url: target() }))
      else ws.close(4307, `eu-west ${target()}`)
    })
  })
  server.on('headers', () => {})
  const { port } = server.address() as { port: number }
  return { server, url: `ws://127.0.0.1:${port}` }
}

describe('redirects', () => {
  let relay: Relay
  const closers: (() => Promise<unknown>)[] = []
  afterEach(async () => {
    for (const close of closers.splice(0).reverse()) await close()
    await relay.close()
  })

  it.each(['message', 'close'] as const)('a redirect (%s) moves the client to the region named, and its documents sync there', async how => {
    relay = await startTestRelay({ config: { region: 'eu-west' } })
    const redirector = await startRedirector(() => relay.url, how)
    closers.push(() => new Promise(resolve => redirector.server.close(resolve)))
    // The client knows only the redirector at first, as a client near us-east would.
    const client = new GeoClient({ regions: [{ name: 'us-east', url: redirector.url }], probeIntervalMs: 0, fetch: async () => ({ ok: true, text: async () => '' }) })
    closers.push(() => client.close())
    const changes: RegionChange[] = []
    client.on('region', change => { changes.push(change) })
    const doc = new Y.Doc()
    const session = client.open('eu/notes/1', doc)
    await session.synced
    await waitUntil([on(client, 'region')], () => client.region === 'eu-west', { what: 'the client to land in eu-west' })
    doc.getText('t').insert(0, 'stored in eu-west')
    await session.flush(5000)
    expect(changes.map(c => `${c.reason}:${c.region}`)).toEqual(['initial:us-east', 'redirect:eu-west'])
  })
})
