/**
 * Failover: an SDK client writing every few milliseconds to the nearest of two regions, whose
 * relay is then killed (kill -9) or silently cut off; the time from that moment to the next
 * write acknowledged (at `local`) through the other region. Default client timing: what users get.
 */
import * as Y from 'yjs'
import { GeoClient, type GeoSession } from '@georelay/client'
import { type RelayProcess, TestCluster, startRegionNodeProcess } from '@georelay/testkit'

export interface FailoverResult {
  /** kill -9 of the relay in use. */
  crashMs: number
  /** The client's link to its relay goes silent (packets held, no close). */
  silentCutMs: number
  /** kill -9 of the node in use of a region of two (NaN when not measured: no Postgres or Redis). */
  nodeCrashMs: number
  error?: string
}

/** Where a region of nodes keeps its log and its hints, for the node failover. */
export interface NodeFailoverServers {
  postgresUrl: string
  redisUrl: string
}

const NEAR_A = { a: 1, b: 5 }

/**
 * Writes every `writeEveryMs` through `session`, then runs `fail` and measures the time from it
 * to the acknowledgement of a write made after it.
 */
const msToNextAck = async (
  session: GeoSession, doc: Y.Doc, writeEveryMs: number, fail: () => Promise<unknown> | void, what: string,
): Promise<number> => {
  let n = 0
  const writer = setInterval(() => { doc.getArray<number>('writes').push([n++]) }, writeEveryMs)
  try {
    await session.flush(5_000)
    let failedAt = 0
    // Write ids count from 1 in this session, one per push: the first `made` were made before.
    let made = Infinity
    const acked = new Promise<number>(resolve => {
      session.on('ack', (writeId: number) => { if (writeId > made) resolve(performance.now() - failedAt) })
    })
    failedAt = performance.now()
    made = n
    await fail()
    const timeout = new Promise<never>((_, reject) => {
      setTimeout(() => reject(new Error(`no write acknowledged within 30 s after ${what}`)), 30_000).unref()
    })
    return await Promise.race([acked, timeout])
  } finally {
    clearInterval(writer)
  }
}

const measureOne = async (how: 'crash' | 'cut', writeEveryMs: number): Promise<number> => {
  const cluster = await TestCluster.start({ regions: ['a', 'b'], mode: how === 'crash' ? 'process' : 'in-process', store: 'sqlite' })
  const client = new GeoClient({ regions: await cluster.clientEndpoints('client', NEAR_A), probeIntervalMs: 0 })
  const doc = new Y.Doc()
  try {
    const session = client.open('bench/failover', doc, { ack: 'local' })
    await session.synced
    // Probes on a busy machine may pick either region: fail the one in use.
    const used = client.region
    if (used === null) throw new Error('the client has no region after its first sync')
    const fail = how === 'crash' ? () => cluster.killRegion(used) : () => cluster.wan.cut('client', used)
    return await msToNextAck(session, doc, writeEveryMs, fail, `the ${how}`)
  } finally {
    await client.close()
    doc.destroy()
    await cluster.close()
  }
}

/**
 * A region of two nodes on loopback (as a LAN), an SDK client given both URLs: kill -9 of the
 * node in use, and the time to the next write acknowledged by the other node.
 */
const measureNodeCrash = async (
  { postgresUrl, redisUrl }: NodeFailoverServers, writeEveryMs: number,
): Promise<number> => {
  const nodes: RelayProcess[] = []
  const client: { current: GeoClient | null } = { current: null }
  const doc = new Y.Doc()
  try {
    for (const node of ['n1', 'n2']) {
      nodes.push(await startRegionNodeProcess({ region: 'bench', node, postgres: { url: postgresUrl, schema: 'georelay' }, redisUrl }))
    }
    const c = new GeoClient({ regions: [{ name: 'bench', urls: nodes.map(n => n.url) }], probeIntervalMs: 0 })
    client.current = c
    const session = c.open('bench/node-failover', doc, { ack: 'local' })
    await session.synced
    const used = nodes.find(n => n.url === c.node)
    if (used === undefined) throw new Error('the client uses no node after its first sync')
    const ms = await msToNextAck(session, doc, writeEveryMs, () => used.kill9(), 'the node was killed')
    if (c.node === used.url) throw new Error('the client is still on the killed node')
    return ms
  } finally {
    await client.current?.close()
    doc.destroy()
    await Promise.all(nodes.map(n => n.stop()))
  }
}

export const runFailover = async (writeEveryMs = 10, nodeServers?: NodeFailoverServers): Promise<FailoverResult> => {
  const result: FailoverResult = { crashMs: NaN, silentCutMs: NaN, nodeCrashMs: NaN }
  const errors: string[] = []
  try { result.crashMs = await measureOne('crash', writeEveryMs) } catch (err) { errors.push((err as Error).message) }
  try { result.silentCutMs = await measureOne('cut', writeEveryMs) } catch (err) { errors.push((err as Error).message) }
  if (nodeServers !== undefined) {
    try {
      result.nodeCrashMs = await measureNodeCrash(nodeServers, writeEveryMs)
    } catch (err) {
      errors.push((err as Error).message)
    }
  }
  if (errors.length > 0) result.error = errors.join('; ')
  return result
}
