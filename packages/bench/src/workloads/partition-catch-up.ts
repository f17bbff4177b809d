/**
 * Catching up after a long partition: two (or three) in-process regions behind the WAN
 * simulator, r0 cut off from the others while writers on both sides of the cut type into the
 * same documents at a fixed rate (precomputed keystroke updates over raw y-websocket sockets,
 * so the writers cost next to nothing). Then the cut heals, and what it takes to agree again is
 * measured: time from the heal to every link up and to every document equal in every region,
 * and the cross-region bytes sent from the heal until then, in all, per update written during
 * the partition, and by message kind.
 */
import { performance } from 'node:perf_hooks'
import * as Y from 'yjs'
import {
  type EditingTrace, type MeshBytes, type Subscribe, TestCluster, every, on, readStoredDoc, waitUntil,
} from '@georelay/testkit'
import type { PeerInfo } from '@georelay/relay'
import { type LoadSocket, openLoadSocket } from '../load-socket.js'
import { barChart } from '../svg-chart.js'
import { keystrokeUpdates } from '../trace-updates.js'
import { updateFrame } from '../wire.js'
import { table } from '../markdown-table.js'
import { type CaptureMark, markCapture, tallyBetween } from './region-scale.js'

export interface PartitionCatchUpOptions {
  trace: EditingTrace
  /** How long r0 is cut off while both sides write (the issue asks for 600 s; 10 s is a quick run). */
  partitionSeconds: number
  /** Updates per second written on each side of the cut (default 1,000), spread over the documents. */
  ratePerSide?: number
  /** Documents both sides write (default 8; raised so that none needs more keystrokes than the trace holds). */
  docs?: number
  /** 2 (default) or 3: r0 alone on one side of the cut, the others on the other; writers in r0 and r1. */
  regions?: number
  /** One-way delay between every pair of regions (default 20 ms). */
  delayMs?: number
  /** Peer-link timing (default the relay's: heartbeat 1000 ms, link timeout 3000 ms). */
  heartbeatMs?: number
  linkTimeoutMs?: number
  /** Bytes by message kind from a WAN capture (default true; the capture holds every byte the WAN carries). */
  byKind?: boolean
  /** How long the heal may take to converge before the run fails (default 300 s). */
  convergeTimeoutMs?: number
  onProgress?: (line: string) => void
}

export interface PartitionCatchUpResult {
  regions: number
  docs: number
  delayMs: number
  heartbeatMs: number
  linkTimeoutMs: number
  /** The partition as it lasted, writing all along. */
  partitionSeconds: number
  ratePerSide: number
  /** Updates written during the partition, per writing region. */
  updatesPerSide: Record<string, number>
  updatesWritten: number
  clientUpdateBytes: number
  /** From the cut to r0's relay seeing a peer link down (null: the links outlived the partition). */
  linkDownAfterMs: number | null
  /** Bytes the cut held when it healed (sent before the heal, delivered after). */
  heldBytesAtHeal: number
  healToLinksUpMs: number
  /** Heal to every relay's writes acknowledged by every peer and every document equal in every region. */
  healToConvergedMs: number
  /** Cross-region bytes sent from the heal until converged (WAN simulator bytesSent). */
  healBytes: number
  bytesPerUpdate: number
  bytesPerUpdateByte: number
  /** The same bytes by peer-message kind (null without the capture). */
  byKind: MeshBytes | null
  /** How many messages of each kind (null without the capture): catch-ups per document and direction, batches… */
  messagesByKind: Record<string, number> | null
  /** Every document's state vector and text equal in every region, holding every write. */
  converged: boolean
  rssBytesAtHeal: number
  error?: string
}

const DEFAULTS = {
  ratePerSide: 1000, docs: 8, regions: 2, delayMs: 20, heartbeatMs: 1000, linkTimeoutMs: 3000, byKind: true,
  convergeTimeoutMs: 300_000,
}
/** The writing regions; each writer's Yjs client id is its base plus the document's index (never shared). */
const WRITERS = [{ region: 'r0', clientIdBase: 1_000_000 }, { region: 'r1', clientIdBase: 2_000_000 }] as const
const TICK_MS = 5

