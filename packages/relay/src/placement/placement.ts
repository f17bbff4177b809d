/**
 * Where each document may live and where it is written (residency, active-passive: docs/deployment-models.md).
 *
 * Residency: a document goes to a peer only when both this relay's rules and the peer's
 * (received in its `policy` message) allow it there; until a peer's rules are known nothing
 * goes to it, and if they cannot be read only documents this relay allows everywhere do. So
 * rules that disagree never leak a document to a region either side excludes; the
 * disagreement is reported (log, metric, /v1/regions) until the operators fix it.
 *
 * Active-passive: the writer of a namespace is the first of `[primary, ...standby]` that has
 * not been silent for `promoteAfterMs`. Each relay decides for itself from what it hears, so a
 * partition can leave two writers; the data is a CRDT, so both sides' writes merge on heal. A
 * standby that took over keeps the role until the returning primary holds every write it
 * accepted, so clients moved back find their edits there.
 */
import crypto from 'node:crypto'
import { EventEmitter } from 'node:events'
import {
  type CompiledPolicies, type NamespaceRule, type ResolvedPolicy, canonicalRules, compilePolicies, globPrefix,
  parseCanonicalRules,
} from '@georelay/core'
import type { Logger } from '../observability/index.js'

/** What the placement needs to know of the mesh. */
export interface MeshView {
  /** Milliseconds since anything was heard from the region (0 while its link is fresh). */
  silentFor(region: string): number
  /** Whether a link to or from the region is up now (a client sent there can probably get in). */
  linkUp(region: string): boolean
  /** Whether the region durably holds every write this relay accepted so far. */
  holdsOurWrites(region: string): boolean
  /** Peers, nearest first (by measured link round trip). */
  peersByDistance(): string[]
}

export type Agreement = 'unknown' | 'match' | 'mismatch'

export interface PeerPolicyInfo {
  /** First 16 hex digits of the SHA-256 of the peer's canonical rules. */
  digest: string | null
  agreement: Agreement
}

/** Where a client's session of a document belongs. */
export type Route =
  | { kind: 'here' }
  /** Writes are accepted here. */
  | { kind: 'elsewhere', region: string }
  /**
   * The writer is another region that no link reaches now: serve reads, hold writes until it
   * returns or a standby takes over.
   */
  | { kind: 'hold', region: string }
  /**
   * An active-passive document with `standbyReads`, written by `region`, which a link reaches:
   * its sessions are served here and their writes passed on to the writer.
   */
  | { kind: 'read-here', region: string }

export interface PlacementEvents {
  /** The writer of some active-passive namespace changed (by rule index). */
  roles: [rules: number[]]
}

export const digestOf = (canonical: string): string => crypto.createHash('sha256').update(canonical).digest('hex').slice(0, 16)

export class Placement extends EventEmitter<PlacementEvents> {
  readonly canonical: string
  readonly digest: string
  private readonly policies: CompiledPolicies
  private readonly peerPolicies = new Map<string, { canonical: string, compiled: CompiledPolicies | null }>()
  /** Per active-passive rule: the writer decided last time. */
  private readonly writers = new Map<number, string>()
  private mesh: MeshView | null = null
  private timer: NodeJS.Timeout | null = null

  constructor (
    readonly region: string,
    readonly regions: readonly string[],
    rules: readonly NamespaceRule[],
    private readonly logger: Logger,
    private readonly onAgreement: (peer: string, agreement: Agreement) => void = () => {},
  ) {
    super()
    // Every session of an active-passive document listens for role changes.
    this.setMaxListeners(0)
    this.policies = compilePolicies(rules, regions)
    this.canonical = canonicalRules(rules)
    this.digest = digestOf(this.canonical)
  }

  get rules (): readonly NamespaceRule[] {
    return this.policies.rules
  }

  /** Starts following the mesh for active-passive roles (re-checked every `checkMs`). */
  start (mesh: MeshView, checkMs = 100): void {
    this.mesh = mesh
    this.refresh()
    if (this.policies.rules.some(rule => rule.mode === 'active-passive')) {
      this.timer = setInterval(() => this.refresh(), checkMs)
      this.timer.unref()
    }
  }

  close (): void {
    if (this.timer !== null) clearInterval(this.timer)
  }

  resolve (docName: string): ResolvedPolicy {
    return this.policies.resolve(docName)
  }

  /** Whether this relay may hold the document at all. */
  allowsHere (docName: string): boolean {
    return this.policies.allows(docName, this.region)
  }

  /** Whether the document may go to `peer`: both sides' rules allow it there. */
  mayReceive (docName: string, peer: string): boolean {
    if (!this.policies.allows(docName, peer)) return false
    const theirs = this.peerPolicies.get(peer)
    // Rules not known yet (the link is still opening): nothing goes, not even presence.
    if (theirs === undefined) return false
    if (theirs.compiled === null) return this.resolve(docName).regions.length === this.regions.length
    return theirs.compiled.allows(docName, peer)
  }

