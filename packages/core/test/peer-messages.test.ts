import { describe, expect, it } from '@jest/globals'
import fc from 'fast-check'
import * as encoding from 'lib0/encoding'
import {
  CloseCode, CompactBatchWriter, PEER_PROTOCOL_VERSION, PeerMessageType, ProtocolError, decodePeerMessage,
  encodePeerMessage, type Marks, type PeerMessage, type ProtocolErrorCode,
} from '@georelay/core'

/** Decodes `frame`, which must fail with a ProtocolError; returns it. */
const decodeError = (frame: Uint8Array): ProtocolError => {
  try {
    decodePeerMessage(frame)
  } catch (err) {
    if (!(err instanceof ProtocolError)) throw new Error(`[${[...frame].join(', ')}] threw ${String(err)}, not a ProtocolError`)
    expect(err.closeCode).toBe(CloseCode.MalformedMessage)
    return err
  }
  throw new Error(`decoded [${[...frame].join(', ')}] without an error`)
}

/** Decodes `frame` or throws a ProtocolError; anything else fails the test. */
const decodeOrRefuse = (frame: Uint8Array): PeerMessage | ProtocolError => {
  try {
    return decodePeerMessage(frame)
  } catch (err) {
    if (err instanceof ProtocolError) return err
    throw new Error(`[${[...frame].join(', ')}] threw ${String(err)}, not a ProtocolError`)
  }
}

// Names: any well-formed string (unicode, empty, long), and some that trip up plain objects.
const name = fc.oneof(
  fc.string({ unit: 'binary', maxLength: 12 }),
  fc.string({ unit: 'grapheme', maxLength: 6 }),
  fc.constantFrom('', 'eu-west', 'ünï/名前/🙂', '__proto__', 'constructor', 'toString', 'x'.repeat(300)),
)
const seq = fc.oneof(
  fc.nat({ max: 300 }),
  fc.maxSafeNat(),
  fc.constantFrom(0, 127, 128, 2 ** 31, 2 ** 32, Number.MAX_SAFE_INTEGER),
)
const marks: fc.Arbitrary<Marks> = fc.dictionary(name, seq, { maxKeys: 5 })
const bytes = fc.uint8Array({ maxLength: 64 })
const few = { maxLength: 4 }

const messages = {
  welcome: fc.record({ type: fc.constant('welcome' as const), version: seq, region: name, have: marks }),
  batch: fc.record({
    type: fc.constant('batch' as const),
    entries: fc.array(fc.record({ docName: name, origin: name, originSeq: seq, update: bytes }), few),
    upTo: marks,
  }),
  ack: fc.record({ type: fc.constant('ack' as const), have: marks }),
  'sv-request': fc.record({ type: fc.constant('sv-request' as const), docNames: fc.array(name, few) }),
  'sv-reply': fc.record({ type: fc.constant('sv-reply' as const), docs: fc.array(fc.record({ docName: name, stateVector: bytes }), few) }),
  'catch-up': fc.record({ type: fc.constant('catch-up' as const), docName: name, update: bytes }),
  'link-state': fc.record({ type: fc.constant('link-state' as const), region: name, version: seq, reaches: fc.array(name, few), have: marks }),
  awareness: fc.record({ type: fc.constant('awareness' as const), docName: name, origin: name, update: bytes }),
  policy: fc.record({ type: fc.constant('policy' as const), rules: fc.oneof(name, fc.constant('[{"match":"eu/*","mode":"active-active"}]')) }),
  erase: fc.record({ type: fc.constant('erase' as const), tombstones: fc.array(fc.record({ docName: name, at: seq, origin: name }), few) }),
  erased: fc.record({ type: fc.constant('erased' as const), docNames: fc.array(name, few) }),
  pull: fc.record({ type: fc.constant('pull' as const), nonce: seq, docName: name, stateVector: bytes }),
  pulled: fc.record({ type: fc.constant('pulled' as const), nonce: seq, docName: name, update: bytes }),
  forward: fc.record({ type: fc.constant('forward' as const), nonce: seq, docName: name, update: bytes, level: seq }),
  forwarded: fc.record({ type: fc.constant('forwarded' as const), nonce: seq, level: seq, error: name }),
} satisfies { [T in PeerMessage['type']]: fc.Arbitrary<Extract<PeerMessage, { type: T }>> }
const anyMessage: fc.Arbitrary<PeerMessage> = fc.oneof(...Object.values(messages))

