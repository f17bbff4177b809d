/**
 * A raw client WebSocket for protocol tests: it records every frame it receives and how it
 * was closed, so a test can send exact bytes and assert exact answers and close codes.
 */
import WebSocket from 'ws'
import { DEFAULT_TIMEOUT_MS, nextEvent } from './wait-for.js'

export interface RecordingSocket {
  ws: WebSocket
  /** Every binary frame received, in order (tests may splice it). */
  frames: Uint8Array[]
  /** How the socket closed: its code and reason. */
  closed: Promise<{ code: number, reason: string }>
}

export const recordingSocket = (
  url: string,
  { headers, timeoutMs = DEFAULT_TIMEOUT_MS }: { headers?: Record<string, string>, timeoutMs?: number } = {},
): RecordingSocket => {
  const ws = new WebSocket(url, headers === undefined ? {} : { headers })
  const frames: Uint8Array[] = []
  ws.on('message', (data: Buffer) => frames.push(new Uint8Array(data)))
  const closed = nextEvent(ws, 'close', { what: `${url} to close`, timeoutMs }).then(([code, reason]) => ({ code: code as number, reason: String(reason) }))
  // A test that never looks at the close must not get an unhandled rejection from it.
  closed.catch(() => {})
  return { ws, frames, closed }
}
