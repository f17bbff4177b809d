/**
 * The Hocuspocus wire protocol, as the unchanged `@hocuspocus/provider` (3.x and 4.x) speaks it,
 * so that Tiptap's Collaboration extension can use a relay.
 *
 * Every frame addresses one document and holds one message:
 *
 *   varString key · varUint type · payload
 *
 * The key is the document name, or `name\0session` from a provider with `sessionAwareness`;
 * replies carry the key they answer. Types:
 *
 *   0 Sync            as y-websocket's sync message: varUint sub-type (0 step 1, 1 step 2,
 *                     2 update), then a varUint8Array
 *   1 Awareness       varUint8Array holding an awareness update
 *   2 Auth            varUint sub-type, then a varString:
 *                       0 Token            client → relay: the token ("" for none); 4.x adds a
 *                                          varString with the provider's version
 *                       1 PermissionDenied relay → client: the reason
 *                       2 Authenticated    relay → client: the scope, `read-write` or `readonly`
 *   3 QueryAwareness  (no payload) "send me every awareness state you know"
 *   4 SyncReply       Hocuspocus's server-to-server sync; a client's is read as Sync
 *   5 Stateless       varString payload
 *   7 Close           client → relay: "I am done with this document"; relay → client: varString
 *                     reason (the document is closed, the socket stays)
 *   8 SyncStatus      relay → client, after each sync step 2 or update: varUint 1 applied, 0 refused
 *   9 Ping, 10 Pong   4.x, for the socket: a frame of the one byte, no key
 *
 * Unlike y-websocket's, this protocol has no "several messages in a frame"; a frame that holds
 * more than its message is malformed. Decoding is strict, as every codec of georelay is.
 */
import * as encoding from 'lib0/encoding'
import { FrameReader } from './frame-reader.js'
import { ProtocolError } from './protocol-error.js'
import { type YMessage, decodeFrame, encodeFrame } from './y-messages.js'

export const HocuspocusType = {
  Sync: 0, Awareness: 1, Auth: 2, QueryAwareness: 3, SyncReply: 4,
  Stateless: 5, Close: 7, SyncStatus: 8, Ping: 9, Pong: 10,
} as const

const AuthType = { Token: 0, PermissionDenied: 1, Authenticated: 2 } as const

export type HocuspocusScope = 'read-write' | 'readonly'

/** The separator of a session-aware provider's key: `name\0session`. */
const SESSION_SEPARATOR = '\0'

export type HocuspocusMessage =
  /** A y-websocket sync, awareness or query-awareness message addressed to a document. */
  | { type: 'y', key: string, message: YMessage }
  | { type: 'token', key: string, token: string, version: string | null }
  | { type: 'permission-denied', key: string, reason: string }
  | { type: 'authenticated', key: string, scope: HocuspocusScope }
  | { type: 'stateless', key: string, payload: string }
  | { type: 'close', key: string, reason: string | null }
  | { type: 'sync-status', key: string, applied: boolean }
  | { type: 'ping' }
  | { type: 'pong' }

export const PING_FRAME = new Uint8Array([HocuspocusType.Ping])
export const PONG_FRAME = new Uint8Array([HocuspocusType.Pong])

/** The document a key addresses: the key itself, or its part before a session id. */
export const hocuspocusDocName = (key: string): string => {
  const at = key.indexOf(SESSION_SEPARATOR)
  return at === -1 ? key : key.slice(0, at)
}

const context = 'Hocuspocus message'

const readAuth = (r: FrameReader, key: string): HocuspocusMessage => {
  const authType = r.uint('auth message type')
  switch (authType) {
    case AuthType.Token: {
      const token = r.string('token')
      return { type: 'token', key, token, version: r.left > 0 ? r.string('provider version') : null }
    }
    case AuthType.PermissionDenied: return { type: 'permission-denied', key, reason: r.string('permission-denied reason') }
    case AuthType.Authenticated: {
      const scope = r.string('scope')
      if (scope !== 'read-write' && scope !== 'readonly') throw new ProtocolError('ERR_UNKNOWN_MESSAGE_TYPE', `malformed ${context}: unknown scope "${scope}"`)
      return { type: 'authenticated', key, scope }
    }
    default: throw new ProtocolError('ERR_UNKNOWN_MESSAGE_TYPE', `malformed ${context}: unknown auth message type ${authType} (expected 0 token, 1 permission denied or 2 authenticated)`)
  }
}

