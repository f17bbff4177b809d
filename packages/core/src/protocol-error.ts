import { CloseCode } from './close-codes.js'

/** Why a message was refused; stable strings that tests and operators can match on. */
export type ProtocolErrorCode =
  | 'ERR_EMPTY_FRAME'
  | 'ERR_TRUNCATED'
  | 'ERR_INVALID_UTF8'
  | 'ERR_LENGTH_EXCEEDS_FRAME'
  | 'ERR_UNKNOWN_MESSAGE_TYPE'
  | 'ERR_UNKNOWN_SYNC_TYPE'
  | 'ERR_INVALID_UPDATE'
  | 'ERR_INVALID_STATE_VECTOR'
  | 'ERR_INVALID_AWARENESS'
  | 'ERR_UNEXPECTED_MESSAGE'
  | 'ERR_TEXT_FRAME'
  | 'ERR_TRAILING_BYTES'
  | 'ERR_UNKNOWN_DOC_NUMBER'

/**
 * A message broke the protocol. Carries the close code for the socket it arrived on and a
 * reason in words; nothing of the message may be stored or forwarded.
 */
export class ProtocolError extends Error {
  readonly closeCode: CloseCode = CloseCode.MalformedMessage
  constructor (readonly code: ProtocolErrorCode, message: string) {
    super(message)
    this.name = 'ProtocolError'
  }
}
