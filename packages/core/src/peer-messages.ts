/**
 * The relay-to-relay protocol on `ws://HOST:PORT/v1/peer` (DESIGN 4.3).
 *
 * Each relay dials every peer and pushes its log over its own link: a link carries data one
 * way (dialer → acceptor) and acknowledgements back. The dialer authenticates with the mesh
 * secret in the upgrade request; the acceptor answers with `welcome`, holding its `have`
 * vector: per origin region, how far it durably holds that origin's entries. The dialer then
 * streams `batch`es of entries after those marks. Each batch ends with `upTo` claims ("with
 * this batch you hold all of origin O up to N"); once the batch is durable the acceptor
 * records them and answers `ack` with its new `have`. A link that drops resumes from the
 * acknowledged marks, so delivery is at least once, and Yjs updates apply idempotently.
 *
 * When compaction has folded entries the acceptor still lacks, the dialer asks for the
 * acceptor's state vectors of the affected documents (`sv-request`/`sv-reply`) and sends what
 * they lack as `catch-up` updates, which the acceptor stores as its own writes.
 *
 * Both sides send `link-state` (which peers a relay reaches, and its `have`), versioned by its
 * region and flooded to every neighbour, so that a relay forwards an origin's entries to a
 * peer only while that origin cannot reach it directly; and
 * `awareness` (ephemeral, never stored), tagged with the region whose client set it.
 *
 * Every message is a lib0 varUint type, then its fields; one message per frame.
 */
import * as encoding from 'lib0/encoding'
import * as decoding from 'lib0/decoding'
import { ProtocolError, type ProtocolErrorCode } from './protocol-error.js'

export const PEER_PROTOCOL_VERSION = 1

export const PeerMessageType = {
  Welcome: 0,
  Batch: 1,
  Ack: 2,
  SvRequest: 3,
  SvReply: 4,
  CatchUp: 5,
  LinkState: 6,
  Awareness: 7,
} as const

/** Per origin region, an origin sequence number. */
export type Marks = Record<string, number>

export interface BatchEntry {
  readonly docName: string
  readonly origin: string
  /** The highest origin sequence number this (possibly merged) update holds. */
  readonly originSeq: number
  readonly update: Uint8Array
}

export type PeerMessage =
  | { type: 'welcome', version: number, region: string, have: Marks }
  | { type: 'batch', entries: BatchEntry[], upTo: Marks }
  | { type: 'ack', have: Marks }
  | { type: 'sv-request', docNames: string[] }
  | { type: 'sv-reply', docs: { docName: string, stateVector: Uint8Array }[] }
  | { type: 'catch-up', docName: string, update: Uint8Array }
  | { type: 'link-state', region: string, version: number, reaches: string[], have: Marks }
  | { type: 'awareness', docName: string, origin: string, update: Uint8Array }

const fail = (what: string, code: ProtocolErrorCode = 'ERR_TRUNCATED'): never => {
  throw new ProtocolError(code, `malformed peer message: ${what}`)
}

const uint = (d: decoding.Decoder, what: string): number => {
  try { return decoding.readVarUint(d) } catch { return fail(`truncated ${what}`) }
}

const bytes = (d: decoding.Decoder, what: string): Uint8Array => {
  const length = uint(d, `${what} length`)
  if (length > d.arr.length - d.pos) fail(`${what} claims ${length} bytes but ${d.arr.length - d.pos} are left`, 'ERR_LENGTH_EXCEEDS_FRAME')
  const out = new Uint8Array(d.arr.subarray(d.pos, d.pos + length)) // a copy: never a view into a socket buffer
  d.pos += length
  return out
}

const utf8 = new TextDecoder('utf-8', { fatal: true })
const string = (d: decoding.Decoder, what: string): string => {
  try { return utf8.decode(bytes(d, what)) } catch (err) {
    if (err instanceof ProtocolError) throw err
    return fail(`${what} is not UTF-8`, 'ERR_INVALID_UTF8')
  }
}

/** Counts are checked against the bytes left so a lying count cannot make us loop or allocate. */
const count = (d: decoding.Decoder, what: string, minBytesEach: number): number => {
  const n = uint(d, what)
  if (n * minBytesEach > d.arr.length - d.pos) fail(`${what} of ${n} does not fit in the frame`, 'ERR_LENGTH_EXCEEDS_FRAME')
  return n
}

const list = <T>(d: decoding.Decoder, what: string, minBytesEach: number, read: () => T): T[] => {
  const n = count(d, what, minBytesEach)
  const out: T[] = []
  for (let i = 0; i < n; i++) out.push(read())
  return out
}

// fromEntries, not assignment: a region named `__proto__` must stay an own key.
const readMarks = (d: decoding.Decoder): Marks =>
  Object.fromEntries(list(d, 'marks', 2, () => [string(d, 'origin'), uint(d, 'sequence number')] as const))

