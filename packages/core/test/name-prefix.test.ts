import { describe, expect, it } from '@jest/globals'
import fc from 'fast-check'
import { globPrefix, prefixEnd } from '@georelay/core'

/** Code point order, which is what SQLite's BINARY collation compares (UTF-8 bytes). */
const byCodePoints = (a: string, b: string): number => Buffer.compare(Buffer.from(a), Buffer.from(b))

describe('prefixEnd', () => {
  it('grows the last code point that can grow and drops what follows it', () => {
    expect(prefixEnd('eu/')).toBe('eu0')
    expect(prefixEnd('a')).toBe('b')
    expect(prefixEnd('a\u{10FFFF}')).toBe('b')
    expect(prefixEnd('\u{D7FF}')).toBe('\u{E000}')
    expect(prefixEnd('')).toBeNull()
    expect(prefixEnd('\u{10FFFF}\u{10FFFF}')).toBeNull()
  })

  it('bounds exactly the names that start with the prefix, in byte order', () => {
    fc.assert(fc.property(fc.string({ unit: 'grapheme', maxLength: 4 }), fc.string({ unit: 'grapheme', maxLength: 6 }), (prefix, name) => {
      const end = prefixEnd(prefix)
      const inRange = byCodePoints(name, prefix) >= 0 && (end === null || byCodePoints(name, end) < 0)
      expect(inRange).toBe(name.startsWith(prefix))
    }), { numRuns: 2000 })
  })
})

describe('globPrefix', () => {
  it('is the glob up to its first star', () => {
    expect(globPrefix('eu/**')).toBe('eu/')
    expect(globPrefix('eu/*/notes')).toBe('eu/')
    expect(globPrefix('**')).toBe('')
    expect(globPrefix('exact/name')).toBe('exact/name')
  })
})
