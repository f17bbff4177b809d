/**
 * What handling a client's messages costs, in rate-limit tokens (see connection-limits.ts).
 *
 * A message costs one token, plus one per COST_UNIT_BYTES of what handling it touches: an
 * update's own bytes (it is decoded, stored, merged and sent on), an awareness update's bytes,
 * and for the questions — a sync step 1 is answered with a diff over the whole document, a
 * query for awareness with every presence state — the size of the answer. One unit is about
 * 0.1 ms of the relay's time, so the default 1000 tokens/s keeps one socket near a tenth of a
 * core however it packs its messages.
 *
 * Questions repeated within one frame get one answer: a 4 KB frame could otherwise hold a
 * thousand sync step 1s, each a diff over the whole document.
 */
import type { YMessage } from '@georelay/core'

export const COST_UNIT_BYTES = 4096

/** Tokens for touching `bytes` bytes. */
export const costOfBytes = (bytes: number): number => Math.ceil(bytes / COST_UNIT_BYTES)

/** What a session knows of its document's size, for pricing questions. */
export interface CostContext {
  /** Bytes of the document's state (0 while it loads). */
  docBytes: number
  /** Bytes an answer to a query for awareness would take. */
  awarenessBytes: number
}

export const costOf = (messages: readonly YMessage[], ctx: CostContext): number => {
  let cost = 0
  for (const message of messages) {
    cost += 1
    switch (message.type) {
      case 'sync-step1': cost += costOfBytes(ctx.docBytes); break
      case 'sync-step2': case 'sync-update': case 'awareness': cost += costOfBytes(message.update.length); break
      case 'query-awareness': cost += costOfBytes(ctx.awarenessBytes); break
      case 'auth-denied': break
    }
  }
  return cost
}

/**
 * The messages of one frame with repeated questions dropped: of several sync step 1s only the
 * last is answered (the answer to the last state vector is the one the client can use), of
 * several queries for awareness one.
 */
export const coalesceQuestions = (messages: YMessage[]): YMessage[] => {
  let step1s = 0
  let queries = 0
  for (const m of messages) {
    if (m.type === 'sync-step1') step1s++
    else if (m.type === 'query-awareness') queries++
  }
  if (step1s <= 1 && queries <= 1) return messages
  return messages.filter(m => {
    if (m.type === 'sync-step1') return --step1s === 0
    if (m.type === 'query-awareness') return --queries === 0
    return true
  })
}
