/**
 * What to tell a client about a failure, and what to count and log: the close code and words
 * the contract gives each kind of failure (docs/protocol.md, close codes).
 */
import { CloseCode, ProtocolError, StoreError } from '@georelay/core'
import { RelayRefusal } from '../docs/index.js'

export interface Failure {
  code: number
  reason: string
  /** Stable code for `georelay_messages_rejected_total{code}`. */
  metric: string
  /** A client's mistake is `info`; the relay's own is `error`. */
  level: 'info' | 'error'
}

export const describeFailure = (err: unknown): Failure => {
  if (err instanceof ProtocolError || err instanceof RelayRefusal) return { code: err.closeCode, reason: err.message, metric: err.code, level: 'info' }
  if (err instanceof StoreError && err.code === 'ERR_DOC_ERASED') return { code: CloseCode.Gone, reason: err.message, metric: err.code, level: 'info' }
  if (err instanceof StoreError && err.code === 'ERR_STORE_FULL') {
    return { code: CloseCode.InternalError, reason: 'the relay\'s disk is full: your update is not stored; your client keeps it, retry later', metric: err.code, level: 'error' }
  }
  if (err instanceof StoreError && err.code === 'ERR_STORE_UNAVAILABLE') {
    return { code: CloseCode.InternalError, reason: 'the relay\'s database does not answer: your update is not stored; your client keeps it and retries', metric: err.code, level: 'error' }
  }
  if (err instanceof StoreError) {
    return { code: CloseCode.InternalError, reason: `the relay could not store your update (${err.code}); your client keeps it, reconnect later`, metric: err.code, level: 'error' }
  }
  return { code: CloseCode.InternalError, reason: 'internal relay error; reconnect later', metric: 'ERR_INTERNAL', level: 'error' }
}
