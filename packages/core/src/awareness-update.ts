/**
 * Strict reading of a y-protocols awareness update: varUint count, then per client a varUint
 * client id, a varUint clock and a varString of JSON (`null` when the client left).
 * y-protocols applies entries as it parses them, so a relay reads the whole update first:
 * a bad entry then rejects the message before any of it takes effect.
 */
import * as decoding from 'lib0/decoding'
import * as encoding from 'lib0/encoding'
import { ProtocolError } from './protocol-error.js'

export interface AwarenessEntry {
  readonly clientID: number
  readonly clock: number
  /** The client's state; null means it left. */
  readonly state: unknown
  /** Bytes of the state's JSON text, as read (not needed to encode). */
  readonly bytes?: number
}

const fail = (why: string): never => {
  throw new ProtocolError('ERR_INVALID_AWARENESS', `invalid awareness update: ${why}`)
}

const utf8 = new TextDecoder('utf-8', { fatal: true, ignoreBOM: true })

export const readAwarenessUpdate = (update: Uint8Array): AwarenessEntry[] => {
  const decoder = decoding.createDecoder(update)
  const uint = (what: string): number => {
    try { return decoding.readVarUint(decoder) } catch { return fail(`truncated ${what}`) }
  }
  const count = uint('client count')
  const entries: AwarenessEntry[] = []
  for (let i = 0; i < count; i++) {
    const clientID = uint('client id')
    const clock = uint('clock')
    const length = uint('state length')
    if (length > update.length - decoder.pos) fail(`state claims ${length} bytes but ${update.length - decoder.pos} are left`)
    let state: unknown
    try {
      state = JSON.parse(utf8.decode(update.subarray(decoder.pos, decoder.pos + length)))
    } catch {
      fail(`the state of client ${clientID} is not JSON`)
    }
    decoder.pos += length
    entries.push({ clientID, clock, state, bytes: length })
  }
  if (decoding.hasContent(decoder)) fail(`${update.length - decoder.pos} bytes after the last entry`)
  return entries
}

/** Encodes entries as one awareness update (the inverse of readAwarenessUpdate). */
export const encodeAwarenessEntries = (entries: readonly AwarenessEntry[]): Uint8Array => {
  const encoder = encoding.createEncoder()
  encoding.writeVarUint(encoder, entries.length)
  for (const entry of entries) {
    encoding.writeVarUint(encoder, entry.clientID)
    encoding.writeVarUint(encoder, entry.clock)
    encoding.writeVarString(encoder, JSON.stringify(entry.state))
  }
  return encoding.toUint8Array(encoder)
}

/**
 * Merges awareness updates into one holding each client's newest entry, so a burst of
 * cursor moves crosses the WAN as one message.
 */
export const coalesceAwarenessUpdates = (updates: readonly Uint8Array[]): Uint8Array => {
  const newest = new Map<number, AwarenessEntry>()
  for (const update of updates) {
    for (const entry of readAwarenessUpdate(update)) {
      const seen = newest.get(entry.clientID)
      if (seen === undefined || entry.clock > seen.clock || (entry.clock === seen.clock && entry.state === null)) {
        newest.set(entry.clientID, entry)
      }
    }
  }
  return encodeAwarenessEntries([...newest.values()])
}
