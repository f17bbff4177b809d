/**
 * Maps a request path to what it addresses (docs/protocol.md, document names): the document name
 * is the path after the first `/`, percent-decoded (`/eu%2Fnotes/42` and `/eu/notes/42` both name
 * `eu/notes/42`). Only `%` and two hex digits is an escape: any other `%` is itself, as a stock
 * y-websocket provider sends it (it does not encode names), so `100%/x` is `100%/x` here and in a
 * mux `open`. Names under `v1/` and the HTTP endpoints are reserved; which strings are names at
 * all is core's rule (doc-name.ts), the same on every endpoint.
 */
import { docNameProblem, isReservedName } from '@georelay/core'

export type PathTarget =
  | { kind: 'doc', name: string }
  | { kind: 'reserved', path: string }
  | { kind: 'invalid', reason: string }

const ESCAPES = /(?:%[0-9a-fA-F]{2})+/g
const utf8 = new TextDecoder('utf-8', { fatal: true, ignoreBOM: true })
/** A document's query is what y-websocket sends: `name=value` pairs (its `params`, the token). */
const PARAMS = /^(?:[^=&?]+=[^&?]*(?:&|$))*$/

export const parseRequestPath = (url: string): PathTarget => {
  const query = url.indexOf('?')
  const raw = (query === -1 ? url : url.slice(0, query)).replace(/^\//, '')
  const name = decodePathName(raw)
  if (name === null) return { kind: 'invalid', reason: 'the document name is not valid percent-encoding: an escape (%XX) does not decode to UTF-8' }
  if (name === '') return { kind: 'invalid', reason: 'no document name: connect to ws://HOST:PORT/<document name>' }
  if (isReservedName(name)) return { kind: 'reserved', path: name }
  if (query !== -1 && !PARAMS.test(url.slice(query + 1))) {
    // A stock provider given `notes/?q` sends /notes/?q?token=…: say so in a close reason's 123 bytes.
    return { kind: 'invalid', reason: `the query "${url.slice(query + 1, query + 21)}" is not name=value pairs: did the document name hold "?"? Names may not` }
  }
  return checkedName(name)
}

/** Percent-decodes a path: runs of `%XX` as UTF-8 (null when they are not), any other `%` as itself. */
export const decodePathName = (raw: string): string | null => {
  let broken = false
  const name = raw.replace(ESCAPES, run => {
    const bytes = new Uint8Array(run.length / 3)
    for (let i = 0; i < bytes.length; i++) bytes[i] = parseInt(run.slice(i * 3 + 1, i * 3 + 3), 16)
    try {
      return utf8.decode(bytes)
    } catch {
      broken = true
      return run
    }
  })
  return broken ? null : name
}

/** A name that arrived as a string (mux `open`, a peer message): the same checks. */
export const checkedName = (name: string): PathTarget => {
  const problem = docNameProblem(name)
  if (problem !== null) return { kind: 'invalid', reason: problem }
  if (isReservedName(name)) return { kind: 'reserved', path: name }
  return { kind: 'doc', name }
}
