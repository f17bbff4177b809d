/**
 * Sequential editing traces in the `{ endContent, txns: [{ patches }] }` format of
 * josephg/editing-traces (gzipped JSON), and a seeded synthetic one when no file is given.
 */
import fs from 'node:fs'
import zlib from 'node:zlib'

/** [position in code points, characters deleted, text inserted] */
export type Patch = [number, number, string]

export interface EditingTrace {
  patches: Patch[]
  /** The text after every patch, when the file says (null for synthetic traces). */
  endContent: string | null
}

export const loadTrace = (file: string): EditingTrace => {
  const raw = fs.readFileSync(file)
  const text = file.endsWith('.gz') ? zlib.gunzipSync(raw).toString('utf8') : raw.toString('utf8')
  const parsed = JSON.parse(text) as { endContent?: string, txns?: { patches?: Patch[] }[] }
  if (!Array.isArray(parsed.txns)) throw new Error(`${file} is not a sequential trace: it has no "txns" array`)
  return { patches: parsed.txns.flatMap(t => t.patches ?? []), endContent: parsed.endContent ?? null }
}

/** A seeded trace of typing with occasional backspaces, like a person writing prose. */
export const syntheticTrace = (length: number, seed = 1): EditingTrace => {
  let state = seed >>> 0 || 1
  const random = (): number => {
    state ^= state << 13; state >>>= 0
    state ^= state >>> 17
    state ^= state << 5; state >>>= 0
    return state / 0x100000000
  }
  const patches: Patch[] = []
  let size = 0
  const letters = 'etaoin shrdlu cmfwyp vbgkqjxz,.'
  while (patches.length < length) {
    if (size > 0 && random() < 0.08) {
      patches.push([size - 1, 1, ''])
      size--
    } else {
      patches.push([size, 0, letters[Math.floor(random() * letters.length)] as string])
      size++
    }
  }
  return { patches, endContent: null }
}
