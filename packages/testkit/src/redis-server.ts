/**
 * A real Redis for tests: Debian's `redis-server` (package `redis-server`), started on 127.0.0.1
 * on a free port with nothing persisted (no RDB, no AOF: Redis only carries hints here, so a
 * restart that forgets everything is the case the tests want), and stopped again. Readiness is
 * the server's own "Ready to accept connections" line, not a timer. `stop`/`start` restart it
 * on the same port, which is how tests take Redis away under a running region.
 */
import { type ChildProcess, spawn } from 'node:child_process'
import fs from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import { freePort } from '@georelay/cluster/free-port'
import { waitForLine } from './child-ready.js'

export interface RedisServer {
  /** `redis://127.0.0.1:PORT`. */
  readonly url: string
  readonly port: number
  /** Stops the server (SIGKILL: as a crash, nothing flushed) and keeps the port for `start`. */
  stop(): Promise<void>
  /** Starts it again on the same port, empty. */
  start(): Promise<void>
  /** Stops it and removes its directory. */
  destroy(): Promise<void>
}

export const REDIS_SERVER_PATH = '/usr/bin/redis-server'

export const startRedis = async ({ timeoutMs = 15_000 }: { timeoutMs?: number } = {}): Promise<RedisServer> => {
  if (!fs.existsSync(REDIS_SERVER_PATH)) {
    throw new Error(`Redis is not installed: apt-get install -y redis-server (the tests start their own server from ${REDIS_SERVER_PATH})`)
  }
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'georelay-redis-'))
  const port = await freePort()
  let child: ChildProcess | null = null
  const start = async (): Promise<void> => {
    const started = spawn(REDIS_SERVER_PATH, [
      '--port', String(port), '--bind', '127.0.0.1', '--dir', dir, '--save', '', '--appendonly', 'no',
      '--daemonize', 'no', '--protected-mode', 'yes',
    ], { stdio: ['ignore', 'pipe', 'ignore'], cwd: dir })
    child = started
    await waitForLine(started, started.stdout, 'Ready to accept connections', { timeoutMs, what: 'redis-server' })
  }
  const stop = (): Promise<void> => new Promise(resolve => {
    const running = child
    child = null
    if (running === null || running.exitCode !== null || running.signalCode !== null) return resolve()
    running.once('exit', () => resolve())
    running.kill('SIGKILL')
  })
  await start()
  return {
    url: `redis://127.0.0.1:${port}`,
    port,
    start,
    stop,
    destroy: async () => {
      await stop()
      fs.rmSync(dir, { recursive: true, force: true })
    },
  }
}
