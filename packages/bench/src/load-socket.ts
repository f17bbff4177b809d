/**
 * One raw client socket of the load generator: it opens a document the way that contender's
 * provider does and hands every incoming frame, decoded just enough, to its owner.
 */
import WebSocket from 'ws'
import type { Contender } from './contenders.js'
import { type IncomingSync, openingFrames, readFrame } from './wire.js'

export interface LoadSocket {
  readonly ws: WebSocket
  readonly docName: string
  send(frame: Uint8Array): void
  close(): void
}

export interface OpenOptions {
  /** Called with each frame's sync content and the time it arrived (performance.now()). */
  onFrame?: (sync: IncomingSync, at: number) => void
  /** Send the opening messages (auth for Hocuspocus, sync step 1); default true. */
  greet?: boolean
  timeoutMs?: number
}

/**
 * Resolves once the socket is open and, for servers that speak first, once their first frame
 * arrived (the document is set up on the server then, so nothing sent later is missed).
 */
export const openLoadSocket = (
  contender: Pick<Contender, 'label' | 'framing' | 'speaksFirst' | 'url'>,
  docName: string,
  { onFrame, greet = true, timeoutMs = 15_000 }: OpenOptions = {},
): Promise<LoadSocket> =>
  new Promise((resolve, reject) => {
    const url = contender.framing === 'hocuspocus' ? contender.url : `${contender.url}/${docName}`
    const ws = new WebSocket(url, { perMessageDeflate: false })
    ws.binaryType = 'nodebuffer'
    const socket: LoadSocket = {
      ws,
      docName,
      send: frame => { ws.send(frame) },
      close: () => { ws.terminate() },
    }
    // The echoes never speak first; the others greet with sync step 1 (Hocuspocus: once authenticated).
    const speaksFirst = contender.speaksFirst && greet
    let ready = false
    const timer = setTimeout(() => {
      ws.terminate()
      reject(new Error(`${contender.label}: socket for ${docName} not ready within ${timeoutMs} ms`))
    }, timeoutMs)
    const done = (): void => {
      if (ready) return
      ready = true
      clearTimeout(timer)
      resolve(socket)
    }
    ws.on('open', () => {
      if (greet) for (const frame of openingFrames(contender.framing, docName)) ws.send(frame)
      if (!speaksFirst) done()
    })
    ws.on('message', (data: Buffer) => {
      const at = performance.now()
      const sync = readFrame(contender.framing, data)
      // Hocuspocus says 'authenticated' before the document is set up; its sync step 1 comes after.
      if (!ready && (sync.askedState || sync.step2s > 0)) done()
      onFrame?.(sync, at)
    })
    ws.on('error', err => {
      if (ready) return
      clearTimeout(timer)
      reject(new Error(`${contender.label}: socket for ${docName}: ${err.message}`))
    })
  })
