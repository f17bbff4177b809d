/**
 * The chaos suite (Jepsen's set-full check for georelay): clients in every region insert unique
 * elements into one shared Y.Array at each ack level while a nemesis cuts and heals links,
 * kill -9s and restarts relays and pauses them; optionally one region is then lost for good.
 * At the end everything is healed and restarted (but the lost region), the run waits for
 * quiescence, and every replica, relays' and clients', is checked: identical, and holding every
 * element whose acknowledgement promised it would survive.
 */
import * as prng from 'lib0/prng'
import type { WebsocketProvider } from 'y-websocket'
import * as Y from 'yjs'
import { ACK_LEVELS, type AckLevel } from '@georelay/core'
import { TestCluster } from './cluster.js'
import { ChaosClient, CHAOS_ARRAY, CHAOS_DOC, type ChaosClientOptions } from './chaos-client.js'
import { ChaosHistory, FAULT_KINDS, type FaultKind, quantile } from './chaos-history.js'
import { compareReplicas, setFullCheck } from './convergence.js'
import { Nemesis, type RegionClients } from './nemesis.js'
import { on, waitUntil } from './wait-for.js'
import { connectProvider, destroyProvider, waitSynced } from './y-websocket-client.js'

export interface ChaosOptions {
  seed: number
  /** How long clients write while the nemesis works, in ms. */
  durationMs: number
  regions?: string[]
  /** One client per region and level (default: every level). */
  levels?: AckLevel[]
  client?: Partial<ChaosClientOptions>
  /** Quiet time between two faults and how long one lasts, in ms: [min, max]. */
  faultGapMs?: [number, number]
  faultHoldMs?: [number, number]
  maxFaults?: number
  /** Link faults and process faults overlap (two lanes) instead of one fault at a time. */
  overlap?: boolean
  /**
   * A final phase of this many ms (0: none): one region is cut off from the others for the first
   * half, then lost for good (relay and clients) while the others write on.
   */
  finalLossMs?: number
  /** One-way delay between two relays, in ms. */
  interRegionDelayMs?: number
  /** The relays' `storage.compactAfterUpdates`: small, so that kills land during compactions. */
  compactAfterUpdates?: number
  /** How long the healed cluster is given to converge, in ms. */
  quiescenceTimeoutMs?: number
  /** Progress lines. */
  log?: (line: string) => void
}

export interface LevelFigures {
  written: number
  /** Acknowledged at this (the session's) level. */
  acknowledged: number
  lost: number
  duplicated: number
}

export interface ChaosSummary {
  seed: number
  regions: string[]
  /** Wall time of the whole run, set-up to checks, in ms. */
  wallMs: number
  operations: { writes: number, reads: number }
  /** By the session's ack level. */
  levels: Record<AckLevel, LevelFigures>
  faults: Record<FaultKind, number>
  /** Kills that took the region's clients down too (new clients replaced them). */
  killsWithClients: number
  /** The region lost for good in the final phase, if any. */
  lostRegion: string | null
  /** Elements acknowledged at `local` only, by the lost region's relay: allowed to vanish. */
  atRisk: number
  atRiskSurvived: number
  lost: number
  /** Up to 20 of them, for the report. */
  lostElements: string[]
  duplicated: number
  unexpected: number
  stale: number
  identical: boolean
  differing: string[]
  converged: boolean
  /** From the heal until every replica was identical and no write was pending, in ms. */
  convergeMs: number
  /** From the first acknowledgement until every surviving client saw the element, in ms. */
  visibilityMs: { p50: number, p99: number, max: number }
  crashes: { region: string, at: number, exit: string, log: string }[]
  replicas: string[]
}

const DEFAULTS = {
  regions: ['us-east', 'eu-west', 'ap-south'],
  client: { opIntervalMs: [40, 200], readShare: 0.2, nearMs: 2, farMs: 25 } as ChaosClientOptions,
  faultGapMs: [300, 1500] as [number, number],
  faultHoldMs: [800, 3000] as [number, number],
  interRegionDelayMs: 15,
  compactAfterUpdates: 40,
  quiescenceTimeoutMs: 60_000,
}