const wireType: Record<PeerMessage['type'], number> = {
  welcome: PeerMessageType.Welcome,
  batch: PeerMessageType.Batch,
  ack: PeerMessageType.Ack,
  'sv-request': PeerMessageType.SvRequest,
  'sv-reply': PeerMessageType.SvReply,
  'catch-up': PeerMessageType.CatchUp,
  'link-state': PeerMessageType.LinkState,
  awareness: PeerMessageType.Awareness,
  policy: PeerMessageType.Policy,
  erase: PeerMessageType.Erase,
  erased: PeerMessageType.Erased,
  pull: PeerMessageType.Pull,
  pulled: PeerMessageType.Pulled,
  forward: PeerMessageType.Forward,
  forwarded: PeerMessageType.Forwarded,
}

/** A frame field: a varUint, a varString, or a varUint8Array (also how bad strings are written). */
type Field = number | { s: string } | { b: number[] }
const frameOf = (fields: Field[]): Uint8Array => {
  const e = encoding.createEncoder()
  for (const field of fields) {
    if (typeof field === 'number') encoding.writeVarUint(e, field)
    else if ('s' in field) encoding.writeVarString(e, field.s)
    else encoding.writeVarUint8Array(e, new Uint8Array(field.b))
  }
  return encoding.toUint8Array(e)
}
/** 2^53 - 1 as a varint: the largest number a decoder may accept. */
const MAX_VARINT = [0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x0f]

