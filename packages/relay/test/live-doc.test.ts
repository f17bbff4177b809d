import { describe, expect, it } from '@jest/globals'
import * as Y from 'yjs'
import { MemoryStore, decodeFrame } from '@georelay/core'
import { type DocClient, LiveDoc } from '../src/docs/live-doc.js'
import { createRelayMetrics } from '../src/observability/index.js'
import { ReplicationLog } from '../src/replication/index.js'

const edits = (n: number): { doc: Y.Doc, updates: Uint8Array[] } => {
  const doc = new Y.Doc()
  const updates: Uint8Array[] = []
  doc.on('update', (u: Uint8Array) => updates.push(u))
  for (let i = 0; i < n; i++) doc.getText('t').insert((i * 31) % (doc.getText('t').length + 1), String.fromCharCode(97 + (i % 26)))
  return { doc, updates }
}

const open = async (options: { maxBytes?: number, fanoutWindowMs?: number } = {}) => {
  const log = await ReplicationLog.open('here', new MemoryStore())
  return new LiveDoc('d', new Uint8Array([0, 0]), { log, metrics: createRelayMetrics('here'), ...options })
}

const client = (id: number): DocClient & { frames: Uint8Array[] } => {
  const frames: Uint8Array[] = []
  return { id, frames, send: f => frames.push(f) }
}

describe('LiveDoc', () => {
  it('holds the exact state across its merge tiers (single updates, merged chunks, the base)', async () => {
    const live = await open()
    const { doc, updates } = edits(64 * 33 + 7) // past MAX_UNMERGED, and past MAX_CHUNKS chunks of them
    updates.forEach((update, i) => {
      live.applyDurable(update, null)
      if (i === 63 || i === 64 || i === 64 * 32 || i === updates.length - 1) {
        const replica = new Y.Doc()
        Y.applyUpdate(replica, live.state())
        const expected = new Y.Doc()
        for (const u of updates.slice(0, i + 1)) Y.applyUpdate(expected, u)
        expect(replica.getText('t').toString()).toBe(expected.getText('t').toString())
        expect(Y.encodeStateVector(replica)).toEqual(live.stateVector())
      }
    })
    expect(doc.getText('t').length).toBe(updates.length)
    live.destroy()
  })

  it('refuses a client write that would grow it past maxBytes, counting writes in flight', async () => {
    const live = await open({ maxBytes: 2000 })
    const { updates } = edits(1)
    const big = new Uint8Array(Y.encodeStateAsUpdate((() => { const d = new Y.Doc(); d.getText('t').insert(0, 'x'.repeat(1500)); return d })()))
    await live.write(updates[0] as Uint8Array, null)
    const first = live.write(big, null)
    await expect(live.write(big, null)).rejects.toMatchObject({ code: 'ERR_DOC_TOO_LARGE', closeCode: 4413 })
    await first
    live.destroy()
  })

  it('sends what became durable together as one merged frame, not back to a lone sender', async () => {
    const live = await open({ fanoutWindowMs: 0 })
    const [writer, reader] = [client(1), client(2)]
    live.clients.add(writer)
    live.clients.add(reader)
    const { updates } = edits(10)
    for (const update of updates) live.applyDurable(update, writer)
    await new Promise(resolve => setImmediate(resolve))
    expect(writer.frames).toEqual([])
    expect(reader.frames).toHaveLength(1)
    const [message] = decodeFrame(reader.frames[0] as Uint8Array)
    const replica = new Y.Doc()
    Y.applyUpdate(replica, (message as { update: Uint8Array }).update)
    expect(replica.getText('t').length).toBe(10)
    live.destroy()
  })
})
