import { describe, expect, it } from '@jest/globals'
import { startRedis, syntheticTrace, testSchema } from '@georelay/testkit'
import {
  type BenchReport, charts, finalStateOf, firstSyncTable, keystrokeUpdates, machineInfo, markdownReport, runFanOut,
  runFirstSync, runIdleConnections, runManyDocs, runReadersScale, runRegionNodes, runStoredDocs,
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

  it('measures what the mesh carries for many typists, by message kind and direction', async () => {
    const trace = syntheticTrace(400, 7)
    const result = await runManyDocs({ trace, docs: 8, seconds: 1.5, intervalMs: 150, delayMs: 5 })
    // 8 typists, a keystroke each every 150 ms for 1.5 s: about 80, each counted once.
    expect(result.keystrokes).toBeGreaterThanOrEqual(70)
    expect(result.keystrokes).toBeLessThanOrEqual(8 * 11)
    expect(result.clientUpdateBytes).toBeGreaterThan(0)
    expect(result.byKind['batch']).toBeGreaterThan(0)
    expect(result.crossRegionBytes).toBe(Object.values(result.byKind).reduce((n, b) => n + b, 0))
    // The writers are in a: it sends the batches, b and c only acknowledge and announce.
    expect(result.perPairPerHour['a→b']).toBeGreaterThan(result.perPairPerHour['b→a'] as number)
    const markdown = markdownReport({
      startedAt: new Date().toISOString(), durationSeconds: 1, machine: machineInfo(), mode: 'quick', trace: 'synthetic',
      settings: {}, fanOut: [], convergence: null, manyDocs: result, memory: [], durableAck: null,
      durableAckPostgres: null, failover: null, regionNodes: null,
    })
    expect(markdown).toContain('## Cross-region bytes over many documents')
    expect(markdown).toMatch(/\| batch \| \d+ \|/)
  })

  it('measures how one relay\'s cost grows: readers, idle connections, stored documents', async () => {
    const readersScale = await runReadersScale({ counts: [1, 3], keystrokes, pacedRate: 1000, pacedCount: 60 })
    expect(readersScale.map(r => [r.readers, r.error])).toEqual([[1, undefined], [3, undefined]])
    expect(readersScale[1]?.paced?.delivered).toBeGreaterThanOrEqual(55 * 3)
    const idleConnections = await runIdleConnections([20, 40], 0.2)
    expect(idleConnections.map(r => [r.connections, r.error])).toEqual([[20, undefined], [40, undefined]])
    for (const r of idleConnections) expect(r.rssBytes).toBeGreaterThan(0)
    const storedDocs = await runStoredDocs([50, 500])
    for (const run of storedDocs.runs) {
      expect(run.error).toBeUndefined()
      expect(run.startMs).toBeGreaterThan(0)
      // The joining region gets an entry only after its link is up.
      expect(run.firstEntryMs).toBeGreaterThanOrEqual(run.linkUpMs)
      expect(run.regionsMs.count).toBeGreaterThan(0)
    }
    const report: BenchReport = {
      startedAt: new Date().toISOString(), durationSeconds: 1, machine: machineInfo(), mode: 'quick', trace: 'synthetic',
      settings: { pacedRate: 1000 }, fanOut: [], convergence: null, memory: [], durableAck: null,
      durableAckPostgres: null, failover: null, regionNodes: null, readersScale, idleConnections, storedDocs,
    }
    const markdown = markdownReport(report)
    for (const heading of ['## Cost as readers grow', '## Idle connections', '## A relay over a large store']) expect(markdown).toContain(heading)
    expect(Object.keys(charts(report)).sort()).toEqual(['idle-connections.svg', 'readers-cpu.svg', 'stored-docs.svg'])
  })
})
