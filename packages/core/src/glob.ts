/**
 * Globs over document names, matched without backtracking. `*` matches any run of characters
 * within one path segment (no `/`), `**` any run at all; every other character is itself.
 * Namespace rules, a token's `docs` claim and a peer's policy all match names this way.
 *
 * Globs come from tokens and peers, so a glob is untrusted input: compiled to a backtracking
 * regular expression, `*a*a*a*a*a*a*a*b` against 72 `a`s took 18.7 s. This matcher runs the
 * glob as a set of positions over the name (a Thompson NFA), so a match costs at most
 * name length × glob length steps, whatever the glob.
 */

/** Longest glob accepted, in characters; longer ones are refused when compiled. */
export const MAX_GLOB_LENGTH = 256

const STAR = -1
const GLOBSTAR = -2

export interface Glob {
  readonly source: string
  test(name: string): boolean
}

export class GlobError extends Error {
  constructor (message: string) {
    super(message)
    this.name = 'GlobError'
  }
}

/** Compiles a glob; throws a GlobError when it is longer than MAX_GLOB_LENGTH. */
export const compileGlob = (source: string): Glob => {
  if (source.length > MAX_GLOB_LENGTH) throw new GlobError(`a glob is at most ${MAX_GLOB_LENGTH} characters; this one has ${source.length}`)
  const tokens: number[] = []
  for (let i = 0; i < source.length; i++) {
    const c = source.charCodeAt(i)
    if (c !== 42 /* * */) {
      tokens.push(c)
    } else if (source.charCodeAt(i + 1) === 42) {
      // `***` and `**` match the same names; one globstar stands for any run of stars.
      if (tokens[tokens.length - 1] === STAR) tokens[tokens.length - 1] = GLOBSTAR
      else if (tokens[tokens.length - 1] !== GLOBSTAR) tokens.push(GLOBSTAR)
      i++
    } else if (tokens[tokens.length - 1] !== GLOBSTAR && tokens[tokens.length - 1] !== STAR) {
      tokens.push(STAR)
    }
  }
  return { source, test: name => matches(tokens, name) }
}

/** Adds position `i` and every position a run of stars from it can skip to. */
const enter = (tokens: readonly number[], set: Uint8Array, i: number): void => {
  while (set[i] === 0) {
    set[i] = 1
    if (i === tokens.length || (tokens[i] as number) >= 0) return
    i++
  }
}

const matches = (tokens: readonly number[], name: string): boolean => {
  let now = new Uint8Array(tokens.length + 1)
  let next = new Uint8Array(tokens.length + 1)
  enter(tokens, now, 0)
  for (let n = 0; n < name.length; n++) {
    const c = name.charCodeAt(n)
    next.fill(0)
    let alive = false
    for (let i = 0; i < tokens.length; i++) {
      if (now[i] === 0) continue
      const t = tokens[i] as number
      if (t === GLOBSTAR || (t === STAR && c !== 47 /* / */)) {
        enter(tokens, next, i)
        alive = true
      } else if (t === c) {
        enter(tokens, next, i + 1)
        alive = true
      }
    }
    if (!alive) return false
    const swap = now
    now = next
    next = swap
  }
  return now[tokens.length] === 1
}
