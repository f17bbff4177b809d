/**
 * A real Redis Cluster for tests: `masters` redis-servers from Debian's package with
 * cluster mode on, on free loopback ports with temporary directories, joined by
 * `redis-cli --cluster create` (no replicas), and ready once every node says cluster_state:ok.
 * Slots are spread over the masters, so documents' hash tags land on different shards.
 */
import { type ChildProcess, execFile, spawn } from 'node:child_process'
import fs from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import { promisify } from 'node:util'
import { freePorts } from '@georelay/cluster/free-port'
import { waitForLine } from './child-ready.js'
import { REDIS_SERVER_PATH } from './redis-server.js'

const run = promisify(execFile)
const REDIS_CLI_PATH = '/usr/bin/redis-cli'

export interface RedisClusterServer {
  /** `redis://127.0.0.1:PORT` of the first master: a seed the cluster client learns the rest from. */
  readonly url: string
  readonly ports: readonly number[]
  /** Stops every node and removes their directories. */
  destroy(): Promise<void>
}

const clusterOk = async (port: number): Promise<boolean> => {
  try {
    const { stdout } = await run(REDIS_CLI_PATH, ['-p', String(port), 'cluster', 'info'])
    return stdout.includes('cluster_state:ok')
  } catch {
    return false
  }
}

export const startRedisCluster = async ({ masters = 3, timeoutMs = 20_000 } = {}): Promise<RedisClusterServer> => {
  if (!fs.existsSync(REDIS_SERVER_PATH) || !fs.existsSync(REDIS_CLI_PATH)) {
    throw new Error('Redis is not installed: apt-get install -y redis-server (it brings redis-cli)')
  }
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'georelay-redis-cluster-'))
  const ports = await freePorts(masters)
  const children: ChildProcess[] = []
  const destroy = async (): Promise<void> => {
    await Promise.all(children.map(child => new Promise<void>(resolve => {
      if (child.exitCode !== null || child.signalCode !== null) return resolve()
      child.once('exit', () => resolve())
      child.kill('SIGKILL')
    })))
    fs.rmSync(dir, { recursive: true, force: true })
  }
  try {
    await Promise.all(ports.map(async port => {
      const nodeDir = path.join(dir, String(port))
      fs.mkdirSync(nodeDir)
      const child = spawn(REDIS_SERVER_PATH, [
        '--port', String(port), '--bind', '127.0.0.1', '--dir', nodeDir, '--save', '', '--appendonly', 'no',
        '--cluster-enabled', 'yes', '--cluster-config-file', 'nodes.conf', '--cluster-node-timeout', '2000',
        '--daemonize', 'no', '--protected-mode', 'yes',
      ], { stdio: ['ignore', 'pipe', 'ignore'], cwd: nodeDir })
      children.push(child)
      await waitForLine(child, child.stdout, 'Ready to accept connections', { timeoutMs, what: `redis-server (cluster node ${port})` })
    }))
    await run(REDIS_CLI_PATH, ['--cluster', 'create', ...ports.map(p => `127.0.0.1:${p}`), '--cluster-replicas', '0', '--cluster-yes'])
    // The nodes agree on the slots by gossip, shortly after `create` returns.
    const deadline = Date.now() + timeoutMs
    for (;;) {
      if ((await Promise.all(ports.map(clusterOk))).every(Boolean)) break
      if (Date.now() > deadline) throw new Error(`the Redis Cluster on ports ${ports.join(', ')} did not reach cluster_state:ok within ${timeoutMs} ms`)
      await new Promise(resolve => setTimeout(resolve, 100))
    }
  } catch (err) {
    await destroy()
    throw err
  }
  return { url: `redis://127.0.0.1:${ports[0] as number}`, ports, destroy }
}
