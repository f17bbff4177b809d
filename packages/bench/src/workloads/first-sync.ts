/**
 * First sync: how long an unchanged `@hocuspocus/provider` (4.x, and 3.x) takes from
 * `new HocuspocusProvider(...)` to its `synced` event, against georelay's `/v1/hocuspocus` and
 * against `@hocuspocus/server` (its defaults, no extensions), both child processes started here.
 * The providers are the client side: they run in this process, each on a socket of its own,
 * destroyed (and its socket closed) after its sample.
 *
 * Two documents:
 * - empty: a fresh name for every sample, so no server answers from a document it already holds;
 * - preloaded: a trace's final state, written once through a provider that stays connected while
 *   the samples run. Hocuspocus without a persistence extension keeps a document only while a
 *   connection holds it, so the holder keeps both servers answering from a document in memory
 *   (georelay would otherwise load it from its store, which Hocuspocus has no equivalent of).
 *
 * Each is measured sequentially (one provider at a time) and in bursts of providers started at
 * once; the two servers alternate sample by sample, so that noise on the machine hits both.
 */
import type WebSocket from 'ws'
import * as Y from 'yjs'
import {
  type HocuspocusVersion, type TestHocuspocusProvider, connectHocuspocus, destroyHocuspocus, waitHocuspocusSaved,
  waitHocuspocusSynced,
} from '@georelay/testkit'
import { type Contender, startContender } from '../contenders.js'
import { ownCpuSeconds } from '../proc-stats.js'
import { percentile, quantiles } from '../stats.js'

export type FirstSyncServer = 'georelay' | 'hocuspocus'
export type FirstSyncCase = 'empty' | 'preloaded'
export type FirstSyncMode = 'sequential' | 'concurrent'

export const FIRST_SYNC_SERVERS: readonly FirstSyncServer[] = ['georelay', 'hocuspocus']
export const FIRST_SYNC_CASES: readonly FirstSyncCase[] = ['empty', 'preloaded']
export const FIRST_SYNC_MODES: readonly FirstSyncMode[] = ['sequential', 'concurrent']

/** georelay's endpoint for unchanged Hocuspocus providers (docs/protocol.md). */
const GEORELAY_HOCUSPOCUS_PATH = '/v1/hocuspocus'
/** The shared type the preloaded state is written to (as everywhere in the bench). */
const TEXT = 't'

export interface FirstSyncOptions {
  /** The preloaded document: a trace's final state, one update of the Y.Text `t`. */
  state: Uint8Array
  /** Providers connected one after another, per case, version and server. */
  sequential: number
  /** Providers started at once in one burst… */
  concurrent: number
  /** …and how many bursts, per case, version and server (0: no concurrent rows). */
  bursts: number
  /** Provider major versions measured. */
  versions: HocuspocusVersion[]
  /** Unmeasured connects per server and version first: a fresh process compiles as it goes. */
  warmup?: number
  /** Per sample, and for the preloaded document to be written. */
  timeoutMs?: number
}

/** Milliseconds from `new HocuspocusProvider` to `synced` (nearest rank). */
export interface SyncTimes {
  count: number
  p50: number
  p95: number
  p99: number
  max: number
}

export interface FirstSyncRun {
  case: FirstSyncCase
  mode: FirstSyncMode
  version: HocuspocusVersion
  server: FirstSyncServer
  label: string
  ms: SyncTimes
  quantiles: number[]
  /**
   * The server's CPU (from /proc, in clock ticks of 10 ms) over its rounds of this row, per
   * sample: everything it did meanwhile, closing the previous sockets included.
   */
  serverCpuMsPerSync: number
  /** Share of one core this process (the providers) used during the server's rounds; near 1 it was the limit. */
  loadGenCpuShare: number
  error?: string
}

export interface FirstSyncResult {
  /** Size of the preloaded document's state. */
  docBytes: number
  /** Characters of its text, which every preloaded sample checks it received. */
  textLength: number
  sequential: number
  concurrent: number
  bursts: number
  warmup: number
  versions: HocuspocusVersion[]
  labels: Record<FirstSyncServer, string>
  runs: FirstSyncRun[]
  error?: string
}