const writeMarks = (e: encoding.Encoder, marks: Marks): void => {
  const entries = Object.entries(marks)
  encoding.writeVarUint(e, entries.length)
  for (const [origin, seq] of entries) {
    encoding.writeVarString(e, origin)
    encoding.writeVarUint(e, seq)
  }
}

export const decodePeerMessage = (frame: Uint8Array): PeerMessage => {
  if (frame.length === 0) throw new ProtocolError('ERR_EMPTY_FRAME', 'empty peer message frame')
  const d = decoding.createDecoder(frame)
  const type = uint(d, 'message type')
  let message: PeerMessage
  switch (type) {
    case PeerMessageType.Welcome:
      message = { type: 'welcome', version: uint(d, 'version'), region: string(d, 'region'), have: readMarks(d) }
      break
    case PeerMessageType.Batch:
      message = {
        type: 'batch',
        entries: list(d, 'entries', 4, () => ({
          docName: string(d, 'document name'),
          origin: string(d, 'origin'),
          originSeq: uint(d, 'origin sequence number'),
          update: bytes(d, 'update'),
        })),
        upTo: readMarks(d),
      }
      break
    case PeerMessageType.Ack:
      message = { type: 'ack', have: readMarks(d) }
      break
    case PeerMessageType.SvRequest:
      message = { type: 'sv-request', docNames: list(d, 'document names', 1, () => string(d, 'document name')) }
      break
    case PeerMessageType.SvReply:
      message = { type: 'sv-reply', docs: list(d, 'state vectors', 2, () => ({ docName: string(d, 'document name'), stateVector: bytes(d, 'state vector') })) }
      break
    case PeerMessageType.CatchUp:
      message = { type: 'catch-up', docName: string(d, 'document name'), update: bytes(d, 'update') }
      break
    case PeerMessageType.LinkState:
      message = { type: 'link-state', region: string(d, 'region'), version: uint(d, 'version'), reaches: list(d, 'regions', 1, () => string(d, 'region')), have: readMarks(d) }
      break
    case PeerMessageType.Awareness:
      message = { type: 'awareness', docName: string(d, 'document name'), origin: string(d, 'origin'), update: bytes(d, 'awareness update') }
      break
    default:
      throw new ProtocolError('ERR_UNKNOWN_MESSAGE_TYPE', `unknown peer message type ${type}`)
  }
  if (decoding.hasContent(d)) fail(`${d.arr.length - d.pos} bytes after the message`)
  return message
}

export const encodePeerMessage = (message: PeerMessage): Uint8Array => {
  const e = encoding.createEncoder()
  switch (message.type) {
    case 'welcome':
      encoding.writeVarUint(e, PeerMessageType.Welcome)
      encoding.writeVarUint(e, message.version)
      encoding.writeVarString(e, message.region)
      writeMarks(e, message.have)
      break
    case 'batch':
      encoding.writeVarUint(e, PeerMessageType.Batch)
      encoding.writeVarUint(e, message.entries.length)
      for (const entry of message.entries) {
        encoding.writeVarString(e, entry.docName)
        encoding.writeVarString(e, entry.origin)
        encoding.writeVarUint(e, entry.originSeq)
        encoding.writeVarUint8Array(e, entry.update)
      }
      writeMarks(e, message.upTo)
      break
    case 'ack':
      encoding.writeVarUint(e, PeerMessageType.Ack)
      writeMarks(e, message.have)
      break
    case 'sv-request':
      encoding.writeVarUint(e, PeerMessageType.SvRequest)
      encoding.writeVarUint(e, message.docNames.length)
      for (const name of message.docNames) encoding.writeVarString(e, name)
      break
    case 'sv-reply':
      encoding.writeVarUint(e, PeerMessageType.SvReply)
      encoding.writeVarUint(e, message.docs.length)
      for (const doc of message.docs) {
        encoding.writeVarString(e, doc.docName)
        encoding.writeVarUint8Array(e, doc.stateVector)
      }
      break
    case 'catch-up':
      encoding.writeVarUint(e, PeerMessageType.CatchUp)
      encoding.writeVarString(e, message.docName)
      encoding.writeVarUint8Array(e, message.update)
      break
    case 'link-state':
      encoding.writeVarUint(e, PeerMessageType.LinkState)
      encoding.writeVarString(e, message.region)
      encoding.writeVarUint(e, message.version)
      encoding.writeVarUint(e, message.reaches.length)
      for (const region of message.reaches) encoding.writeVarString(e, region)
      writeMarks(e, message.have)
      break
    case 'awareness':
      encoding.writeVarUint(e, PeerMessageType.Awareness)
      encoding.writeVarString(e, message.docName)
      encoding.writeVarString(e, message.origin)
      encoding.writeVarUint8Array(e, message.update)
      break
  }
  return encoding.toUint8Array(e)
}
