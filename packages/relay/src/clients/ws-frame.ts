/**
 * Frame once, send the same bytes. A broadcast sends one payload to every reader of a
 * document; through `ws.send` each socket would build its own frame header and write header
 * and payload as two buffers. Here the relay builds the whole WebSocket frame (RFC 6455 §5.2:
 * FIN + binary opcode, no mask from a server, 7/16/64-bit length) once per payload, in one
 * buffer, and writes it straight to each upgraded socket.
 *
 * That is safe beside ws's own writes because client sockets have no per-message deflate and
 * are never sent Blobs: ws's sender then writes every frame (pings, close) synchronously and
 * whole, so frames stay in order, and `ws.bufferedAmount` still counts what waits in the
 * socket. A socket whose raw stream was not registered is sent to through `ws.send`.
 */
import type { Duplex } from 'node:stream'
import type { WebSocket } from 'ws'

const FIN_BINARY = 0x82

/** The whole frame carrying `payload` from a server: header and payload in one buffer. */
export const binaryFrame = (payload: Uint8Array): Buffer => {
  const n = payload.length
  const header = n < 126 ? 2 : n < 65_536 ? 4 : 10
  const frame = Buffer.allocUnsafe(header + n)
  frame[0] = FIN_BINARY
  if (n < 126) {
    frame[1] = n
  } else if (n < 65_536) {
    frame[1] = 126
    frame.writeUInt16BE(n, 2)
  } else {
    frame[1] = 127
    frame.writeUInt32BE(Math.floor(n / 2 ** 32), 2)
    frame.writeUInt32BE(n >>> 0, 6)
  }
  frame.set(payload, header)
  return frame
}

/**
 * The payload framed last, and its frame: a broadcast asks for the same payload many times in
 * a row, synchronously. Forgotten after the turn, so that a large frame is not kept alive.
 */
let last: { payload: Uint8Array, frame: Buffer } | null = null
const forget = (): void => { last = null }

/** `binaryFrame(payload)`, built once while the same payload is sent to socket after socket. */
export const sharedFrame = (payload: Uint8Array): Buffer => {
  if (last?.payload === payload) return last.frame
  if (last === null) queueMicrotask(forget)
  last = { payload, frame: binaryFrame(payload) }
  return last.frame
}

const rawSockets = new WeakMap<WebSocket, Duplex>()

/** Registers the stream under an upgraded client socket, for `writeFrame`. */
export const writeFramesDirectly = (ws: WebSocket, socket: Duplex): void => {
  rawSockets.set(ws, socket)
}

/** Sends `payload` as one binary message: straight to the stream when registered, else through ws. */
export const frameWriterOf = (ws: WebSocket): (payload: Uint8Array) => void => {
  const raw = rawSockets.get(ws)
  if (raw === undefined) return payload => { ws.send(payload) }
  return payload => { if (!raw.destroyed) raw.write(sharedFrame(payload)) }
}
