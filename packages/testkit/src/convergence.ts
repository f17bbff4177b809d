/**
 * Checks the end of a replication test: are all replicas identical, and is every element that
 * was acknowledged present (Jepsen's set-full check: lost, duplicated and stale counted)?
 */
import * as Y from 'yjs'
import { on, waitUntil } from './wait-for.js'

export interface ConvergenceReport {
  /** True when every replica encodes the same state vector and the same content. */
  identical: boolean
  /** Names of replicas that differ from the first one. */
  differing: string[]
}

/**
 * Compares replicas by Yjs snapshot (state vector and delete set) and by the content of every
 * shared type any of them has defined (a replica that never asked for a type by name still
 * holds its content, so each is read with the type another replica gave it).
 */
export const compareReplicas = (replicas: Record<string, Y.Doc>): ConvergenceReport => {
  const entries = Object.entries(replicas)
  const [first] = entries
  if (first === undefined) return { identical: true, differing: [] }
  const types = new Map<string, new () => Y.AbstractType<unknown>>()
  for (const [, doc] of entries) {
    for (const [name, type] of doc.share) {
      // A replica that received a type it never asked for holds it as a bare AbstractType.
      if (type.constructor !== Y.AbstractType || !types.has(name)) {
        types.set(name, type.constructor as new () => Y.AbstractType<unknown>)
      }
    }
  }
  const content = (doc: Y.Doc): string =>
    JSON.stringify([...types].sort().map(([name, Type]) => [name, doc.get(name, Type).toJSON()]))
  const reference = { snapshot: Y.snapshot(first[1]), content: content(first[1]) }
  const differing = entries
    .filter(([, doc]) => !Y.equalSnapshots(Y.snapshot(doc), reference.snapshot) || content(doc) !== reference.content)
    .map(([name]) => name)
  return { identical: differing.length === 0, differing }
}

export interface SetFullReport {
  acknowledged: number
  /** Acknowledged elements missing from a replica, by replica. */
  lost: Record<string, string[]>
  /** Elements present more than once, by replica. */
  duplicated: Record<string, string[]>
  /** Elements present that were never written (should never happen). */
  unexpected: Record<string, string[]>
  ok: boolean
}

/** Set-full check over a Y.Array of unique string elements named `name` in each replica. */
export const setFullCheck = (acknowledged: Iterable<string>, replicas: Record<string, Y.Doc>, { name = 'set', written }: { name?: string, written?: Iterable<string> } = {}): SetFullReport => {
  const acked = new Set(acknowledged)
  const allWritten = new Set(written ?? acked)
  for (const element of acked) allWritten.add(element)
  const report: SetFullReport = { acknowledged: acked.size, lost: {}, duplicated: {}, unexpected: {}, ok: true }
  for (const [replica, doc] of Object.entries(replicas)) {
    const seen = new Map<string, number>()
    for (const element of doc.getArray<string>(name).toArray()) seen.set(element, (seen.get(element) ?? 0) + 1)
    const lost = [...acked].filter(e => !seen.has(e))
    const duplicated = [...seen].filter(([, n]) => n > 1).map(([e]) => e)
    const unexpected = [...seen.keys()].filter(e => !allWritten.has(e))
    if (lost.length > 0) report.lost[replica] = lost
    if (duplicated.length > 0) report.duplicated[replica] = duplicated
    if (unexpected.length > 0) report.unexpected[replica] = unexpected
    if (lost.length + duplicated.length + unexpected.length > 0) report.ok = false
  }
  return report
}

/**
 * Waits until the array `name` of every doc holds exactly `expected`, in any order (nothing
 * missing, nothing twice), re-checking on each doc's updates.
 */
export const waitForExactSet = (
  docs: Y.Doc[],
  expected: Iterable<string>,
  { what, timeoutMs = 15_000, name = 'set' }: { what: string, timeoutMs?: number, name?: string },
): Promise<true> => {
  const want = JSON.stringify([...expected].sort())
  const holds = (doc: Y.Doc): boolean => JSON.stringify(doc.getArray<string>(name).toArray().sort()) === want
  return waitUntil(docs.map(doc => on(doc, 'update')), () => docs.every(holds), { what, timeoutMs })
}
