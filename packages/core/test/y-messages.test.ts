import { describe, expect, it } from '@jest/globals'
import fc from 'fast-check'
import * as encoding from 'lib0/encoding'
import * as authProtocol from 'y-protocols/auth'
import * as syncProtocol from 'y-protocols/sync'
import * as Y from 'yjs'
import { CloseCode, decodeFrame, encodeFrame, MessageType, ProtocolError, type ProtocolErrorCode, type YMessage } from '@georelay/core'

const decodeError = (frame: Uint8Array): ProtocolError => {
  try {
    decodeFrame(frame)
  } catch (err) {
    expect(err).toBeInstanceOf(ProtocolError)
    expect((err as ProtocolError).closeCode).toBe(CloseCode.MalformedMessage)
    return err as ProtocolError
  }
  throw new Error(`decoded [${[...frame].join(', ')}] without an error`)
}

const payloadOf = (message: YMessage | undefined): Uint8Array => {
  if (message === undefined || !('update' in message || 'stateVector' in message)) throw new Error(`no payload in ${message?.type}`)
  return 'update' in message ? message.update : message.stateVector
}

const bytes = fc.uint8Array({ maxLength: 200 })
const message: fc.Arbitrary<YMessage> = fc.oneof(
  bytes.map((stateVector): YMessage => ({ type: 'sync-step1', stateVector })),
  bytes.map((update): YMessage => ({ type: 'sync-step2', update })),
  bytes.map((update): YMessage => ({ type: 'sync-update', update })),
  bytes.map((update): YMessage => ({ type: 'awareness', update })),
  fc.string({ unit: 'binary' }).map((reason): YMessage => ({ type: 'auth-denied', reason })),
  fc.constant<YMessage>({ type: 'query-awareness' }),
)

