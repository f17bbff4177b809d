import { describe, expect, it } from '@jest/globals'
import {
  MAX_GLOB_LENGTH, MAX_RULES, PolicyError, canonicalRules, compileGlob, compilePolicies, parseCanonicalRules,
  type NamespaceRule,
} from '@georelay/core'

const REGIONS = ['us-east', 'eu-west', 'eu-central', 'ap-south']

const problemsOf = (rules: NamespaceRule[]): string[] => {
  try {
    compilePolicies(rules, REGIONS)
  } catch (err) {
    if (err instanceof PolicyError) return err.problems.map(p => `${p.path}: ${p.message}`)
    throw err
  }
  return []
}

describe('compileGlob', () => {
  it.each([
    ['eu/*', 'eu/notes', true],
    ['eu/*', 'eu/notes/42', false],
    ['eu/**', 'eu/notes/42', true],
    ['tenant-*/billing/**', 'tenant-7/billing/2026/q1', true],
    ['tenant-*/billing/**', 'tenant-7/notes/1', false],
    ['*', 'anything', true],
    ['*', 'a/b', false],
    ['**', 'a/b/c', true],
    ['docs.v2/*', 'docsXv2/a', false],
  ])('%s matches %s: %s', (glob, name, expected) => {
    expect(compileGlob(glob).test(name)).toBe(expected)
  })

  it.each([
    ['a*b', 'ab', true], ['a*b', 'axxb', true], ['a*b', 'a/b', false], ['a**b', 'a/x/b', true],
    ['**/x', 'x', false], ['**/x', 'a/x', true], ['***', 'a/b', true], ['a/***/b', 'a/q/r/b', true],
    ['*.md', '.md', true], ['x', 'xx', false], ['', '', true], ['*', '', true], ['eu/**', 'eu/', true],
    ['eu/**', 'eu/patients/\u2028/42', true],
  ])('%s against %s: %s', (glob, name, expected) => {
    expect(compileGlob(glob).test(name)).toBe(expected)
  })

  it('matches any character a name may hold, line separators included (no regular expression flags to forget)', () => {
    for (const c of ['\u2028', '\u2029', '\n', '\r', '\u0085', '\u{1F600}']) {
      expect(compileGlob('eu/**').test(`eu/patients/${c}42`)).toBe(true)
      expect(compileGlob('eu/*').test(`eu/${c}`)).toBe(true)
    }
  })

  it('never backtracks: a glob made to blow up a regular expression matches in linear steps', () => {
    // As a backtracking regular expression this took 18.7 s with 72 `a`s; with 400 it would not end.
    const glob = compileGlob('*a*a*a*a*a*a*a*a*a*a*a*a*b')
    expect(glob.test('a'.repeat(400))).toBe(false)
    expect(glob.test('a'.repeat(400) + 'b')).toBe(true)
    expect(compileGlob('**a**a**a**a**a**a**b').test('a/'.repeat(200))).toBe(false)
  })

  it(`refuses globs longer than ${MAX_GLOB_LENGTH} characters`, () => {
    expect(() => compileGlob('a'.repeat(MAX_GLOB_LENGTH))).not.toThrow()
    expect(() => compileGlob('a'.repeat(MAX_GLOB_LENGTH + 1))).toThrow(/at most 256 characters/)
  })
})

describe('policy bounds', () => {
  it(`refuses more than ${MAX_RULES} rules and over-long patterns, even unvalidated (a peer's rules)`, () => {
    const many = Array.from({ length: MAX_RULES + 1 }, (_, i) => ({ match: `n${i}/**` }))
    expect(() => compilePolicies(many, REGIONS, { validate: false })).toThrow(/at most 256 rules/)
    expect(() => compilePolicies([{ match: '*'.repeat(300) }], REGIONS, { validate: false })).toThrow(/at most 256 characters/)
  })
})

