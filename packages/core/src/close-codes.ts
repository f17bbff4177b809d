/**
 * Close codes of georelay sockets (docs/protocol.md, close codes). The 4xxx codes mirror the HTTP status that
 * means the same thing, so an operator reading a log can guess them without this table.
 */
export const CloseCode = {
  /** The side that closes is done with the socket (a client moving to another region, closing). */
  Normal: 1000,
  /** The relay is shutting down and drained this socket: reconnect, possibly elsewhere. */
  GoingAway: 1001,
  /** The relay failed (its store, a bug): the client keeps its edits and reconnects later. */
  InternalError: 1011,
  /** The relay cannot serve this now (no writer in reach): try again later. */
  TryAgainLater: 1013,
  /** This document (or client) lives in another region; the reason holds the region and URL. */
  Moved: 4307,
  MalformedMessage: 4400,
  Unauthenticated: 4401,
  Forbidden: 4403,
  /** The document was erased (DELETE /v1/docs/…): its name takes no more writes or reads. */
  Gone: 4410,
  MessageTooLarge: 4413,
  RateLimited: 4429,
} as const

export type CloseCode = (typeof CloseCode)[keyof typeof CloseCode]

const MAX_REASON_BYTES = 123 // RFC 6455: a close frame's payload is at most 125 bytes, 2 hold the code

/** Shortens a close reason to what a close frame can carry, without splitting a character. */
export const closeReason = (text: string): string => {
  if (Buffer.byteLength(text) <= MAX_REASON_BYTES) return text
  let cut = text.slice(0, MAX_REASON_BYTES - 1)
  // Also drop a high surrogate left alone at the end: it would be sent as U+FFFD.
  while (Buffer.byteLength(cut + '…') > MAX_REASON_BYTES || /[\uD800-\uDBFF]$/.test(cut)) cut = cut.slice(0, -1)
  return cut + '…'
}
