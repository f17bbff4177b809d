/**
 * Maps a request path to what it addresses (docs/protocol.md, document names): the document name is the path after
 * the first `/`, percent-decoded (`/eu%2Fnotes/42` and `/eu/notes/42` both name `eu/notes/42`).
 * Names under `v1/` and the HTTP endpoints are reserved; which strings are names at all is
 * core's rule (doc-name.ts), the same on every endpoint.
 */
import { docNameProblem, isReservedName } from '@georelay/core'

export type PathTarget =
  | { kind: 'doc', name: string }
  | { kind: 'reserved', path: string }
  | { kind: 'invalid', reason: string }

export const parseRequestPath = (url: string): PathTarget => {
  const query = url.indexOf('?')
  const raw = (query === -1 ? url : url.slice(0, query)).replace(/^\//, '')
  let name: string
  try {
    name = decodeURIComponent(raw)
  } catch {
    return { kind: 'invalid', reason: 'the document name is not valid percent-encoding' }
  }
  if (name === '') return { kind: 'invalid', reason: 'no document name: connect to ws://HOST:PORT/<document name>' }
  if (isReservedName(name)) return { kind: 'reserved', path: name }
  return checkedName(name)
}

/** A name that arrived as a string (mux `open`, a peer message): the same checks. */
export const checkedName = (name: string): PathTarget => {
  const problem = docNameProblem(name)
  if (problem !== null) return { kind: 'invalid', reason: problem }
  if (isReservedName(name)) return { kind: 'reserved', path: name }
  return { kind: 'doc', name }
}
