import { describe, expect, it } from '@jest/globals'
import { fullJitter, isRegionName, movedReason, parseMovedReason } from '@georelay/core'

describe('the 4307 reason', () => {
  it('is written and read in one place: REGION URL : words', () => {
    const reason = movedReason({ region: 'eu-west', url: 'wss://eu.example.com' })
    expect(reason).toBe('eu-west wss://eu.example.com : this document lives in eu-west')
    expect(parseMovedReason(reason)).toEqual({ region: 'eu-west', url: 'wss://eu.example.com' })
  })

  it('reads nothing from a reason that does not start with a region and a ws URL', () => {
    for (const reason of ['', 'moved', 'eu-west', 'Eu-West ws://x', 'eu-west http://x', 'see eu-west ws://x']) expect(parseMovedReason(reason)).toBeNull()
  })
})

describe('region names', () => {
  it.each([['eu-west', true], ['a', true], ['0x', true], ['-a', false], ['EU', false], ['eu_west', false], ['a'.repeat(63), true], ['a'.repeat(64), false]])('%s: %s', (name, ok) => {
    expect(isRegionName(name)).toBe(ok)
  })
})

describe('fullJitter', () => {
  it('waits between 0 and a ceiling that doubles per attempt up to its maximum', () => {
    const backoff = { baseMs: 100, maxMs: 1000 }
    expect([0, 1, 2, 3, 4, 10].map(attempt => fullJitter(attempt, backoff, () => 1)))
      .toEqual([100, 200, 400, 800, 1000, 1000])
    expect(fullJitter(5, backoff, () => 0)).toBe(0)
  })
})
