import { describe, expect, it } from '@jest/globals'
import { LinkStateTable, LinkStateVersions, shouldForward } from '../src/mesh/link-state.js'

describe('link state', () => {
  it('keeps a region\'s newest word, fresh for the stale time', () => {
    const table = new LinkStateTable(1000)
    expect(table.update('a', 5, ['b'], {}, 0)).toBe(true)
    expect(table.update('a', 4, [], {}, 10)).toBe(false)
    expect(table.fresh('a', 900)?.reaches).toEqual(['b'])
    expect(table.fresh('a', 1001)).toBeUndefined()
    expect(table.reaches('a', 'b', 500)).toBe(true)
  })

  it('forwards an origin\'s entries to a peer only while no fresh word says the origin reaches it', () => {
    const table = new LinkStateTable(1000)
    expect(shouldForward('me', 'me', 'p', table, 0)).toBe(true)
    expect(shouldForward('me', 'p', 'p', table, 0)).toBe(false)
    // No word about o at all (a cut, a dead origin): forward; duplicates are harmless.
    expect(shouldForward('me', 'o', 'p', table, 0)).toBe(true)
    table.update('o', 1, ['p'], {}, 0)
    expect(shouldForward('me', 'o', 'p', table, 100)).toBe(false)
    expect(shouldForward('me', 'o', 'p', table, 2000)).toBe(true)
  })

  it('a restarted relay\'s word is taken at once, however long its previous run was', () => {
    const table = new LinkStateTable(1000)
    const firstRun = new LinkStateVersions(1_000_000, () => 1_000_000)
    // A day of heartbeats, once a second, and some link changes.
    let version = 0
    for (let i = 0; i < 90_000; i++) version = firstRun.next()
    expect(table.update('a', version, ['b', 'c'], {}, 0)).toBe(true)
    // Restarted a second later: its first announcement must not be dropped as old.
    const restartedAt = 1_000_000 + 86_400_000 + 1000
    const secondRun = new LinkStateVersions(restartedAt, () => restartedAt)
    expect(table.update('a', secondRun.next(), ['b'], {}, 1)).toBe(true)
    expect(table.get('a')?.reaches).toEqual(['b'])
  })

  it('the word of a region\'s new mesh lease holder is taken, though it started before the old one', () => {
    const table = new LinkStateTable(1000)
    let clock = 5_000
    const a2 = new LinkStateVersions(1_000, () => clock) // started first, quiet while a1 held the lease
    const a1 = new LinkStateVersions(2_000, () => clock)
    expect(table.update('a', a1.next(), ['b', 'c'], {}, 0)).toBe(true)
    clock = 6_000 // a1 died; a2 took over a second later
    expect(table.update('a', a2.next(), ['b'], {}, 1)).toBe(true)
    expect(table.get('a')?.reaches).toEqual(['b'])
  })
})
