import { describe, expect, it } from '@jest/globals'
import fc from 'fast-check'
import {
  type BatchEntry, CompactBatchReader, CompactBatchWriter, MAX_LINK_NAMES, type PeerMessage, decodePeerMessage,
  encodePeerMessage,
} from '@georelay/core'

type BatchMessage = Extract<PeerMessage, { type: 'batch' }>

const entry = (docName: string, originSeq: number, origin = 'eu-west'): BatchEntry =>
  ({ docName, origin, originSeq, update: Uint8Array.of(1, 1, originSeq % 250, 0) })

const batch = (entries: BatchEntry[], upTo = entries.at(-1)?.originSeq ?? 0, origin = 'eu-west'): BatchMessage =>
  ({ type: 'batch', entries, upTo: { [origin]: upTo } })

/** One link: what the writer's end sends, read back by the reader's end, in order. */
const link = () => {
  const writer = new CompactBatchWriter()
  const reader = new CompactBatchReader()
  return {
    send: (message: PeerMessage): { frame: Uint8Array, read: PeerMessage } => {
      const frame = encodePeerMessage(message, writer)
      return { frame, read: decodePeerMessage(frame, reader) }
    },
  }
}

describe('compact batches on a link', () => {
  it('read back as the batches that were sent: names once, numbers as differences', () => {
    const { send } = link()
    const sent = [
      batch([entry('notes/1', 5), entry('notes/2', 9)]),
      batch([entry('notes/2', 12), entry('notes/3', 13)], 20),
      batch([], 25), // a claim alone: everything up to 25 was folded or not for this peer
      batch([entry('notes/1', 26)]),
    ]
    for (const message of sent) expect(send(message).read).toEqual(message)
  })

  it('cost less than plain batches once the link has named a document', () => {
    const { send } = link()
    send(batch([entry('workspace/7f3a9c/notes/quarterly-plan', 100_000)]))
    const { frame } = send(batch([entry('workspace/7f3a9c/notes/quarterly-plan', 100_001)]))
    const plain = encodePeerMessage(batch([entry('workspace/7f3a9c/notes/quarterly-plan', 100_001)]))
    // The name (38 bytes), the origin and two 3-byte numbers shrink to a byte each.
    expect(frame.length).toBeLessThan(plain.length - 40)
  })

  it('go plain when the form cannot hold them, and leave both ends in step', () => {
    const { send } = link()
    send(batch([entry('a', 1)]))
    // Several origins in one batch (no pump sends that, but a batch may hold it).
    const mixed: BatchMessage = { type: 'batch', entries: [entry('a', 2), entry('b', 3, 'us-east')], upTo: { 'eu-west': 2, 'us-east': 3 } }
    const plain = send(mixed)
    expect(plain.frame[0]).toBe(1) // the plain batch's number
    expect(plain.read).toEqual(mixed)
    // Numbers going down: plain too.
    expect(send(batch([entry('a', 0)])).frame[0]).toBe(1)
    const next = batch([entry('a', 4), entry('c', 5)])
    expect(send(next).read).toEqual(next)
  })

  it('are refused where the link never named the document, and without the link state', () => {
    const writer = new CompactBatchWriter()
    writer.encode(batch([entry('a', 1)]))
    const second = encodePeerMessage(batch([entry('a', 2)]), writer)
    // A reader that missed the first frame (a new connection) cannot know document 1.
    expect(() => decodePeerMessage(second, new CompactBatchReader())).toThrow(/document number 1 was never named on this link \(0 are\)/)
    expect(() => decodePeerMessage(second)).toThrow(/unknown peer message type 15/)
  })

  it('name at most MAX_LINK_NAMES documents, then write names out, on both ends alike', () => {
    const { send } = link()
    const many = Array.from({ length: MAX_LINK_NAMES + 3 }, (_, i) => entry(`d/${i}`, i + 1))
    expect(send(batch(many)).read).toEqual(batch(many))
    const again = batch([entry(`d/${MAX_LINK_NAMES + 1}`, MAX_LINK_NAMES + 10), entry('d/0', MAX_LINK_NAMES + 11)])
    const { frame, read } = send(again)
    expect(read).toEqual(again)
    expect(Buffer.from(frame).includes(Buffer.from(`d/${MAX_LINK_NAMES + 1}`))).toBe(true)
  })

  it('round-trip any sequence of batches of one origin', () => {
    const entriesOf = fc.array(fc.record({ doc: fc.string({ maxLength: 6 }), step: fc.nat(1000) }), { maxLength: 8 })
    const batchesOf = fc.array(fc.record({ entries: entriesOf, extra: fc.nat(50) }), { maxLength: 12 })
    fc.assert(fc.property(batchesOf, batches => {
      const { send } = link()
      let seq = 0
      for (const b of batches) {
        const entries = b.entries.map(e => entry(e.doc, seq += e.step))
        const message = batch(entries, seq += b.extra)
        expect(send(message).read).toEqual(message)
      }
    }), { numRuns: 300 })
  })
})
