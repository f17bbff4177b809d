/**
 * The multiplexed client protocol on `ws://HOST:PORT/v1/mux` (docs/protocol.md): one socket, many
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
 * measure its round trip. `auth` replaces the socket's token (the first one travels in the
 * `?token=` of the upgrade) without reopening any document: documents the new token no longer
 * allows get `error` 4403. A write refused because the document is read-only for this token
 * gets `error` 4403 too, but the document stays open for reading.
 *
 * `welcome` (protocol 2) ends with the largest message the relay takes, so that the SDK keeps
 * (and reports) an edit too large to send instead of getting its socket closed over it again and
 * again; a welcome from protocol 1 lacks it and decodes with 0 (unknown).
 *
 * Protocol 3: `open` may ask for the namespace's default level (`default`, 3); the relay then
 * answers `opened` with the level in force (only then: a client of protocol 2 never gets one).
 * `refresh` is a strong read: the relay answers `refreshed` once this region holds, and has sent
 * the client, every update acknowledged at the level anywhere before the request — or, past its
 * `timeoutMs`, with the regions it could not hear from. `staleness` says, per other region of
 * a document, how far behind this relay's region is known to be on that region's writes; the
 * relay sends it when a document opens and when it changes.
 *
 * Every message is a lib0 varUint type, then its fields; one message per frame.
 */
import * as encoding from 'lib0/encoding'
import { FrameReader } from './frame-reader.js'
import { ProtocolError } from './protocol-error.js'

export const MUX_PROTOCOL_VERSION = 3

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
  Auth: 10,
  Opened: 11,
  Refresh: 12,
  Refreshed: 13,
  Staleness: 14,
} as const

export const ACK_LEVELS = ['local', 'majority', 'all'] as const
export type AckLevel = (typeof ACK_LEVELS)[number]
/** What `open` asks for: a level, or the namespace's default (`ack` of its rule, `local` without one). */
export type OpenAck = AckLevel | 'default'
const OPEN_ACKS: readonly OpenAck[] = [...ACK_LEVELS, 'default']

export interface RegionStaleness {
  readonly region: string
  /** How long this region has lacked the oldest write of `region` it lacks (0: none), in ms. */
  readonly lagMs: number
  /** Entries of `region`'s stream this region is known to lack. */
  readonly pending: number
}

export interface RegionEndpoint {
  readonly name: string
  /** The relay's public WebSocket URL (ws:// or wss://, no path). */
  readonly url: string
}

export type MuxMessage =
  | { type: 'open', docId: number, docName: string, ack: OpenAck }
  | { type: 'close', docId: number }
  | { type: 'sync', docId: number, payload: Uint8Array }
  | { type: 'write', docId: number, writeId: number, update: Uint8Array }
  | { type: 'ping', nonce: number }
  /** `maxMessageBytes`: the largest frame the relay takes (protocol 2; 0 from a relay that did not say). */
  | { type: 'welcome', version: number, region: string, regions: RegionEndpoint[], maxMessageBytes: number }
  | { type: 'ack', docId: number, writeId: number, level: AckLevel }
  | { type: 'error', docId: number, code: number, reason: string }
  | { type: 'redirect', docId: number, region: string, url: string }
  | { type: 'pong', nonce: number }
  | { type: 'auth', token: string }
  | { type: 'opened', docId: number, ack: AckLevel }
  | { type: 'refresh', docId: number, nonce: number, level: AckLevel, timeoutMs: number }
  /** `unreachable`: the regions not heard from in time (empty: the read is done). */
  | { type: 'refreshed', docId: number, nonce: number, unreachable: string[] }
  /** Per other region of the document: how far behind this region is known to be on its writes. */
  | { type: 'staleness', docId: number, regions: RegionStaleness[] }

const readLevel = (r: FrameReader): AckLevel => {
  const n = r.uint('ack level')
  const found = ACK_LEVELS[n]
  if (found === undefined) throw new ProtocolError('ERR_UNKNOWN_MESSAGE_TYPE', `unknown ack level ${n} (0 local, 1 majority, 2 all)`)
  return found
}

const writeLevel = (e: encoding.Encoder, level: AckLevel): void => encoding.writeVarUint(e, ACK_LEVELS.indexOf(level))

const readOpenAck = (r: FrameReader): OpenAck => {
  const n = r.uint('ack level')
  const found = OPEN_ACKS[n]
  if (found === undefined) throw new ProtocolError('ERR_UNKNOWN_MESSAGE_TYPE', `unknown ack level ${n} (0 local, 1 majority, 2 all, 3 the namespace's default)`)
  return found
}

type MessageOf<T extends MuxMessage['type']> = Extract<MuxMessage, { type: T }>

/** One message's number, and its fields written and read side by side, so their order cannot drift. */
interface Codec<M> {
  readonly number: number
  write(e: encoding.Encoder, message: M): void
  read(r: FrameReader): M
}

