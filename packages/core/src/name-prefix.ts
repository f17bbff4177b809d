/**
 * Prefixes of document names, for stores that list the documents under one (a namespace's
 * literal start) by a range of an index instead of every name they hold.
 */

const MAX_CODE_POINT = 0x10FFFF

/**
 * The least string above every string that starts with `prefix`, in code point order (which is
 * UTF-8 byte order, SQLite's BINARY collation): the prefix with its last code point that can
 * grow grown by one, and what follows it dropped. Null when nothing is above them all (an
 * empty prefix, or one of U+10FFFF only).
 */
export const prefixEnd = (prefix: string): string | null => {
  const points = Array.from(prefix, c => c.codePointAt(0) as number)
  for (let i = points.length - 1; i >= 0; i--) {
    const point = points[i] as number
    if (point === MAX_CODE_POINT) continue
    // Surrogates are not characters: U+D7FF is followed by U+E000.
    const next = point === 0xD7FF ? 0xE000 : point + 1
    return String.fromCodePoint(...points.slice(0, i), next)
  }
  return null
}

/** The literal start of a glob (see glob.ts): every name it matches begins with it. */
export const globPrefix = (glob: string): string => {
  const star = glob.indexOf('*')
  return star === -1 ? glob : glob.slice(0, star)
}
