/**
 * The relay-to-relay protocol on `ws://HOST:PORT/v1/peer` (docs/protocol.md).
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
 * Right after a link opens each side sends `policy`: its namespace rules in canonical JSON
 * (see namespace-policy.ts), so that neither sends a document to a region the other's rules
 * exclude, and a mismatch is reported. The dialer streams nothing before it has the
 * acceptor's welcome and policy.
 *
 * Both sides send `link-state` (which peers a relay reaches, and its `have`), versioned by its
 * region and flooded to every neighbour, so that a relay forwards an origin's entries to a
 * peer only while that origin cannot reach it directly; and
 * `awareness` (ephemeral, never stored), tagged with the region whose client set it.
 *
 * Erasure travels on any link too: `erase` lists tombstones (a relay sends every one a peer may
 * hold when a link comes up, and each new one at once), and `erased` confirms, per document,
 * that the sender purged it; see relay/src/mesh/erasure.ts.
 *
 * A strong read (a client's `refresh`) sends `pull` with the asking region's state vector of a
 * document to the regions it must hear from; each answers `pulled` with what that state vector
 * lacks (empty when nothing, or when its rules keep the document from the asker).
 *
 * Every message is a lib0 varUint type, then its fields; one message per frame.
 */
import * as encoding from 'lib0/encoding'
import { FrameReader } from './frame-reader.js'
import { COMPACT_BATCH_TYPE, type CompactBatchReader, type CompactBatchWriter } from './link-batch-codec.js'
import { ProtocolError } from './protocol-error.js'

/**
 * 2: the acceptor reads compact batches (link-batch-codec.ts), so a dialer whose peer's welcome
 * says 2 sends them. Older dialers keep sending plain batches, which every version reads.
 */
export const PEER_PROTOCOL_VERSION = 2

