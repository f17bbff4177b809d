/**
 * Cross-region bytes where real apps live: many documents, one human-pace typist each, in a
 * three-region mesh under the WAN simulator. Each typist continues a real trace from its own
 * point (so no two documents type the same text at once, which would flatter compression),
 * one keystroke per `intervalMs` with the typists' phases spread over the interval. Reports
 * what the mesh carried per client byte, per region pair per hour, and by message kind.
 */
import * as Y from 'yjs'
import {
  type EditingTrace, type MeshBytes, TestCluster, directionBytesByKind, meshBytesBetween, meshBytesByKind, on,
  totalBytes, waitUntil,
} from '@georelay/testkit'
import { type LoadSocket, openLoadSocket } from '../load-socket.js'
import { applyPatch } from '../trace-updates.js'
import { updateFrame } from '../wire.js'

export interface ManyDocsOptions {
  trace: EditingTrace
  docs: number
  /** Measured typing, after every document is open and replicated. */
  seconds: number
  intervalMs: number
  delayMs: number
  /** Documents start this many patches apart in the trace (their text so far is stored before measuring). */
  spread?: number
  /** The relays' replication.batchWindowMs (default theirs). */
  batchWindowMs?: number
  onProgress?: (line: string) => void
}

export interface ManyDocsResult {
  docs: number
  intervalMs: number
  seconds: number
  keystrokes: number
  clientUpdateBytes: number
  crossRegionBytes: number
  /** Cross-region bytes per byte of client updates. */
  bytesRatio: number
  /** Per direction ("a→b"), bytes per hour at this rate. */
  perPairPerHour: Record<string, number>
  byKind: MeshBytes
}

const REGIONS = ['a', 'b', 'c'] as const

interface Typist {
  doc: Y.Doc
  socket: LoadSocket
  /** Where in the trace it started, and how many keystrokes it typed since. */
  start: number
  typed: number
}

const PAIRS = REGIONS.flatMap(from => REGIONS.filter(to => to !== from).map(to => [from, to] as const))

export const runManyDocs = async (options: ManyDocsOptions): Promise<ManyDocsResult> => {
  const { trace, docs, seconds, intervalMs, delayMs, spread = 3, batchWindowMs, onProgress = () => {} } = options
  const cluster = await TestCluster.start({
    regions: [...REGIONS],
    delayMs: () => delayMs,
    wan: { capture: true },
    // Production timing, as in measureMesh; one address opens every socket, so no per-socket rate.
    config: {
      replication: {
        heartbeatMs: 1000, linkTimeoutMs: 3000, ...(batchWindowMs === undefined ? {} : { batchWindowMs }),
      },
      limits: { messagesPerSecond: { rate: 0, burst: 0 }, maxConnections: docs + 100 },
    },
  })
  const typists: Typist[] = []
  try {
    const server = { label: 'georelay a', framing: 'y-websocket' as const, speaksFirst: true, url: cluster.url('a') }
    const keystrokes = Math.ceil(seconds * 1000 / intervalMs) + 1
    for (let i = 0; i < docs; i++) {
      const doc = new Y.Doc()
      const text = doc.getText('t')
      const start = Math.min(i * spread, Math.max(0, trace.patches.length - keystrokes - 1))
      for (const patch of trace.patches.slice(0, start)) applyPatch(text, patch)
      const name = `many/${i}`
      const socket = await openLoadSocket(server, name)
      // The text so far, as the document's stored state: replicated before measuring starts.
      socket.send(updateFrame('y-websocket', name, Y.encodeStateAsUpdate(doc)))
      doc.on('update', (update: Uint8Array) => socket.send(updateFrame('y-websocket', name, update)))
      typists.push({ doc, socket, start, typed: 0 })
      if ((i + 1) % 250 === 0) onProgress(`${i + 1} of ${docs} documents open`)
    }
    const settled = (): Promise<unknown> => waitUntil([on(cluster.relay('a'), 'peers')],
      () => cluster.relay('a').peers().every(p => p.pendingUpdates === 0),
      { what: 'peers to acknowledge everything', timeoutMs: 120_000 })
    await settled()

    let clientBytes = 0
    for (const t of typists) t.doc.on('update', (update: Uint8Array) => { clientBytes += update.length })
    const before = meshBytesByKind(cluster.wan, REGIONS)
    const pairsBefore = PAIRS.map(([from, to]) => totalBytes(directionBytesByKind(cluster.wan, from, to)))
    const startedAt = performance.now()
    let typed = 0
    await new Promise<void>(resolve => {
      // Each typist's keystrokes fall due one interval apart, phases spread evenly over one interval.
      const tick = (): void => {
        const elapsed = performance.now() - startedAt
        if (elapsed >= seconds * 1000) return resolve()
        typists.forEach((t, i) => {
          const phase = (i / docs) * intervalMs
          const due = elapsed < phase ? 0 : Math.floor((elapsed - phase) / intervalMs) + 1
          while (t.typed < due && t.start + t.typed < trace.patches.length) {
            applyPatch(t.doc.getText('t'), trace.patches[t.start + t.typed] as [number, number, string])
            t.typed++
            typed++
          }
        })
        setTimeout(tick, 5)
      }
      tick()
    })
    const wallSeconds = (performance.now() - startedAt) / 1000
    await settled()
    const byKind = meshBytesBetween(before, meshBytesByKind(cluster.wan, REGIONS))
    const crossRegionBytes = totalBytes(byKind)
    const perPairPerHour = Object.fromEntries(PAIRS.map(([from, to], i) => [
      `${from}→${to}`,
      (totalBytes(directionBytesByKind(cluster.wan, from, to)) - (pairsBefore[i] as number)) / wallSeconds * 3600,
    ]))
    return {
      docs,
      intervalMs,
      seconds: wallSeconds,
      keystrokes: typed,
      clientUpdateBytes: clientBytes,
      crossRegionBytes,
      bytesRatio: crossRegionBytes / clientBytes,
      perPairPerHour,
      byKind,
    }
  } finally {
    for (const t of typists) t.socket.close()
    await cluster.close()
  }
}
