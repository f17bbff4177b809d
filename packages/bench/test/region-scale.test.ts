import { describe, expect, it } from '@jest/globals'
import { syntheticTrace } from '@georelay/testkit'
import { regionScaleCharts, regionScaleSection, runRegionScale } from '../src/workloads/region-scale.js'

// Two tiny meshes keep the workload working; how its figures grow is for `npm run bench`, never asserted here.
describe('region scale workload', () => {
  it('measures a mesh of 2 and of 3 regions: latency, bytes by kind, idle traffic, CPU and peer sockets', async () => {
    const result = await runRegionScale({
      trace: syntheticTrace(200, 7), regionCounts: [2, 3], typingSeconds: 1.5, idleSeconds: 1, intervalMs: 150,
    })
    expect(result.runs.map(r => [r.regions, r.error])).toEqual([[2, undefined], [3, undefined]])
    for (const run of result.runs) {
      expect(run.keystrokes).toBe(10)
      // Every reader (N − 1 of them) saw every inserting keystroke.
      expect(run.latencyMinusDelayMs.count % (run.regions - 1)).toBe(0)
      expect(run.latencyMinusDelayMs.count).toBeGreaterThan(0)
      expect(Number.isFinite(run.latencyMinusDelayMs.p50)).toBe(true)
      expect(Number.isFinite(run.latencyMinusDelayMs.p99)).toBe(true)
      expect(run.latencyQuantiles.length).toBeGreaterThan(0)
      expect(run.clientUpdateBytes).toBeGreaterThan(0)
      expect(run.crossRegionBytes).toBeGreaterThan(0)
      expect(run.byKind['batch']).toBeGreaterThan(0)
      // Every frame decoded: a change of the peer protocol must not pass as unknown bytes.
      expect(run.byKind['undecodable']).toBeUndefined()
      expect(run.batchBytesRatio).toBeGreaterThan(0)
      expect(run.idleBytesPerSecond).toBeGreaterThan(0)
      expect(run.idleMessagesPerSecondByKind['link-state']).toBeGreaterThan(0)
      expect(run.idleBytesPerSecondByKind['link-state']).toBeGreaterThan(0)
      expect(run.cpuPerRegionIdle).toBeGreaterThan(0)
      expect(run.cpuPerRegionTyping).toBeGreaterThan(0)
      // Counted from the relays' own links: at most one dialled and one accepted per peer.
      expect(run.peerSocketsPerRelay.min).toBeGreaterThan(0)
      expect(run.peerSocketsPerRelay.max).toBeLessThanOrEqual(2 * (run.regions - 1))
      expect(run.wanConnections).toBeGreaterThan(0)
    }
    const markdown = regionScaleSection(result)
    expect(markdown).toContain('## How cost grows with regions')
    expect(markdown.split('\n').filter(line => /^\| [23] \|/.test(line))).toHaveLength(2)
    const svgs = regionScaleCharts(result)
    expect(Object.keys(svgs).sort())
      .toEqual(['region-scale-idle-bytes.svg', 'region-scale-latency.svg', 'region-scale-p99.svg'])
    for (const svg of Object.values(svgs)) expect(svg).toMatch(/^<svg [^>]*>[\s\S]*<\/svg>\n$/)
  }, 60_000)
})
