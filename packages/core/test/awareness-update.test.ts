import { describe, expect, it } from '@jest/globals'
import * as encoding from 'lib0/encoding'
import { Awareness, encodeAwarenessUpdate, removeAwarenessStates } from 'y-protocols/awareness'
import * as Y from 'yjs'
import { ProtocolError, readAwarenessUpdate } from '@georelay/core'

const frameOf = (write: (encoder: encoding.Encoder) => void) => {
  const encoder = encoding.createEncoder()
  write(encoder)
  return encoding.toUint8Array(encoder)
}

/** One entry: client 7, clock 1, then `state` as the raw bytes of its varString. */
const entry = (state: Uint8Array, count = 1) => frameOf(e => {
  encoding.writeVarUint(e, count)
  encoding.writeVarUint(e, 7)
  encoding.writeVarUint(e, 1)
  encoding.writeVarUint8Array(e, state)
})

describe('readAwarenessUpdate', () => {
  it('reads what y-protocols writes, including clients that left', () => {
    const doc = new Y.Doc()
    const awareness = new Awareness(doc)
    try {
      awareness.setLocalState({ user: { name: 'Ann' }, cursor: 3 })
      const clock = () => (awareness.meta.get(doc.clientID) as { clock: number }).clock
      expect(readAwarenessUpdate(encodeAwarenessUpdate(awareness, [doc.clientID]))).toEqual([
        { clientID: doc.clientID, clock: clock(), state: { user: { name: 'Ann' }, cursor: 3 }, bytes: JSON.stringify({ user: { name: 'Ann' }, cursor: 3 }).length },
      ])
      removeAwarenessStates(awareness, [doc.clientID], 'test')
      expect(readAwarenessUpdate(encodeAwarenessUpdate(awareness, [doc.clientID]))).toEqual([
        { clientID: doc.clientID, clock: clock(), state: null, bytes: 4 },
      ])
    } finally {
      awareness.destroy()
    }
  })

  it.each([
    ['no bytes', new Uint8Array(0)],
    ['a count with no entries', new Uint8Array([1])],
    ['a state longer than the update', entry(new TextEncoder().encode('{}')).slice(0, -1)],
    ['a state that is not JSON', entry(new TextEncoder().encode('{nope'))],
    ['a state that is not UTF-8', entry(new Uint8Array([0x22, 0xc3, 0x28, 0x22]))],
    ['bytes after the last entry', new Uint8Array([...entry(new TextEncoder().encode('{}')), 0])],
  ])('refuses %s with ERR_INVALID_AWARENESS', (_, update) => {
    let err: unknown
    try {
      readAwarenessUpdate(update)
    } catch (e) {
      err = e
    }
    expect(err).toBeInstanceOf(ProtocolError)
    expect(err).toMatchObject({ code: 'ERR_INVALID_AWARENESS', closeCode: 4400 })
  })
})
