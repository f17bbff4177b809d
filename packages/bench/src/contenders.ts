/**
 * The servers compared, each started as its own child process on loopback, so that the load
 * generator (this process) and the server never share an event loop or a heap, and each one's
 * CPU and memory can be read from /proc.
 */
import { type ChildProcess, spawn } from 'node:child_process'
import fs from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import { fileURLToPath } from 'node:url'
import { GEORELAY_BIN } from '@georelay/testkit'
import { type ProcSample, sampleProcess } from './proc-stats.js'
import type { Framing } from './wire.js'

export type ContenderKind =
  | 'ywss' | 'hocuspocus' | 'hocuspocus-sqlite' | 'echo' | 'georelay' | 'georelay-memory' | 'merge-echo' | 'merge-echo-5ms'

/** `speaksFirst`: the server greets a new client (sync step 1), so a socket is ready once that arrives. */
export const CONTENDERS: Record<ContenderKind, { label: string, framing: Framing, speaksFirst: boolean }> = {
  ywss: { label: '@y/websocket-server', framing: 'y-websocket', speaksFirst: true },
  hocuspocus: { label: '@hocuspocus/server', framing: 'hocuspocus', speaksFirst: true },
  'hocuspocus-sqlite': { label: '@hocuspocus/server + extension-sqlite', framing: 'hocuspocus', speaksFirst: true },
  echo: { label: 'bare ws echo', framing: 'y-websocket', speaksFirst: false },
  georelay: { label: 'georelay (sqlite)', framing: 'y-websocket', speaksFirst: true },
  'georelay-memory': { label: 'georelay (memory store)', framing: 'y-websocket', speaksFirst: true },
  'merge-echo': { label: 'echo + per-turn merge (experiment)', framing: 'y-websocket', speaksFirst: false },
  'merge-echo-5ms': { label: 'echo + 5 ms merge window (experiment)', framing: 'y-websocket', speaksFirst: false },
}

export const isContenderKind = (name: string): name is ContenderKind => Object.hasOwn(CONTENDERS, name)

/** The compiled entry of the other servers: this file's sibling in dist/, also when this runs from src/ (jest). */
const SERVER_CHILD = ((): string => {
  const here = path.dirname(fileURLToPath(import.meta.url))
  const sibling = path.join(here, 'server-child.js')
  return fs.existsSync(sibling) ? sibling : path.join(here, '..', 'dist', 'server-child.js')
})()

export interface Contender {
  readonly kind: ContenderKind
  readonly label: string
  readonly framing: Framing
  readonly speaksFirst: boolean
  readonly url: string
  readonly pid: number
  sample(): ProcSample
  stderr(): string
  /** SIGTERM, and waits for the exit (a profile is written then). */
  stop(): Promise<void>
  /** kill -9, and waits for the exit. */
  kill9(): Promise<void>
}

export interface StartContenderOptions {
  /** Node flags for the child, like `--cpu-prof`. */
  nodeFlags?: string[]
  /** The child's data directory (a store prepared beforehand); default a fresh one. Removed when it exits. */
  dataDir?: string
  /** Extra arguments for georelay's CLI (peers, region…). */
  relayArgs?: string[]
  /** Fields added to georelay's configuration file (namespaces, http…). */
  extraConfig?: Record<string, unknown>
  /** Kind `georelay` on the Postgres store of this database, instead of SQLite… */
  postgresUrl?: string
  /** …in this schema (default the relay's, `georelay`). */
  postgresSchema?: string
  timeoutMs?: number
}

const LISTENING = /listening on (ws:\/\/\S+)/

/** Children still running: ended with this process, so an interrupted run leaves no server behind. */
const running = new Set<ChildProcess>()
let exitHookInstalled = false
const installExitHook = (): void => {
  if (exitHookInstalled) return
  exitHookInstalled = true
  process.once('exit', () => { for (const child of running) child.kill('SIGKILL') })
  for (const signal of ['SIGINT', 'SIGTERM'] as const) process.once(signal, () => process.exit(130))
}

