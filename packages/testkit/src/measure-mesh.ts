/**
 * Measures what the performance goals (docs/architecture.md) ask of the mesh on this machine:
 * edit-to-visible latency in another region minus the injected one-way delay, and cross-region bytes per byte of client
 * updates, while a writer in one region replays an editing trace one keystroke per update.
 */
import { performance } from 'node:perf_hooks'
import * as Y from 'yjs'
import { TestCluster } from './cluster.js'
import type { EditingTrace } from './editing-trace.js'
import { connectProvider, destroyProvider, waitSynced } from './y-websocket-client.js'
import { on, waitUntil } from './wait-for.js'

export interface MeshMeasurement {
  updates: number
  intervalMs: number
  delayMs: number
  latencyMinusDelayMs: { p50: number, p99: number, max: number }
  clientUpdateBytes: number
  crossRegionBytes: number
  bytesRatio: number
}

const percentile = (sorted: number[], p: number): number =>
  sorted[Math.min(sorted.length - 1, Math.floor(p * sorted.length))] ?? NaN

/**
 * Applies one patch to a Y.Text as one transaction: a replacement is one update, like any
 * keystroke (the traces used here are ASCII).
 */
const applyPatch = (text: Y.Text, [position, deleted, inserted]: [number, number, string]): void => {
  (text.doc as Y.Doc).transact(() => {
    if (deleted > 0) text.delete(position, deleted)
    if (inserted !== '') text.insert(position, inserted)
  })
}

export const measureMesh = async ({ trace, updates, intervalMs, delayMs, batchWindowMs = 5, onProgress }: {
  batchWindowMs?: number
  trace: EditingTrace
  updates: number
  /** Pause between keystrokes; 0 replays as fast as the event loop allows. */
  intervalMs: number
  delayMs: number
  onProgress?: (done: number) => void
}): Promise<MeshMeasurement> => {
  // Production timing (TEST_REPLICATION's quick heartbeats would inflate the byte count).
  const cluster = await TestCluster.start({ regions: ['a', 'b', 'c'], delayMs: () => delayMs, config: { replication: { batchWindowMs, heartbeatMs: 1000, linkTimeoutMs: 3000 } } })
  const writer = connectProvider(cluster.url('a'), 'measure/doc')
  const readers = [connectProvider(cluster.url('b'), 'measure/doc'), connectProvider(cluster.url('c'), 'measure/doc')]
  try {
    await Promise.all([writer, ...readers].map(p => waitSynced(p)))
    // A reader knows which keystrokes it has from its state vector: keystroke i is in once
    // the writer's clock there reaches the writer's clock right after keystroke i.
    const writerId = writer.doc.clientID
    const clockAfter: number[] = []
    const sentAt: number[] = []
    const seenAt: number[][] = readers.map(() => [])
    readers.forEach((reader, r) => {
      reader.doc.on('update', () => {
        const clock = Y.getState(reader.doc.store, writerId)
        const seen = seenAt[r] as number[]
        while (seen.length < clockAfter.length && (clockAfter[seen.length] as number) <= clock) {
          seen.push(performance.now())
        }
      })
    })
    let clientBytes = 0
    writer.doc.on('update', (update: Uint8Array) => { clientBytes += update.length })
    const before = cluster.wan.stats() as { bytesSent: number }[]
    const wanBefore = before.reduce((n, s) => n + s.bytesSent, 0)
    const text = writer.doc.getText('t')
    const patches = trace.patches.slice(0, updates)
    for (const [i, patch] of patches.entries()) {
      sentAt[i] = performance.now()
      clockAfter[i] = Y.getState(writer.doc.store, writerId) + patch[2].length
      if (patch[2].length === 0) clockAfter[i] = -1 // a pure deletion adds no clock; counted as seen at once
      applyPatch(text, patch)
      if (intervalMs > 0) await new Promise(resolve => setTimeout(resolve, intervalMs))
      else if (i % 50 === 0) await new Promise(resolve => setImmediate(resolve))
      if (i % 500 === 0) onProgress?.(i)
    }
    await Promise.all(readers.map((reader, r) => waitUntil([on(reader.doc, 'update')], () => (seenAt[r] as number[]).length >= patches.length,
      { what: `region ${r === 0 ? 'b' : 'c'} to see every keystroke`, timeoutMs: 120_000 })))
    // Let acknowledgements settle so the byte count includes the whole exchange.
    await waitUntil([on(cluster.relay('a'), 'peers')], () => cluster.relay('a').peers().every(p => p.pendingUpdates === 0),
      { what: 'peers to acknowledge everything', timeoutMs: 30_000 })
    const wanAfter = (cluster.wan.stats() as { bytesSent: number }[]).reduce((n, s) => n + s.bytesSent, 0)
    const latencies = seenAt
      .flatMap(seen => seen
        .map((t, i) => t - (sentAt[i] as number) - delayMs)
        .filter((_, i) => (clockAfter[i] as number) >= 0))
      .sort((x, y) => x - y)
    return {
      updates: patches.length,
      intervalMs,
      delayMs,
      latencyMinusDelayMs: {
        p50: percentile(latencies, 0.5),
        p99: percentile(latencies, 0.99),
        max: latencies[latencies.length - 1] ?? NaN,
      },
      clientUpdateBytes: clientBytes,
      crossRegionBytes: wanAfter - wanBefore,
      bytesRatio: (wanAfter - wanBefore) / clientBytes,
    }
  } finally {
    for (const provider of [writer, ...readers]) destroyProvider(provider)
    await cluster.close()
  }
}
