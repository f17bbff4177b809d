/**
 * The y-websocket wire protocol, as the stock `WebsocketProvider` speaks it.
 *
 * A frame holds one or more messages. Each message is a lib0 varUint message type, then:
 *
 *   0 sync       varUint sub-type, then one varUint8Array:
 *                  0 step 1  the sender's state vector ("what I have")
 *                  1 step 2  an update with what the receiver lacks ("here is the rest")
 *                  2 update  an update made since
 *   1 awareness  varUint8Array holding a y-protocols awareness update
 *   2 auth       varUint 0 (permission denied), then a varString reason
 *   3 query awareness  (no payload) "send me every awareness state you know"
 *
 * Stock clients read one message per frame, so a relay sends them one message per frame; it
 * accepts several per frame from anyone. Decoding is strict: every length is checked against
 * the frame before it is read (lib0 readers silently clamp), unknown types are errors, and
 * payloads are copied out so nothing can read past the frame into a pooled socket buffer.
 */
import * as encoding from 'lib0/encoding'
import { FrameReader } from './frame-reader.js'
import { ProtocolError } from './protocol-error.js'

export const MessageType = { Sync: 0, Awareness: 1, Auth: 2, QueryAwareness: 3 } as const
export const SyncType = { Step1: 0, Step2: 1, Update: 2 } as const
const AUTH_PERMISSION_DENIED = 0

export type YMessage =
  | { type: 'sync-step1', stateVector: Uint8Array }
  | { type: 'sync-step2', update: Uint8Array }
  | { type: 'sync-update', update: Uint8Array }
  | { type: 'awareness', update: Uint8Array }
  | { type: 'auth-denied', reason: string }
  | { type: 'query-awareness' }

const readMessage = (r: FrameReader): YMessage => {
  const type = r.uint('message type')
  switch (type) {
    case MessageType.Sync: {
      const syncType = r.uint('sync message type')
      switch (syncType) {
        case SyncType.Step1: return { type: 'sync-step1', stateVector: r.bytes('sync step 1 state vector') }
        case SyncType.Step2: return { type: 'sync-step2', update: r.bytes('sync step 2 update') }
        case SyncType.Update: return { type: 'sync-update', update: r.bytes('sync update') }
        default: throw new ProtocolError('ERR_UNKNOWN_SYNC_TYPE', `unknown sync message type ${syncType} (expected 0, 1 or 2)`)
      }
    }
    case MessageType.Awareness: return { type: 'awareness', update: r.bytes('awareness update') }
    case MessageType.Auth: {
      const authType = r.uint('auth message type')
      if (authType !== AUTH_PERMISSION_DENIED) throw new ProtocolError('ERR_UNKNOWN_MESSAGE_TYPE', `unknown auth message type ${authType}`)
      return { type: 'auth-denied', reason: r.string('auth reason') }
    }
    case MessageType.QueryAwareness: return { type: 'query-awareness' }
    default: throw new ProtocolError('ERR_UNKNOWN_MESSAGE_TYPE', `unknown message type ${type} (expected 0 sync, 1 awareness, 2 auth or 3 query awareness)`)
  }
}

/** Decodes every message of a frame, or throws a ProtocolError saying what is wrong. */
export const decodeFrame = (frame: Uint8Array): YMessage[] => {
  if (frame.length === 0) throw new ProtocolError('ERR_EMPTY_FRAME', 'empty frame')
  const r = new FrameReader(frame)
  const messages: YMessage[] = []
  while (r.left > 0) messages.push(readMessage(r))
  return messages
}

const writeMessage = (encoder: encoding.Encoder, message: YMessage): void => {
  switch (message.type) {
    case 'sync-step1':
      encoding.writeVarUint(encoder, MessageType.Sync)
      encoding.writeVarUint(encoder, SyncType.Step1)
      encoding.writeVarUint8Array(encoder, message.stateVector)
      return
    case 'sync-step2':
    case 'sync-update':
      encoding.writeVarUint(encoder, MessageType.Sync)
      encoding.writeVarUint(encoder, message.type === 'sync-step2' ? SyncType.Step2 : SyncType.Update)
      encoding.writeVarUint8Array(encoder, message.update)
      return
    case 'awareness':
      encoding.writeVarUint(encoder, MessageType.Awareness)
      encoding.writeVarUint8Array(encoder, message.update)
      return
    case 'auth-denied':
      encoding.writeVarUint(encoder, MessageType.Auth)
      encoding.writeVarUint(encoder, AUTH_PERMISSION_DENIED)
      encoding.writeVarString(encoder, message.reason)
      return
    case 'query-awareness':
      encoding.writeVarUint(encoder, MessageType.QueryAwareness)
  }
}

/** Encodes messages into one frame (stock clients read only the first message of a frame). */
export const encodeFrame = (...messages: YMessage[]): Uint8Array => {
  const encoder = encoding.createEncoder()
  for (const message of messages) writeMessage(encoder, message)
  return encoding.toUint8Array(encoder)
}