export const syncTimes = (samples: readonly number[]): SyncTimes => {
  const sorted = Array.from(Float64Array.from(samples).sort())
  return {
    count: sorted.length,
    p50: percentile(sorted, 0.5),
    p95: percentile(sorted, 0.95),
    p99: percentile(sorted, 0.99),
    max: sorted[sorted.length - 1] ?? NaN,
  }
}

/** What this workload reads of a provider beyond the testkit's interface: its own socket (`ws`). */
interface ProviderInternals {
  configuration: { websocketProvider: { webSocket: WebSocket | null } }
}

const socketOf = (provider: TestHocuspocusProvider): WebSocket | null =>
  (provider as unknown as ProviderInternals).configuration.websocketProvider.webSocket

/** Resolves once the socket is closed (the close handshake done), or terminated after `timeoutMs`. */
const socketClosed = (ws: WebSocket | null, timeoutMs = 5000): Promise<void> => new Promise(resolve => {
  if (ws === null || ws.readyState === ws.CLOSED) return resolve()
  const timer = setTimeout(() => {
    ws.terminate()
    resolve()
  }, timeoutMs)
  ws.once('close', () => {
    clearTimeout(timer)
    resolve()
  })
})

interface Opened {
  provider: TestHocuspocusProvider
  /** Milliseconds to `synced`. */
  synced: Promise<number>
}

/** A provider on a socket of its own, timed from its construction to its `synced` event. */
const open = (version: HocuspocusVersion, url: string, name: string, timeoutMs: number): Opened => {
  const document = new Y.Doc()
  let syncedAt = NaN
  const started = performance.now()
  const provider = connectHocuspocus(version, url, name, { document })
  provider.on('synced', () => { if (Number.isNaN(syncedAt)) syncedAt = performance.now() })
  // Registered before the wait's own listener: the time is taken in the event itself.
  return { provider, synced: waitHocuspocusSynced(provider, timeoutMs).then(() => syncedAt - started) }
}

/** Destroys the providers and waits for their sockets to close, so the next sample starts alone. */
const dispose = async (providers: TestHocuspocusProvider[]): Promise<void> => {
  const sockets = providers.map(socketOf)
  for (const provider of providers) destroyHocuspocus(provider)
  await Promise.all(sockets.map(ws => socketClosed(ws)))
}

/** `names.length` providers started at once; the time of each, once all are synced and checked. */
const connectAll = async (
  version: HocuspocusVersion, url: string, names: string[], textLength: number, timeoutMs: number,
): Promise<number[]> => {
  const opened = names.map(name => open(version, url, name, timeoutMs))
  try {
    const times = await Promise.all(opened.map(o => o.synced))
    for (const [i, o] of opened.entries()) {
      const length = o.provider.document.getText(TEXT).length
      if (length !== textLength) throw new Error(`${names[i]} synced with ${length} characters, not ${textLength}`)
    }
    return times
  } finally {
    await dispose(opened.map(o => o.provider))
  }
}

/** Writes the state through a 4.x provider, waits until the server confirms it, and keeps it open. */
const preload = async (
  url: string, name: string, state: Uint8Array, timeoutMs: number,
): Promise<TestHocuspocusProvider> => {
  const document = new Y.Doc()
  Y.applyUpdate(document, state)
  const holder = connectHocuspocus(4, url, name, { document })
  try {
    await waitHocuspocusSynced(holder, timeoutMs)
    await waitHocuspocusSaved(holder, timeoutMs)
    return holder
  } catch (err) {
    await dispose([holder])
    throw err
  }
}

const urlOf = (server: FirstSyncServer, contender: Contender): string =>
  server === 'georelay' ? `${contender.url}${GEORELAY_HOCUSPOCUS_PATH}` : contender.url

/** What one server's rounds of one row added up to. */
interface Tally {
  times: number[]
  serverCpuSeconds: number
  ownCpuSeconds: number
  wallSeconds: number
  error?: string
}

/** One row of the table: `rounds` rounds of `perRound` providers started at once. */
interface RowPlan {
  version: HocuspocusVersion
  rounds: number
  perRound: number
  /** Each round's document names. */
  names: (count: number) => string[]
  /** Characters every provider must hold once synced. */
  textLength: number
  timeoutMs: number
}

