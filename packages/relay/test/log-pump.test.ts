import { EventEmitter } from 'node:events'
import { describe, expect, it } from '@jest/globals'
import * as Y from 'yjs'
import { MemoryStore, type PeerMessage } from '@georelay/core'
import { on, waitUntil } from '@georelay/testkit'
import { LogPump, MAX_BATCH_BYTES, WINDOW } from '../src/mesh/log-pump.js'
import { ReplicationLog } from '../src/replication/index.js'

const edit = (doc: Y.Doc, text: string): Uint8Array => {
  const before = Y.encodeStateVector(doc)
  doc.getText('t').insert(doc.getText('t').length, text)
  return Y.encodeStateAsUpdate(doc, before)
}

type Batch = PeerMessage & { type: 'batch' }

/** A pump on a real log over a memory store, sending into an array. */
const setup = async ({ mayReceive = () => true, compaction }: {
  mayReceive?: (doc: string) => boolean
  compaction?: { updates: number, bytes: number }
} = {}) => {
  const store = new MemoryStore(compaction === undefined ? {} : { compaction })
  const log = await ReplicationLog.open('a', store)
  const events = new EventEmitter()
  const sent: PeerMessage[] = []
  const catchUps: [string, number][] = []
  let up = true
  const pump = new LogPump({
    up: () => up,
    send: message => {
      if (!up) return false
      sent.push(message)
      events.emit('sent')
      return true
    },
    catchUp: async (origin, after) => { catchUps.push([origin, after]) },
    failed: err => { throw err },
  }, { read: (origin, after, limit) => log.read(origin, after, limit), origins: () => ['a'], mayReceive, batchWindowMs: 0 })
  const batches = (): Batch[] => sent.filter((m): m is Batch => m.type === 'batch')
  const sentOnce = (what: string, check: () => boolean) => waitUntil([on(events, 'sent')], check, { what })
  return { store, log, pump, sent, batches, catchUps, sentOnce, setUp: (value: boolean) => { up = value } }
}

describe('LogPump', () => {
  it('streams entries after the peer\'s marks, merged per document, each batch claiming its last entry', async () => {
    const { log, pump, batches, sentOnce } = await setup()
    const [x, y] = [new Y.Doc(), new Y.Doc()]
    for (let i = 0; i < 3; i++) await log.appendLocal('x', edit(x, `x${i}`))
    await log.appendLocal('y', edit(y, 'y0'))
    pump.start({ a: 1 }) // the peer holds entry 1 already
    await sentOnce('a batch', () => batches().length > 0)
    const [batch] = batches()
    expect(batch?.upTo).toEqual({ a: 4 })
    // x's entries 2 and 3 merged into one update; the receiver relies on ascending numbers.
    expect(batch?.entries.map(e => [e.docName, e.originSeq])).toEqual([['x', 3], ['y', 4]])
    const replica = new Y.Doc()
    Y.applyUpdate(replica, Y.encodeStateAsUpdate(new Y.Doc()))
    Y.applyUpdate(replica, (batch?.entries[0] as { update: Uint8Array }).update)
    expect(replica.store.pendingStructs).not.toBeNull() // x1 (entry 1) is missing: the peer has it
  })

  it(`keeps at most ${WINDOW} batches unacknowledged, and goes on as acknowledgements come`, async () => {
    const { log, pump, batches, sentOnce } = await setup()
    const doc = new Y.Doc()
    // One entry too large to share a batch with the next: one batch per entry.
    const big = 'z'.repeat(MAX_BATCH_BYTES)
    for (let i = 0; i < WINDOW + 5; i++) await log.appendLocal(`d${i}`, edit(doc, big))
    pump.start({})
    await sentOnce(`${WINDOW} batches`, () => batches().length === WINDOW)
    pump.acknowledge({ a: 1 })
    await sentOnce('one more after an ack', () => batches().length === WINDOW + 1)
    expect(batches().map(b => b.upTo.a)).toEqual(Array.from({ length: WINDOW + 1 }, (_, i) => i + 1))
  })

  it('leaves out documents the peer may not hold, and still claims past them', async () => {
    const { log, pump, batches, sentOnce } = await setup({ mayReceive: doc => !doc.startsWith('eu/') })
    const [eu, shared] = [new Y.Doc(), new Y.Doc()]
    await log.appendLocal('eu/1', edit(eu, 'secret'))
    await log.appendLocal('shared', edit(shared, 'open'))
    await log.appendLocal('eu/1', edit(eu, 'more'))
    pump.start({})
    await sentOnce('a batch', () => batches().length > 0)
    expect(batches()[0]).toEqual({ type: 'batch', entries: [expect.objectContaining({ docName: 'shared', originSeq: 2 })], upTo: { a: 3 } })
  })

  it('catches up by state vector once per compaction that passed the peer\'s mark, then claims the folded entries', async () => {
    const { store, log, pump, batches, catchUps, sentOnce } = await setup({ compaction: { updates: 1e9, bytes: 1e12 } })
    const doc = new Y.Doc()
    for (let i = 0; i < 5; i++) await log.appendLocal('doc', edit(doc, `e${i}`))
    await store.compact('doc')
    pump.start({ a: 2 })
    await sentOnce('the folded claim', () => batches().length > 0)
    expect(catchUps).toEqual([['a', 2]])
    expect(batches()).toEqual([{ type: 'batch', entries: [], upTo: { a: 5 } }])
  })

  it('starts over from the acknowledged marks after the link dropped: what was in flight is sent again', async () => {
    const { log, pump, batches, sentOnce, setUp } = await setup()
    const doc = new Y.Doc()
    await log.appendLocal('doc', edit(doc, 'one'))
    pump.start({})
    await sentOnce('the first batch', () => batches().length === 1)
    setUp(false)
    pump.stop()
    setUp(true)
    pump.start({}) // the peer never acknowledged it
    await sentOnce('the batch again', () => batches().length === 2)
    expect(batches()[1]).toEqual(batches()[0])
  })
})
