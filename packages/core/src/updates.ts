/**
 * Update-level operations: a relay keeps documents as encoded Yjs updates and never builds a
 * `Y.Doc` (a loaded doc takes 12–20× its encoded size). Everything here is Yjs V1 encoding.
 */
import * as Y from 'yjs'
import { ProtocolError } from './protocol-error.js'

/** The update that changes nothing: no structs, empty delete set. */
export const EMPTY_UPDATE: Uint8Array = new Uint8Array([0, 0])

export const isEmptyUpdate = (update: Uint8Array): boolean =>
  update.length === 2 && update[0] === 0 && update[1] === 0

/**
 * Throws a ProtocolError unless `update` decodes completely as a Yjs update. The bytes must
 * be their own buffer (not a view into a bigger one): Yjs readers do not stop at a view's end.
 */
export const validateUpdate = (update: Uint8Array): void => {
  let decoded: ReturnType<typeof Y.decodeUpdate>
  try {
    decoded = Y.decodeUpdate(update)
  } catch (err) {
    throw new ProtocolError('ERR_INVALID_UPDATE', `not a valid Yjs update (${(err as Error).message || 'decoding failed'})`)
  }
  // What follows decodes but makes Y.applyUpdate throw; merging keeps it, so once stored it
  // would break every client that syncs the document. The relay itself never applies updates.
  for (const struct of decoded.structs) {
    // Yjs never writes a struct that covers no clock; applying one throws.
    if (!(struct.length > 0)) throw new ProtocolError('ERR_INVALID_UPDATE', `not a valid Yjs update (struct ${struct.id.client}:${struct.id.clock} has length ${struct.length})`)
    if (!(struct instanceof Y.Item)) continue
    const { client, clock } = struct.id
    // A client's items can only refer to its own earlier items (Yjs checks other clients'
    // references for missing dependencies, but assumes this and crashes without it).
    for (const [what, ref] of [['origin', struct.origin], ['right origin', struct.rightOrigin], ['parent', struct.parent]] as const) {
      if (ref instanceof Y.ID && ref.client === client && ref.clock >= clock) {
        throw new ProtocolError('ERR_INVALID_UPDATE', `not a valid Yjs update (item ${client}:${clock} has its ${what} at ${ref.client}:${ref.clock}, not before it)`)
      }
    }
  }
  // An empty delete range past the receiver's state makes Yjs throw when it keeps it pending.
  for (const [client, ranges] of decoded.ds.clients) {
    for (const range of ranges) {
      if (!(range.len > 0)) throw new ProtocolError('ERR_INVALID_UPDATE', `not a valid Yjs update (an empty delete range of client ${client} at clock ${range.clock})`)
    }
  }
}

/** Throws a ProtocolError unless `stateVector` decodes as a Yjs state vector. */
export const validateStateVector = (stateVector: Uint8Array): void => {
  try {
    Y.decodeStateVector(stateVector)
  } catch (err) {
    throw new ProtocolError('ERR_INVALID_STATE_VECTOR', `not a valid Yjs state vector (${(err as Error).message || 'decoding failed'})`)
  }
}

export const stateVectorOf = (update: Uint8Array): Uint8Array => Y.encodeStateVectorFromUpdate(update)

/** What `update` holds beyond `stateVector` (deletions are always kept: they carry no clock). */
export const diffUpdate = (update: Uint8Array, stateVector: Uint8Array): Uint8Array => Y.diffUpdate(update, stateVector)

export const mergeUpdates = (updates: Uint8Array[]): Uint8Array => {
  if (updates.length === 0) return EMPTY_UPDATE
  if (updates.length === 1) return updates[0] as Uint8Array
  return Y.mergeUpdates(updates)
}

/** Merges at most this many updates in one synchronous step: merging is superlinear. */
export const MERGE_BATCH = 64

export type Yield = () => Promise<void>
export const yieldToEventLoop: Yield = () => new Promise(resolve => setImmediate(resolve))

/**
 * Merges any number of updates in capped batches, yielding to the event loop between batches
 * so that merging a big document never stalls the relay for long.
 */
export const mergeUpdatesInBatches = async (
  updates: Uint8Array[],
  { batch = MERGE_BATCH, pause = yieldToEventLoop }: { batch?: number, pause?: Yield } = {},
): Promise<Uint8Array> => {
  let level = updates
  while (level.length > batch) {
    const next: Uint8Array[] = []
    for (let i = 0; i < level.length; i += batch) {
      next.push(mergeUpdates(level.slice(i, i + batch)))
      await pause()
    }
    level = next
  }
  return mergeUpdates(level)
}