/** True when nothing acknowledged was lost or duplicated and every replica is the same. */
export const chaosPassed = (s: ChaosSummary): boolean =>
  s.lost === 0 && s.duplicated === 0 && s.unexpected === 0 && s.identical && s.converged && s.crashes.length === 0

/** `promise`, or a timeout error naming what was awaited. */
const within = async <T>(promise: Promise<T>, timeoutMs: number, what: string): Promise<T> => {
  let timer: ReturnType<typeof setTimeout> | undefined
  const timeout = new Promise<never>((_resolve, reject) => {
    timer = setTimeout(() => reject(new Error(`timed out after ${timeoutMs} ms waiting for ${what}`)), timeoutMs)
  })
  try {
    return await Promise.race([promise, timeout])
  } finally {
    clearTimeout(timer)
  }
}

/** The schedule's clock for the final phase: survivors write on for that long. */
const writeFor = (ms: number): Promise<void> => new Promise(resolve => setTimeout(resolve, ms))

export const runChaos = async (options: ChaosOptions): Promise<ChaosSummary> => {
  const started = performance.now()
  const regions = options.regions ?? DEFAULTS.regions
  const levels = options.levels ?? [...ACK_LEVELS]
  const clientOptions: ChaosClientOptions = { ...DEFAULTS.client, ...options.client }
  const log = options.log ?? (() => {})
  const gen = prng.create(options.seed)
  const seedFor = (): number => prng.uint32(gen, 0, 0x7fffffff)
  const history = new ChaosHistory()
  const cluster = await TestCluster.start({
    regions,
    mode: 'process',
    // A loaded machine can take long to start a relay; a slow start is not what is tested here.
    startTimeoutMs: 60_000,
    delayMs: () => options.interRegionDelayMs ?? DEFAULTS.interRegionDelayMs,
    config: { storage: { compactAfterUpdates: options.compactAfterUpdates ?? DEFAULTS.compactAfterUpdates } },
  })
  const clients: ChaosClient[] = []
  const readers = new Map<string, WebsocketProvider>()
  let writing = false
  const spawn = async (region: string, level: AckLevel): Promise<ChaosClient> => {
    const incarnation = clients.filter(c => c.home === region && c.level === level).length + 1
    const client = await ChaosClient.start(
      cluster,
      region,
      level,
      incarnation,
      history,
      prng.create(seedFor()),
      clientOptions,
    )
    clients.push(client)
    return client
  }
  const regionClients: RegionClients = {
    // In one turn: a client that outlived its relay would fail over and carry the writes away.
    die: async region => { await Promise.all(clients.filter(c => c.home === region && c.alive).map(c => c.die())) },
    replace: async region => {
      for (const level of levels) {
        const client = await spawn(region, level)
        void client.session.synced.then(() => { if (writing) client.startWriting() })
      }
    },
  }
  const nemesis = new Nemesis(cluster, history, prng.create(seedFor()), {
    clients: regionClients,
    gapMs: options.faultGapMs ?? DEFAULTS.faultGapMs,
    holdMs: options.faultHoldMs ?? DEFAULTS.faultHoldMs,
    ...(options.maxFaults === undefined ? {} : { maxFaults: options.maxFaults }),
    overlap: options.overlap ?? false,
    log,
  })
  try {
    for (const region of regions) {
      for (const level of levels) await spawn(region, level)
    }
    await within(Promise.all(clients.map(c => c.session.synced)), 30_000, 'every chaos client to sync')
    log(`${clients.length} clients in ${regions.length} regions, seed ${options.seed}, writing for ${(options.durationMs / 1000).toFixed(0)} s`)
    writing = true
    for (const c of clients) c.startWriting()

    await nemesis.run(history.now() + options.durationMs)
    await nemesis.restoreAll()
    let lostRegion: string | null = null
    if ((options.finalLossMs ?? 0) > 0) {
      lostRegion = prng.oneOf(gen, regions)
      // The whole region goes, after a while on its own: its relay with the writes only it had
      // acknowledged, and its clients with whatever they had not sent.
      const finalLossMs = options.finalLossMs ?? 0
      // Its clients may still be away after an earlier fault: let them come home first, or the
      // writes it alone acknowledges would be few.
      const home = clients.filter(c => c.alive && c.home === lostRegion)
      await waitUntil(home.map(c => on(c.client, 'region')), () => home.every(c => c.region === lostRegion), { what: `the clients of ${lostRegion} to come home`, timeoutMs: 15_000 })
        .catch(err => log((err as Error).message))
      await nemesis.isolate(lostRegion, finalLossMs / 2)
      const dying = regionClients.die(lostRegion)
      await nemesis.loseRegion(lostRegion)
      await dying
      await writeFor(finalLossMs / 2)
    }
    for (const c of clients) c.stopWriting()

    log('heal everything, restart what is down, wait for quiescence')
    const healAt = performance.now()
    await nemesis.restoreAll()
    for (const region of nemesis.regions) readers.set(region, connectProvider(cluster.url(region), CHAOS_DOC))
    await Promise.all([...readers.values()].map(p => waitSynced(p, 30_000)))
    const live = clients.filter(c => c.alive)
    const replicas = (): Record<string, Y.Doc> => ({
      ...Object.fromEntries([...readers].map(([region, p]) => [`relay ${region}`, p.doc])),
      ...Object.fromEntries(live.map(c => [`client ${c.name}`, c.doc])),
    })
    // `all` can never be reached without the lost region: those writes stay pending.
    const settled = (c: ChaosClient): boolean => c.pending === 0 || (c.level === 'all' && lostRegion !== null)
    const docs = Object.values(replicas())
    const quiet = (): boolean => {
      if (!live.every(settled)) return false
      // State vectors first: cheap, and equal once nothing is in flight.
      const [first, ...rest] = docs.map(d => Buffer.from(Y.encodeStateVector(d)))
      if (first === undefined || !rest.every(sv => sv.equals(first))) return false
      return compareReplicas(replicas()).identical
    }
    let converged = true
    try {
      await waitUntil([...docs.map(d => on(d, 'update')), ...live.map(c => on(c.session, 'ack'))], quiet, { what: 'quiescence', timeoutMs: options.quiescenceTimeoutMs ?? DEFAULTS.quiescenceTimeoutMs })
    } catch (err) {
      converged = false
      log((err as Error).message)
    }
    const convergeMs = performance.now() - healAt

    const dead = new Set(lostRegion === null ? [] : [lostRegion])
    const mustSurvive = new Set(history.mustSurvive(dead))
    const written = [...history.elements.keys()]
    const final = replicas()
    const report = setFullCheck(mustSurvive, final, { name: CHAOS_ARRAY, written })
    const lost = new Set(Object.values(report.lost).flat())
    const duplicated = new Set(Object.values(report.duplicated).flat())
    const unexpected = new Set(Object.values(report.unexpected).flat())
    const comparison = compareReplicas(final)

    const levelFigures = Object.fromEntries(levels.map(level => {
      const mine = [...history.elements.values()].filter(e => e.level === level)
      return [level, {
        written: mine.length,
        acknowledged: mine.filter(e => e.acks[level] !== undefined).length,
        lost: mine.filter(e => lost.has(e.element)).length,
        duplicated: mine.filter(e => duplicated.has(e.element)).length,
      }]
    })) as Record<AckLevel, LevelFigures>
    const atRisk = [...history.elements.values()].filter(e => e.acks.local !== undefined && !mustSurvive.has(e.element))
    const anyReplica = Object.values(final)[0]
    const present = new Set(anyReplica?.getArray<string>(CHAOS_ARRAY).toArray() ?? [])
    const lags = history.visibilityLags(live.map(c => c.name))
    const reads = [...history.reads.values()].reduce((n, r) => n + r.length, 0)
    return {
      seed: options.seed,
      regions,
      wallMs: performance.now() - started,
      operations: { writes: history.elements.size, reads },
      levels: levelFigures,
      faults: Object.fromEntries(
        FAULT_KINDS.map(kind => [kind, history.faults.filter(f => f.kind === kind).length]),
      ) as Record<FaultKind, number>,
      killsWithClients: history.faults.filter(f => f.kind === 'kill' && f.target.endsWith('with its clients')).length,
      lostRegion,
      atRisk: atRisk.length,
      atRiskSurvived: atRisk.filter(e => present.has(e.element)).length,
      lost: lost.size,
      lostElements: [...lost].slice(0, 20),
      duplicated: duplicated.size,
      unexpected: unexpected.size,
      stale: history.stale(live.map(c => c.name)),
      identical: comparison.identical,
      differing: comparison.differing,
      converged,
      convergeMs,
      visibilityMs: { p50: quantile(lags, 0.5), p99: quantile(lags, 0.99), max: lags[lags.length - 1] ?? 0 },
      crashes: history.crashes,
      replicas: Object.keys(final),
    }
  } finally {
    nemesis.stop()
    for (const c of clients) await c.close()
    for (const p of readers.values()) destroyProvider(p)
    nemesis.retire()
    await cluster.close()
  }
}

