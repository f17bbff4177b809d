/**
 * Namespace policies (docs/deployment-models.md): ordered rules that match document names by glob, first
 * match wins, and say where a document may live and how it is written. `*` matches within one
 * path segment, `**` across segments (so `eu/**` takes `eu/notes/42`). A document no rule matches is
 * active-active in every region.
 *
 * This module resolves, validates and serialises rules; enforcing residency and
 * active-passive is the relay's job. Relays exchange their rules in the canonical JSON form
 * below, so that two relays agree exactly when their canonical forms are equal.
 */
import { ACK_LEVELS, type AckLevel } from './mux-messages.js'
import { MAX_GLOB_LENGTH, compileGlob } from './glob.js'

export type NamespaceMode = 'active-active' | 'active-passive'

export interface NamespaceRule {
  match: string
  mode?: NamespaceMode
  /** The allowed regions; default all. */
  regions?: string[]
  /** active-passive: the region that takes writes… */
  primary?: string
  /** …and, in order, the ones that take over when it is unreachable. */
  standby?: string[]
  /** Default write acknowledgement for the namespace. */
  ack?: AckLevel
  /** How long the primary must be unreachable before a standby takes over. */
  promoteAfterMs?: number
  /**
   * active-passive: regions that do not write serve sessions of the document (reads, sync,
   * presence) and pass their writes on to the writer, instead of redirecting them there.
   */
  standbyReads?: boolean
}

export interface ResolvedPolicy {
  /** Index of the rule that matched, or -1 for the default. */
  rule: number
  mode: NamespaceMode
  regions: string[]
  primary: string | null
  standby: string[]
  ack: AckLevel
  promoteAfterMs: number
  standbyReads: boolean
}

export const DEFAULT_PROMOTE_AFTER_MS = 10_000
/** Most namespace rules one relay (or a peer's policy) may have. */
export const MAX_RULES = 256

export interface PolicyProblem { path: string, message: string }

export class PolicyError extends Error {
  constructor (readonly problems: PolicyProblem[]) {
    super(`invalid namespaces:\n${problems.map(p => `  ${p.path}: ${p.message}`).join('\n')}`)
    this.name = 'PolicyError'
  }
}

/** True when every name `later` can match, `earlier` matches first (so `later` never applies). */
const shadows = (earlier: string, later: string): boolean => {
  if (earlier === later || earlier === '**') return true
  // A pattern ending in slash-double-star covers anything under its prefix.
  if (earlier.endsWith('/**')) return later.startsWith(earlier.slice(0, -2))
  return !later.includes('*') && compileGlob(earlier).test(later)
}

export interface CompiledPolicies {
  resolve(docName: string): ResolvedPolicy
  /** Whether the document may live in the region. */
  allows(docName: string, region: string): boolean
  /** The policy of rule `i` with its defaults filled in (-1: the default for unmatched names). */
  ruleAt(i: number): ResolvedPolicy
  readonly rules: readonly NamespaceRule[]
}

/**
 * Checks rules against the mesh's regions and compiles them; throws a PolicyError listing every
 * problem. `validate: false` compiles another relay's rules as they are (they may name regions
 * this relay does not know).
 */
export const compilePolicies = (
  rules: readonly NamespaceRule[],
  allRegions: readonly string[],
  { validate = true } = {},
): CompiledPolicies => {
  // Bounded even unvalidated: a peer's rules are input too.
  if (rules.length > MAX_RULES) throw new PolicyError([{ path: 'namespaces', message: `at most ${MAX_RULES} rules; there are ${rules.length}` }])
  const long = rules.findIndex(rule => rule.match.length > MAX_GLOB_LENGTH)
  if (long !== -1) throw new PolicyError([{ path: `namespaces.${long}.match`, message: `a pattern is at most ${MAX_GLOB_LENGTH} characters` }])
  if (validate) checkRules(rules, allRegions)
  const compiled = rules.map(rule => ({ rule, pattern: compileGlob(rule.match) }))
  return {
    rules,
    allows (docName, region) {
      const regions = compiled.find(c => c.pattern.test(docName))?.rule.regions
      return regions === undefined || regions.includes(region)
    },
    resolve (docName) {
      return this.ruleAt(compiled.findIndex(c => c.pattern.test(docName)))
    },
    ruleAt (i) {
      const rule = compiled[i]?.rule
      const mode = rule?.mode ?? 'active-active'
      return {
        rule: i,
        mode,
        regions: [...(rule?.regions ?? allRegions)],
        primary: mode === 'active-passive' ? rule?.primary ?? null : null,
        standby: [...(rule?.standby ?? [])],
        ack: rule?.ack ?? 'local',
        promoteAfterMs: rule?.promoteAfterMs ?? DEFAULT_PROMOTE_AFTER_MS,
        standbyReads: mode === 'active-passive' && rule?.standbyReads === true,
      }
    },
  }
}

