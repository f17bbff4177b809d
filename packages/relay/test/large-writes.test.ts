/**
 * A large paste or import is stored and replicated, not refused: through a stock
 * y-websocket provider, through the SDK, and across regions; and where a relay is configured to
 * refuse one, the SDK keeps it and says what to do instead of retrying forever.
 */
import { afterEach, describe, expect, it } from '@jest/globals'
import type { WebsocketProvider } from 'y-websocket'
import * as Y from 'yjs'
import { GeoClient, MemoryOfflineStore } from '@georelay/client'
import type { Relay } from '@georelay/relay'
import { TestCluster, connectProvider, destroyProvider, on, startTestRelay, waitSynced, waitUntil } from '@georelay/testkit'

/** Text that does not compress to nothing (a real paste is not one repeated character). */
const textOf = (bytes: number): string => {
  let out = ''
  let x = 1
  while (out.length < bytes) {
    x = (x * 1103515245 + 12345) % 2147483648
    out += `${x.toString(36)} `
  }
  return out.slice(0, bytes)
}

describe('large writes', () => {
  let relay: Relay | undefined
  let cluster: TestCluster | undefined
  const providers: WebsocketProvider[] = []
  const clients: GeoClient[] = []
  afterEach(async () => {
    for (const p of providers.splice(0)) destroyProvider(p)
    for (const c of clients.splice(0)) await c.close()
    await relay?.close()
    await cluster?.close()
    relay = undefined
    cluster = undefined
  })

  it('a stock y-websocket provider pasting 3 MB in one transaction has it stored; a second client reads it', async () => {
    relay = await startTestRelay()
    const writer = connectProvider(relay.url, 'paste/1')
    providers.push(writer)
    await waitSynced(writer)
    const paste = textOf(3 * 1024 * 1024)
    writer.doc.getText('t').insert(0, paste)
    const reader = connectProvider(relay.url, 'paste/1')
    providers.push(reader)
    await waitUntil([on(reader.doc, 'update'), on(reader, 'sync')], () => reader.doc.getText('t').length === paste.length, { what: 'the reader to get the paste', timeoutMs: 20_000 })
    expect(reader.doc.getText('t').toString()).toBe(paste)
    expect(writer.wsconnected).toBe(true)
  })

  it('sockets sending large messages at once draw on maxReceivingBytes in turn, and every message is stored', async () => {
    relay = await startTestRelay({ config: { limits: { maxReceivingBytes: 1024 * 1024 } } })
    const writers = [1, 2, 3].map(i => connectProvider((relay as Relay).url, `paste/many-${i}`))
    providers.push(...writers)
    await Promise.all(writers.map(w => waitSynced(w)))
    const pastes = writers.map((w, i) => {
      const paste = textOf(2 * 1024 * 1024 + i)
      w.doc.getText('t').insert(0, paste)
      return paste
    })
    const readers = writers.map((_, i) => connectProvider((relay as Relay).url, `paste/many-${i + 1}`))
    providers.push(...readers)
    await waitUntil(readers.flatMap(r => [on(r.doc, 'update'), on(r, 'sync')]), () => readers.every((r, i) => r.doc.getText('t').length === pastes[i]?.length), { what: 'every paste to be stored', timeoutMs: 30_000 })
    const metrics = await relay.metrics.getSingleMetricAsString('georelay_receiving_bytes')
    expect(metrics).toMatch(/georelay_receiving_bytes\{region="test"\} 0/)
  })

  it('a 10 MB paste through the SDK is acknowledged in every region and read there by a stock client', async () => {
    cluster = await TestCluster.start({ regions: ['a', 'b'], delayMs: () => 5 })
    const client = new GeoClient({ regions: [{ name: 'a', url: cluster.url('a') }], probeIntervalMs: 0 })
    clients.push(client)
    const doc = new Y.Doc()
    const session = client.open('paste/sdk', doc, { ack: 'all' })
    await session.synced
    const paste = textOf(10 * 1024 * 1024)
    doc.getText('t').insert(0, paste)
    await session.flush(60_000)
    const reader = connectProvider(cluster.url('b'), 'paste/sdk')
    providers.push(reader)
    await waitUntil([on(reader.doc, 'update'), on(reader, 'sync')], () => reader.doc.getText('t').length === paste.length, { what: 'region b to serve the paste', timeoutMs: 30_000 })
    expect(reader.doc.getText('t').toString()).toBe(paste)
  }, 90_000)

  it('an edit larger than the relay takes stays in the offline store, is not sent, and the session says what to do', async () => {
    relay = await startTestRelay({ config: { limits: { maxMessageBytes: 256 * 1024 } } })
    const store = new MemoryOfflineStore()
    const client = new GeoClient({ regions: [{ name: 'test', url: relay.url }], offline: store, probeIntervalMs: 0 })
    clients.push(client)
    const regionChanges: string[] = []
    client.on('region', change => regionChanges.push(change.reason))
    const doc = new Y.Doc()
    const session = client.open('paste/too-big', doc)
    await session.synced
    const errors: (Error & { code: number })[] = []
    session.on('error', e => errors.push(e))
    const acks: number[] = []
    session.on('ack', writeId => acks.push(writeId))
    doc.getText('t').insert(0, textOf(400 * 1024))
    await waitUntil([on(session, 'error')], () => errors.length > 0, { what: 'the session to report the edit' })
    expect(errors[0]?.code).toBe(4413)
    expect(errors[0]?.message).toMatch(/is 400 KB, more than the 256 KB the relay takes in one message \(its limits\.maxMessageBytes\): it is kept in this client's offline store/)
    // A small edit after it is stored, but does not let the large one be forgotten.
    doc.getText('t').insert(0, 'small ')
    await waitUntil([on(session, 'ack')], () => acks.length > 0, { what: 'the small edit to be acknowledged' })
    expect(session.status).toBe('pending')
    expect(session.pendingWrites).toBeGreaterThanOrEqual(1)
    expect((await store.load('paste/too-big')).some(w => w.update.length > 256 * 1024)).toBe(true)
    await expect(session.flush(300)).rejects.toThrow(/timed out after 300 ms: 1 edit is larger than the relay takes in one message \(the 4413 error\): kept here, not sent/)
    // The socket was never closed for it: no reconnect loop.
    expect(regionChanges).toEqual(['initial'])
    expect(errors).toHaveLength(1)
  })
})
