import { describe, expect, it } from '@jest/globals'
import { chaosPassed, formatSummary, runChaos } from '../src/chaos.js'

describe('chaos: clients in three regions write at every ack level while a nemesis strikes', () => {
  it('loses no acknowledged write and ends with identical replicas (seed 1)', async () => {
    // Short and bounded: about 16 s of writes, at most 8 faults, link faults and process faults
    // overlapping (4 each; each lane cycles through its kinds, so each kind comes twice), then
    // one region cut off and lost for good, 3 s in all.
    const summary = await runChaos({
      seed: 1,
      durationMs: 16_000,
      faultGapMs: [200, 700],
      faultHoldMs: [700, 1500],
      maxFaults: 8,
      overlap: true,
      finalLossMs: 3000,
    })
    console.log(formatSummary(summary))
    expect(summary)
      .toMatchObject({ lost: 0, duplicated: 0, unexpected: 0, identical: true, converged: true, crashes: [] })
    expect(chaosPassed(summary)).toBe(true)
    for (const kind of ['cut', 'partition', 'kill', 'pause'] as const) expect(summary.faults[kind]).toBeGreaterThanOrEqual(1)
    for (const level of ['local', 'majority', 'all'] as const) expect(summary.levels[level].acknowledged).toBeGreaterThan(0)
    expect(summary.lostRegion).not.toBeNull()
    // The replicas are the two surviving relays and the six surviving clients.
    expect(summary.replicas).toHaveLength(8)
    expect(summary.operations.writes).toBeGreaterThan(300)
  }, 120_000)
})
