/**
 * A region of one node, then of two: the fan-out workload with every writer on the first node
 * and each document's readers split between the nodes, all relays on one PostgreSQL and one
 * Redis (started here, on loopback). What the second node buys in delivered updates per second,
 * what it costs in CPU per delivered update (both processes counted), and how much later a
 * reader on the other node gets an update than one on the writer's (the hint through Redis).
 */
import crypto from 'node:crypto'
import { type Contender, startContender } from '../contenders.js'
import type { Distribution } from '../stats.js'
import { type FanOutOptions, type FanOutServers, type PhaseResult, runPhase } from './fan-out.js'

export interface RegionNodesRun {
  nodes: number
  paced: PhaseResult | null
  saturated: PhaseResult | null
  /** Paced latency of readers on the writer's node and on the other node (two nodes only). */
  sameNodeMs: Distribution | null
  otherNodeMs: Distribution | null
  error?: string
}

export interface RegionNodesResult {
  runs: RegionNodesRun[]
  error?: string
}

export interface RegionNodesOptions extends FanOutOptions {
  postgresUrl: string
  /** The relays' schema (default theirs, `georelay`). */
  postgresSchema?: string
  redisUrl: string
}

const startNodes = async (count: number, options: RegionNodesOptions, tag: string): Promise<Contender[]> => {
  const nodes: Contender[] = []
  try {
    for (let i = 1; i <= count; i++) {
      nodes.push(await startContender('georelay', {
        postgresUrl: options.postgresUrl,
        ...(options.postgresSchema === undefined ? {} : { postgresSchema: options.postgresSchema }),
        relayArgs: ['--node', `${tag}-${i}`, '--redis-url', options.redisUrl],
      }))
    }
  } catch (err) {
    await Promise.all(nodes.map(n => n.stop()))
    throw err
  }
  return nodes
}

const spread = (nodes: Contender[]): FanOutServers => ({
  writer: nodes[0] as Contender,
  readerOf: i => ({ server: nodes[i % nodes.length] as Contender, name: `node ${(i % nodes.length) + 1}` }),
  all: nodes,
})

export const runRegionNodes = async (options: RegionNodesOptions): Promise<RegionNodesResult> => {
  const result: RegionNodesResult = { runs: [] }
  for (const count of [1, 2]) {
    // Documents of their own per run: both runs share the database.
    const tag = `n${count}-${crypto.randomBytes(3).toString('hex')}`
    const run: RegionNodesRun = { nodes: count, paced: null, saturated: null, sameNodeMs: null, otherNodeMs: null }
    result.runs.push(run)
    let nodes: Contender[] = []
    try {
      nodes = await startNodes(count, options, tag)
      const servers = spread(nodes)
      await runPhase(servers, { ...options, saturatedCount: Math.min(options.saturatedCount, 1000) }, 'saturated', `${tag}-warmup`)
      run.paced = await runPhase(servers, options, 'paced', `${tag}-paced`)
      run.saturated = await runPhase(servers, options, 'saturated', `${tag}-saturated`)
      run.sameNodeMs = run.paced.latencyByServerMs['node 1'] ?? null
      run.otherNodeMs = run.paced.latencyByServerMs['node 2'] ?? null
    } catch (err) {
      run.error = (err as Error).message
    } finally {
      await Promise.all(nodes.map(n => n.stop()))
    }
  }
  return result
}