const CODECS: { readonly [T in MuxMessage['type']]: Codec<MessageOf<T>> } = {
  open: {
    number: MuxMessageType.Open,
    write: (e, m) => {
      encoding.writeVarUint(e, m.docId)
      encoding.writeVarString(e, m.docName)
      encoding.writeVarUint(e, OPEN_ACKS.indexOf(m.ack))
    },
    read: r => ({ type: 'open', docId: r.uint('docId'), docName: r.string('document name'), ack: readOpenAck(r) }),
  },
  close: {
    number: MuxMessageType.Close,
    write: (e, m) => encoding.writeVarUint(e, m.docId),
    read: r => ({ type: 'close', docId: r.uint('docId') }),
  },
  sync: {
    number: MuxMessageType.Sync,
    write: (e, m) => { encoding.writeVarUint(e, m.docId); encoding.writeVarUint8Array(e, m.payload) },
    read: r => ({ type: 'sync', docId: r.uint('docId'), payload: r.bytes('payload') }),
  },
  write: {
    number: MuxMessageType.Write,
    write: (e, m) => {
      encoding.writeVarUint(e, m.docId)
      encoding.writeVarUint(e, m.writeId)
      encoding.writeVarUint8Array(e, m.update)
    },
    read: r => ({ type: 'write', docId: r.uint('docId'), writeId: r.uint('writeId'), update: r.bytes('update') }),
  },
  ping: {
    number: MuxMessageType.Ping,
    write: (e, m) => encoding.writeVarUint(e, m.nonce),
    read: r => ({ type: 'ping', nonce: r.uint('nonce') }),
  },
  welcome: {
    number: MuxMessageType.Welcome,
    write: (e, m) => {
      encoding.writeVarUint(e, m.version)
      encoding.writeVarString(e, m.region)
      encoding.writeVarUint(e, m.regions.length)
      for (const region of m.regions) {
        encoding.writeVarString(e, region.name)
        encoding.writeVarString(e, region.url)
      }
      encoding.writeVarUint(e, m.maxMessageBytes)
    },
    read: r => ({
      type: 'welcome',
      version: r.uint('version'),
      region: r.string('region'),
      regions: r.list('regions', 2, () => ({ name: r.string('region name'), url: r.string('region url') })),
      maxMessageBytes: r.left > 0 ? r.uint('max message bytes') : 0,
    }),
  },
  ack: {
    number: MuxMessageType.Ack,
    write: (e, m) => { encoding.writeVarUint(e, m.docId); encoding.writeVarUint(e, m.writeId); writeLevel(e, m.level) },
    read: r => ({ type: 'ack', docId: r.uint('docId'), writeId: r.uint('writeId'), level: readLevel(r) }),
  },
  error: {
    number: MuxMessageType.Error,
    write: (e, m) => {
      encoding.writeVarUint(e, m.docId)
      encoding.writeVarUint(e, m.code)
      encoding.writeVarString(e, m.reason)
    },
    read: r => ({ type: 'error', docId: r.uint('docId'), code: r.uint('code'), reason: r.string('reason') }),
  },
  redirect: {
    number: MuxMessageType.Redirect,
    write: (e, m) => {
      encoding.writeVarUint(e, m.docId)
      encoding.writeVarString(e, m.region)
      encoding.writeVarString(e, m.url)
    },
    read: r => ({ type: 'redirect', docId: r.uint('docId'), region: r.string('region'), url: r.string('url') }),
  },
  pong: {
    number: MuxMessageType.Pong,
    write: (e, m) => encoding.writeVarUint(e, m.nonce),
    read: r => ({ type: 'pong', nonce: r.uint('nonce') }),
  },
  auth: {
    number: MuxMessageType.Auth,
    write: (e, m) => encoding.writeVarString(e, m.token),
    read: r => ({ type: 'auth', token: r.string('token') }),
  },
  opened: {
    number: MuxMessageType.Opened,
    write: (e, m) => { encoding.writeVarUint(e, m.docId); writeLevel(e, m.ack) },
    read: r => ({ type: 'opened', docId: r.uint('docId'), ack: readLevel(r) }),
  },
  refresh: {
    number: MuxMessageType.Refresh,
    write: (e, m) => {
      encoding.writeVarUint(e, m.docId)
      encoding.writeVarUint(e, m.nonce)
      writeLevel(e, m.level)
      encoding.writeVarUint(e, m.timeoutMs)
    },
    read: r => ({ type: 'refresh', docId: r.uint('docId'), nonce: r.uint('nonce'), level: readLevel(r), timeoutMs: r.uint('timeoutMs') }),
  },
  staleness: {
    number: MuxMessageType.Staleness,
    write: (e, m) => {
      encoding.writeVarUint(e, m.docId)
      encoding.writeVarUint(e, m.regions.length)
      for (const s of m.regions) {
        encoding.writeVarString(e, s.region)
        encoding.writeVarUint(e, s.lagMs)
        encoding.writeVarUint(e, s.pending)
      }
    },
    read: r => ({
      type: 'staleness',
      docId: r.uint('docId'),
      regions: r.list('regions', 3, () => ({ region: r.string('region'), lagMs: r.uint('lagMs'), pending: r.uint('pending') })),
    }),
  },
  refreshed: {
    number: MuxMessageType.Refreshed,
    write: (e, m) => {
      encoding.writeVarUint(e, m.docId)
      encoding.writeVarUint(e, m.nonce)
      encoding.writeVarUint(e, m.unreachable.length)
      for (const region of m.unreachable) encoding.writeVarString(e, region)
    },
    read: r => ({ type: 'refreshed', docId: r.uint('docId'), nonce: r.uint('nonce'), unreachable: r.list('regions', 1, () => r.string('region')) }),
  },
}

const BY_NUMBER = new Map<number, Codec<MuxMessage>>(
  Object.values(CODECS).map(codec => [codec.number, codec as Codec<MuxMessage>]),
)

export const decodeMuxMessage = (frame: Uint8Array): MuxMessage => {
  const r = new FrameReader(frame, 'mux message')
  const type = r.uint('message type')
  const codec = BY_NUMBER.get(type)
  if (codec === undefined) throw new ProtocolError('ERR_UNKNOWN_MESSAGE_TYPE', `unknown mux message type ${type}`)
  const message = codec.read(r)
  r.end()
  return message
}

export const encodeMuxMessage = (message: MuxMessage): Uint8Array => {
  const codec = CODECS[message.type] as Codec<MuxMessage>
  const e = encoding.createEncoder()
  encoding.writeVarUint(e, codec.number)
  codec.write(e, message)
  return encoding.toUint8Array(e)
}
