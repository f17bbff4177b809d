/**
 * An editing trace turned into the Yjs updates a writer would send, one keystroke per update,
 * computed once so that the load generator only sends bytes: its cost must not depend on Yjs.
 */
import * as Y from 'yjs'
import type { EditingTrace, Patch } from '@georelay/testkit'

export interface KeystrokeUpdates {
  /** One update per patch of the trace, in order. */
  updates: Uint8Array[]
  /**
   * The writer's clock a reader must hold to have keystroke i: the clock right after it, or for
   * a pure deletion (it adds no clock) the clock after the next insertion, since every server
   * here forwards one writer's updates in order. Non-decreasing.
   */
  clockNeeded: number[]
  /** Whether keystroke i inserts (only those have a latency of their own). */
  inserts: boolean[]
  /** The writer's Yjs client id (the same in every document it writes). */
  clientId: number
  /** The whole document after the last keystroke, as one update. */
  finalState: Uint8Array
  /** Sum of the update sizes. */
  bytes: number
}

/**
 * Applies one patch to a Y.Text as one transaction, so a replacement is one update like any
 * keystroke (positions in UTF-16 units: the traces used here are ASCII).
 */
export const applyPatch = (text: Y.Text, [position, deleted, inserted]: Patch): void => {
  const edit = (): void => {
    if (deleted > 0) text.delete(position, deleted)
    if (inserted !== '') text.insert(position, inserted)
  }
  if (text.doc === null) edit()
  else text.doc.transact(edit)
}

export const keystrokeUpdates = (trace: EditingTrace, count = trace.patches.length, clientId = 1): KeystrokeUpdates => {
  const doc = new Y.Doc({ gc: true })
  doc.clientID = clientId
  const text = doc.getText('t')
  const updates: Uint8Array[] = []
  const clockNeeded: number[] = []
  const inserts: boolean[] = []
  doc.on('update', (update: Uint8Array) => { updates.push(update) })
  for (const patch of trace.patches.slice(0, count)) {
    applyPatch(text, patch)
    // A patch that changes nothing (deleting 0, inserting '') emits no update: keep them aligned.
    if (updates.length === clockNeeded.length) continue
    const inserted = patch[2] !== ''
    clockNeeded.push(inserted ? Y.getState(doc.store, clientId) : -1)
    inserts.push(inserted)
  }
  // Trailing deletions would never be seen as delivered: leave them out.
  while (inserts.length > 0 && inserts[inserts.length - 1] === false) {
    inserts.pop()
    clockNeeded.pop()
    updates.pop()
  }
  for (let i = clockNeeded.length - 2; i >= 0; i--) {
    if (clockNeeded[i] === -1) clockNeeded[i] = clockNeeded[i + 1] as number
  }
  const finalState = Y.encodeStateAsUpdate(doc)
  doc.destroy()
  return { updates, clockNeeded, inserts, clientId, finalState, bytes: updates.reduce((n, u) => n + u.length, 0) }
}

/** A document's final state for a trace, as one update (for the memory workload). */
export const finalStateOf = (trace: EditingTrace): Uint8Array => {
  const doc = new Y.Doc({ gc: true })
  const text = doc.getText('t')
  for (const patch of trace.patches) applyPatch(text, patch)
  const state = Y.encodeStateAsUpdate(doc)
  doc.destroy()
  return state
}
