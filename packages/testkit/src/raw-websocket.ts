/**
 * A WebSocket client on a bare TCP socket, for tests of what a misbehaving client can do: it
 * goes on sending after the relay's close frame (a real client library will not), and never
 * answers a close or a ping. Frames it sends are masked, as a client's must be.
 */
import crypto from 'node:crypto'
import net from 'node:net'
import { DEFAULT_TIMEOUT_MS } from './wait-for.js'

export interface RawWebSocket {
  /** Sends one binary frame, whatever the state of the connection. */
  send(payload: Uint8Array): void
  /** Whether the TCP socket still takes what `send` writes (false once it ended or was destroyed). */
  readonly writable: boolean
  /** Binary payloads received, in order. */
  readonly frames: Uint8Array[]
  /** The relay's close frame. */
  readonly closeFrame: Promise<{ code: number, reason: string }>
  /** The relay ended the TCP connection. */
  readonly ended: Promise<void>
  destroy(): void
}

const uint64BE = (n: number): Buffer => {
  const b = Buffer.alloc(8)
  b.writeBigUInt64BE(BigInt(n))
  return b
}

export const encodeClientFrame = (payload: Uint8Array, opcode = 0x2): Buffer => {
  const length = payload.length
  const header = length < 126 ? Buffer.from([0x80 | opcode, 0x80 | length])
    : length < 65536 ? Buffer.from([0x80 | opcode, 0x80 | 126, length >> 8, length & 0xff])
      : Buffer.concat([Buffer.from([0x80 | opcode, 0x80 | 127]), uint64BE(length)])
  const mask = crypto.randomBytes(4)
  const masked = Buffer.from(payload)
  for (let i = 0; i < masked.length; i++) masked[i] = (masked[i] as number) ^ (mask[i % 4] as number)
  return Buffer.concat([header, mask, masked])
}

/** Opens `url` (ws://host:port/path?query); rejects with the HTTP status line when the upgrade is refused. */
export const rawWebSocket = (
  url: string,
  { headers = {}, timeoutMs = DEFAULT_TIMEOUT_MS }: { headers?: Record<string, string>, timeoutMs?: number } = {},
): Promise<RawWebSocket> =>
  new Promise((resolve, reject) => {
    const target = new URL(url)
    const socket = net.connect(Number(target.port), target.hostname)
    const timer = setTimeout(() => { socket.destroy(); reject(new Error(`no upgrade from ${url} within ${timeoutMs} ms`)) }, timeoutMs)
    const frames: Uint8Array[] = []
    let onClose: (value: { code: number, reason: string }) => void = () => {}
    const closeFrame = new Promise<{ code: number, reason: string }>(done => { onClose = done })
    const ended = new Promise<void>(done => socket.once('close', () => done()))
    let buffer = Buffer.alloc(0)
    let upgraded = false
    const parse = (): void => {
      for (;;) {
        if (buffer.length < 2) return
        const opcode = (buffer[0] as number) & 0x0f
        let length = (buffer[1] as number) & 0x7f
        let at = 2
        if (length === 126) {
          if (buffer.length < 4) return
          length = buffer.readUInt16BE(2)
          at = 4
        } else if (length === 127) {
          if (buffer.length < 10) return
          length = Number(buffer.readBigUInt64BE(2))
          at = 10
        }
        if (buffer.length < at + length) return
        const payload = buffer.subarray(at, at + length)
        buffer = buffer.subarray(at + length)
        if (opcode === 0x2) frames.push(new Uint8Array(payload))
        else if (opcode === 0x8) onClose({ code: payload.length >= 2 ? payload.readUInt16BE(0) : 1005, reason: payload.subarray(2).toString('utf8') })
      }
    }
    socket.on('error', () => {})
    socket.on('data', (chunk: Buffer) => {
      buffer = Buffer.concat([buffer, chunk])
      if (!upgraded) {
        const end = buffer.indexOf('\r\n\r\n')
        if (end === -1) return
        const head = buffer.subarray(0, end).toString('latin1')
        buffer = buffer.subarray(end + 4)
        clearTimeout(timer)
        if (!/^HTTP\/1\.1 101/.test(head)) {
          socket.destroy()
          return reject(new Error(head.split('\r\n')[0]))
        }
        upgraded = true
        resolve({
          send: payload => { if (!socket.destroyed) socket.write(encodeClientFrame(payload)) },
          get writable () { return !socket.destroyed && socket.writable },
          frames,
          closeFrame,
          ended,
          destroy: () => socket.destroy(),
        })
      }
      parse()
    })
    const extra = Object.entries(headers).map(([k, v]) => `${k}: ${v}\r\n`).join('')
    socket.write(`GET ${target.pathname}${target.search} HTTP/1.1\r\nHost: ${target.host}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n` +
      `Sec-WebSocket-Key: ${crypto.randomBytes(16).toString('base64')}\r\nSec-WebSocket-Version: 13\r\n${extra}\r\n`)
  })
