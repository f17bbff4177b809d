/**
 * Inputs the fuzzers found, kept as plain cases. Each update here decodes as a Yjs update
 * (Y.decodeUpdate accepts it) but makes Y.applyUpdate throw, so a relay that stored it would
 * break every client of the document from then on.
 */
import { describe, expect, it } from '@jest/globals'
import * as Y from 'yjs'
import { ProtocolError, validateUpdate } from '@georelay/core'

const FOUND: { name: string, update: number[], reason: RegExp }[] = [
  { name: 'an empty delete range past the state (and bytes after it)', update: [0, 1, 0, 1, 167, 0, 0, 2, 1, 0, 1, 0, 1], reason: /empty delete range of client 0 at clock 39/ },
  { name: 'an item whose parent is a later item of its own client', update: [1, 1, 1, 0, 4, 18, 1, 116, 1, 32, 0], reason: /item 1:0 has its parent at 1:116/ },
  { name: 'an item whose right origin is itself', update: [1, 2, 0, 0, 4, 1, 1, 116, 2, 32, 32, 68, 0, 2, 12, 240, 144, 128, 128, 240, 144, 128, 128, 240, 144, 128, 128, 0], reason: /item 0:2 has its right origin at 0:2/ },
  { name: 'a GC struct of length 0', update: [1, 2, 31, 0, 40, 1, 1, 109, 3, 112, 120, 68, 1, 121, 0, 0, 0, 0, 0, 0, 0, 5, 40, 9, 1, 109, 3, 101, 121, 35, 1, 120, 0], reason: /struct 31:1 has length 0/ },
  { name: 'a string item of length 0', update: [1, 2, 9, 0, 39, 0, 1, 109, 4, 93, 46, 116, 61, 2, 36, 0, 9, 0, 2, 84, 125, 0, 1, 2, 9, 0, 39, 17, 1, 109, 4, 93, 46, 116, 61, 2, 36, 0, 9, 0, 2, 84, 125], reason: /struct 9:1 has length 0/ },
  { name: 'an item whose parent is itself', update: [1, 3, 5, 0, 40, 1, 1, 109, 1, 32, 1, 119, 1, 32, 39, 1, 1, 109, 1, 33, 2, 4, 0, 5, 2, 1, 32, 0, 0], reason: /item 5:2 has its parent at 5:2/ },
]

describe('updates the fuzzers found', () => {
  it.each(FOUND)('refuses $name, which Yjs decodes but cannot apply', ({ update, reason }) => {
    const bytes = Uint8Array.from(update)
    expect(() => Y.decodeUpdate(bytes)).not.toThrow()
    expect(() => Y.applyUpdate(new Y.Doc(), bytes)).toThrow()
    expect(() => validateUpdate(bytes)).toThrow(ProtocolError)
    expect(() => validateUpdate(bytes)).toThrow(reason)
  })

  it('still accepts what real documents write, references to earlier items of the same client included', () => {
    const doc = new Y.Doc()
    doc.getText('t').insert(0, 'abc')
    doc.getText('t').insert(1, 'x')
    doc.getText('t').delete(0, 2)
    const nested = new Y.Text()
    doc.getMap('m').set('k', nested)
    nested.insert(0, 'in')
    expect(() => validateUpdate(Y.encodeStateAsUpdate(doc))).not.toThrow()
  })
})
