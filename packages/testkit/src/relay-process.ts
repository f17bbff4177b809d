/**
 * A relay as a real child process, started through the `georelay` CLI exactly as an operator
 * would, for tests that restart it, kill -9 it, or send it signals.
 */
import { type ChildProcess, spawn } from 'node:child_process'
import { createRequire } from 'node:module'
import path from 'node:path'

const require = createRequire(import.meta.url)
/** The CLI launcher of @georelay/relay (its compiled dist must be built: `npm run build`). */
export const GEORELAY_BIN = path.join(path.dirname(require.resolve('@georelay/relay/package.json')), 'bin', 'georelay.js')

export interface RelayProcess {
  readonly url: string
  readonly port: number
  readonly child: ChildProcess
  /** Everything the process wrote to stderr so far (its log). */
  stderr(): string
  /** Resolves with the exit code (or signal name) once the process ended. */
  readonly exited: Promise<number | string>
  /** Sends SIGTERM and waits for the exit. */
  stop(): Promise<number | string>
  /** kill -9: no drain, no flush. */
  kill9(): Promise<number | string>
}

export interface StartRelayOptions {
  args: string[]
  env?: NodeJS.ProcessEnv
  timeoutMs?: number
}

const LISTENING = /listening on (ws:\/\/\S+)/

export const startRelayProcess = ({ args, env = {}, timeoutMs = 15_000 }: StartRelayOptions): Promise<RelayProcess> =>
  new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [GEORELAY_BIN, 'relay', ...args], {
      // Tests of everything but authentication connect without tokens.
      env: { ...process.env, GEORELAY_ANONYMOUS: 'rw', ...env },
      stdio: ['ignore', 'pipe', 'pipe'],
    })
    let stdout = ''
    let stderr = ''
    const exited = new Promise<number | string>(done => child.once('exit', (code, signal) => done(code ?? signal ?? 'unknown')))
    const timer = setTimeout(() => {
      child.kill('SIGKILL')
      reject(new Error(`relay did not report listening within ${timeoutMs} ms; stderr:\n${stderr}`))
    }, timeoutMs)
    child.stderr.setEncoding('utf8').on('data', (chunk: string) => { stderr += chunk })
    child.stdout.setEncoding('utf8').on('data', (chunk: string) => {
      stdout += chunk
      const match = LISTENING.exec(stdout)
      if (match === null) return
      clearTimeout(timer)
      const url = match[1] as string
      const signalAndWait = (signal: NodeJS.Signals): Promise<number | string> => {
        if (child.exitCode === null && child.signalCode === null) child.kill(signal)
        return exited
      }
      resolve({
        url,
        port: Number(new URL(url).port),
        child,
        stderr: () => stderr,
        exited,
        stop: () => signalAndWait('SIGTERM'),
        kill9: () => signalAndWait('SIGKILL'),
      })
    })
    // `exited` never rejects.
    void exited.then(code => {
      clearTimeout(timer)
      reject(new Error(`relay exited (${code}) before listening; stderr:\n${stderr}`))
    })
  })
