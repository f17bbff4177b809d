/**
 * Every decoder of a relay's input, fed valid frames, damaged ones (bit flips, truncation,
 * bytes added, a length prefix that lies) and random bytes: it decodes, or throws a
 * ProtocolError with close code 4400 and a documented code. Never another exception, never a
 * read past the frame (a frame inside a bigger buffer decodes as its copy does), and what it
 * returns owns its bytes. Seeded and bounded; `GEORELAY_FUZZ_SEED` picks another seed.
 */
import { describe, expect, it } from '@jest/globals'
import fc from 'fast-check'
import * as Y from 'yjs'
import {
  CloseCode, FrameReader, ProtocolError, type ProtocolErrorCode, decodeFrame, decodeHocuspocusMessage,
  decodeMuxMessage, decodePeerMessage, diffUpdate, encodeAwarenessEntries, encodeFrame, encodeHocuspocusMessage,
  encodeMuxMessage, encodePeerMessage, mergeUpdates, readAwarenessUpdate, stateVectorOf, validateStateVector,
  validateUpdate,
} from '@georelay/core'
import {
  awarenessUpdate, hocuspocusFrame, hocuspocusMessage, hostile, muxFrame, muxMessage, peerFrame, peerMessage,
  stateVector, yFrame, yMessage, yjsUpdate,
} from '../../testkit/src/fuzz-frames.js'

const SEED = Number(process.env.GEORELAY_FUZZ_SEED ?? 20261127)
const RUNS = { seed: SEED, numRuns: Number(process.env.GEORELAY_FUZZ_RUNS ?? 200) }

type Outcome = { ok: true, value: unknown } | { ok: false, code: ProtocolErrorCode, message: string }

/** Runs `decode`; a ProtocolError is an outcome, anything else fails the property. */
const outcome = (decode: (frame: Uint8Array) => unknown, frame: Uint8Array): Outcome => {
  try {
    return { ok: true, value: decode(frame) }
  } catch (err) {
    if (!(err instanceof ProtocolError)) throw new Error(`[${[...frame].join(', ')}] threw ${String(err)}, not a ProtocolError`)
    if (err.closeCode !== CloseCode.MalformedMessage) throw new Error(`[${[...frame].join(', ')}] threw ${err.code} with close code ${err.closeCode}`)
    return { ok: false, code: err.code, message: err.message }
  }
}

/** Every Uint8Array inside a decoded value. */
const byteFields = (value: unknown): Uint8Array[] => {
  if (value instanceof Uint8Array) return [value]
  if (Array.isArray(value)) return value.flatMap(byteFields)
  if (value !== null && typeof value === 'object') return Object.values(value).flatMap(byteFields)
  return []
}

/** The frame as a view in the middle of a bigger buffer, as a pooled socket buffer holds it. */
const embed = (frame: Uint8Array, before: Uint8Array, after: Uint8Array): Uint8Array =>
  Uint8Array.from([...before, ...frame, ...after]).subarray(before.length, before.length + frame.length)

const padding = fc.uint8Array({ minLength: 1, maxLength: 16 })

interface Decoder {
  decode: (frame: Uint8Array) => unknown
  valid: fc.Arbitrary<Uint8Array>
  /** The codes it may throw. */
  codes: ProtocolErrorCode[]
  /** Whether it may be given a view into a bigger buffer (Yjs readers may not). */
  viewSafe: boolean
}

const FRAMING: ProtocolErrorCode[] = ['ERR_TRUNCATED', 'ERR_LENGTH_EXCEEDS_FRAME', 'ERR_INVALID_UTF8', 'ERR_UNKNOWN_MESSAGE_TYPE']

const DECODERS: Record<string, Decoder> = {
  'decodeFrame (y-websocket)': { decode: decodeFrame, valid: yFrame, codes: [...FRAMING, 'ERR_EMPTY_FRAME', 'ERR_UNKNOWN_SYNC_TYPE'], viewSafe: true },
  'decodeMuxMessage (/v1/mux)': { decode: decodeMuxMessage, valid: muxFrame, codes: FRAMING, viewSafe: true },
  'decodePeerMessage (/v1/peer)': { decode: decodePeerMessage, valid: peerFrame, codes: [...FRAMING, 'ERR_EMPTY_FRAME'], viewSafe: true },
  'decodeHocuspocusMessage (/v1/hocuspocus)': { decode: decodeHocuspocusMessage, valid: hocuspocusFrame, codes: [...FRAMING, 'ERR_EMPTY_FRAME', 'ERR_UNKNOWN_SYNC_TYPE', 'ERR_TRAILING_BYTES'], viewSafe: true },
  readAwarenessUpdate: { decode: readAwarenessUpdate, valid: awarenessUpdate, codes: ['ERR_INVALID_AWARENESS'], viewSafe: true },
  validateUpdate: { decode: validateUpdate, valid: yjsUpdate, codes: ['ERR_INVALID_UPDATE'], viewSafe: false },
  validateStateVector: { decode: validateStateVector, valid: stateVector, codes: ['ERR_INVALID_STATE_VECTOR'], viewSafe: false },
}