describe('compilePolicies', () => {
  const rules: NamespaceRule[] = [
    { match: 'eu/**', regions: ['eu-west', 'eu-central'], ack: 'majority' },
    { match: 'billing/**', mode: 'active-passive', primary: 'us-east', standby: ['eu-west'], promoteAfterMs: 5000 },
    { match: '**' },
  ]

  it('resolves by the first rule that matches, with defaults filled in', () => {
    const policies = compilePolicies(rules, REGIONS)
    expect(policies.resolve('eu/notes/42')).toEqual({ rule: 0, mode: 'active-active', regions: ['eu-west', 'eu-central'], primary: null, standby: [], ack: 'majority', promoteAfterMs: 10_000, standbyReads: false })
    expect(policies.resolve('billing/invoices/7')).toMatchObject({ rule: 1, mode: 'active-passive', primary: 'us-east', standby: ['eu-west'], regions: REGIONS, promoteAfterMs: 5000 })
    expect(policies.resolve('notes/1')).toMatchObject({ rule: 2, mode: 'active-active', regions: REGIONS, ack: 'local' })
  })

  it('treats a name no rule matches as active-active everywhere', () => {
    expect(compilePolicies([{ match: 'eu/*', regions: ['eu-west'] }], REGIONS).resolve('us/1')).toMatchObject({ rule: -1, regions: REGIONS, mode: 'active-active' })
  })

  it('refuses unknown regions, a primary outside the allowed set, and misplaced fields, naming each', () => {
    expect(problemsOf([
      { match: 'a/**', regions: ['eu-west', 'mars-1'] },
      { match: 'b/**', mode: 'active-passive', regions: ['eu-west'], primary: 'us-east' },
      { match: 'c/**', mode: 'active-passive' },
      { match: 'd/**', primary: 'us-east' },
      { match: 'e/**', mode: 'active-passive', primary: 'us-east', standby: ['us-east'] },
      { match: 'f/**', promoteAfterMs: 5 },
    ])).toEqual([
      'namespaces.0.regions.1: unknown region "mars-1" (regions: us-east, eu-west, eu-central, ap-south)',
      'namespaces.1.primary: "us-east" is not among the allowed regions (eu-west)',
      'namespaces.2.primary: active-passive needs a primary region',
      'namespaces.3.mode: primary, standby and standbyReads only apply to mode "active-passive"',
      'namespaces.4.standby.0: "us-east" is the primary; a standby must be another region',
      'namespaces.5.promoteAfterMs: must be a whole number of milliseconds, at least 100',
    ])
  })

  it('refuses rules that can never match because an earlier one takes all their names', () => {
    expect(problemsOf([{ match: '**' }, { match: 'eu/**' }])).toEqual(['namespaces.1.match: never applies: rule 0 ("**") matches every name this one does'])
    expect(problemsOf([{ match: 'eu/**' }, { match: 'eu/notes/*' }])).toEqual(['namespaces.1.match: never applies: rule 0 ("eu/**") matches every name this one does'])
    expect(problemsOf([{ match: 'eu/*' }, { match: 'eu/*' }])).toHaveLength(1)
    expect(problemsOf([{ match: 'eu/*' }, { match: 'eu/x' }])).toHaveLength(1)
    // Overlap that still leaves names for the later rule is fine.
    expect(problemsOf([{ match: 'eu/*' }, { match: 'eu/**' }])).toEqual([])
  })
})

describe('canonical rules', () => {
  it('carry standbyReads only when it is set, so that the rules of earlier versions keep their digest', () => {
    const rule: NamespaceRule = { match: 'billing/**', mode: 'active-passive', primary: 'us-east', standby: ['eu-west'] }
    expect(canonicalRules([rule])).not.toContain('standbyReads')
    const readable = canonicalRules([{ ...rule, standbyReads: true }])
    expect(readable).toContain('"standbyReads":true')
    expect(parseCanonicalRules(readable)[0]?.standbyReads).toBe(true)
    expect(compilePolicies(parseCanonicalRules(readable), REGIONS).resolve('billing/1').standbyReads).toBe(true)
    expect(compilePolicies([rule], REGIONS).resolve('billing/1').standbyReads).toBe(false)
  })
})