/** Measures one row on every server, the servers taking turns going first. */
const measureRow = async (
  servers: ReadonlyMap<FirstSyncServer, { contender: Contender, url: string }>,
  { version, rounds, perRound, names, textLength, timeoutMs }: RowPlan,
): Promise<Map<FirstSyncServer, Tally>> => {
  const tallies = new Map<FirstSyncServer, Tally>(FIRST_SYNC_SERVERS.map(s => [s, {
    times: [], serverCpuSeconds: 0, ownCpuSeconds: 0, wallSeconds: 0,
  }]))
  for (let round = 0; round < rounds; round++) {
    const order = round % 2 === 0 ? FIRST_SYNC_SERVERS : [...FIRST_SYNC_SERVERS].reverse()
    for (const server of order) {
      const tally = tallies.get(server) as Tally
      const { contender, url } = servers.get(server) as { contender: Contender, url: string }
      if (tally.error !== undefined) continue
      const before = { server: contender.sample().cpuSeconds, own: ownCpuSeconds(), wall: performance.now() }
      try {
        tally.times.push(...await connectAll(version, url, names(perRound), textLength, timeoutMs))
      } catch (err) {
        tally.error = (err as Error).message
      }
      tally.wallSeconds += (performance.now() - before.wall) / 1000
      tally.ownCpuSeconds += ownCpuSeconds() - before.own
      tally.serverCpuSeconds += contender.sample().cpuSeconds - before.server
    }
  }
  return tallies
}

export const runFirstSync = async ({
  state, sequential, concurrent, bursts, versions, warmup = 10, timeoutMs = 15_000,
}: FirstSyncOptions): Promise<FirstSyncResult> => {
  const textLength = ((): number => {
    const doc = new Y.Doc()
    Y.applyUpdate(doc, state)
    const length = doc.getText(TEXT).length
    doc.destroy()
    return length
  })()
  const result: FirstSyncResult = {
    docBytes: state.length,
    textLength,
    sequential,
    concurrent,
    bursts,
    warmup,
    versions,
    labels: { georelay: 'georelay', hocuspocus: '@hocuspocus/server' },
    runs: [],
  }
  const servers = new Map<FirstSyncServer, { contender: Contender, url: string }>()
  const holders: TestHocuspocusProvider[] = []
  let fresh = 0
  const freshName = (prefix: string): string => `bench/first-sync/${prefix}-${fresh++}`
  const preloadedName = 'bench/first-sync/preloaded'
  try {
    for (const server of FIRST_SYNC_SERVERS) {
      const contender = await startContender(server)
      servers.set(server, { contender, url: urlOf(server, contender) })
      result.labels[server] = `${contender.label}${server === 'georelay' ? ` ${GEORELAY_HOCUSPOCUS_PATH}` : ''}`
    }
    for (const version of versions) {
      for (const { url } of servers.values()) {
        for (let i = 0; i < warmup; i++) await connectAll(version, url, [freshName(`warmup-v${version}`)], 0, timeoutMs)
      }
    }
    for (const { url } of servers.values()) holders.push(await preload(url, preloadedName, state, timeoutMs))
    for (const docCase of FIRST_SYNC_CASES) {
      for (const version of versions) {
        const names = (count: number): string[] =>
          Array.from({ length: count }, () => docCase === 'empty' ? freshName(`empty-v${version}`) : preloadedName)
        for (const mode of FIRST_SYNC_MODES) {
          const [rounds, perRound] = mode === 'sequential' ? [sequential, 1] : [bursts, concurrent]
          if (rounds === 0 || perRound === 0) continue
          const tallies = await measureRow(servers, {
            version, rounds, perRound, names, textLength: docCase === 'empty' ? 0 : textLength, timeoutMs,
          })
          for (const [server, tally] of tallies) {
            result.runs.push({
              case: docCase,
              mode,
              version,
              server,
              label: result.labels[server],
              ms: syncTimes(tally.times),
              quantiles: quantiles(tally.times),
              serverCpuMsPerSync: tally.serverCpuSeconds * 1000 / tally.times.length,
              loadGenCpuShare: tally.ownCpuSeconds / tally.wallSeconds,
              ...(tally.error === undefined ? {} : { error: tally.error }),
            })
          }
        }
      }
    }
  } catch (err) {
    result.error = (err as Error).message
  } finally {
    await dispose(holders)
    for (const { contender } of servers.values()) await contender.stop()
  }
  return result
}
