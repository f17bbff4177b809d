/**
 * Reads back what crossed a WAN simulator link: the raw bytes of one direction hold HTTP
 * upgrade headers, then WebSocket frames — masked when a client sent them, and deflated
 * (permessage-deflate, context kept across messages) when compression is on. Grepping the raw
 * bytes for a secret would find nothing even if it leaked; this decodes the frames so that a
 * test can look for it in what the relays actually said to each other.
 */
import zlib from 'node:zlib'

export interface CapturedMessage {
  opcode: number
  payload: Buffer
  /** What the message took on the wire: its frames, headers included, compressed as sent. */
  wireBytes: number
}

const headerEnd = (bytes: Buffer, from: number): number => {
  const at = bytes.indexOf('\r\n\r\n', from)
  return at === -1 ? -1 : at + 4
}

/** Inflates one connection's compressed messages in order, as the receiver's shared window did. */
const inflateInOrder = (compressed: Buffer[]): Buffer[] => {
  const out: Buffer[] = []
  const inflater = zlib.inflateRawSync
  // Each message ends with a sync flush; with context takeover the next one continues the
  // same stream, so inflating the concatenation up to each boundary recovers each message.
  const tail = Buffer.from([0x00, 0x00, 0xff, 0xff])
  let seen = Buffer.alloc(0)
  let producedSoFar = 0
  for (const message of compressed) {
    seen = Buffer.concat([seen, message, tail])
    const all = inflater(seen, { finishFlush: zlib.constants.Z_SYNC_FLUSH })
    out.push(all.subarray(producedSoFar))
    producedSoFar = all.length
  }
  return out
}

/**
 * Splits one connection's captured bytes (one direction: see @georelay/cluster's WanSimulator.captureByConnection)
 * into WebSocket messages. Throws on bytes that are not HTTP-then-frames, so a test never
 * passes on a capture it could not read. A connection cut mid-frame ends at its last whole frame.
 */
export const decodeWsCapture = (bytes: Buffer): CapturedMessage[] => {
  const messages: CapturedMessage[] = []
  let at = 0
  {
    const start = headerEnd(bytes, at)
    if (start === -1 || !/^(GET |HTTP\/)/.test(bytes.subarray(at, at + 5).toString('latin1'))) {
      if (bytes.length === 0) return []
      throw new Error(`capture: expected an HTTP upgrade at byte ${at}`)
    }
    at = start
    const compressed: { index: number, payload: Buffer }[] = []
    const connection: CapturedMessage[] = []
    let fragments: Buffer[] = []
    let fragmentsWire = 0
    let fragmentOpcode = 0
    let fragmentCompressed = false
    while (at < bytes.length) {
      if (bytes.length - at < 2) break
      const b0 = bytes[at] as number
      const b1 = bytes[at + 1] as number
      let length = b1 & 0x7f
      let offset = at + 2
      if (length === 126) {
        length = bytes.readUInt16BE(offset)
        offset += 2
      } else if (length === 127) {
        length = Number(bytes.readBigUInt64BE(offset))
        offset += 8
      }
      const masked = (b1 & 0x80) !== 0
      const mask = masked ? bytes.subarray(offset, offset + 4) : null
      if (masked) offset += 4
      if (offset + length > bytes.length) break
      const payload = Buffer.from(bytes.subarray(offset, offset + length))
      if (mask !== null) {
        for (let i = 0; i < payload.length; i++) payload[i] = (payload[i] as number) ^ (mask[i % 4] as number)
      }
      const wireBytes = offset + length - at
      at = offset + length
      const fin = (b0 & 0x80) !== 0
      const opcode = b0 & 0x0f
      if (opcode >= 8) {
        connection.push({ opcode, payload, wireBytes })
        if (opcode === 8) break
        continue
      }
      if (opcode !== 0) {
        fragmentOpcode = opcode
        fragmentCompressed = (b0 & 0x40) !== 0
      }
      fragments.push(payload)
      fragmentsWire += wireBytes
      if (!fin) continue
      const whole = Buffer.concat(fragments)
      fragments = []
      if (fragmentCompressed) compressed.push({ index: connection.length, payload: whole })
      connection.push({ opcode: fragmentOpcode, payload: whole, wireBytes: fragmentsWire })
      fragmentsWire = 0
    }
    const inflated = inflateInOrder(compressed.map(c => c.payload))
    compressed.forEach((c, i) => { (connection[c.index] as CapturedMessage).payload = inflated[i] as Buffer })
    messages.push(...connection)
  }
  return messages
}

/** Everything the messages of some connections carried, as one buffer to search. */
export const capturedPayloads = (connections: Buffer[]): Buffer =>
  Buffer.concat(connections.flatMap(bytes => decodeWsCapture(bytes).map(m => m.payload)))
