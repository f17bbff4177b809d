import { describe, expect, it } from '@jest/globals'
import { canonicalRules, type NamespaceRule } from '@georelay/core'
import { silentLogger, streamLogger } from '@georelay/relay'
import { type MeshView, Placement } from '../src/placement/index.js'

const REGIONS = ['us-east', 'eu-west', 'eu-central', 'ap-south']
const RULES: NamespaceRule[] = [
  { match: 'eu/**', regions: ['eu-west', 'eu-central'] },
  { match: 'billing/**', mode: 'active-passive', primary: 'us-east', standby: ['eu-west', 'ap-south'], promoteAfterMs: 1000 },
]

/** A mesh whose silences, links and acknowledgements the test sets by hand. */
class FakeMesh implements MeshView {
  silent = new Map<string, number>()
  up = new Set<string>(REGIONS)
  holding = new Set<string>(REGIONS)
  distance = ['eu-central', 'us-east', 'ap-south', 'eu-west']
  silentFor (region: string): number { return this.silent.get(region) ?? 0 }
  linkUp (region: string): boolean { return this.up.has(region) }
  holdsOurWrites (region: string): boolean { return this.holding.has(region) }
  peersByDistance (): string[] { return this.distance }
}

const placementAt = (region: string, rules = RULES, mesh = new FakeMesh()) => {
  const placement = new Placement(region, REGIONS, rules, silentLogger)
  placement.start(mesh, 60_000)
  placement.close()
  return { placement, mesh }
}

describe('Placement: residency', () => {
  it('serves an allowed document here and sends others to the nearest allowed region with a link up', () => {
    const { placement, mesh } = placementAt('us-east')
    expect(placement.route('shared/1')).toEqual({ kind: 'here' })
    expect(placement.route('eu/a')).toEqual({ kind: 'elsewhere', region: 'eu-central' })
    mesh.up.delete('eu-central')
    expect(placement.route('eu/a')).toEqual({ kind: 'elsewhere', region: 'eu-west' })
  })

  it('sends nothing to a peer before its rules are known, then what both sides allow', () => {
    const { placement } = placementAt('eu-west')
    expect(placement.mayReceive('shared/1', 'us-east')).toBe(false)
    expect(placement.setPeerRules('us-east', canonicalRules(RULES))).toBe('match')
    expect(placement.mayReceive('shared/1', 'us-east')).toBe(true)
    expect(placement.mayReceive('eu/a', 'us-east')).toBe(false)
    // eu-central's rules keep shared/** at home: ours would send it, theirs decide.
    expect(placement.setPeerRules('eu-central', canonicalRules([{ match: 'shared/**', regions: ['us-east'] }, ...RULES]))).toBe('mismatch')
    expect(placement.mayReceive('shared/1', 'eu-central')).toBe(false)
    expect(placement.mayReceive('eu/a', 'eu-central')).toBe(true)
    expect(placement.peerPolicy('eu-central')).toEqual({ digest: expect.stringMatching(/^[0-9a-f]{16}$/), agreement: 'mismatch' })
    expect(placement.peerPolicy('ap-south')).toEqual({ digest: null, agreement: 'unknown' })
  })

  it('with unreadable peer rules sends only documents allowed everywhere, and says so in the log', () => {
    const lines: string[] = []
    const placement = new Placement('eu-west', REGIONS, RULES, streamLogger(line => lines.push(line)))
    expect(placement.setPeerRules('eu-central', '{"not":"rules"}')).toBe('mismatch')
    expect(placement.mayReceive('shared/1', 'eu-central')).toBe(true)
    expect(placement.mayReceive('eu/a', 'eu-central')).toBe(false)
    expect(lines.some(l => /cannot read/.test(l))).toBe(true)
  })

  it('names where a peer\'s restricted documents begin, so a link-up lists only those', () => {
    const rules: NamespaceRule[] = [
      { match: 'eu/**/archive', regions: ['eu-west', 'us-east'] },
      ...RULES,
      { match: 'all/**', regions: REGIONS },
    ]
    const { placement } = placementAt('eu-west', rules)
    expect(placement.restrictedPrefixes('eu-central')).toEqual(['eu/'])
    // Two rules that begin alike are looked up once; a rule allowing every region restricts nothing.
    expect(placement.restrictedPrefixes('us-east')).toEqual(['eu/'])
    expect(placement.restrictedPrefixes('ap-south')).toEqual([])
    expect(placementAt('eu-west', [{ match: '*/private', regions: ['eu-west', 'ap-south'] }]).placement.restrictedPrefixes('ap-south')).toEqual([''])
  })

  it('counts only the allowed regions for acknowledgements', () => {
    const { placement } = placementAt('eu-west')
    expect(placement.allowedRegions('eu/a')).toEqual(['eu-west', 'eu-central'])
    expect(placement.allowedRegions('shared/1')).toEqual(REGIONS)
  })
})

describe('Placement: active-passive writers', () => {
  it('the primary writes; others redirect to it while a link reaches it, and hold writes while none does', () => {
    expect(placementAt('us-east').placement.route('billing/1')).toEqual({ kind: 'here' })
    const { placement, mesh } = placementAt('eu-central')
    expect(placement.route('billing/1')).toEqual({ kind: 'elsewhere', region: 'us-east' })
    mesh.up.delete('us-east')
    expect(placement.route('billing/1')).toEqual({ kind: 'hold', region: 'us-east' })
  })

  it('the first standby takes over once the primary was silent for promoteAfterMs, and the next one after it', () => {
    const { placement, mesh } = placementAt('ap-south')
    const changes: number[][] = []
    placement.on('roles', rules => changes.push(rules))
    mesh.silent.set('us-east', 999)
    placement.refresh()
    expect(placement.writerFor(1)).toBe('us-east')
    mesh.silent.set('us-east', 1000)
    placement.refresh()
    expect(placement.writerFor(1)).toBe('eu-west')
    mesh.silent.set('eu-west', 5000)
    placement.refresh()
    expect(placement.writerFor(1)).toBe('ap-south')
    expect(placement.route('billing/1')).toEqual({ kind: 'here' })
    expect(changes).toEqual([[1], [1]])
  })

  it('a standby that took over hands the role back only once the primary holds its writes', () => {
    const { placement, mesh } = placementAt('eu-west')
    mesh.silent.set('us-east', 1500)
    placement.refresh()
    expect(placement.writerFor(1)).toBe('eu-west')
    mesh.silent.set('us-east', 0)
    mesh.holding.delete('us-east')
    placement.refresh()
    expect(placement.writerFor(1)).toBe('eu-west')
    mesh.holding.add('us-east')
    placement.refresh()
    expect(placement.writerFor(1)).toBe('us-east')
  })
})
