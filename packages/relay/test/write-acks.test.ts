import { describe, expect, it } from '@jest/globals'
import { MAX_WAITS_PER_OWNER, WriteAcks, regionsNeeded } from '../src/replication/write-acks.js'

/** A mesh of regions whose marks a test moves by hand. */
const fakeMesh = (regions: string[]) => {
  const marks = new Map<string, number>(regions.slice(1).map(r => [r, 0]))
  let listener = (): void => {}
  return {
    view: {
      regions: () => regions,
      heldUpTo: (region: string) => region === regions[0] ? Number.POSITIVE_INFINITY : marks.get(region) ?? 0,
      subscribe: (l: () => void) => { listener = l; return () => { listener = () => {} } },
    },
    hold (region: string, seq: number) {
      marks.set(region, seq)
      listener()
    },
  }
}

describe('WriteAcks', () => {
  it('needs 1, a majority or every region', () => {
    expect([1, 2, 3, 4, 5].map(n => regionsNeeded('majority', n))).toEqual([1, 2, 2, 3, 3])
    expect(regionsNeeded('all', 3)).toBe(3)
    expect(regionsNeeded('local', 3)).toBe(1)
  })

  it('notifies in order once enough regions hold a write, for each level and set of regions', () => {
    const mesh = fakeMesh(['a', 'b', 'c'])
    const acks = new WriteAcks(mesh.view)
    const seen: string[] = []
    const doc = {}
    for (const seq of [1, 2, 3]) {
      acks.whenDurable(seq, 'majority', doc, () => seen.push(`m${seq}`))
      acks.whenDurable(seq, 'all', doc, () => seen.push(`a${seq}`))
    }
    // A document restricted to a and c: b's marks do not count.
    acks.whenDurable(3, 'all', doc, () => seen.push('ac3'), ['a', 'c'])
    mesh.hold('b', 2)
    expect(seen).toEqual(['m1', 'm2'])
    mesh.hold('c', 3)
    expect(seen).toEqual(['m1', 'm2', 'm3', 'a1', 'a2', 'ac3'])
    mesh.hold('b', 3)
    expect(seen.slice(-1)).toEqual(['a3'])
    expect(acks.pending).toBe(0)
  })

  it('answers at once what is durable already, and forgets a cancelled owner', () => {
    const mesh = fakeMesh(['a', 'b'])
    mesh.hold('b', 5)
    const acks = new WriteAcks(mesh.view)
    const seen: number[] = []
    acks.whenDurable(4, 'all', {}, () => seen.push(4))
    expect(seen).toEqual([4])
    const gone = {}
    acks.whenDurable(6, 'all', gone, () => seen.push(6))
    acks.cancel(gone)
    mesh.hold('b', 10)
    expect(seen).toEqual([4])
    expect(acks.pending).toBe(0)
  })

  it('keeps at most MAX_WAITS_PER_OWNER waits per document while a region is down; the last covers the rest', () => {
    const mesh = fakeMesh(['a', 'b'])
    const acks = new WriteAcks(mesh.view)
    const seen: number[] = []
    const doc = {}
    for (let seq = 1; seq <= 10_000; seq++) acks.whenDurable(seq, 'all', doc, () => seen.push(seq))
    expect(acks.pending).toBe(MAX_WAITS_PER_OWNER)
    mesh.hold('b', 10_000)
    expect(seen).toHaveLength(MAX_WAITS_PER_OWNER)
    expect(seen[seen.length - 1]).toBe(10_000)
  })

  it('settles thousands of documents in order of their writes', () => {
    const mesh = fakeMesh(['a', 'b', 'c'])
    const acks = new WriteAcks(mesh.view)
    const seen: number[] = []
    for (let seq = 5000; seq >= 1; seq--) acks.whenDurable(seq, 'majority', { seq }, () => seen.push(seq))
    mesh.hold('c', 2500)
    expect(seen).toEqual(Array.from({ length: 2500 }, (_, i) => i + 1))
    mesh.hold('b', 5000)
    expect(seen).toHaveLength(5000)
  })
})