describe('peer-messages', () => {
  it.each(Object.keys(messages) as Array<PeerMessage['type']>)('round-trips any %s message (property)', type => {
    fc.assert(fc.property(messages[type] as fc.Arbitrary<PeerMessage>, message => {
      const frame = encodePeerMessage(message)
      expect(frame[0]).toBe(wireType[type])
      const decoded = decodePeerMessage(frame)
      expect(decoded).toEqual(message)
      expect(encodePeerMessage(decoded)).toEqual(frame)
    }), { numRuns: 80 })
  })

  it('writes the documented layout', () => {
    expect(encodePeerMessage({ type: 'welcome', version: PEER_PROTOCOL_VERSION, region: 'eu', have: { us: 300 } }))
      .toEqual(frameOf([0, 2, { s: 'eu' }, 1, { s: 'us' }, 300]))
    expect(encodePeerMessage({ type: 'batch', entries: [{ docName: 'd', origin: 'us', originSeq: 7, update: new Uint8Array([0, 0]) }], upTo: { us: 7 } }))
      .toEqual(frameOf([1, 1, { s: 'd' }, { s: 'us' }, 7, { b: [0, 0] }, 1, { s: 'us' }, 7]))
    // The compact form (link-batch-codec.ts), on a fresh link: origin once, the name numbered, numbers as differences.
    expect(encodePeerMessage({ type: 'batch', entries: [{ docName: 'd', origin: 'us', originSeq: 7, update: new Uint8Array([0, 0]) }], upTo: { us: 9 } }, new CompactBatchWriter()))
      .toEqual(frameOf([15, { s: 'us' }, 1, 0, { s: 'd' }, 7, { b: [0, 0] }, 2]))
    expect(encodePeerMessage({ type: 'link-state', region: 'eu', version: 3, reaches: ['us', 'ap'], have: {} }))
      .toEqual(frameOf([6, { s: 'eu' }, 3, 2, { s: 'us' }, { s: 'ap' }, 0]))
  })

  it('keeps a region named __proto__ as an ordinary mark', () => {
    const have: Marks = Object.fromEntries([['__proto__', 5], ['us', 1]])
    const decoded = decodePeerMessage(encodePeerMessage({ type: 'ack', have }))
    expect(decoded).toEqual({ type: 'ack', have })
    expect(Object.entries((decoded as { have: Marks }).have)).toEqual([['__proto__', 5], ['us', 1]])
    expect(Object.getPrototypeOf((decoded as { have: Marks }).have)).toBe(Object.prototype)
  })

  it('refuses every truncation of a valid message, as a ProtocolError (property)', () => {
    fc.assert(fc.property(anyMessage, message => {
      const frame = encodePeerMessage(message)
      for (let length = 0; length < frame.length; length++) {
        const { code } = decodeError(frame.subarray(0, length))
        expect<ProtocolErrorCode[]>(length === 0 ? ['ERR_EMPTY_FRAME'] : ['ERR_TRUNCATED', 'ERR_LENGTH_EXCEEDS_FRAME']).toContain(code)
      }
    }), { numRuns: 60 })
  })

  it('refuses bytes after a valid message (property)', () => {
    fc.assert(fc.property(anyMessage, fc.uint8Array({ minLength: 1, maxLength: 4 }), (message, extra) => {
      decodeError(new Uint8Array([...encodePeerMessage(message), ...extra]))
    }), { numRuns: 150 })
  })

  it.each<[string, number[], ProtocolErrorCode]>([
    ['an empty frame', [], 'ERR_EMPTY_FRAME'],
    ['a message type cut inside its varint', [0x80], 'ERR_TRUNCATED'],
    ['message type 15', [15], 'ERR_UNKNOWN_MESSAGE_TYPE'],
    ['message type 128 (two-byte varint)', [0x80, 0x01], 'ERR_UNKNOWN_MESSAGE_TYPE'],
    ['message type 2^53 - 1', MAX_VARINT, 'ERR_UNKNOWN_MESSAGE_TYPE'],
    ['a batch claiming 127 entries with no bytes left', [1, 0x7f], 'ERR_LENGTH_EXCEEDS_FRAME'],
    ['a batch claiming 2^53 - 1 entries', [1, ...MAX_VARINT, 0, 0, 0, 0], 'ERR_LENGTH_EXCEEDS_FRAME'],
    ['marks claiming 2^53 - 1 origins', [2, ...MAX_VARINT, 0, 0], 'ERR_LENGTH_EXCEEDS_FRAME'],
    ['marks claiming 3 origins in 5 bytes', [2, 3, 0, 0, 0, 0, 0], 'ERR_LENGTH_EXCEEDS_FRAME'],
    ['a count that fits the minimum size but not the entries', [1, 2, 0, 0, 0, 3, 1, 2, 3, 0], 'ERR_TRUNCATED'],
    ['an entry update longer than what is left', [1, 2, 0, 0, 0, 5, 1, 2, 3, 0], 'ERR_LENGTH_EXCEEDS_FRAME'],
    ['a batch whose upTo marks are missing', [1, 2, 0, 0, 0, 0, 0, 0, 0, 0], 'ERR_TRUNCATED'],
    ['a state-vector request claiming 5 names in 4 bytes', [3, 5, 0, 0, 0, 0], 'ERR_LENGTH_EXCEEDS_FRAME'],
    ['a state-vector reply claiming 3 documents in 5 bytes', [4, 3, 0, 0, 0, 0, 0], 'ERR_LENGTH_EXCEEDS_FRAME'],
    ['link state claiming 9 reachable regions', [6, 0, 0, 9, 0, 0], 'ERR_LENGTH_EXCEEDS_FRAME'],
    ['a region longer than the frame', [0, 1, 5, 0x65, 0x75, 0], 'ERR_LENGTH_EXCEEDS_FRAME'],
    ['a region of 2^35 - 1 bytes', [0, 1, 0xff, 0xff, 0xff, 0xff, 0x7f, 0], 'ERR_LENGTH_EXCEEDS_FRAME'],
    ['a catch-up update longer than the frame', [5, 1, 0x64, 10, 1, 2], 'ERR_LENGTH_EXCEEDS_FRAME'],
    ['an awareness update length cut inside its varint', [7, 0, 0, 0x80], 'ERR_TRUNCATED'],
    ['a welcome without its have', [0, 1, 0], 'ERR_TRUNCATED'],
    ['an origin sequence number cut inside its varint', [1, 1, 0, 0, 0xff, 0xff], 'ERR_TRUNCATED'],
  ])('refuses %s', (_, frame, code) => {
    expect(decodeError(new Uint8Array(frame)).code).toBe(code)
  })

  it('refuses a varint beyond 2^53 as a protocol error', () => {
    decodeError(new Uint8Array([2, 1, 0, ...new Array<number>(8).fill(0xff), 0x01]))
    decodeError(new Uint8Array([...new Array<number>(8).fill(0xff), 0x01]))
  })

  const badUtf8: Array<[string, number[]]> = [
    ['a bad continuation byte', [0xc3, 0x28]],
    ['a lone surrogate', [0xed, 0xa0, 0x80]],
    ['an overlong encoding', [0xc0, 0x80]],
    ['the byte 0xff', [0x61, 0xff]],
    ['a sequence cut at the end of the string', [0x61, 0xe2, 0x82]],
  ]
  const S = { b: [] } // where the string under test goes
  const withStrings: Array<[string, Field[]]> = [
    ['a welcome region', [0, 1, S, 0]],
    ['a marks origin', [2, 1, S, 5]],
    ['a batch document name', [1, 1, S, { s: 'us' }, 3, { b: [0, 0] }, 0]],
    ['a batch entry origin', [1, 1, { s: 'doc' }, S, 3, { b: [0, 0] }, 0]],
    ['a batch upTo origin', [1, 0, 1, S, 3]],
    ['a requested document name', [3, 2, { s: 'doc' }, S]],
    ['a state-vector reply document name', [4, 1, S, { b: [0] }]],
    ['a catch-up document name', [5, S, { b: [0, 0] }]],
    ['a link-state region', [6, S, 1, 0, 0]],
    ['a reachable region', [6, { s: 'eu' }, 1, 1, S, 0]],
    ['an awareness document name', [7, S, { s: 'eu' }, { b: [0] }]],
    ['an awareness origin', [7, { s: 'doc' }, S, { b: [0] }]],
  ]
  it.each(withStrings)('refuses %s that is not UTF-8', (_, fields) => {
    const put = (value: Field) => fields.map(field => field === S ? value : field)
    // The same frame with a good string decodes, so the bad bytes are what is refused.
    expect(decodePeerMessage(frameOf(put({ s: 'ünï 🙂' })))).toBeDefined()
    for (const [what, bad] of badUtf8) {
      expect([what, decodeError(frameOf(put({ b: bad }))).code]).toEqual([what, 'ERR_INVALID_UTF8'])
    }
  })

  it.each([
    ['a Uint8Array', (frame: Uint8Array) => frame],
    ['a pooled Node Buffer', (frame: Uint8Array) => Buffer.from(frame)],
    ['a view into a bigger buffer', (frame: Uint8Array) => new Uint8Array([9, ...frame, 9]).subarray(1, frame.length + 1)],
  ])('copies payloads out of %s', (_, wrap) => {
    const payload = (n: number) => new Uint8Array([n, n + 1, n + 2])
    const cases: Array<[PeerMessage, (m: PeerMessage) => Uint8Array[]]> = [
      [
        { type: 'batch', entries: [{ docName: 'a', origin: 'us', originSeq: 1, update: payload(1) }, { docName: 'b', origin: 'us', originSeq: 2, update: payload(4) }], upTo: { us: 2 } },
        m => m.type === 'batch' ? m.entries.map(e => e.update) : [],
      ],
      [{ type: 'sv-reply', docs: [{ docName: 'a', stateVector: payload(7) }, { docName: 'b', stateVector: payload(10) }] }, m => m.type === 'sv-reply' ? m.docs.map(d => d.stateVector) : []],
      [{ type: 'catch-up', docName: 'a', update: payload(13) }, m => m.type === 'catch-up' ? [m.update] : []],
      [{ type: 'awareness', docName: 'a', origin: 'eu', update: payload(16) }, m => m.type === 'awareness' ? [m.update] : []],
    ]
    for (const [message, payloadsOf] of cases) {
      const expected = payloadsOf(message).map(p => new Uint8Array(p))
      const frame = wrap(encodePeerMessage(message))
      const decoded = payloadsOf(decodePeerMessage(frame))
      frame.fill(0)
      expect(decoded).toEqual(expected)
      // Yjs decoders read the whole underlying buffer, not just the view.
      for (const p of decoded) expect(p.buffer.byteLength).toBe(p.length)
    }
  })

  it('decodes random bytes or refuses them with a ProtocolError, nothing else (property)', () => {
    fc.assert(fc.property(fc.oneof(
      fc.uint8Array({ maxLength: 64 }),
      // Mostly valid types, so the fuzz gets past the first byte.
      fc.tuple(fc.nat({ max: 8 }), fc.uint8Array({ maxLength: 64 }))
        .map(([type, rest]) => new Uint8Array([type, ...rest])),
    ), frame => {
      decodeOrRefuse(frame)
    }), { numRuns: 2000 })
  })

  it('decodes damaged valid messages or refuses them with a ProtocolError; what decodes re-encodes to itself (property)', () => {
    const damage = fc.array(fc.record({ kind: fc.constantFrom('set', 'insert', 'delete'), at: fc.nat(), value: fc.nat({ max: 255 }) }), { minLength: 1, maxLength: 3 })
    fc.assert(fc.property(anyMessage, damage, (message, edits) => {
      const frame = [...encodePeerMessage(message)]
      for (const { kind, at, value } of edits) {
        const i = at % (frame.length + 1)
        if (kind === 'insert') frame.splice(i, 0, value)
        else if (i < frame.length) frame.splice(i, 1, ...(kind === 'set' ? [value] : []))
      }
      const decoded = decodeOrRefuse(new Uint8Array(frame))
      if (!(decoded instanceof ProtocolError)) expect(decodePeerMessage(encodePeerMessage(decoded))).toEqual(decoded)
    }), { numRuns: 500 })
  })
})
