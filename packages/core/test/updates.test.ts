import { describe, expect, it } from '@jest/globals'
import * as Y from 'yjs'
import {
  CloseCode, diffUpdate, EMPTY_UPDATE, isEmptyUpdate, MERGE_BATCH, mergeUpdates, mergeUpdatesInBatches, ProtocolError,
  stateVectorOf, validateStateVector, validateUpdate,
} from '@georelay/core'
import { contentOfUpdates, typedUpdates } from '@georelay/core/testing'

const expectProtocolError = (run: () => void, code: string) => {
  let err: unknown
  try {
    run()
  } catch (e) {
    err = e
  }
  expect(err).toBeInstanceOf(ProtocolError)
  expect(err).toMatchObject({ code, closeCode: CloseCode.MalformedMessage })
}

const helloDoc = () => {
  const doc = new Y.Doc()
  doc.getText('t').insert(0, 'hello')
  return doc
}

describe('validateUpdate', () => {
  it('accepts updates that Yjs writes', () => {
    const { updates, doc } = typedUpdates(30)
    for (const update of [...updates, Y.encodeStateAsUpdate(doc), Y.mergeUpdates(updates), EMPTY_UPDATE]) {
      expect(() => validateUpdate(update)).not.toThrow()
    }
  })

  // Only inputs checked to make Yjs throw: some random bytes do decode as an update.
  const full = Y.encodeStateAsUpdate(helloDoc())
  it.each([
    ['no bytes', new Uint8Array(0)],
    ['one 0xff byte', new Uint8Array([0xff])],
    ['a varint beyond 2^53', new Uint8Array(8).fill(0xff)],
    ['a real update cut short', full.slice(0, full.length - 3)],
    ['UTF-8 text', new TextEncoder().encode('hello world')],
    ['JSON', new TextEncoder().encode('{"a":1}')],
  ])('refuses %s with ERR_INVALID_UPDATE', (_, garbage) => {
    expectProtocolError(() => validateUpdate(garbage), 'ERR_INVALID_UPDATE')
  })
})

describe('validateStateVector', () => {
  it('accepts state vectors that Yjs writes', () => {
    expect(() => validateStateVector(Y.encodeStateVector(helloDoc()))).not.toThrow()
    expect(() => validateStateVector(Y.encodeStateVector(new Y.Doc()))).not.toThrow()
  })

  it.each([[[]], [[0x80]], [[1]], [[2, 1, 1]]])('refuses %j with ERR_INVALID_STATE_VECTOR', bytes => {
    expectProtocolError(() => validateStateVector(new Uint8Array(bytes)), 'ERR_INVALID_STATE_VECTOR')
  })
})

describe('merging', () => {
  const { updates, doc } = typedUpdates(250)
  const other = typedUpdates(20, 2).updates
  const all = [...updates, ...other]

  it('mergeUpdatesInBatches gives the content of Y.mergeUpdates, yielding between batches', async () => {
    let pauses = 0
    const merged = await mergeUpdatesInBatches(all, { pause: async () => { pauses++ } })
    expect(contentOfUpdates([merged])).toEqual(contentOfUpdates([Y.mergeUpdates(all)]))
    expect(contentOfUpdates([merged])).toEqual(contentOfUpdates(all))
    expect(Y.encodeStateVectorFromUpdate(merged)).toEqual(Y.encodeStateVectorFromUpdate(Y.mergeUpdates(all)))
    expect(pauses).toBeGreaterThanOrEqual(Math.ceil(all.length / MERGE_BATCH) - 1)
  })

  it('merges in several rounds when there are more batches than a batch holds', async () => {
    let pauses = 0
    const merged = await mergeUpdatesInBatches(all, { batch: 4, pause: async () => { pauses++ } })
    expect(contentOfUpdates([merged])).toEqual(contentOfUpdates(all))
    // 270 updates → 68 merged batches → 17 → 5 → 2 → 1: at least one yield between batches.
    expect(pauses).toBeGreaterThanOrEqual(67 + 16 + 4 + 1)
  })

  it('gives the event loop a turn by default', async () => {
    let turned = false
    setImmediate(() => { turned = true })
    await mergeUpdatesInBatches(all)
    expect(turned).toBe(true)
  })

  it('merges small lists in one step, and nothing into the empty update', async () => {
    let pauses = 0
    const few = updates.slice(0, MERGE_BATCH)
    const merged = await mergeUpdatesInBatches(few, { pause: async () => { pauses++ } })
    expect(contentOfUpdates([merged])).toEqual(contentOfUpdates(few))
    expect(pauses).toBe(0)
    expect(await mergeUpdatesInBatches([])).toEqual(EMPTY_UPDATE)
    expect(mergeUpdates([])).toEqual(EMPTY_UPDATE)
    expect(contentOfUpdates([mergeUpdates(updates)])).toEqual({ text: doc.getText('t').toString(), map: doc.getMap('m').toJSON() })
  })
})

describe('stateVectorOf and diffUpdate', () => {
  it('stateVectorOf reads the state vector of an update without a Y.Doc', () => {
    const doc = helloDoc()
    expect(stateVectorOf(Y.encodeStateAsUpdate(doc))).toEqual(Y.encodeStateVector(doc))
  })

  it('diffUpdate keeps exactly what a replica lacks', () => {
    const doc = helloDoc()
    const replica = new Y.Doc()
    Y.applyUpdate(replica, Y.encodeStateAsUpdate(doc))
    doc.getText('t').insert(5, ', world')
    const full = Y.encodeStateAsUpdate(doc)
    const diff = diffUpdate(full, Y.encodeStateVector(replica))
    expect(diff.length).toBeLessThan(full.length)
    Y.applyUpdate(replica, diff)
    expect(replica.getText('t').toString()).toBe('hello, world')
  })

  it('diffUpdate against an update’s own state vector is empty, unless it deletes', () => {
    const doc = helloDoc()
    const inserts = Y.encodeStateAsUpdate(doc)
    expect(isEmptyUpdate(diffUpdate(inserts, stateVectorOf(inserts)))).toBe(true)
    doc.getText('t').delete(0, 1)
    const withDeletes = Y.encodeStateAsUpdate(doc)
    // Deletions carry no clock, so a state vector cannot say they are known.
    expect(isEmptyUpdate(diffUpdate(withDeletes, stateVectorOf(withDeletes)))).toBe(false)
  })
})

describe('isEmptyUpdate', () => {
  it('recognises the update that changes nothing', () => {
    expect(isEmptyUpdate(EMPTY_UPDATE)).toBe(true)
    expect(isEmptyUpdate(Y.encodeStateAsUpdate(new Y.Doc()))).toBe(true)
    expect(isEmptyUpdate(Y.encodeStateAsUpdate(helloDoc()))).toBe(false)
    expect(isEmptyUpdate(new Uint8Array([0]))).toBe(false)
    expect(isEmptyUpdate(new Uint8Array([0, 0, 0]))).toBe(false)
    expect(isEmptyUpdate(new Uint8Array([0, 1]))).toBe(false)
  })
})
