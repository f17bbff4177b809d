/**
 * Strict reading of a y-protocols awareness update: varUint count, then per client a varUint
 * client id, a varUint clock and a varString of JSON (`null` when the client left).
 * y-protocols applies entries as it parses them, so a relay reads the whole update first:
 * a bad entry then rejects the message before any of it takes effect.
 */
import * as decoding from 'lib0/decoding'
import { ProtocolError } from './protocol-error.js'

export interface AwarenessEntry {
  readonly clientID: number
  readonly clock: number
  /** The client's state; null means it left. */
  readonly state: unknown
}

const fail = (why: string): never => {
  throw new ProtocolError('ERR_INVALID_AWARENESS', `invalid awareness update: ${why}`)
}

const utf8 = new TextDecoder('utf-8', { fatal: true })

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
    entries.push({ clientID, clock, state })
  }
  if (decoding.hasContent(decoder)) fail(`${update.length - decoder.pos} bytes after the last entry`)
  return entries
}
