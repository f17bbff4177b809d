/**
 * Which strings are document names: the one rule every endpoint (y-websocket paths, mux
 * `open`, peer messages) and the SDK apply, so that a name is refused in the same words
 * wherever it arrives.
 *
 * A name is 1 to MAX_DOC_NAME_BYTES bytes of UTF-8 without characters that break the lines
 * names appear in: C0 and C1 controls (U+0085 is a line break to many readers), the Unicode
 * line and paragraph separators U+2028 and U+2029 (JavaScript and JSON readers break lines
 * there), and the bidirectional controls that make a log line read other than it is. Refusing
 * them, rather than escaping them everywhere, keeps names safe in logs, metrics labels and
 * file names that other tools read.
 *
 * A name also travels as a URL path: stock y-websocket providers put it there as it is, unencoded,
 * and the relay percent-decodes the path. So a name may not hold what a URL would read otherwise:
 * `?` and `#` (the query and fragment start there), `\` (read as `/`), `.` and `..` segments
 * (resolved away), and `%` followed by two hex digits (an escape). What remains reaches the same
 * document through the SDK (which sends the name as a string) and through a stock provider.
 * Names under `v1/` and the HTTP endpoints' names are reserved.
 */
export const MAX_DOC_NAME_BYTES = 512
export const RESERVED_NAMES: ReadonlySet<string> = new Set(['healthz', 'readyz', 'metrics'])

// eslint-disable-next-line no-control-regex
const FORBIDDEN = /[\u0000-\u001f\u007f-\u009f\u2028\u2029\u200e\u200f\u202a-\u202e\u2066-\u2069]/

const URL_DELIMITER = /[?#\\]/
const URL_ESCAPE = /%[0-9a-fA-F]{2}/
const DOT_SEGMENT = /(^|\/)\.{1,2}(\/|$)/

const utf8Length = (text: string): number => new TextEncoder().encode(text).length

/** Whether `name` is reserved (an endpoint's path, not a document). */
export const isReservedName = (name: string): boolean => name.startsWith('v1/') || RESERVED_NAMES.has(name)

/** Why `name` cannot be a document name, or null when it can (reserved names are checked apart). */
export const docNameProblem = (name: string): string | null => {
  if (name === '') return 'the document name is empty'
  if (name.length * 3 > MAX_DOC_NAME_BYTES && utf8Length(name) > MAX_DOC_NAME_BYTES) return `the document name is longer than ${MAX_DOC_NAME_BYTES} bytes`
  const bad = FORBIDDEN.exec(name)
  if (bad !== null) {
    const code = (bad[0].codePointAt(0) as number).toString(16).toUpperCase().padStart(4, '0')
    return `the document name holds U+${code}; names may not hold control characters, line or paragraph separators or direction marks`
  }
  const delimiter = URL_DELIMITER.exec(name)
  if (delimiter !== null) {
    const read = delimiter[0] === '\\' ? 'as "/"' : `as the start of its ${delimiter[0] === '?' ? 'query' : 'fragment'}`
    return `the document name holds "${delimiter[0]}", which a URL reads ${read}; names may not hold "?", "#" or "\\"`
  }
  const escape = URL_ESCAPE.exec(name)
  if (escape !== null) {
    return `the document name holds "${escape[0]}", which a URL reads as an escaped character; a "%" in a name may not be followed by two hex digits`
  }
  if (DOT_SEGMENT.test(name)) return 'the document name has a "." or ".." segment, which a URL resolves away; names may not'
  return null
}
