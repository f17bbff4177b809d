/**
 * The multiplexed client protocol on `ws://HOST:PORT/v1/mux` (DESIGN 4.2): one socket, many
 * documents. The SDK speaks it; stock y-websocket clients use `/<docName>` instead.
 *
 * The client names each document it opens with a small number of its own (`docId`), so later
 * messages carry that number, not the name. Inside `sync` travels exactly one y-websocket
 * message (y-messages.ts) of that document: sync steps, updates from other clients, awareness.
 * A local edit the client wants acknowledged goes as `write` with an id that grows per
 * document; the relay answers `ack` once it is durable at each level up to the one the client
 * asked for when it opened the document (`local`: in the relay's store; `majority`/`all`: in
 * that many of the document's regions).
 *
 * A problem with one document (a bad update, a refused name, too many documents) is answered
 * with `error` for that document only, which the relay then treats as closed; the other
 * documents on the socket go on. Only a frame that is not a mux message closes the socket
 * (4400). `redirect` says a document lives in other regions, with the nearest one's URL.
 * `ping`/`pong` let a browser (which cannot send WebSocket pings) notice a silent relay and
 * measure its round trip.
 *
 * Every message is a lib0 varUint type, then its fields; one message per frame.
 */
import * as encoding from 'lib0/encoding'
import * as decoding from 'lib0/decoding'
import { ProtocolError } from './protocol-error.js'

export const MUX_PROTOCOL_VERSION = 1

export const MuxMessageType = {
  Open: 0,
  Close: 1,
  Sync: 2,
  Write: 3,
  Ping: 4,
  Welcome: 5,
  Ack: 6,
  Error: 7,
  Redirect: 8,
  Pong: 9,
} as const

export const ACK_LEVELS = ['local', 'majority', 'all'] as const
export type AckLevel = (typeof ACK_LEVELS)[number]

export interface RegionEndpoint {
  readonly name: string
  /** The relay's public WebSocket URL (ws:// or wss://, no path). */
  readonly url: string
}

export type MuxMessage =
  | { type: 'open', docId: number, docName: string, ack: AckLevel }
  | { type: 'close', docId: number }
  | { type: 'sync', docId: number, payload: Uint8Array }
  | { type: 'write', docId: number, writeId: number, update: Uint8Array }
  | { type: 'ping', nonce: number }
  | { type: 'welcome', version: number, region: string, regions: RegionEndpoint[] }
  | { type: 'ack', docId: number, writeId: number, level: AckLevel }
  | { type: 'error', docId: number, code: number, reason: string }
  | { type: 'redirect', docId: number, region: string, url: string }
  | { type: 'pong', nonce: number }

const fail = (code: 'ERR_TRUNCATED' | 'ERR_LENGTH_EXCEEDS_FRAME' | 'ERR_INVALID_UTF8', what: string): never => {
  throw new ProtocolError(code, `malformed mux message: ${what}`)
}

const uint = (d: decoding.Decoder, what: string): number => {
  try { return decoding.readVarUint(d) } catch { return fail('ERR_TRUNCATED', `truncated ${what}`) }
}

const bytes = (d: decoding.Decoder, what: string): Uint8Array => {
  const length = uint(d, `${what} length`)
  if (length > d.arr.length - d.pos) fail('ERR_LENGTH_EXCEEDS_FRAME', `${what} claims ${length} bytes but ${d.arr.length - d.pos} are left`)
  const out = new Uint8Array(d.arr.subarray(d.pos, d.pos + length)) // a copy: never a view into a socket buffer
  d.pos += length
  return out
}

const utf8 = new TextDecoder('utf-8', { fatal: true })
const string = (d: decoding.Decoder, what: string): string => {
  const raw = bytes(d, what)
  try { return utf8.decode(raw) } catch { return fail('ERR_INVALID_UTF8', `${what} is not UTF-8`) }
}

const level = (d: decoding.Decoder): AckLevel => {
  const n = uint(d, 'ack level')
  const found = ACK_LEVELS[n]
  if (found === undefined) throw new ProtocolError('ERR_UNKNOWN_MESSAGE_TYPE', `unknown ack level ${n} (0 local, 1 majority, 2 all)`)
  return found
}

