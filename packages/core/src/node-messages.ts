/**
 * What the nodes of one region tell each other over Redis pub/sub (docs/protocol.md).
 *
 * The nodes share the region's store, whose log is the truth; Redis only hints. After a durable
 * append a node publishes `hint` on the document's channel: "entry `seq` of this document is in
 * the log", carrying the update itself when it is small, so that a sibling with clients of the
 * document can fan it out without a read. A hint without the update makes the sibling read the
 * log. Pub/sub drops messages (a restart, a dropped subscription, a slow consumer), so each
 * node also reads the log by its own cursor per document: a lost hint delays, never loses.
 * `awareness` carries presence (ephemeral, never stored) from a node's clients.
 *
 * One channel per region and document, `georelay:{REGION/DOC}`: the braces are a Redis Cluster
 * hash tag, so a document's channel lives on one shard (sharded pub/sub) and no command spans
 * slots. Every message is a varUint type, the sending node's name, then its fields.
 */
import * as encoding from 'lib0/encoding'
import { FrameReader } from './frame-reader.js'
import { ProtocolError } from './protocol-error.js'

export const NodeMessageType = {
  Hint: 0,
  Awareness: 1,
} as const

/** Updates up to this size ride in their hint; larger ones are read from the log. */
export const MAX_HINT_UPDATE_BYTES = 64 * 1024

export type NodeMessage =
  | { type: 'hint', node: string, seq: number, update: Uint8Array | null }
  | { type: 'awareness', node: string, update: Uint8Array }

/** The pub/sub channel of a document of a region. */
export const nodeChannel = (region: string, docName: string): string => `georelay:{${region}/${docName}}`

export const encodeNodeMessage = (message: NodeMessage): Uint8Array => {
  const encoder = encoding.createEncoder()
  encoding.writeVarUint(encoder, NodeMessageType[message.type === 'hint' ? 'Hint' : 'Awareness'])
  encoding.writeVarString(encoder, message.node)
  if (message.type === 'hint') {
    encoding.writeVarUint(encoder, message.seq)
    // 0: no update (read the log); 1: the update follows.
    encoding.writeVarUint(encoder, message.update === null ? 0 : 1)
    if (message.update !== null) encoding.writeVarUint8Array(encoder, message.update)
  } else {
    encoding.writeVarUint8Array(encoder, message.update)
  }
  return encoding.toUint8Array(encoder)
}

export const decodeNodeMessage = (frame: Uint8Array): NodeMessage => {
  const reader = new FrameReader(frame, 'node message')
  const type = reader.uint('type')
  const node = reader.string('node')
  let message: NodeMessage
  if (type === NodeMessageType.Hint) {
    const seq = reader.uint('seq')
    const carried = reader.uint('update flag')
    if (carried > 1) throw new ProtocolError('ERR_UNKNOWN_MESSAGE_TYPE', `malformed node message: update flag ${carried} is neither 0 nor 1`)
    message = { type: 'hint', node, seq, update: carried === 1 ? reader.bytes('update') : null }
  } else if (type === NodeMessageType.Awareness) {
    message = { type: 'awareness', node, update: reader.bytes('update') }
  } else {
    throw new ProtocolError('ERR_UNKNOWN_MESSAGE_TYPE', `malformed node message: unknown type ${type}`)
  }
  reader.end()
  return message
}
