import { describe, expect, it } from '@jest/globals'
import fc from 'fast-check'
import { LocalWriteTimes } from '../src/replication/local-write-times.js'

describe('LocalWriteTimes', () => {
  it('counts and dates the writes after a mark, and forgets acknowledged ones', () => {
    const times = new LocalWriteTimes()
    times.add(3, 100)
    times.add(7, 200)
    times.add(8, 300)
    expect(times.countAfter(0)).toBe(3)
    expect(times.countAfter(7)).toBe(1)
    expect(times.since(3)).toBe(200)
    expect(times.since(8)).toBeUndefined()
    times.forgetUpTo(7)
    expect(times.size).toBe(1)
    expect(times.countAfter(0)).toBe(1)
    expect(times.since(0)).toBe(300)
  })

  it('agrees with a plain list for any writes, marks and forgets (property)', () => {
    fc.assert(fc.property(
      fc.array(fc.integer({ min: 1, max: 5 }), { maxLength: 3000 }),
      fc.array(fc.tuple(fc.integer({ min: 0, max: 16_000 }), fc.boolean()), { maxLength: 40 }),
      (gaps, probes) => {
        const times = new LocalWriteTimes()
        let model: [number, number][] = []
        let seq = 0
        gaps.forEach((gap, i) => { seq += gap; times.add(seq, i); model.push([seq, i]) })
        for (const [mark, forget] of probes) {
          if (forget) {
            times.forgetUpTo(mark)
            model = model.filter(([s]) => s > mark)
          }
          const after = model.filter(([s]) => s > mark)
          expect(times.countAfter(mark)).toBe(after.length)
          expect(times.since(mark)).toBe(after[0]?.[1])
          expect(times.size).toBe(model.length)
        }
      }), { numRuns: 100, seed: 7 })
  })
})
