/**
 * Readiness of a server started for tests (PostgreSQL, Redis): its own "ready" line, not a
 * timer. Once ready, or once given up on, the stream keeps being drained: a server whose log
 * pipe nobody reads blocks on a full pipe (64 KiB) and everything waiting on it hangs.
 */
import type { ChildProcess } from 'node:child_process'
import type { Readable } from 'node:stream'

export const waitForLine = (
  child: ChildProcess,
  stream: Readable | null,
  line: string,
  { timeoutMs, what }: { timeoutMs: number, what: string },
): Promise<void> => new Promise((resolve, reject) => {
  let log = ''
  const timer = setTimeout(() => {
    cleanup()
    reject(new Error(`${what} did not start within ${timeoutMs} ms:\n${log}`))
  }, timeoutMs)
  const onData = (chunk: Buffer): void => {
    log += chunk.toString('utf8')
    if (log.includes(line)) {
      cleanup()
      resolve()
    }
  }
  const onExit = (code: number | null): void => {
    cleanup()
    reject(new Error(`${what} exited (${code}) before it was ready:\n${log}`))
  }
  const cleanup = (): void => {
    clearTimeout(timer)
    stream?.off('data', onData)
    child.off('exit', onExit)
    stream?.resume()
  }
  stream?.on('data', onData)
  child.once('exit', onExit)
})
