/**
 * A real PostgreSQL for tests: Debian's server (package `postgresql`), started on 127.0.0.1 on
 * a free port with a temporary data directory, and removed again. The server refuses to run as
 * root, so when the tests run as root it runs as the `postgres` user: spawned with that uid
 * rather than through `runuser`, which would stand between us and the server and turn our
 * SIGINT (fast shutdown) into SIGTERM (wait for every client). Readiness is the server's own
 * "ready to accept connections" line, not a timer.
 *
 * One server serves a whole `npm test` (jest's global setup starts it and sets
 * GEORELAY_TEST_POSTGRES_URL; each suite takes a database of its own with `testDatabase()`);
 * a test that stops and starts Postgres under a relay starts a server of its own.
 */
import { type ChildProcess, execFileSync, spawn } from 'node:child_process'
import fs from 'node:fs'
import os from 'node:os'
import path from 'node:path'
// The subpath, not the package: jest's global setup loads this module outside the test
// sandboxes, and the package's index would load a second Yjs there.
import { freePort } from '@georelay/cluster/free-port'
import { waitForLine } from './child-ready.js'

export interface PostgresServer {
  /** `postgres://postgres@127.0.0.1:PORT/postgres`: the superuser, no password (trust on loopback). */
  readonly url: string
  readonly port: number
  readonly dataDir: string
  /** Stops the server (fast shutdown: connections are cut) and keeps its data, for `start` again. */
  stop(): Promise<void>
  /** Starts it again on the same port and data. */
  start(): Promise<void>
  /** Stops it and removes its data. */
  destroy(): Promise<void>
}

export const POSTGRES_URL_ENV = 'GEORELAY_TEST_POSTGRES_URL'

const SHUTDOWN_GRACE_MS = 10_000

/** The directory of Debian's PostgreSQL binaries (the newest installed), or an error that says how to get them. */
export const postgresBinDir = (): string => {
  const root = '/usr/lib/postgresql'
  const versions = fs.existsSync(root) ? fs.readdirSync(root).filter(v => fs.existsSync(path.join(root, v, 'bin', 'postgres'))) : []
  const newest = versions.sort((a, b) => Number(b) - Number(a))[0]
  if (newest === undefined) {
    throw new Error('PostgreSQL is not installed: apt-get install -y postgresql (the tests start their own server from /usr/lib/postgresql/*/bin)')
  }
  return path.join(root, newest, 'bin')
}

const asRoot = (): boolean => typeof process.getuid === 'function' && process.getuid() === 0

/** The `postgres` user's ids when we are root (the server refuses root); nothing otherwise. */
const serverUser = (): { uid: number, gid: number } | Record<string, never> => {
  if (!asRoot()) return {}
  const id = (flag: string): number => Number(execFileSync('id', [flag, 'postgres'], { encoding: 'utf8' }).trim())
  return { uid: id('-u'), gid: id('-g') }
}

export const startPostgres = async ({ timeoutMs = 30_000 }: { timeoutMs?: number } = {}): Promise<PostgresServer> => {
  const bin = postgresBinDir()
  const base = fs.mkdtempSync(path.join(os.tmpdir(), 'georelay-pg-'))
  const dataDir = path.join(base, 'data')
  const socketDir = path.join(base, 'socket')
  fs.mkdirSync(dataDir)
  fs.mkdirSync(socketDir)
  // The server's user must own its data; the temp directory must be reachable by it.
  if (asRoot()) {
    fs.chmodSync(base, 0o755)
    execFileSync('chown', ['-R', 'postgres:postgres', base])
  }
  const user = serverUser()
  execFileSync(path.join(bin, 'initdb'), ['-D', dataDir, '-U', 'postgres', '-A', 'trust', '-E', 'UTF8', '--no-sync'], { stdio: 'pipe', cwd: base, ...user })
  const port = await freePort()
  let child: ChildProcess | null = null
  const start = async (): Promise<void> => {
    const started = spawn(path.join(bin, 'postgres'), [
      '-D', dataDir, '-p', String(port), '-k', socketDir, '-c', 'listen_addresses=127.0.0.1', '-c', 'max_connections=300',
    ], { stdio: ['ignore', 'ignore', 'pipe'], cwd: base, ...user })
    child = started
    await waitForLine(started, started.stderr, 'ready to accept connections', { timeoutMs, what: 'PostgreSQL' })
  }
  // A fast shutdown waits for backends to die; one stuck must not hold the test run, so after
  // SHUTDOWN_GRACE_MS the postmaster is killed (the data is temporary either way).
  const exited = (signal: NodeJS.Signals): Promise<void> => new Promise(resolve => {
    const running = child
    child = null
    if (running === null || running.exitCode !== null || running.signalCode !== null) return resolve()
    const force = setTimeout(() => running.kill('SIGKILL'), SHUTDOWN_GRACE_MS)
    running.once('exit', () => {
      clearTimeout(force)
      resolve()
    })
    running.kill(signal)
  })
  await start()
  return {
    url: `postgres://postgres@127.0.0.1:${port}/postgres`,
    port,
    dataDir,
    start,
    stop: () => exited('SIGINT'),
    destroy: async () => {
      await exited('SIGINT')
      fs.rmSync(base, { recursive: true, force: true })
    },
  }
}
