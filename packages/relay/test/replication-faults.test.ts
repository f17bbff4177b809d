import { afterEach, describe, expect, it } from '@jest/globals'
import WebSocket from 'ws'
import * as Y from 'yjs'
import { MemoryStore, type Origin, StoreError } from '@georelay/core'
import { freePorts } from '@georelay/cluster'
import { Relay, parseRelayConfig, silentLogger } from '@georelay/relay'
import { nextEvent, on, waitUntil } from '@georelay/testkit'

/** A store that refuses exactly one append of a replicated entry, like a transient disk error. */
class FlakyStore extends MemoryStore {
  failed = false
  override append (docName: string, update: Uint8Array, origin?: Origin): Promise<number> {
    if (origin !== undefined && !this.failed) {
      this.failed = true
      return Promise.reject(new StoreError('ERR_STORE_IO', 'transient write error'))
    }
    return super.append(docName, update, origin)
  }
}

const relays: Relay[] = []
afterEach(async () => { for (const r of relays.splice(0)) await r.close() })

const start = async (
  region: string,
  port: number,
  peer: string,
  peerPort: number,
  store: MemoryStore,
): Promise<Relay> => {
  const relay = await Relay.start({
    config: parseRelayConfig({ region, store: 'memory', meshSecret: 'x'.repeat(32), listen: { port }, peers: [{ region: peer, url: `ws://127.0.0.1:${peerPort}` }], replication: { heartbeatMs: 200, linkTimeoutMs: 1000 }, auth: { anonymous: 'rw' } }),
    store,
    logger: silentLogger,
  })
  relays.push(relay)
  return relay
}

describe('replication under faults', () => {
  it('a replicated append that fails is sent again: no hole behind the marks', async () => {
    const [pa, pb] = await freePorts(2) as [number, number]
    // No compaction on a: b must get a's entries as replicated appends, not as a catch-up.
    const storeA = new MemoryStore({ compaction: { updates: 1e9, bytes: 1e12 } })
    // 2000 entries in a's log before anything starts: many batches in flight when the link
    // comes up, so later ones arrive after the failure.
    const doc = new Y.Doc()
    const text = doc.getText('t')
    for (let i = 0; i < 2000; i++) {
      const before = Y.encodeStateVector(doc)
      text.insert(text.length, 'x')
      await storeA.append('d', Y.encodeStateAsUpdate(doc, before))
    }
    const a = await start('a', pa, 'b', pb, storeA)
    const store = new FlakyStore()
    await start('b', pb, 'a', pa, store)
    // b acknowledges to a; each acknowledgement may be the one that covers everything.
    await waitUntil([on(a, 'peers')], async () => ((await store.readHave()).a ?? 0) >= 2000, { what: 'b to hold all of a', timeoutMs: 20_000 })
    expect(store.failed).toBe(true)
    const stored = await store.read('d')
    const replica = new Y.Doc()
    for (const update of [...(stored.snapshot === null ? [] : [stored.snapshot]), ...stored.log.map(e => e.update)]) {
      Y.applyUpdate(replica, update)
    }
    expect(replica.store.pendingStructs).toBeNull()
    expect(replica.getText('t').length).toBe(2000)
  })

  it('a protocol violation on a peer socket does not take the relay down', async () => {
    const [pa, pb] = await freePorts(2) as [number, number]
    const a = await start('a', pa, 'b', pb, new MemoryStore())
    const ws = new WebSocket(`${a.url}/v1/peer`, { headers: { authorization: `Bearer ${'x'.repeat(32)}`, 'x-georelay-region': 'b' } })
    await nextEvent(ws, 'open', { what: 'the upgrade' })
    // An unmasked client frame breaks RFC 6455; ws reports it as an 'error' on the relay's side.
    const raw = (ws as unknown as { _socket: import('node:net').Socket })._socket
    const closed = nextEvent(ws, 'close', { what: 'the relay to drop the socket' })
    raw.write(Buffer.from([0x82, 0x01, 0x00]))
    await closed
    const health = await fetch(`${a.url.replace('ws:', 'http:')}/healthz`)
    expect(health.status).toBe(200)
  })
})