const sleep = (ms: number): Promise<void> => new Promise(resolve => setTimeout(resolve, ms))

const docName = (i: number): string => `catch-up/${i}`

const wanTotal = (cluster: TestCluster, field: 'bytesSent' | 'bytesHeld'): number =>
  cluster.wan.stats().reduce((n, s) => n + s[field], 0)

/** One writer of one document, its keystrokes precomputed. */
interface DocWriter {
  socket: LoadSocket
  clientId: number
  frames: Uint8Array[]
  /** The writer's clock after its first j + 1 keystrokes (a deletion adds none). */
  clocks: number[]
  /** Bytes of its first j updates (bytes[0] = 0). */
  bytes: number[]
}

interface Side {
  region: string
  writers: DocWriter[]
  /** Keystrokes sent, over all documents: keystroke i goes to document i mod docs. */
  sent: number
}

/** Sends what is due at `ratePerSide` until `seconds` have passed, on every side in step. */
const writeFor = async (
  sides: Side[], ratePerSide: number, seconds: number, onProgress: (line: string) => void,
): Promise<number> => {
  const start = performance.now()
  let reported = 0
  for (;;) {
    const elapsed = performance.now() - start
    if (elapsed >= seconds * 1000) return elapsed / 1000
    const due = Math.floor(elapsed * ratePerSide / 1000)
    for (const side of sides) {
      const docs = side.writers.length
      const limit = Math.min(due, Math.min(...side.writers.map(w => w.frames.length)) * docs)
      for (; side.sent < limit; side.sent++) {
        const writer = side.writers[side.sent % docs] as DocWriter
        writer.socket.send(writer.frames[Math.floor(side.sent / docs)] as Uint8Array)
      }
    }
    if (elapsed - reported >= 60_000) {
      reported = elapsed
      onProgress(`  partition: ${(elapsed / 1000).toFixed(0)} s of ${seconds} s written`)
    }
    await sleep(TICK_MS)
  }
}

/** Keystrokes of `side` that went to document `doc`. */
const sentTo = (side: Side, doc: number): number => {
  const docs = side.writers.length
  return Math.floor(side.sent / docs) + (doc < side.sent % docs ? 1 : 0)
}

/** Bytes of the updates `side` sent, over every document. */
const sentBytes = (side: Side): number =>
  side.writers.reduce((n, writer, d) => n + (writer.bytes[sentTo(side, d)] as number), 0)

/**
 * Whether every document is the same in every region's store (state vector and text) and
 * holds every keystroke both writers sent. Read from the stores: what each region durably has.
 */
const sameEverywhere = async (
  cluster: TestCluster, regions: string[], sides: Side[], docs: number,
): Promise<boolean> => {
  for (let d = 0; d < docs; d++) {
    const views: { sv: string, text: string }[] = []
    for (const region of regions) {
      const doc = await readStoredDoc(cluster.store(region), docName(d))
      try {
        const complete = sides.every(side => {
          const writer = side.writers[d] as DocWriter
          const sent = sentTo(side, d)
          return Y.getState(doc.store, writer.clientId) >= (sent === 0 ? 0 : writer.clocks[sent - 1] as number)
        })
        if (!complete) return false
        views.push({ sv: Buffer.from(Y.encodeStateVector(doc)).toString('base64'), text: doc.getText('t').toString() })
      } finally {
        doc.destroy()
      }
    }
    if (views.some(v => v.sv !== views[0]?.sv || v.text !== views[0]?.text)) return false
  }
  return true
}

const allPeers = (cluster: TestCluster, regions: string[]): PeerInfo[] => regions.flatMap(r => cluster.relay(r).peers())

const peerEvents = (cluster: TestCluster, regions: string[]): Subscribe[] =>
  regions.map(r => on(cluster.relay(r), 'peers'))

const PRINTABLE = Array.from({ length: 95 }, (_, i) => String.fromCharCode(32 + i))