const commandOf = (
  kind: ContenderKind, dataDir: string, relayArgs: string[], postgresUrl?: string, postgresSchema?: string,
  extraConfig: Record<string, unknown> = {},
): string[] => {
  if (kind === 'georelay' || kind === 'georelay-memory') {
    const store = kind === 'georelay-memory'
      ? ['--store', 'memory']
      : postgresUrl === undefined ? ['--store', 'sqlite', '--data', dataDir] : ['--store', 'postgres', '--postgres-url', postgresUrl]
    // The bench measures the relay's work, not its limits: a writer replays a trace as fast as
    // it can (no rate limit), and, like the other servers, anyone may write.
    const config = path.join(dataDir, 'bench-relay.json')
    fs.writeFileSync(config, JSON.stringify({
      region: 'bench',
      auth: { anonymous: 'rw' },
      limits: { messagesPerSecond: { rate: 0, burst: 0 }, maxConnections: 100_000 },
      ...(postgresSchema === undefined ? {} : { storage: { postgres: { schema: postgresSchema } } }),
      ...extraConfig,
    }))
    return [GEORELAY_BIN, 'relay', '--config', config, '--region', 'bench', '--port', '0', '--log-level', 'warn', ...store, ...relayArgs]
  }
  if (kind === 'merge-echo-5ms') return [SERVER_CHILD, 'merge-echo', '5']
  if (kind === 'hocuspocus-sqlite') return [SERVER_CHILD, kind, dataDir]
  return [SERVER_CHILD, kind]
}

export const startContender = (
  kind: ContenderKind,
  {
    nodeFlags = [], relayArgs = [], postgresUrl, postgresSchema, timeoutMs = 20_000, dataDir: given, extraConfig,
  }: StartContenderOptions = {},
): Promise<Contender> => {
  const dataDir = given ?? fs.mkdtempSync(path.join(os.tmpdir(), `georelay-bench-${kind}-`))
  const command = commandOf(kind, dataDir, relayArgs, postgresUrl, postgresSchema, extraConfig)
  const child: ChildProcess = spawn(process.execPath, [...nodeFlags, ...command], {
    stdio: ['ignore', 'pipe', 'pipe'],
    env: { ...process.env, NODE_ENV: 'production' },
  })
  installExitHook()
  running.add(child)
  const exited = new Promise<void>(resolve => child.once('exit', () => {
    running.delete(child)
    fs.rmSync(dataDir, { recursive: true, force: true })
    resolve()
  }))
  let stderr = ''
  let stdout = ''
  child.stderr?.setEncoding('utf8').on('data', (chunk: string) => { stderr = (stderr + chunk).slice(-20_000) })
  const signal = async (sig: NodeJS.Signals): Promise<void> => {
    if (child.exitCode === null && child.signalCode === null) child.kill(sig)
    await exited
  }
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      child.kill('SIGKILL')
      reject(new Error(`${kind} did not report listening within ${timeoutMs} ms; stderr:\n${stderr}`))
    }, timeoutMs)
    void exited.then(() => {
      clearTimeout(timer)
      reject(new Error(`${kind} exited (${child.exitCode ?? child.signalCode}) before listening; stderr:\n${stderr}`))
    })
    child.stdout?.setEncoding('utf8').on('data', (chunk: string) => {
      stdout += chunk
      const match = LISTENING.exec(stdout)
      if (match === null) return
      clearTimeout(timer)
      stdout = ''
      const { label, framing, speaksFirst } = CONTENDERS[kind]
      resolve({
        kind,
        label,
        framing,
        speaksFirst,
        url: match[1] as string,
        pid: child.pid as number,
        sample: () => sampleProcess(child.pid as number),
        stderr: () => stderr,
        stop: () => signal('SIGTERM'),
        kill9: () => signal('SIGKILL'),
      })
    })
  })
}