describe.each(Object.entries(DECODERS))('fuzzing %s', (_name, { decode, valid, codes, viewSafe }) => {
  it('decodes or throws a documented ProtocolError for valid, damaged and random frames', () => {
    fc.assert(fc.property(hostile(valid), frame => {
      const result = outcome(decode, frame)
      if (!result.ok) {
        expect(codes).toContain(result.code)
        expect(result.message).not.toBe('')
      }
      // What is returned owns its bytes: a payload must not alias the socket's buffer.
      for (const bytes of byteFields(result.ok ? result.value : null)) {
        expect(bytes.byteLength).toBe(bytes.buffer.byteLength)
      }
    }), RUNS)
  })

  it('accepts every valid frame', () => {
    fc.assert(fc.property(valid, frame => {
      expect(outcome(decode, frame).ok).toBe(true)
    }), { ...RUNS, numRuns: 100 })
  })

  if (viewSafe) {
    it('never reads past the frame: a view into a bigger buffer decodes as its copy', () => {
      fc.assert(fc.property(hostile(valid), padding, padding, (frame, before, after) => {
        expect(outcome(decode, embed(frame, before, after))).toEqual(outcome(decode, frame.slice()))
      }), RUNS)
    })
  }
})

describe('fuzzing what validateUpdate lets through', () => {
  it('an update it accepts can be merged, diffed, state-vectored and applied (a relay stores and serves it)', () => {
    fc.assert(fc.property(hostile(yjsUpdate), yjsUpdate, (update, other) => {
      if (!outcome(validateUpdate, update).ok) return
      const merged = mergeUpdates([other, update])
      diffUpdate(merged, stateVectorOf(other))
      Y.applyUpdate(new Y.Doc(), merged)
      // As a client receives it: on top of what it has.
      const doc = new Y.Doc()
      Y.applyUpdate(doc, other)
      Y.applyUpdate(doc, update)
      doc.getText('t').toString()
      doc.getMap('m').toJSON()
    }), RUNS)
  })
})

describe('fuzzing round trips', () => {
  it('y-websocket, mux and peer messages and awareness entries come back as they were encoded', () => {
    fc.assert(fc.property(fc.array(yMessage, { minLength: 1, maxLength: 3 }), messages => {
      expect(decodeFrame(encodeFrame(...messages))).toEqual(messages)
    }), RUNS)
    fc.assert(fc.property(muxMessage, message => {
      expect(decodeMuxMessage(encodeMuxMessage(message))).toEqual(message)
    }), RUNS)
    fc.assert(fc.property(peerMessage, message => {
      expect(decodePeerMessage(encodePeerMessage(message))).toEqual(message)
    }), RUNS)
    fc.assert(fc.property(hocuspocusMessage, message => {
      expect(decodeHocuspocusMessage(encodeHocuspocusMessage(message))).toEqual(message)
    }), RUNS)
    fc.assert(fc.property(awarenessUpdate, update => {
      // Compared as JSON: a state of -0 is written as 0.
      expect(JSON.stringify(readAwarenessUpdate(encodeAwarenessEntries(readAwarenessUpdate(update)))))
        .toBe(JSON.stringify(readAwarenessUpdate(update)))
    }), RUNS)
  })

  it('whatever damaged bytes decode to, encodes to a frame that decodes the same', () => {
    fc.assert(fc.property(hostile(yFrame), frame => {
      const result = outcome(decodeFrame, frame)
      if (result.ok) expect(decodeFrame(encodeFrame(...decodeFrame(frame)))).toEqual(result.value)
    }), RUNS)
    fc.assert(fc.property(hostile(muxFrame), frame => {
      const result = outcome(decodeMuxMessage, frame)
      if (result.ok) expect(decodeMuxMessage(encodeMuxMessage(decodeMuxMessage(frame)))).toEqual(result.value)
    }), RUNS)
    fc.assert(fc.property(hostile(peerFrame), frame => {
      const result = outcome(decodePeerMessage, frame)
      if (result.ok) expect(decodePeerMessage(encodePeerMessage(decodePeerMessage(frame)))).toEqual(result.value)
    }), RUNS)
    fc.assert(fc.property(hostile(hocuspocusFrame), frame => {
      const result = outcome(decodeHocuspocusMessage, frame)
      const again = (f: Uint8Array): unknown =>
        decodeHocuspocusMessage(encodeHocuspocusMessage(decodeHocuspocusMessage(f)))
      if (result.ok) expect(again(frame)).toEqual(result.value)
    }), RUNS)
  })
})

describe('fuzzing FrameReader', () => {
  type Step = 'uint' | 'bytes' | 'string' | 'list' | 'end'
  const step = fc.constantFrom<Step>('uint', 'bytes', 'string', 'list', 'end')

  it('reads any bytes with any sequence of reads, failing only with a ProtocolError, never past the end', () => {
    fc.assert(fc.property(fc.uint8Array({ maxLength: 48 }), fc.array(step, { maxLength: 12 }), (frame, steps) => {
      const r = new FrameReader(frame, 'fuzz message')
      outcome(() => {
        for (const s of steps) {
          const left = r.left
          if (s === 'uint') r.uint('n')
          else if (s === 'bytes') expect(r.bytes('b').length).toBeLessThanOrEqual(left)
          else if (s === 'string') r.string('s')
          else if (s === 'list') r.list('items', 1, () => r.uint('item'))
          else r.end()
          expect(r.left).toBeGreaterThanOrEqual(0)
          expect(r.left).toBeLessThanOrEqual(left)
        }
      }, frame)
      expect(r.left).toBeGreaterThanOrEqual(0)
    }), RUNS)
  })
})
