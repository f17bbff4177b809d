import { describe, expect, it } from '@jest/globals'
import { TEST_REPLICATION, syntheticTrace } from '@georelay/testkit'
import {
  partitionCatchUpCharts, partitionCatchUpSection, runPartitionCatchUp,
} from '../src/workloads/partition-catch-up.js'

// A tiny partition keeps the workload working; its times are for `npm run bench`, never asserted here.
describe('partition catch-up workload', () => {
  it('writes on both sides of a cut, heals it, and sees every document equal everywhere', async () => {
    // The tests' quick link timeout, so that a 2 s cut drops the links and the heal has to redial and catch up.
    const result = await runPartitionCatchUp({
      trace: syntheticTrace(2000, 7), partitionSeconds: 2, ratePerSide: 1000, docs: 2,
      heartbeatMs: TEST_REPLICATION.heartbeatMs, linkTimeoutMs: TEST_REPLICATION.linkTimeoutMs,
    })
    expect(result.error).toBeUndefined()
    expect(result.converged).toBe(true)
    expect(result.docs).toBe(2)
    expect(result.updatesPerSide['r0']).toBeGreaterThan(0)
    expect(result.updatesPerSide['r1']).toBeGreaterThan(0)
    expect(result.updatesWritten).toBe((result.updatesPerSide['r0'] ?? 0) + (result.updatesPerSide['r1'] ?? 0))
    expect(result.clientUpdateBytes).toBeGreaterThan(0)
    expect(result.linkDownAfterMs).not.toBeNull()
    expect(Number.isFinite(result.healToLinksUpMs)).toBe(true)
    expect(Number.isFinite(result.healToConvergedMs)).toBe(true)
    expect(result.healToConvergedMs).toBeGreaterThanOrEqual(result.healToLinksUpMs)
    expect(result.healBytes).toBeGreaterThan(0)
    expect(result.bytesPerUpdate).toBeGreaterThan(0)
    const byKind = result.byKind ?? {}
    expect(Object.values(byKind).reduce((n, b) => n + b, 0)).toBeGreaterThan(0)
    expect(byKind['undecodable']).toBeUndefined()
    const markdown = partitionCatchUpSection(result)
    expect(markdown).toContain('## Catching up after a partition')
    expect(markdown).not.toContain('not converged')
    const svgs = partitionCatchUpCharts(result)
    expect(Object.keys(svgs).sort()).toEqual(['partition-catch-up-bytes.svg', 'partition-catch-up-time.svg'])
    for (const svg of Object.values(svgs)) expect(svg).toMatch(/^<svg [^>]*>[\s\S]*<\/svg>\n$/)
  }, 60_000)
})