/** Throws a PolicyError listing every problem of `rules` in a mesh of `allRegions`. */
const checkRules = (rules: readonly NamespaceRule[], allRegions: readonly string[]): void => {
  const problems: PolicyProblem[] = []
  const known = new Set(allRegions)
  rules.forEach((rule, i) => {
    const at = `namespaces.${i}`
    if (rule.match === '') problems.push({ path: `${at}.match`, message: 'empty pattern; use "**" for every document' })
    for (const [j, region] of (rule.regions ?? []).entries()) {
      if (!known.has(region)) problems.push({ path: `${at}.regions.${j}`, message: `unknown region "${region}" (regions: ${allRegions.join(', ')})` })
    }
    const allowed = new Set(rule.regions ?? allRegions)
    const mode = rule.mode ?? 'active-active'
    if (mode === 'active-passive') {
      if (rule.primary === undefined) problems.push({ path: `${at}.primary`, message: 'active-passive needs a primary region' })
      else if (!allowed.has(rule.primary)) problems.push({ path: `${at}.primary`, message: `"${rule.primary}" is not among the allowed regions (${[...allowed].join(', ')})` })
      for (const [j, region] of (rule.standby ?? []).entries()) {
        if (!allowed.has(region)) problems.push({ path: `${at}.standby.${j}`, message: `"${region}" is not among the allowed regions` })
        if (region === rule.primary) problems.push({ path: `${at}.standby.${j}`, message: `"${region}" is the primary; a standby must be another region` })
      }
    } else if (rule.primary !== undefined || rule.standby !== undefined || rule.standbyReads !== undefined) {
      problems.push({ path: `${at}.mode`, message: 'primary, standby and standbyReads only apply to mode "active-passive"' })
    }
    if (rule.ack !== undefined && !ACK_LEVELS.includes(rule.ack)) problems.push({ path: `${at}.ack`, message: `must be one of ${ACK_LEVELS.join(', ')}` })
    if (rule.promoteAfterMs !== undefined && (!Number.isInteger(rule.promoteAfterMs) || rule.promoteAfterMs < 100)) {
      problems.push({ path: `${at}.promoteAfterMs`, message: 'must be a whole number of milliseconds, at least 100' })
    }
    const earlier = rules.slice(0, i).findIndex(e => shadows(e.match, rule.match))
    if (earlier !== -1) problems.push({ path: `${at}.match`, message: `never applies: rule ${earlier} ("${rules[earlier]?.match}") matches every name this one does` })
  })
  if (problems.length > 0) throw new PolicyError(problems)
}

/**
 * The rules as canonical JSON: defaults filled in, keys in one order, the allowed regions
 * sorted (their order means nothing; the standby order does). Equal text, equal behaviour.
 */
export const canonicalRules = (rules: readonly NamespaceRule[]): string => JSON.stringify(rules.map(rule => {
  const mode = rule.mode ?? 'active-active'
  return {
    match: rule.match,
    mode,
    regions: rule.regions === undefined ? null : [...new Set(rule.regions)].sort(),
    primary: mode === 'active-passive' ? rule.primary ?? null : null,
    standby: mode === 'active-passive' ? rule.standby ?? [] : [],
    ack: rule.ack ?? 'local',
    promoteAfterMs: rule.promoteAfterMs ?? DEFAULT_PROMOTE_AFTER_MS,
    // Only when set: the rules of earlier versions keep their canonical text (and digest).
    ...(rule.standbyReads === true ? { standbyReads: true } : {}),
  }
}))

const isStringArray = (value: unknown): value is string[] => Array.isArray(value) && value.every(v => typeof v === 'string')

/** Reads another relay's canonical rules; throws a PolicyError when the text is not such rules. */
export const parseCanonicalRules = (text: string): NamespaceRule[] => {
  let value: unknown
  try {
    value = JSON.parse(text)
  } catch {
    throw new PolicyError([{ path: 'namespaces', message: 'not JSON' }])
  }
  if (!Array.isArray(value)) throw new PolicyError([{ path: 'namespaces', message: 'not a list of rules' }])
  return value.map((item: unknown, i): NamespaceRule => {
    const r = item as Record<string, unknown>
    const ok = typeof item === 'object' && item !== null && typeof r.match === 'string'
      && (r.mode === 'active-active' || r.mode === 'active-passive') && (r.regions === null || isStringArray(r.regions))
      && (r.primary === null || typeof r.primary === 'string') && isStringArray(r.standby)
      && ACK_LEVELS.includes(r.ack as AckLevel) && typeof r.promoteAfterMs === 'number'
      && (r.standbyReads === undefined || r.standbyReads === true)
    if (!ok) throw new PolicyError([{ path: `namespaces.${i}`, message: 'not a canonical rule' }])
    return {
      match: r.match as string,
      mode: r.mode as NamespaceMode,
      ...(r.regions === null ? {} : { regions: r.regions as string[] }),
      ...(r.primary === null ? {} : { primary: r.primary as string }),
      standby: r.standby as string[],
      ack: r.ack as AckLevel,
      promoteAfterMs: r.promoteAfterMs as number,
      ...(r.standbyReads === true ? { standbyReads: true } : {}),
    }
  })
}
