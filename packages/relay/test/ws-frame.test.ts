import { describe, expect, it } from '@jest/globals'
import * as ws from 'ws'
import { binaryFrame, sharedFrame } from '../src/clients/ws-frame.js'

// ws's own framer and parser: exported, but not in @types/ws.
interface WsInternals {
  Sender: { frame(data: Buffer, options: Record<string, unknown>): Buffer[] }
  Receiver: new (options: { isServer: boolean }) => NodeJS.WritableStream & {
    on(event: 'message', listener: (data: Buffer, isBinary: boolean) => void): void
    on(event: 'error', listener: (err: Error) => void): void
  }
}
const { Receiver, Sender } = ws as unknown as WsInternals

// Each length class of RFC 6455's header: 7-bit, 16-bit (126..65535) and 64-bit.
const SIZES = [0, 1, 125, 126, 127, 65_535, 65_536, 200_000]

const payloadOf = (n: number): Uint8Array => Uint8Array.from({ length: n }, (_, i) => (i * 31 + 7) & 0xff)

/** What a stock ws client makes of the bytes: its own frame parser. */
const parse = (bytes: Buffer): Promise<{ data: Buffer, isBinary: boolean }> => new Promise((resolve, reject) => {
  const receiver = new Receiver({ isServer: false })
  receiver.on('message', (data: Buffer, isBinary: boolean) => resolve({ data, isBinary }))
  receiver.on('error', reject)
  receiver.write(bytes)
})

describe('frames written straight to a client socket', () => {
  it.each(SIZES)('are the bytes ws itself would send, for %i bytes of payload', n => {
    const payload = payloadOf(n)
    const options = { fin: true, opcode: 2, mask: false, readOnly: false, rsv1: false }
    const fromWs = Buffer.concat(Sender.frame(Buffer.from(payload), options))
    expect(binaryFrame(payload).equals(fromWs)).toBe(true)
  })

  it.each(SIZES)('parse back to the payload as one binary message, for %i bytes', async n => {
    const payload = payloadOf(n)
    const { data, isBinary } = await parse(binaryFrame(payload))
    expect(isBinary).toBe(true)
    expect(data.equals(Buffer.from(payload))).toBe(true)
  })

  it('are built once while one payload goes to socket after socket', () => {
    const a = payloadOf(40)
    const b = payloadOf(40)
    const first = sharedFrame(a)
    expect(sharedFrame(a)).toBe(first)
    // Equal bytes in another array are another payload: framed anew, never mixed up.
    const other = sharedFrame(b)
    expect(other).not.toBe(first)
    expect(other.equals(first)).toBe(true)
    expect(sharedFrame(a)).not.toBe(first)
  })
})