export const decodeMuxMessage = (frame: Uint8Array): MuxMessage => {
  const d = decoding.createDecoder(frame)
  const type = uint(d, 'message type')
  let message: MuxMessage
  switch (type) {
    case MuxMessageType.Open: message = { type: 'open', docId: uint(d, 'docId'), docName: string(d, 'document name'), ack: level(d) }; break
    case MuxMessageType.Close: message = { type: 'close', docId: uint(d, 'docId') }; break
    case MuxMessageType.Sync: message = { type: 'sync', docId: uint(d, 'docId'), payload: bytes(d, 'payload') }; break
    case MuxMessageType.Write: message = { type: 'write', docId: uint(d, 'docId'), writeId: uint(d, 'writeId'), update: bytes(d, 'update') }; break
    case MuxMessageType.Ping: message = { type: 'ping', nonce: uint(d, 'nonce') }; break
    case MuxMessageType.Welcome: {
      const version = uint(d, 'version')
      const region = string(d, 'region')
      const n = uint(d, 'region count')
      if (n * 2 > d.arr.length - d.pos) fail('ERR_LENGTH_EXCEEDS_FRAME', `region count ${n} does not fit in the frame`)
      const regions: RegionEndpoint[] = []
      for (let i = 0; i < n; i++) regions.push({ name: string(d, 'region name'), url: string(d, 'region url') })
      message = { type: 'welcome', version, region, regions }
      break
    }
    case MuxMessageType.Ack: message = { type: 'ack', docId: uint(d, 'docId'), writeId: uint(d, 'writeId'), level: level(d) }; break
    case MuxMessageType.Error: message = { type: 'error', docId: uint(d, 'docId'), code: uint(d, 'code'), reason: string(d, 'reason') }; break
    case MuxMessageType.Redirect: message = { type: 'redirect', docId: uint(d, 'docId'), region: string(d, 'region'), url: string(d, 'url') }; break
    case MuxMessageType.Pong: message = { type: 'pong', nonce: uint(d, 'nonce') }; break
    default: throw new ProtocolError('ERR_UNKNOWN_MESSAGE_TYPE', `unknown mux message type ${type}`)
  }
  if (decoding.hasContent(d)) fail('ERR_TRUNCATED', `${d.arr.length - d.pos} bytes after the message`)
  return message
}

export const encodeMuxMessage = (message: MuxMessage): Uint8Array => {
  const e = encoding.createEncoder()
  encoding.writeVarUint(e, MuxMessageType[(message.type.charAt(0).toUpperCase() + message.type.slice(1)) as keyof typeof MuxMessageType])
  switch (message.type) {
    case 'open':
      encoding.writeVarUint(e, message.docId)
      encoding.writeVarString(e, message.docName)
      encoding.writeVarUint(e, ACK_LEVELS.indexOf(message.ack))
      break
    case 'close':
      encoding.writeVarUint(e, message.docId)
      break
    case 'sync':
      encoding.writeVarUint(e, message.docId)
      encoding.writeVarUint8Array(e, message.payload)
      break
    case 'write':
      encoding.writeVarUint(e, message.docId)
      encoding.writeVarUint(e, message.writeId)
      encoding.writeVarUint8Array(e, message.update)
      break
    case 'ping':
    case 'pong':
      encoding.writeVarUint(e, message.nonce)
      break
    case 'welcome':
      encoding.writeVarUint(e, message.version)
      encoding.writeVarString(e, message.region)
      encoding.writeVarUint(e, message.regions.length)
      for (const region of message.regions) {
        encoding.writeVarString(e, region.name)
        encoding.writeVarString(e, region.url)
      }
      break
    case 'ack':
      encoding.writeVarUint(e, message.docId)
      encoding.writeVarUint(e, message.writeId)
      encoding.writeVarUint(e, ACK_LEVELS.indexOf(message.level))
      break
    case 'error':
      encoding.writeVarUint(e, message.docId)
      encoding.writeVarUint(e, message.code)
      encoding.writeVarString(e, message.reason)
      break
    case 'redirect':
      encoding.writeVarUint(e, message.docId)
      encoding.writeVarString(e, message.region)
      encoding.writeVarString(e, message.url)
      break
  }
  return encoding.toUint8Array(e)
}