describe('y-messages', () => {
  it('round-trips several messages in one frame', () => {
    const doc = new Y.Doc()
    doc.getText('t').insert(0, 'hi')
    const update = Y.encodeStateAsUpdate(doc)
    const sv = Y.encodeStateVector(doc)
    const frame = encodeFrame({ type: 'sync-step1', stateVector: sv }, { type: 'sync-update', update }, { type: 'query-awareness' })
    expect(decodeFrame(frame)).toEqual([
      { type: 'sync-step1', stateVector: sv },
      { type: 'sync-update', update },
      { type: 'query-awareness' },
    ])
  })

  it('round-trips any list of messages with any payload (property)', () => {
    fc.assert(fc.property(fc.array(message, { minLength: 1, maxLength: 8 }), messages => {
      expect(decodeFrame(encodeFrame(...messages))).toEqual(messages)
    }))
  })

  it('writes byte for byte what y-protocols writes, and reads it', () => {
    const doc = new Y.Doc()
    doc.getText('t').insert(0, 'hello')
    const frameOf = (write: (encoder: encoding.Encoder) => void) => {
      const encoder = encoding.createEncoder()
      write(encoder)
      return encoding.toUint8Array(encoder)
    }
    const sv = Y.encodeStateVector(doc)
    const update = Y.encodeStateAsUpdate(doc)
    const cases: Array<[YMessage, Uint8Array]> = [
      [{ type: 'sync-step1', stateVector: sv }, frameOf(e => { encoding.writeVarUint(e, MessageType.Sync); syncProtocol.writeSyncStep1(e, doc) })],
      [{ type: 'sync-step2', update }, frameOf(e => { encoding.writeVarUint(e, MessageType.Sync); syncProtocol.writeSyncStep2(e, doc) })],
      [{ type: 'sync-update', update }, frameOf(e => { encoding.writeVarUint(e, MessageType.Sync); syncProtocol.writeUpdate(e, update) })],
      [{ type: 'awareness', update }, frameOf(e => { encoding.writeVarUint(e, MessageType.Awareness); encoding.writeVarUint8Array(e, update) })],
      [{ type: 'auth-denied', reason: 'nope ✋' }, frameOf(e => { encoding.writeVarUint(e, MessageType.Auth); authProtocol.writePermissionDenied(e, 'nope ✋') })],
      [{ type: 'query-awareness' }, frameOf(e => encoding.writeVarUint(e, MessageType.QueryAwareness))],
    ]
    for (const [decoded, frame] of cases) {
      expect(encodeFrame(decoded)).toEqual(frame)
      expect(decodeFrame(frame)).toEqual([decoded])
    }
  })

  it.each<[string, number[], ProtocolErrorCode]>([
    ['an empty frame', [], 'ERR_EMPTY_FRAME'],
    ['a message type cut inside its varint', [0x80], 'ERR_TRUNCATED'],
    ['a sync message without its sub-type', [0], 'ERR_TRUNCATED'],
    ['a sync sub-type cut inside its varint', [0, 0x80], 'ERR_TRUNCATED'],
    ['a state vector without its length', [0, 0], 'ERR_TRUNCATED'],
    ['a payload length cut inside its varint', [1, 0xff], 'ERR_TRUNCATED'],
    ['an auth message without its sub-type', [2], 'ERR_TRUNCATED'],
    ['a sync update longer than the frame', [0, 2, 5, 1, 2], 'ERR_LENGTH_EXCEEDS_FRAME'],
    ['an awareness update longer than the frame', [1, 3, 1], 'ERR_LENGTH_EXCEEDS_FRAME'],
    ['a length of 2^35 - 1 bytes', [1, 0xff, 0xff, 0xff, 0xff, 0x7f], 'ERR_LENGTH_EXCEEDS_FRAME'],
    ['an auth reason longer than the frame', [2, 0, 4, 0x61], 'ERR_LENGTH_EXCEEDS_FRAME'],
    ['message type 4', [4], 'ERR_UNKNOWN_MESSAGE_TYPE'],
    ['message type 128 (two-byte varint)', [0x80, 0x01], 'ERR_UNKNOWN_MESSAGE_TYPE'],
    ['an unknown message after a valid one', [3, 9], 'ERR_UNKNOWN_MESSAGE_TYPE'],
    ['auth sub-type 1', [2, 1, 0], 'ERR_UNKNOWN_MESSAGE_TYPE'],
    ['sync sub-type 3', [0, 3, 0], 'ERR_UNKNOWN_SYNC_TYPE'],
    ['an auth reason that is not UTF-8', [2, 0, 2, 0xc3, 0x28], 'ERR_INVALID_UTF8'],
    ['an auth reason holding a lone surrogate', [2, 0, 3, 0xed, 0xa0, 0x80], 'ERR_INVALID_UTF8'],
  ])('refuses %s', (_, frame, code) => {
    expect(decodeError(new Uint8Array(frame)).code).toBe(code)
  })

  it('refuses a varint beyond 2^53 as a protocol error', () => {
    decodeError(new Uint8Array([...new Array<number>(8).fill(0xff), 0x01]))
  })

  it('throws nothing but ProtocolError, whatever the bytes (property)', () => {
    fc.assert(fc.property(fc.uint8Array({ minLength: 0, maxLength: 64 }), frame => {
      try {
        decodeFrame(frame)
      } catch (err) {
        expect(err).toBeInstanceOf(ProtocolError)
      }
    }))
  })

  it.each([
    ['a Uint8Array', (frame: Uint8Array) => frame],
    ['a pooled Node Buffer', (frame: Uint8Array) => Buffer.from(frame)],
    ['a view into a bigger buffer', (frame: Uint8Array) => new Uint8Array([9, ...frame, 9]).subarray(1, frame.length + 1)],
  ])('copies payloads out of %s', (_, frameOf) => {
    const payloads = [new Uint8Array([1, 2, 3]), new Uint8Array([4, 5]), new Uint8Array([6])]
    const frame = frameOf(encodeFrame(
      { type: 'sync-step1', stateVector: payloads[0] as Uint8Array },
      { type: 'sync-update', update: payloads[1] as Uint8Array },
      { type: 'awareness', update: payloads[2] as Uint8Array },
    ))
    const decoded = decodeFrame(frame).map(payloadOf)
    frame.fill(0)
    expect(decoded).toEqual(payloads)
    // Yjs decoders read the whole underlying buffer, not just the view.
    for (const payload of decoded) expect(payload.buffer.byteLength).toBe(payload.length)
  })
})