/**
 * The trace with its printable characters passed through a permutation of its own: the same
 * edits (positions, lengths) typing other text. Every document and side types a variant of its
 * own, since the same text in every document would flatter the compression of the peer links
 * (whose deflate window spans messages), as it would flatter that of a catch-up.
 */
const variantOf = (trace: EditingTrace, seed: number): EditingTrace => {
  let state = (seed * 2654435761) >>> 0 || 1
  const random = (): number => {
    state ^= state << 13; state >>>= 0
    state ^= state >>> 17
    state ^= state << 5; state >>>= 0
    return state / 0x100000000
  }
  const target = [...PRINTABLE]
  for (let i = target.length - 1; i > 0; i--) {
    const j = Math.floor(random() * (i + 1))
    ;[target[i], target[j]] = [target[j] as string, target[i] as string]
  }
  const map = new Map(PRINTABLE.map((c, i) => [c, target[i] as string]))
  const patches = trace.patches.map(([at, deleted, text]) =>
    [at, deleted, [...text].map(c => map.get(c) ?? c).join('')] as [number, number, string])
  return { patches, endContent: null }
}

/** Precomputes a writer's keystrokes as frames, with what the convergence check and byte count need of them. */
const docWriter = (trace: EditingTrace, count: number, clientId: number, socket: LoadSocket): DocWriter => {
  const keystrokes = keystrokeUpdates(variantOf(trace, clientId), count, clientId)
  const clocks: number[] = []
  let clock = 0
  keystrokes.inserts.forEach((inserts, j) => {
    if (inserts) clock = keystrokes.clockNeeded[j] as number
    clocks.push(clock)
  })
  const bytes = [0]
  for (const update of keystrokes.updates) bytes.push((bytes[bytes.length - 1] as number) + update.length)
  // Only the frames are kept (at 1,000 updates/s for 10 minutes the updates would double what
  // this holds); a y-websocket frame names no document.
  const frames = keystrokes.updates.map(update => updateFrame('y-websocket', '', update))
  return { socket, clientId, frames, clocks, bytes }
}

const openSide = async (
  cluster: TestCluster, { region, clientIdBase }: typeof WRITERS[number], trace: EditingTrace, perDoc: number,
  docs: number,
): Promise<Side> => {
  const server = {
    label: `georelay ${region}`, framing: 'y-websocket' as const, speaksFirst: true, url: cluster.url(region),
  }
  const writers: DocWriter[] = []
  for (let d = 0; d < docs; d++) {
    const socket = await openLoadSocket(server, docName(d))
    writers.push(docWriter(trace, Math.min(trace.patches.length, perDoc), clientIdBase + d, socket))
  }
  return { region, writers, sent: 0 }
}

/**
 * Documents enough that no document needs more keystrokes than one pass over the trace gives
 * (a writer cannot type past the trace's end into the same document).
 */
const docsNeeded = (trace: EditingTrace, total: number, asked: number): number => {
  const available = keystrokeUpdates(trace, Math.min(trace.patches.length, Math.ceil(total / asked))).updates.length
  return Math.max(asked, Math.ceil(total / Math.max(1, available)))
}