  /** Whether any rule restricts documents to some of the regions. */
  get restricts (): boolean {
    return this.policies.rules.some(rule => rule.regions !== undefined)
  }

  /** Whether the document may live in only some of the regions (so it cannot be forwarded through the others). */
  restricted (docName: string): boolean {
    return this.resolve(docName).regions.length < this.regions.length
  }

  /**
   * Where the restricted documents that `peer` may hold can be found: the literal start of each
   * rule that keeps its documents to some regions, `peer` among them (a document such a rule
   * matches begins with it). Empty when there are none, so a link-up looks nothing up.
   */
  restrictedPrefixes (peer: string): string[] {
    return [...new Set(this.policies.rules
      .filter(rule => rule.regions?.includes(peer) === true && rule.regions.length < this.regions.length)
      .map(rule => globPrefix(rule.match)))]
  }

  /** The regions a write of this document must reach for `majority` and `all`. */
  allowedRegions (docName: string): string[] {
    return this.resolve(docName).regions
  }

  /** A peer's rules arrived (canonical JSON): compare them with ours and remember them. */
  setPeerRules (peer: string, canonical: string): Agreement {
    let compiled: CompiledPolicies | null = null
    try {
      compiled = compilePolicies(parseCanonicalRules(canonical), this.regions, { validate: false })
    } catch (err) {
      this.logger.log('error', 'a peer sent namespace rules this relay cannot read; sending it only documents allowed everywhere', { peer, error: (err as Error).message })
    }
    const previous = this.peerPolicies.get(peer)?.canonical
    this.peerPolicies.set(peer, { canonical, compiled })
    const agreement: Agreement = canonical === this.canonical ? 'match' : 'mismatch'
    if (agreement === 'mismatch' && previous !== canonical) {
      this.logger.log('error', 'namespace rules differ from a peer\'s; documents go only where both sides allow them. Give every relay the same "namespaces"', {
        peer, ours: this.digest, theirs: digestOf(canonical),
      })
    }
    this.onAgreement(peer, agreement)
    return agreement
  }

  peerPolicy (peer: string): PeerPolicyInfo {
    const theirs = this.peerPolicies.get(peer)
    if (theirs === undefined) return { digest: null, agreement: 'unknown' }
    return { digest: digestOf(theirs.canonical), agreement: theirs.canonical === this.canonical ? 'match' : 'mismatch' }
  }

  /** Where a client's session of the document belongs. */
  route (docName: string): Route {
    const policy = this.resolve(docName)
    if (!policy.regions.includes(this.region)) return { kind: 'elsewhere', region: this.nearestOf(policy.regions) }
    if (policy.mode !== 'active-passive') return { kind: 'here' }
    const writer = this.writers.get(policy.rule) ?? this.writerOf(policy, undefined)
    if (writer === this.region) return { kind: 'here' }
    if (this.mesh?.linkUp(writer) !== true) return { kind: 'hold', region: writer }
    return policy.standbyReads ? { kind: 'read-here', region: writer } : { kind: 'elsewhere', region: writer }
  }

  /** The writer of an active-passive namespace, as this relay sees it now. */
  private writerOf (policy: ResolvedPolicy, previous: string | undefined): string {
    const candidates = [policy.primary as string, ...policy.standby]
    const mesh = this.mesh
    if (mesh === null) return candidates[0] as string
    for (const candidate of candidates) {
      if (candidate === this.region) return candidate
      if (mesh.silentFor(candidate) >= policy.promoteAfterMs) continue
      // A standby acting as writer hands the role back only once the one before it holds
      // everything written here meanwhile.
      if (previous === this.region && !mesh.holdsOurWrites(candidate)) return this.region
      return candidate
    }
    return candidates[0] as string
  }

  /** Decides the writers again (on a timer; tests call it directly). */
  refresh (): void {
    const changed: number[] = []
    this.policies.rules.forEach((rule, i) => {
      if (rule.mode !== 'active-passive') return
      const previous = this.writers.get(i)
      const writer = this.writerOf(this.policies.ruleAt(i), previous)
      if (writer === previous) return
      this.writers.set(i, writer)
      if (previous !== undefined) {
        this.logger.log(writer === this.region ? 'warn' : 'info', 'active-passive writer changed', { namespace: rule.match, from: previous, to: writer })
        changed.push(i)
      }
    })
    if (changed.length > 0) this.emit('roles', changed)
  }

  /** The nearest region of a set, preferring those a link reaches now. */
  private nearestOf (regions: string[]): string {
    const byDistance = this.mesh?.peersByDistance() ?? []
    const ranked = [...byDistance.filter(r => regions.includes(r)), ...regions.filter(r => !byDistance.includes(r))]
    return ranked.find(r => this.mesh?.linkUp(r) === true) ?? ranked[0] ?? (regions[0] as string)
  }

  /** The writer decided for an active-passive rule (for /v1/regions and tests). */
  writerFor (rule: number): string | undefined {
    return this.writers.get(rule)
  }
}