/** The summary as a table for people. */
export const formatSummary = (s: ChaosSummary): string => {
  const rows: string[][] = [['level', 'written', 'acknowledged', 'lost', 'duplicated']]
  for (const [level, f] of Object.entries(s.levels)) {
    rows.push([level, String(f.written), String(f.acknowledged), String(f.lost), String(f.duplicated)])
  }
  const widths = rows[0]?.map((_, i) => Math.max(...rows.map(r => (r[i] ?? '').length))) ?? []
  const table = rows.map(r => r.map((cell, i) => i === 0 ? cell.padEnd(widths[i] ?? 0) : cell.padStart(widths[i] ?? 0)).join('  ')).join('\n')
  const faults = Object.entries(s.faults).map(([kind, n]) => `${kind} ${n}`).join(', ')
  const lines = [
    `chaos run, seed ${s.seed}, regions ${s.regions.join(', ')}: ${(s.wallMs / 1000).toFixed(1)} s`,
    `operations        ${s.operations.writes + s.operations.reads} (${s.operations.writes} writes, ${s.operations.reads} reads)`,
    table,
    `faults injected   ${Object.values(s.faults).reduce((a, b) => a + b, 0)} (${faults}; ${s.killsWithClients} kills took the region's clients too)${s.lostRegion === null ? '' : `, then ${s.lostRegion} lost for good`}`,
    ...(s.lostRegion === null ? [] : [`at risk           ${s.atRisk} acknowledged at local by ${s.lostRegion} only; ${s.atRiskSurvived} survived anyway`]),
    `lost              ${s.lost}${s.lost > 0 ? ` (${s.lostElements.join(', ')}${s.lost > s.lostElements.length ? ', …' : ''})` : ''}`,
    `duplicated        ${s.duplicated}`,
    `unexpected        ${s.unexpected}`,
    `stale             ${s.stale} (acknowledged, missing from a later read elsewhere, visible in the end)`,
    `replicas          ${s.replicas.length} ${s.identical ? 'identical' : `DIFFER: ${s.differing.join(', ')}`}`,
    `time to converge  ${s.converged ? `${s.convergeMs.toFixed(0)} ms` : `did not converge within ${s.convergeMs.toFixed(0)} ms`}`,
    `ack to visible    p50 ${s.visibilityMs.p50.toFixed(0)} ms, p99 ${s.visibilityMs.p99.toFixed(0)} ms, max ${s.visibilityMs.max.toFixed(0)} ms`,
    `relay crashes     ${s.crashes.length}${s.crashes.map(c => `\n  ${c.region} (${c.exit}) at ${(c.at / 1000).toFixed(1)} s:\n${c.log}`).join('')}`,
  ]
  return lines.join('\n')
}