export const runPartitionCatchUp = async (options: PartitionCatchUpOptions): Promise<PartitionCatchUpResult> => {
  const o = { ...DEFAULTS, ...options }
  const { onProgress = () => {} } = options
  const regions = Array.from({ length: o.regions }, (_, i) => `r${i}`)
  const total = Math.ceil(o.ratePerSide * o.partitionSeconds)
  const docs = docsNeeded(o.trace, total, o.docs)
  const result: PartitionCatchUpResult = {
    regions: o.regions, docs, delayMs: o.delayMs, heartbeatMs: o.heartbeatMs, linkTimeoutMs: o.linkTimeoutMs,
    partitionSeconds: 0, ratePerSide: o.ratePerSide, updatesPerSide: {}, updatesWritten: 0, clientUpdateBytes: 0,
    linkDownAfterMs: null, heldBytesAtHeal: 0, healToLinksUpMs: NaN, healToConvergedMs: NaN, healBytes: NaN,
    bytesPerUpdate: NaN, bytesPerUpdateByte: NaN, byKind: null, messagesByKind: null, converged: false,
    rssBytesAtHeal: 0,
  }
  if (o.regions < 2 || o.regions > 3) return { ...result, error: `regions must be 2 or 3, not ${o.regions}` }
  const cluster = await TestCluster.start({
    regions,
    delayMs: () => o.delayMs,
    wan: { capture: o.byKind },
    config: {
      replication: { batchWindowMs: 5, heartbeatMs: o.heartbeatMs, linkTimeoutMs: o.linkTimeoutMs },
      limits: { messagesPerSecond: { rate: 0, burst: 0 } },
    },
  })
  const sides: Side[] = []
  let marks: [CaptureMark, CaptureMark] | null = null
  try {
    const linked = (): boolean => allPeers(cluster, regions).every(p => p.state === 'up' && p.inbound)
    await waitUntil(peerEvents(cluster, regions), linked, { what: 'every peer link up', timeoutMs: 30_000 })
    for (const writer of WRITERS) sides.push(await openSide(cluster, writer, o.trace, Math.ceil(total / docs), docs))

    const cutAt = performance.now()
    const r0 = cluster.relay('r0')
    const noteDown = (): void => {
      if (result.linkDownAfterMs !== null || r0.peers().every(p => p.state === 'up')) return
      result.linkDownAfterMs = performance.now() - cutAt
    }
    r0.on('peers', noteDown)
    cluster.wan.partition('r0')
    onProgress(`partition: r0 cut off for ${o.partitionSeconds} s, ${o.ratePerSide} updates/s on each side ` +
      `into ${docs} documents…`)
    result.partitionSeconds = await writeFor(sides, o.ratePerSide, o.partitionSeconds, onProgress)
    r0.off('peers', noteDown)
    for (const side of sides) result.updatesPerSide[side.region] = side.sent
    result.updatesWritten = sides.reduce((n, s) => n + s.sent, 0)
    result.clientUpdateBytes = sides.reduce((n, side) => n + sentBytes(side), 0)

    result.heldBytesAtHeal = wanTotal(cluster, 'bytesHeld')
    result.rssBytesAtHeal = process.memoryUsage().rss
    const healMark = o.byKind ? markCapture(cluster.wan, regions) : null
    const sentAtHeal = wanTotal(cluster, 'bytesSent')
    const healAt = performance.now()
    cluster.wan.healRegion('r0')
    await waitUntil(peerEvents(cluster, regions), linked,
      { what: 'every peer link up after the heal', timeoutMs: o.convergeTimeoutMs })
    result.healToLinksUpMs = performance.now() - healAt
    const quiet = (): boolean => allPeers(cluster, regions).every(p => p.state === 'up' && p.pendingUpdates === 0)
    const remaining = (): number => Math.max(1, o.convergeTimeoutMs - (performance.now() - healAt))
    await waitUntil(peerEvents(cluster, regions), quiet,
      { what: 'every write acknowledged by every peer', timeoutMs: remaining() })
    let convergedAt = performance.now()
    if (!await sameEverywhere(cluster, regions, sides, docs)) {
      // Acknowledged but not yet equal should not happen; look again until it is, and say how long it took.
      const check = (): Promise<boolean> => sameEverywhere(cluster, regions, sides, docs)
      await waitUntil([every(250), ...peerEvents(cluster, regions)], check,
        { what: 'every document equal in every region', timeoutMs: remaining() })
      convergedAt = performance.now()
    }
    result.converged = true
    result.healToConvergedMs = convergedAt - healAt
    // The bytes up to the moment convergence was seen, not those of the content check after it.
    result.healBytes = wanTotal(cluster, 'bytesSent') - sentAtHeal
    result.bytesPerUpdate = result.healBytes / result.updatesWritten
    result.bytesPerUpdateByte = result.healBytes / result.clientUpdateBytes
    if (healMark !== null) marks = [healMark, markCapture(cluster.wan, regions)]
  } catch (err) {
    result.error = (err as Error).message
  } finally {
    for (const side of sides) for (const writer of side.writers) writer.socket.close()
    await cluster.close()
  }
  // Decoded after the relays are gone: inflating every message while they run would stall them.
  if (marks !== null) {
    const tally = tallyBetween(cluster.wan, regions, marks[0], marks[1])
    result.byKind = tally.bytes
    result.messagesByKind = tally.messages
  }
  return result
}