const readBody = (frame: Uint8Array, r: FrameReader, key: string): HocuspocusMessage => {
  const rest = frame.subarray(frame.length - r.left)
  const type = r.uint('message type')
  switch (type) {
    case HocuspocusType.Sync: case HocuspocusType.SyncReply:
    case HocuspocusType.Awareness: case HocuspocusType.QueryAwareness: {
      // The same payloads as y-websocket's (a SyncReply is a Sync with another number).
      const body = type === HocuspocusType.SyncReply ? new Uint8Array([HocuspocusType.Sync, ...rest.subarray(1)]) : rest
      const messages = decodeFrame(body)
      if (messages.length !== 1) throw new ProtocolError('ERR_TRAILING_BYTES', `malformed ${context}: a frame holds one message, this one ${messages.length}`)
      return { type: 'y', key, message: messages[0] as YMessage }
    }
    case HocuspocusType.Auth: return readAuth(r, key)
    case HocuspocusType.Stateless: return { type: 'stateless', key, payload: r.string('stateless payload') }
    case HocuspocusType.Close: return { type: 'close', key, reason: r.left > 0 ? r.string('close reason') : null }
    case HocuspocusType.SyncStatus: {
      const applied = r.uint('sync status')
      return { type: 'sync-status', key, applied: applied === 1 }
    }
    default: throw new ProtocolError('ERR_UNKNOWN_MESSAGE_TYPE', `malformed ${context}: unknown message type ${type} for "${key}" (expected 0–3, 5, 7 or 8)`)
  }
}

/** Decodes one frame, or throws a ProtocolError saying what is wrong. */
export const decodeHocuspocusMessage = (frame: Uint8Array): HocuspocusMessage => {
  if (frame.length === 0) throw new ProtocolError('ERR_EMPTY_FRAME', `malformed ${context}: empty frame`)
  // Checked before the key: a key of length 9 or 10 would start with the same byte.
  if (frame.length === 1 && frame[0] === HocuspocusType.Ping) return { type: 'ping' }
  if (frame.length === 1 && frame[0] === HocuspocusType.Pong) return { type: 'pong' }
  const r = new FrameReader(frame, context)
  const key = r.string('document name')
  const message = readBody(frame, r, key)
  if (r.left > 0 && message.type !== 'y') throw new ProtocolError('ERR_TRAILING_BYTES', `malformed ${context}: ${r.left} bytes after the message`)
  return message
}

/** The key as it starts every frame for it: encoded once per document, reused for each frame. */
export const encodeHocuspocusKey = (key: string): Uint8Array => {
  const encoder = encoding.createEncoder()
  encoding.writeVarString(encoder, key)
  return encoding.toUint8Array(encoder)
}

/** A y-websocket frame (one message) addressed to a document: its key's bytes, then the frame. */
export const addressFrame = (keyBytes: Uint8Array, frame: Uint8Array): Uint8Array => {
  const out = new Uint8Array(keyBytes.length + frame.length)
  out.set(keyBytes, 0)
  out.set(frame, keyBytes.length)
  return out
}

export const encodeHocuspocusMessage = (message: HocuspocusMessage): Uint8Array => {
  if (message.type === 'ping') return PING_FRAME
  if (message.type === 'pong') return PONG_FRAME
  const encoder = encoding.createEncoder()
  encoding.writeVarString(encoder, message.key)
  switch (message.type) {
    case 'y':
      encoding.writeUint8Array(encoder, encodeFrame(message.message))
      break
    case 'token':
      encoding.writeVarUint(encoder, HocuspocusType.Auth)
      encoding.writeVarUint(encoder, AuthType.Token)
      encoding.writeVarString(encoder, message.token)
      if (message.version !== null) encoding.writeVarString(encoder, message.version)
      break
    case 'permission-denied':
      encoding.writeVarUint(encoder, HocuspocusType.Auth)
      encoding.writeVarUint(encoder, AuthType.PermissionDenied)
      encoding.writeVarString(encoder, message.reason)
      break
    case 'authenticated':
      encoding.writeVarUint(encoder, HocuspocusType.Auth)
      encoding.writeVarUint(encoder, AuthType.Authenticated)
      encoding.writeVarString(encoder, message.scope)
      break
    case 'stateless':
      encoding.writeVarUint(encoder, HocuspocusType.Stateless)
      encoding.writeVarString(encoder, message.payload)
      break
    case 'close':
      encoding.writeVarUint(encoder, HocuspocusType.Close)
      if (message.reason !== null) encoding.writeVarString(encoder, message.reason)
      break
    case 'sync-status':
      encoding.writeVarUint(encoder, HocuspocusType.SyncStatus)
      encoding.writeVarUint(encoder, message.applied ? 1 : 0)
      break
  }
  return encoding.toUint8Array(encoder)
}