export const PeerMessageType = {
  Welcome: 0,
  Batch: 1,
  Ack: 2,
  SvRequest: 3,
  SvReply: 4,
  CatchUp: 5,
  LinkState: 6,
  Awareness: 7,
  Policy: 8,
  Erase: 9,
  Erased: 10,
  Pull: 11,
  Pulled: 12,
  Forward: 13,
  Forwarded: 14,
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
  /**
   * `lags` (optional, at the end): per peer, how many ms it is behind the sender's own writes,
   * as the sender measures from that peer's acknowledgements (the oldest write it lacks).
   */
  | { type: 'link-state', region: string, version: number, reaches: string[], have: Marks, lags?: Marks }
  | { type: 'awareness', docName: string, origin: string, update: Uint8Array }
  | { type: 'policy', rules: string }
  | { type: 'erase', tombstones: { docName: string, at: number, origin: string }[] }
  | { type: 'erased', docNames: string[] }
  | { type: 'pull', nonce: number, docName: string, stateVector: Uint8Array }
  | { type: 'pulled', nonce: number, docName: string, update: Uint8Array }
  /** A readable standby passes a client's write on to the document's writer… */
  | { type: 'forward', nonce: number, docName: string, update: Uint8Array, level: number }
  /** …which says each level it is durable at (0 local, 1 majority, 2 all), or why not (`error`). */
  | { type: 'forwarded', nonce: number, level: number, error: string }

// fromEntries, not assignment: a region named `__proto__` must stay an own key.
const readMarks = (r: FrameReader): Marks =>
  Object.fromEntries(r.list('marks', 2, () => [r.string('origin'), r.uint('sequence number')] as const))

const writeMarks = (e: encoding.Encoder, marks: Marks): void => {
  const entries = Object.entries(marks)
  encoding.writeVarUint(e, entries.length)
  for (const [origin, seq] of entries) {
    encoding.writeVarString(e, origin)
    encoding.writeVarUint(e, seq)
  }
}

const writeStrings = (e: encoding.Encoder, strings: readonly string[]): void => {
  encoding.writeVarUint(e, strings.length)
  for (const text of strings) encoding.writeVarString(e, text)
}

type MessageOf<T extends PeerMessage['type']> = Extract<PeerMessage, { type: T }>

/** One message's number, and its fields written and read side by side, so their order cannot drift. */
interface Codec<M> {
  readonly number: number
  write(e: encoding.Encoder, message: M): void
  read(r: FrameReader): M
}

const CODECS: { readonly [T in PeerMessage['type']]: Codec<MessageOf<T>> } = {
  welcome: {
    number: PeerMessageType.Welcome,
    write: (e, m) => {
      encoding.writeVarUint(e, m.version)
      encoding.writeVarString(e, m.region)
      writeMarks(e, m.have)
    },
    read: r => ({ type: 'welcome', version: r.uint('version'), region: r.string('region'), have: readMarks(r) }),
  },
  batch: {
    number: PeerMessageType.Batch,
    write: (e, m) => {
      encoding.writeVarUint(e, m.entries.length)
      for (const entry of m.entries) {
        encoding.writeVarString(e, entry.docName)
        encoding.writeVarString(e, entry.origin)
        encoding.writeVarUint(e, entry.originSeq)
        encoding.writeVarUint8Array(e, entry.update)
      }
      writeMarks(e, m.upTo)
    },
    read: r => ({
      type: 'batch',
      entries: r.list('entries', 4, () => ({
        docName: r.string('document name'),
        origin: r.string('origin'),
        originSeq: r.uint('origin sequence number'),
        update: r.bytes('update'),
      })),
      upTo: readMarks(r),
    }),
  },
  ack: {
    number: PeerMessageType.Ack,
    write: (e, m) => writeMarks(e, m.have),
    read: r => ({ type: 'ack', have: readMarks(r) }),
  },
  'sv-request': {
    number: PeerMessageType.SvRequest,
    write: (e, m) => writeStrings(e, m.docNames),
    read: r => ({ type: 'sv-request', docNames: r.list('document names', 1, () => r.string('document name')) }),
  },
  'sv-reply': {
    number: PeerMessageType.SvReply,
    write: (e, m) => {
      encoding.writeVarUint(e, m.docs.length)
      for (const doc of m.docs) {
        encoding.writeVarString(e, doc.docName)
        encoding.writeVarUint8Array(e, doc.stateVector)
      }
    },
    read: r => ({ type: 'sv-reply', docs: r.list('state vectors', 2, () => ({ docName: r.string('document name'), stateVector: r.bytes('state vector') })) }),
  },
  'catch-up': {
    number: PeerMessageType.CatchUp,
    write: (e, m) => { encoding.writeVarString(e, m.docName); encoding.writeVarUint8Array(e, m.update) },
    read: r => ({ type: 'catch-up', docName: r.string('document name'), update: r.bytes('update') }),
  },
  'link-state': {
    number: PeerMessageType.LinkState,
    write: (e, m) => {
      encoding.writeVarString(e, m.region)
      encoding.writeVarUint(e, m.version)
      writeStrings(e, m.reaches)
      writeMarks(e, m.have)
      if (m.lags !== undefined) writeMarks(e, m.lags)
    },
    read: r => {
      const region = r.string('region')
      const version = r.uint('version')
      const reaches = r.list('regions', 1, () => r.string('region'))
      const have = readMarks(r)
      return { type: 'link-state', region, version, reaches, have, ...(r.left > 0 ? { lags: readMarks(r) } : {}) }
    },
  },
  awareness: {
    number: PeerMessageType.Awareness,
    write: (e, m) => {
      encoding.writeVarString(e, m.docName)
      encoding.writeVarString(e, m.origin)
      encoding.writeVarUint8Array(e, m.update)
    },
    read: r => ({ type: 'awareness', docName: r.string('document name'), origin: r.string('origin'), update: r.bytes('awareness update') }),
  },
  policy: {
    number: PeerMessageType.Policy,
    write: (e, m) => encoding.writeVarString(e, m.rules),
    read: r => ({ type: 'policy', rules: r.string('namespace rules') }),
  },
  erase: {
    number: PeerMessageType.Erase,
    write: (e, m) => {
      encoding.writeVarUint(e, m.tombstones.length)
      for (const t of m.tombstones) {
        encoding.writeVarString(e, t.docName)
        encoding.writeVarUint(e, t.at)
        encoding.writeVarString(e, t.origin)
      }
    },
    read: r => ({
      type: 'erase',
      tombstones: r.list('tombstones', 3, () => ({ docName: r.string('document name'), at: r.uint('erased at'), origin: r.string('origin') })),
    }),
  },
  erased: {
    number: PeerMessageType.Erased,
    write: (e, m) => writeStrings(e, m.docNames),
    read: r => ({ type: 'erased', docNames: r.list('document names', 1, () => r.string('document name')) }),
  },
  pull: {
    number: PeerMessageType.Pull,
    write: (e, m) => {
      encoding.writeVarUint(e, m.nonce)
      encoding.writeVarString(e, m.docName)
      encoding.writeVarUint8Array(e, m.stateVector)
    },
    read: r => ({ type: 'pull', nonce: r.uint('nonce'), docName: r.string('document name'), stateVector: r.bytes('state vector') }),
  },
  forward: {
    number: PeerMessageType.Forward,
    write: (e, m) => {
      encoding.writeVarUint(e, m.nonce)
      encoding.writeVarString(e, m.docName)
      encoding.writeVarUint8Array(e, m.update)
      encoding.writeVarUint(e, m.level)
    },
    read: r => ({
      type: 'forward',
      nonce: r.uint('nonce'),
      docName: r.string('document name'),
      update: r.bytes('update'),
      level: r.uint('ack level'),
    }),
  },
  forwarded: {
    number: PeerMessageType.Forwarded,
    write: (e, m) => {
      encoding.writeVarUint(e, m.nonce)
      encoding.writeVarUint(e, m.level)
      encoding.writeVarString(e, m.error)
    },
    read: r => ({ type: 'forwarded', nonce: r.uint('nonce'), level: r.uint('ack level'), error: r.string('error') }),
  },
  pulled: {
    number: PeerMessageType.Pulled,
    write: (e, m) => {
      encoding.writeVarUint(e, m.nonce)
      encoding.writeVarString(e, m.docName)
      encoding.writeVarUint8Array(e, m.update)
    },
    read: r => ({ type: 'pulled', nonce: r.uint('nonce'), docName: r.string('document name'), update: r.bytes('update') }),
  },
}

const BY_NUMBER = new Map<number, Codec<PeerMessage>>(
  Object.values(CODECS).map(codec => [codec.number, codec as Codec<PeerMessage>]),
)

/** Decodes one frame; `link`, the receiving end's state of its link, reads compact batches too. */
export const decodePeerMessage = (frame: Uint8Array, link?: CompactBatchReader): PeerMessage => {
  if (frame.length === 0) throw new ProtocolError('ERR_EMPTY_FRAME', 'empty peer message frame')
  const r = new FrameReader(frame, 'peer message')
  const type = r.uint('message type')
  if (type === COMPACT_BATCH_TYPE && link !== undefined) {
    const batch = link.read(r)
    r.end()
    return { type: 'batch', ...batch }
  }
  const codec = BY_NUMBER.get(type)
  if (codec === undefined) throw new ProtocolError('ERR_UNKNOWN_MESSAGE_TYPE', `unknown peer message type ${type}`)
  const message = codec.read(r)
  r.end()
  return message
}

/** Encodes one message; with `link`, the sending end's state, a batch goes compact when it can. */
export const encodePeerMessage = (message: PeerMessage, link?: CompactBatchWriter): Uint8Array => {
  if (message.type === 'batch' && link !== undefined) {
    const compact = link.encode(message)
    if (compact !== null) return compact
  }
  const codec = CODECS[message.type] as Codec<PeerMessage>
  const e = encoding.createEncoder()
  encoding.writeVarUint(e, codec.number)
  codec.write(e, message)
  return encoding.toUint8Array(e)
}