const fmt = (value: number, digits = 2): string => Number.isFinite(value) ? value.toFixed(digits) : 'n/a'

const kb = (bytes: number): string => Number.isFinite(bytes) ? `${(bytes / 1024).toFixed(1)} KB` : 'n/a'

export const partitionCatchUpSection = (result: PartitionCatchUpResult): string => {
  const r = result
  const sides = Object.entries(r.updatesPerSide).map(([region, n]) => `${region} ${n}`).join(', ')
  const kinds = r.byKind === null
    ? 'no capture'
    : Object.entries(r.byKind).sort((a, b) => b[1] - a[1]).map(([kind, n]) => `${kind} ${kb(n)}`).join(', ')
  const rows = [[
    String(r.regions),
    `${fmt(r.partitionSeconds, 1)} s`,
    `${r.ratePerSide}/s × 2 into ${r.docs} docs (${sides})`,
    r.linkDownAfterMs === null ? 'never' : `${fmt(r.linkDownAfterMs / 1000, 1)} s`,
    `${fmt(r.healToLinksUpMs, 0)} ms`,
    r.converged ? `${fmt(r.healToConvergedMs, 0)} ms` : '**not converged**',
    kb(r.healBytes),
    fmt(r.bytesPerUpdate, 2),
    fmt(r.bytesPerUpdateByte, 3),
  ]]
  return [
    '## Catching up after a partition',
    `${r.regions} in-process regions (memory store), ${r.delayMs} ms one-way delay, heartbeat ${r.heartbeatMs} ms, ` +
    `link timeout ${r.linkTimeoutMs} ms. r0 is cut off (WAN simulator partition: bytes held, nothing closed) while a ` +
    'writer in r0 and one in r1 send precomputed trace keystrokes into the same documents (each document and ' +
    'side typing its own variant of the trace\'s text); then the cut heals. ' +
    'Converged: every write acknowledged by every peer and every document\'s state vector and text equal in every ' +
    'region\'s store. Bytes: what the WAN carried from the heal until then.',
    table(['regions', 'partition', 'writes', 'links down after', 'heal → links up', 'heal → converged',
      'bytes heal → converged', 'bytes per update written', 'bytes per update byte'], rows),
    `By kind: ${kinds}. Held by the cut at the heal: ${kb(r.heldBytesAtHeal)}. RSS at the heal: ` +
    `${(r.rssBytesAtHeal / 2 ** 20).toFixed(0)} MB (the whole process).` +
    (r.error === undefined ? '' : `\n\nFailed: ${r.error}`),
  ].join('\n\n')
}

export const partitionCatchUpCharts = (result: PartitionCatchUpResult): Record<string, string> => {
  if (!result.converged) return {}
  const label = `${result.partitionSeconds.toFixed(0)} s partition`
  const kinds = Object.entries(result.byKind ?? {}).sort((a, b) => b[1] - a[1])
  return {
    'partition-catch-up-time.svg': barChart({
      title: `After a ${label} at ${result.ratePerSide} updates/s per side: time from the heal`,
      unit: 'ms',
      bars: [
        { label: 'links up', value: result.healToLinksUpMs },
        { label: 'converged', value: result.healToConvergedMs, highlight: true },
      ],
    }),
    'partition-catch-up-bytes.svg': barChart({
      title: `Cross-region bytes from the heal to converged (${result.updatesWritten} updates written)`,
      unit: 'KB',
      bars: kinds.length > 0
        ? kinds.map(([kind, n]) => ({ label: kind, value: n / 1024 }))
        : [{ label: 'all kinds', value: result.healBytes / 1024, highlight: true }],
    }),
  }
}
