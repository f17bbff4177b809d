import { describe, expect, it } from '@jest/globals'
import { EventEmitter } from 'node:events'
import * as Y from 'yjs'
import { compareReplicas, on, setFullCheck, waitUntil } from '@georelay/testkit'

const docWith = (elements: string[], text = ''): Y.Doc => {
  const doc = new Y.Doc()
  doc.getArray<string>('set').push(elements)
  doc.getText('t').insert(0, text)
  return doc
}

const syncFrom = (source: Y.Doc): Y.Doc => {
  const doc = new Y.Doc()
  Y.applyUpdate(doc, Y.encodeStateAsUpdate(source))
  return doc
}

describe('compareReplicas', () => {
  it('finds identical replicas identical, even one that never named a type', () => {
    const a = docWith(['x', 'y'], 'hello')
    expect(compareReplicas({ a, b: syncFrom(a) })).toEqual({ identical: true, differing: [] })
  })

  it('names the replica that differs', () => {
    const a = docWith(['x'])
    const b = syncFrom(a)
    const c = syncFrom(a)
    c.getArray<string>('set').push(['extra'])
    expect(compareReplicas({ a, b, c })).toEqual({ identical: false, differing: ['c'] })
  })
})

describe('setFullCheck', () => {
  it('counts lost, duplicated and unexpected elements per replica', () => {
    const ok = docWith(['a', 'b'])
    const lossy = docWith(['a'])
    const twice = docWith(['a', 'b', 'b'])
    const odd = docWith(['a', 'b', 'z'])
    const report = setFullCheck(['a', 'b'], { ok, lossy, twice, odd })
    expect(report).toEqual({
      acknowledged: 2,
      lost: { lossy: ['b'] },
      duplicated: { twice: ['b'] },
      unexpected: { odd: ['z'] },
      ok: false,
    })
    expect(setFullCheck(['a', 'b'], { ok }).ok).toBe(true)
  })

  it('accepts written-but-unacknowledged elements when told about them', () => {
    expect(setFullCheck(['a'], { r: docWith(['a', 'maybe']) }, { written: ['a', 'maybe'] }).ok).toBe(true)
  })
})

describe('waitUntil', () => {
  it('re-checks on each event and resolves with the first truthy value', async () => {
    const emitter = new EventEmitter()
    let n = 0
    const result = waitUntil([on(emitter, 'tick')], () => n >= 3 && `done at ${n}`, { what: 'three ticks' })
    for (let i = 0; i < 3; i++) { n++; emitter.emit('tick') }
    await expect(result).resolves.toBe('done at 3')
    expect(emitter.listenerCount('tick')).toBe(0)
  })

  it('rejects naming what it waited for', async () => {
    const emitter = new EventEmitter()
    await expect(waitUntil([on(emitter, 'tick')], () => false, { what: 'nothing', timeoutMs: 20 })).rejects.toThrow('timed out after 20 ms waiting for nothing')
    expect(emitter.listenerCount('tick')).toBe(0)
  })
})
