/**
 * Maps a request path to what it addresses (DESIGN 4.1): the document name is the path after
 * the first `/`, percent-decoded (`/eu%2Fnotes/42` and `/eu/notes/42` both name `eu/notes/42`).
 * Names under `v1/` and the HTTP endpoints are reserved.
 */
export const RESERVED_NAMES = new Set(['healthz', 'readyz', 'metrics'])
export const MAX_DOC_NAME_BYTES = 512

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
  if (name.startsWith('v1/') || RESERVED_NAMES.has(name)) return { kind: 'reserved', path: name }
  if (Buffer.byteLength(name) > MAX_DOC_NAME_BYTES) return { kind: 'invalid', reason: `the document name is longer than ${MAX_DOC_NAME_BYTES} bytes` }
  if (/[\u0000-\u001f\u007f]/.test(name)) return { kind: 'invalid', reason: 'the document name holds control characters' }
  return { kind: 'doc', name }
}
