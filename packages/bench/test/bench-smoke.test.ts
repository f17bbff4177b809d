import { describe, expect, it } from '@jest/globals'
import { startRedis, syntheticTrace, testSchema } from '@georelay/testkit'
import {
  type BenchReport, charts, finalStateOf, firstSyncTable, keystrokeUpdates, machineInfo, markdownReport, runFanOut,
  runFirstSync, runRegionNodes,
} from '@georelay/bench'

// One tiny fan-out per kind of child (a server of ours, georelay's CLI) keeps the harness
// working; speed itself is measured by `npm run bench`, never asserted here.
describe('benchmark harness', () => {
  const keystrokes = keystrokeUpdates(syntheticTrace(400, 7))
  const options = {
    docs: 1,
    readersPerDoc: 3,
    keystrokes,
    pacedRate: 1000,
    pacedCount: 60,
    saturatedCount: 120,
    window: 16,
    timeoutMs: 20_000,
  }

  it('counts every keystroke at every reader, for the echo and for georelay, and reports them', async () => {
    const results = [await runFanOut('echo', options), await runFanOut('georelay-memory', options)]
    for (const result of results) {
      expect(result.error).toBeUndefined()
      const paced = result.paced
      const saturated = result.saturated
      if (paced === null || saturated === null) throw new Error('a phase is missing')
      // Each phase ends on an insertion, so the count may drop a trailing deletion or two.
      expect(paced.delivered).toBeGreaterThanOrEqual(55 * 3)
      expect(paced.delivered % 3).toBe(0)
      expect(saturated.delivered).toBeGreaterThanOrEqual(110 * 3)
      expect(saturated.framesReceived).toBeGreaterThan(0)
      expect(paced.latencyMs.count).toBeGreaterThan(0)
      expect(Number.isFinite(paced.cpuPer10k)).toBe(true)
      expect(result.peakRssBytes).toBeGreaterThan(0)
    }
    const report: BenchReport = {
      startedAt: new Date().toISOString(), durationSeconds: 1, machine: machineInfo(), mode: 'quick', trace: 'synthetic',
      settings: { docs: 1, readersPerDoc: 3, pacedRate: 1000, pacedCount: 60, saturatedCount: 120, window: 16 },
      fanOut: results, convergence: null, memory: [], durableAck: null, durableAckPostgres: null, failover: null,
      regionNodes: null,
    }
    const markdown = markdownReport(report)
    expect(markdown).toContain('| bare ws echo |')
    expect(markdown).toContain('| georelay (memory store) |')
    const svgs = charts(report)
    expect(Object.keys(svgs).sort()).toEqual(['fanout-cpu.svg', 'fanout-latency.svg', 'fanout-throughput.svg'])
    for (const svg of Object.values(svgs)) expect(svg).toMatch(/^<svg [^>]*>[\s\S]*<\/svg>\n$/)
  })

  it('spreads readers over a region of two nodes and reports each node\'s latency', async () => {
    const schema = await testSchema('bench')
    const redis = await startRedis()
    try {
      const result = await runRegionNodes({
        ...options, readersPerDoc: 4, postgresUrl: schema.url, postgresSchema: schema.schema, redisUrl: redis.url,
      })
      expect(result.runs.map(r => [r.nodes, r.error])).toEqual([[1, undefined], [2, undefined]])
      const two = result.runs[1]
      expect(two?.paced?.delivered).toBeGreaterThanOrEqual(55 * 4)
      expect(two?.sameNodeMs?.count).toBeGreaterThan(0)
      expect(two?.otherNodeMs?.count).toBeGreaterThan(0)
      const markdown = markdownReport({
        startedAt: new Date().toISOString(), durationSeconds: 1, machine: machineInfo(), mode: 'quick', trace: 'synthetic',
        settings: {}, fanOut: [], convergence: null, memory: [], durableAck: null, durableAckPostgres: null,
        failover: null, regionNodes: result,
      })
      expect(markdown).toContain('## A region of several nodes')
    } finally {
      await redis.destroy()
      await schema.drop()
    }
  })

  it('times Hocuspocus providers to their first sync on georelay and on @hocuspocus/server', async () => {
    const result = await runFirstSync({
      state: finalStateOf(syntheticTrace(400, 7)), sequential: 3, concurrent: 2, bursts: 1, versions: [4], warmup: 1,
    })
    expect(result.error).toBeUndefined()
    expect(result.textLength).toBeGreaterThan(0)
    // 2 documents × 2 ways of connecting × 1 version × 2 servers.
    expect(result.runs).toHaveLength(8)
    for (const run of result.runs) {
      expect(run.error).toBeUndefined()
      expect(run.ms.count).toBe(run.mode === 'sequential' ? 3 : 2)
      expect(run.ms.p50).toBeGreaterThan(0)
      expect(run.ms.p99).toBeGreaterThanOrEqual(run.ms.p50)
    }
    expect(firstSyncTable(result).split('\n')).toHaveLength(2 + 4)
    const markdown = markdownReport({
      startedAt: new Date().toISOString(), durationSeconds: 1, machine: machineInfo(), mode: 'quick', trace: 'synthetic',
      settings: {}, fanOut: [], convergence: null, memory: [], durableAck: null, durableAckPostgres: null,
      failover: null, regionNodes: null, firstSync: result,
    })
    expect(markdown).toContain('## Time to first sync, Hocuspocus provider')
    expect(markdown).toContain('| empty, a fresh name each | 3 one at a time | 4.x |')
  })
})
