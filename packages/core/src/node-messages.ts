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
 *
 * The region's own channel, `georelay:{REGION}`, serves the region as one peer of the mesh: a
 * node tells the node holding the mesh lease that it `appended` local entries up to `seq` (so
 * that the holder pushes them to the peers now rather than at its next poll), and the holder
 * tells every node up to where a peer region durably `held` the region's entries (so that a
 * write acknowledged at `majority` resolves on whichever node its client is connected to).
 * Both are marks: a lost one is made good by the next, or by the holder's poll of the log.
 * `presence` carries a node's clients' awareness of a document to the holder, which alone
 * has links to every peer (ephemeral, like all presence).
 */
import * as encoding from 'lib0/encoding'
import { FrameReader } from './frame-reader.js'
import { ProtocolError } from './protocol-error.js'

export const NodeMessageType = {
  Hint: 0,
  Awareness: 1,
  Appended: 2,
  Held: 3,
  Presence: 4,
} as const

/** Updates up to this size ride in their hint; larger ones are read from the log. */
export const MAX_HINT_UPDATE_BYTES = 64 * 1024

export type NodeMessage =
  | { type: 'hint', node: string, seq: number, update: Uint8Array | null }
  | { type: 'awareness', node: string, update: Uint8Array }

/** What nodes say on their region's channel. */
export type RegionMessage =
  | { type: 'appended', node: string, seq: number }
  | { type: 'held', node: string, region: string, seq: number }
  | { type: 'presence', node: string, docName: string, update: Uint8Array }

/** The pub/sub channel of a document of a region. */
export const nodeChannel = (region: string, docName: string): string => `georelay:{${region}/${docName}}`

/** The pub/sub channel of a region as a whole. */
export const regionChannel = (region: string): string => `georelay:{${region}}`

const TYPE_OF = {
  hint: NodeMessageType.Hint,
  awareness: NodeMessageType.Awareness,
  appended: NodeMessageType.Appended,
  held: NodeMessageType.Held,
  presence: NodeMessageType.Presence,
} as const

export const encodeNodeMessage = (message: NodeMessage | RegionMessage): Uint8Array => {
  const encoder = encoding.createEncoder()
  encoding.writeVarUint(encoder, TYPE_OF[message.type])
  encoding.writeVarString(encoder, message.node)
  if (message.type === 'appended') {
    encoding.writeVarUint(encoder, message.seq)
  } else if (message.type === 'held') {
    encoding.writeVarString(encoder, message.region)
    encoding.writeVarUint(encoder, message.seq)
  } else if (message.type === 'presence') {
    encoding.writeVarString(encoder, message.docName)
    encoding.writeVarUint8Array(encoder, message.update)
  } else if (message.type === 'hint') {
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

/** A message of the region's channel (`regionChannel`): `appended` or `held`. */
export const decodeRegionMessage = (frame: Uint8Array): RegionMessage => {
  const reader = new FrameReader(frame, 'region message')
  const type = reader.uint('type')
  const node = reader.string('node')
  let message: RegionMessage
  if (type === NodeMessageType.Appended) {
    message = { type: 'appended', node, seq: reader.uint('seq') }
  } else if (type === NodeMessageType.Held) {
    const region = reader.string('region')
    message = { type: 'held', node, region, seq: reader.uint('seq') }
  } else if (type === NodeMessageType.Presence) {
    const docName = reader.string('document name')
    message = { type: 'presence', node, docName, update: reader.bytes('update') }
  } else {
    throw new ProtocolError('ERR_UNKNOWN_MESSAGE_TYPE', `malformed region message: unknown type ${type}`)
  }
  reader.end()
  return message
}
