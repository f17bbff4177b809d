/**
 * Durable ack: an SDK session writing at a fixed rate to a relay process with the SQLite store
 * (or the Postgres store, with `postgresUrl`), and the time from each edit to its `local`
 * acknowledgement (committed on the relay's disk, or in the database).
 */
import fs from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import * as Y from 'yjs'
import { GeoClient } from '@georelay/client'
import { type StartContenderOptions, startContender } from '../contenders.js'
import { type Distribution, distribution, quantiles } from '../stats.js'
import { applyPatch } from '../trace-updates.js'
import type { EditingTrace } from '@georelay/testkit'

export interface DurableAckOptions {
  trace: EditingTrace
  /** Edits per second. */
  rate: number
  seconds: number
}

export interface DurableAckResult {
  store: 'sqlite' | 'postgres'
  /** This disk's floor: a 100-byte write + fsync, timed alone, just before the run. */
  fsyncMs: Distribution
  writes: number
  achievedRate: number
  latencyMs: Distribution
  latencyQuantiles: number[]
  error?: string
}

/** A durable ack waits for at least one fsync: its latency here bounds what group commit can reach. */
export const probeFsync = (count = 300): Distribution => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'georelay-fsync-'))
  const fd = fs.openSync(path.join(dir, 'probe'), 'w')
  const block = Buffer.alloc(100, 1)
  const times: number[] = []
  try {
    for (let i = 0; i < count; i++) {
      const start = performance.now()
      fs.writeSync(fd, block)
      fs.fsyncSync(fd)
      times.push(performance.now() - start)
    }
  } finally {
    fs.closeSync(fd)
    fs.rmSync(dir, { recursive: true, force: true })
  }
  return distribution(times)
}

export const runDurableAck = async (
  { trace, rate, seconds }: DurableAckOptions,
  start: StartContenderOptions = {},
): Promise<DurableAckResult> => {
  const fsyncMs = probeFsync()
  const store = start.postgresUrl === undefined ? 'sqlite' as const : 'postgres' as const
  const relay = await startContender('georelay', start)
  const client = new GeoClient({ regions: [{ name: 'bench', url: relay.url }], probeIntervalMs: 0 })
  const doc = new Y.Doc()
  const text = doc.getText('t')
  const total = Math.min(Math.round(rate * seconds), trace.patches.length)
  const editedAt = new Float64Array(total + 1)
  const latencies: number[] = []
  let firstWriteId = 0
  let acked = 0
  try {
    const session = client.open('bench/durable-ack', doc, { ack: 'local' })
    await session.synced
    // Write ids count from 1 per session; edits made before here (none) would shift them.
    firstWriteId = session.pendingWrites + 1
    session.on('ack', (writeId: number, level: string) => {
      if (level !== 'local') return
      const now = performance.now()
      const upTo = Math.min(writeId - firstWriteId + 1, total)
      while (acked < upTo) latencies.push(now - (editedAt[acked++] as number))
    })
    const start = performance.now()
    let made = 0
    await new Promise<void>(resolve => {
      const tick = (): void => {
        const due = Math.min(total, Math.floor((performance.now() - start) * rate / 1000) + 1)
        while (made < due) {
          editedAt[made] = performance.now()
          applyPatch(text, trace.patches[made] as [number, number, string])
          made++
        }
        if (made < total) setTimeout(tick, 1)
        else resolve()
      }
      tick()
    })
    const wall = (performance.now() - start) / 1000
    await session.flush(30_000)
    return {
      store,
      fsyncMs,
      writes: total,
      achievedRate: total / wall,
      latencyMs: distribution(latencies),
      latencyQuantiles: quantiles(latencies),
    }
  } catch (err) {
    return {
      store,
      fsyncMs,
      writes: acked,
      achievedRate: 0,
      latencyMs: distribution(latencies),
      latencyQuantiles: quantiles(latencies),
      error: (err as Error).message,
    }
  } finally {
    await client.close()
    doc.destroy()
    await relay.stop()
  }
}
