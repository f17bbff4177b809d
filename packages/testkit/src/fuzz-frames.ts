/**
 * Generators of hostile input for georelay's decoders and sockets, built on fast-check so that
 * every run is reproducible from a seed. Valid frames come from the project's own encoders,
 * then are damaged the ways corruption and attacks look: bit flips, truncation, bytes added,
 * a length prefix rewritten to lie. The decoder property tests (core) and the relay fuzzer
 * draw from these same generators, so a frame that breaks one can be replayed on the other.
 */
import fc from 'fast-check'
import * as Y from 'yjs'
import {
  ACK_LEVELS, type AwarenessEntry, type HocuspocusMessage, type Marks, type MuxMessage, type PeerMessage, type YMessage,
  encodeAwarenessEntries, encodeFrame, encodeHocuspocusMessage, encodeMuxMessage, encodePeerMessage,
} from '@georelay/core'

/** lib0's varUint, for numbers up to 2^53 (the mutations write values lib0 would refuse too). */
export const varUint = (n: number): number[] => {
  const out: number[] = []
  let rest = n
  while (rest > 0x7f) {
    out.push((rest % 0x80) | 0x80)
    rest = Math.floor(rest / 0x80)
  }
  out.push(rest)
  return out
}

/** Reads a varUint at `at` without limits: its value (may pass 2^53) and where it ends. */
const peekVarUint = (bytes: Uint8Array, at: number): { value: number, end: number } => {
  let value = 0
  let mult = 1
  let pos = at
  while (pos < bytes.length) {
    const byte = bytes[pos++] as number
    value += (byte & 0x7f) * mult
    mult *= 0x80
    if (byte < 0x80) break
  }
  return { value, end: pos }
}

// --- valid payloads -------------------------------------------------------------------------

type Edit =
  | { kind: 'insert', at: number, text: string }
  | { kind: 'delete', at: number, length: number }
  | { kind: 'set', key: string, value: string | number | boolean | null }
  | { kind: 'push', values: number[] }
  | { kind: 'nest', key: string, text: string }

const edit: fc.Arbitrary<Edit> = fc.oneof(
  fc.record({ kind: fc.constant('insert' as const), at: fc.nat({ max: 40 }), text: fc.string({ unit: 'grapheme', minLength: 1, maxLength: 12 }) }),
  fc.record({ kind: fc.constant('delete' as const), at: fc.nat({ max: 40 }), length: fc.integer({ min: 1, max: 6 }) }),
  fc.record({ kind: fc.constant('set' as const), key: fc.string({ maxLength: 6 }), value: fc.oneof(fc.string({ maxLength: 8 }), fc.double({ noNaN: true }), fc.boolean(), fc.constant(null)) }),
  fc.record({ kind: fc.constant('push' as const), values: fc.array(fc.integer(), { minLength: 1, maxLength: 4 }) }),
  fc.record({ kind: fc.constant('nest' as const), key: fc.string({ maxLength: 4 }), text: fc.string({ maxLength: 6 }) }),
)

const applyEdit = (doc: Y.Doc, e: Edit): void => {
  const text = doc.getText('t')
  switch (e.kind) {
    case 'insert': text.insert(Math.min(e.at, text.length), e.text); break
    case 'delete': if (text.length > 0) text.delete(e.at % text.length, Math.min(e.length, text.length - (e.at % text.length))); break
    case 'set': doc.getMap('m').set(e.key, e.value); break
    case 'push': doc.getArray<number>('a').push(e.values); break
    case 'nest': {
      const nested = new Y.Text()
      doc.getMap('m').set(e.key, nested)
      nested.insert(0, e.text)
    }
  }
}

/**
 * A real Yjs update (V1): the whole state of a document after some edits, or only the edits
 * after the first ones (so deletions of earlier items and updates with missing dependencies
 * both occur).
 */
export const yjsUpdate: fc.Arbitrary<Uint8Array> = fc.record({
  clientID: fc.oneof(fc.nat({ max: 10 }), fc.integer({ min: 0, max: 0xffffffff })),
  before: fc.array(edit, { maxLength: 4 }),
  after: fc.array(edit, { minLength: 1, maxLength: 4 }),
  onlyAfter: fc.boolean(),
}).map(({ clientID, before, after, onlyAfter }) => {
  const doc = new Y.Doc()
  doc.clientID = clientID
  for (const e of before) applyEdit(doc, e)
  const stateVector = Y.encodeStateVector(doc)
  for (const e of after) applyEdit(doc, e)
  const update = onlyAfter ? Y.encodeStateAsUpdate(doc, stateVector) : Y.encodeStateAsUpdate(doc)
  doc.destroy()
  return update
})

/** A Yjs state vector: a count, then (client id, clock) pairs. */
export const stateVector: fc.Arbitrary<Uint8Array> = fc.oneof(
  yjsUpdate.map(update => Y.encodeStateVectorFromUpdate(update)),
  fc.array(fc.tuple(fc.nat(), fc.nat()), { maxLength: 4 }).map(pairs => Uint8Array.from([
    ...varUint(pairs.length),
    ...pairs.flatMap(([client, clock]) => [...varUint(client), ...varUint(clock)]),
  ])),
)

const awarenessEntry: fc.Arbitrary<AwarenessEntry> = fc.record({
  clientID: fc.oneof(fc.nat({ max: 10 }), fc.nat()),
  clock: fc.nat({ max: 1000 }),
  state: fc.oneof(fc.constant(null), fc.jsonValue({ maxDepth: 2 })),
})

/** A y-protocols awareness update. */
export const awarenessUpdate: fc.Arbitrary<Uint8Array> = fc.array(awarenessEntry, { maxLength: 3 })
  .map(entries => encodeAwarenessEntries(entries))

// --- mutations ------------------------------------------------------------------------------

/** How a frame is damaged; positions are taken modulo the frame's length. */
export type Mutation =
  | { kind: 'flip', bits: number[] }
  | { kind: 'truncate', keep: number }
  | { kind: 'extend', tail: Uint8Array }
  | { kind: 'lie', at: number, by: number | 'huge' | 'unterminated' | 'overlong' }
  | { kind: 'splice', at: number, remove: number, insert: Uint8Array }
  | { kind: 'repeat' }

export const mutation: fc.Arbitrary<Mutation> = fc.oneof(
  { weight: 3, arbitrary: fc.record({ kind: fc.constant('flip' as const), bits: fc.array(fc.nat(), { minLength: 1, maxLength: 4 }) }) },
  { weight: 2, arbitrary: fc.record({ kind: fc.constant('truncate' as const), keep: fc.nat() }) },
  { weight: 1, arbitrary: fc.record({ kind: fc.constant('extend' as const), tail: fc.uint8Array({ minLength: 1, maxLength: 16 }) }) },
  {
    weight: 3,
    arbitrary: fc.record({
      kind: fc.constant('lie' as const),
      at: fc.nat(),
      by: fc.oneof(fc.integer({ min: -8, max: 8 }).filter(n => n !== 0), fc.constantFrom('huge' as const, 'unterminated' as const, 'overlong' as const), fc.integer({ min: 17, max: 100_000 })),
    }),
  },
  { weight: 1, arbitrary: fc.record({ kind: fc.constant('splice' as const), at: fc.nat(), remove: fc.nat({ max: 4 }), insert: fc.uint8Array({ maxLength: 4 }) }) },
  { weight: 1, arbitrary: fc.record({ kind: fc.constant('repeat' as const) }) },
)

/**
 * Varint starts that look like a length prefix: a value no larger than what follows. Falls
 * back to every varint boundary (a byte after one without the continuation bit).
 */
const lengthPrefixes = (frame: Uint8Array): number[] => {
  const starts: number[] = []
  for (let i = 0; i < frame.length; i++) if (i === 0 || (frame[i - 1] as number) < 0x80) starts.push(i)
  const plausible = starts.filter(at => {
    const { value, end } = peekVarUint(frame, at)
    return value > 0 && value <= frame.length - end
  })
  return plausible.length > 0 ? plausible : starts
}

/** Rewrites the varUint at `at` to claim another value. */
const lie = (frame: Uint8Array, at: number, by: Extract<Mutation, { kind: 'lie' }>['by']): Uint8Array => {
  const { value, end } = peekVarUint(frame, at)
  let claim: number[]
  if (by === 'huge') claim = varUint(Number.MAX_SAFE_INTEGER)
  else if (by === 'unterminated') claim = [0xff, 0xff, 0xff]
  else if (by === 'overlong') claim = [0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x7f] // past 2^53
  else claim = varUint(Math.max(0, value + by))
  return Uint8Array.from([...frame.subarray(0, at), ...claim, ...frame.subarray(end)])
}

export const applyMutation = (frame: Uint8Array, m: Mutation): Uint8Array => {
  switch (m.kind) {
    case 'flip': {
      if (frame.length === 0) return frame
      const out = new Uint8Array(frame)
      for (const bit of m.bits) {
        const i = Math.floor(bit / 8) % out.length
        out[i] = (out[i] as number) ^ (1 << (bit % 8))
      }
      return out
    }
    case 'truncate': return frame.slice(0, frame.length === 0 ? 0 : m.keep % frame.length)
    case 'extend': return Uint8Array.from([...frame, ...m.tail])
    case 'lie': {
      const candidates = lengthPrefixes(frame)
      return candidates.length === 0 ? frame : lie(frame, candidates[m.at % candidates.length] as number, m.by)
    }
    case 'splice': {
      const at = frame.length === 0 ? 0 : m.at % (frame.length + 1)
      return Uint8Array.from([
        ...frame.subarray(0, at),
        ...m.insert,
        ...frame.subarray(Math.min(frame.length, at + m.remove)),
      ])
    }
    case 'repeat': return Uint8Array.from([...frame, ...frame])
  }
}

/** Frames from `valid`, damaged by one to three mutations. */
export const mutated = (valid: fc.Arbitrary<Uint8Array>): fc.Arbitrary<Uint8Array> =>
  fc.tuple(valid, fc.array(mutation, { minLength: 1, maxLength: 3 }))
    .map(([frame, ms]) => ms.reduce(applyMutation, frame))

/** Random bytes, often starting with a small number so they reach past the type switch. */
export const randomBytes: fc.Arbitrary<Uint8Array> = fc.oneof(
  fc.uint8Array({ maxLength: 64 }),
  fc.tuple(fc.nat({ max: 10 }), fc.uint8Array({ maxLength: 64 }))
    .map(([type, rest]) => Uint8Array.from([type, ...rest])),
)

/**
 * What a fuzzer sends a decoder: valid frames, damaged ones (most, by default), and random
 * bytes. A relay fuzzer weighs valid frames up: their payloads are where the damage reaches
 * past the decoder.
 */
export const hostile = (
  valid: fc.Arbitrary<Uint8Array>,
  { validWeight = 1 }: { validWeight?: number } = {},
): fc.Arbitrary<Uint8Array> => fc.oneof(
  { weight: validWeight, arbitrary: valid },
  { weight: 4, arbitrary: mutated(valid) },
  { weight: 1, arbitrary: randomBytes },
)

/** A payload for an update field: real, damaged, random, or empty. */
export const updatePayload: fc.Arbitrary<Uint8Array> = fc.oneof(
  { weight: 3, arbitrary: yjsUpdate },
  { weight: 3, arbitrary: mutated(yjsUpdate) },
  { weight: 1, arbitrary: fc.uint8Array({ maxLength: 32 }) },
  { weight: 1, arbitrary: fc.constantFrom(new Uint8Array([0, 0]), new Uint8Array(0)) },
)

// --- y-websocket ----------------------------------------------------------------------------

export const yMessage: fc.Arbitrary<YMessage> = fc.oneof(
  stateVector.map((sv): YMessage => ({ type: 'sync-step1', stateVector: sv })),
  fc.oneof(mutated(stateVector), fc.uint8Array({ maxLength: 16 })).map((sv): YMessage => ({ type: 'sync-step1', stateVector: sv })),
  updatePayload.map((update): YMessage => ({ type: 'sync-step2', update })),
  updatePayload.map((update): YMessage => ({ type: 'sync-update', update })),
  fc.oneof(awarenessUpdate, mutated(awarenessUpdate)).map((update): YMessage => ({ type: 'awareness', update })),
  fc.string({ maxLength: 8 }).map((reason): YMessage => ({ type: 'auth-denied', reason })),
  fc.constant<YMessage>({ type: 'query-awareness' }),
)

/** A y-websocket frame of one to three messages, possibly carrying invalid updates. */
export const yFrame: fc.Arbitrary<Uint8Array> = fc.array(yMessage, { minLength: 1, maxLength: 3 })
  .map(messages => encodeFrame(...messages))

// --- /v1/mux --------------------------------------------------------------------------------

/** Document names a fuzzer may address: `fuzz/…`, reserved ones, and oddities. */
export const fuzzDocName: fc.Arbitrary<string> = fc.oneof(
  { weight: 4, arbitrary: fc.constantFrom('fuzz/a', 'fuzz/b', 'fuzz/c') },
  { weight: 2, arbitrary: fc.string({ unit: 'grapheme', maxLength: 8 }).map(s => `fuzz/${s}`) },
  { weight: 1, arbitrary: fc.constantFrom('', 'v1/mux', 'v1/peer', 'healthz', 'metrics', 'fuzz/\u0000', '__proto__', 'fuzz/' + 'x'.repeat(600)) },
  { weight: 1, arbitrary: fc.string({ unit: 'binary', maxLength: 8 }).map(s => `fuzz/${s}`) },
)

const docId = fc.oneof({ weight: 4, arbitrary: fc.nat({ max: 3 }) }, { weight: 1, arbitrary: fc.maxSafeNat() })
const num = fc.oneof(fc.nat({ max: 1000 }), fc.maxSafeNat())
const ackLevel = fc.constantFrom(...ACK_LEVELS)

/** A y-websocket payload for a mux `sync`: usually one message, as the SDK sends it. */
const syncPayload: fc.Arbitrary<Uint8Array> = fc.oneof(
  { weight: 4, arbitrary: yMessage.map(m => encodeFrame(m)) },
  { weight: 1, arbitrary: yFrame },
  { weight: 1, arbitrary: fc.uint8Array({ maxLength: 16 }) },
)

export const muxMessage: fc.Arbitrary<MuxMessage> = fc.oneof(
  { weight: 3, arbitrary: fc.record({ type: fc.constant('open' as const), docId, docName: fuzzDocName, ack: fc.oneof(ackLevel, fc.constant('default' as const)) }) },
  { weight: 1, arbitrary: fc.record({ type: fc.constant('close' as const), docId }) },
  { weight: 4, arbitrary: fc.record({ type: fc.constant('sync' as const), docId, payload: syncPayload }) },
  { weight: 4, arbitrary: fc.record({ type: fc.constant('write' as const), docId, writeId: num, update: updatePayload }) },
  { weight: 1, arbitrary: fc.record({ type: fc.constant('ping' as const), nonce: num }) },
  { weight: 1, arbitrary: fc.record({ type: fc.constant('auth' as const), token: fc.oneof(fc.string({ maxLength: 12 }), fc.constant('eyJhbGciOiJIUzI1NiJ9.e30.x')) }) },
  { weight: 1, arbitrary: fc.record({ type: fc.constant('refresh' as const), docId, nonce: num, level: ackLevel, timeoutMs: num }) },
  // Relay-to-client messages, which a relay must refuse from a client.
  { weight: 1, arbitrary: fc.record({ type: fc.constant('welcome' as const), version: num, region: fc.string({ maxLength: 6 }), regions: fc.array(fc.record({ name: fc.string({ maxLength: 4 }), url: fc.string({ maxLength: 8 }) }), { maxLength: 2 }), maxMessageBytes: num }) },
  { weight: 1, arbitrary: fc.record({ type: fc.constant('ack' as const), docId, writeId: num, level: ackLevel }) },
  { weight: 1, arbitrary: fc.record({ type: fc.constant('error' as const), docId, code: num, reason: fc.string({ maxLength: 8 }) }) },
  { weight: 1, arbitrary: fc.record({ type: fc.constant('redirect' as const), docId, region: fc.string({ maxLength: 6 }), url: fc.string({ maxLength: 8 }) }) },
  { weight: 1, arbitrary: fc.record({ type: fc.constant('pong' as const), nonce: num }) },
  { weight: 1, arbitrary: fc.record({ type: fc.constant('opened' as const), docId, ack: ackLevel }) },
  { weight: 1, arbitrary: fc.record({ type: fc.constant('staleness' as const), docId, regions: fc.array(fc.record({ region: fc.string({ maxLength: 6 }), lagMs: num, pending: num }), { maxLength: 2 }) }) },
  { weight: 1, arbitrary: fc.record({ type: fc.constant('refreshed' as const), docId, nonce: num, unreachable: fc.array(fc.string({ maxLength: 6 }), { maxLength: 2 }) }) },
)

export const muxFrame: fc.Arbitrary<Uint8Array> = muxMessage.map(encodeMuxMessage)

// --- /v1/peer -------------------------------------------------------------------------------

const region = fc.oneof(fc.constantFrom('p', 'fuzz', 'other', '', '__proto__'), fc.string({ maxLength: 6 }))
const marks: fc.Arbitrary<Marks> = fc.dictionary(region, num, { maxKeys: 3 })

export const peerMessage: fc.Arbitrary<PeerMessage> = fc.oneof(
  { weight: 4, arbitrary: fc.record({ type: fc.constant('batch' as const), entries: fc.array(fc.record({ docName: fuzzDocName, origin: region, originSeq: num, update: updatePayload }), { maxLength: 3 }), upTo: marks }) },
  { weight: 2, arbitrary: fc.record({ type: fc.constant('catch-up' as const), docName: fuzzDocName, update: updatePayload }) },
  { weight: 1, arbitrary: fc.record({ type: fc.constant('sv-request' as const), docNames: fc.array(fuzzDocName, { maxLength: 3 }) }) },
  { weight: 1, arbitrary: fc.record({ type: fc.constant('sv-reply' as const), docs: fc.array(fc.record({ docName: fuzzDocName, stateVector }), { maxLength: 2 }) }) },
  { weight: 2, arbitrary: fc.record({ type: fc.constant('link-state' as const), region, version: num, reaches: fc.array(region, { maxLength: 3 }), have: marks }) },
  { weight: 2, arbitrary: fc.record({ type: fc.constant('awareness' as const), docName: fuzzDocName, origin: region, update: fc.oneof(awarenessUpdate, mutated(awarenessUpdate)) }) },
  { weight: 1, arbitrary: fc.record({ type: fc.constant('welcome' as const), version: num, region, have: marks }) },
  { weight: 1, arbitrary: fc.record({ type: fc.constant('ack' as const), have: marks }) },
  // Namespace rules as canonical JSON, or not.
  { weight: 1, arbitrary: fc.record({ type: fc.constant('erase' as const), tombstones: fc.array(fc.record({ docName: fuzzDocName, at: num, origin: region }), { maxLength: 3 }) }) },
  { weight: 1, arbitrary: fc.record({ type: fc.constant('erased' as const), docNames: fc.array(fuzzDocName, { maxLength: 3 }) }) },
  { weight: 1, arbitrary: fc.record({ type: fc.constant('pull' as const), nonce: num, docName: fuzzDocName, stateVector }) },
  { weight: 1, arbitrary: fc.record({ type: fc.constant('pulled' as const), nonce: num, docName: fuzzDocName, update: updatePayload }) },
  { weight: 1, arbitrary: fc.record({ type: fc.constant('forward' as const), nonce: num, docName: fuzzDocName, update: updatePayload, level: fc.nat({ max: 3 }) }) },
  { weight: 1, arbitrary: fc.record({ type: fc.constant('forwarded' as const), nonce: num, level: fc.nat({ max: 3 }), error: fc.string({ maxLength: 6 }) }) },
  { weight: 1, arbitrary: fc.record({ type: fc.constant('policy' as const), rules: fc.oneof(fc.constantFrom('[]', '[{"match":"*","mode":"active-active"}]', '[{"match":"fuzz/*","regions":["fuzz"]}]'), fc.json({ maxDepth: 2 }), fc.string({ maxLength: 12 })) }) },
)

export const peerFrame: fc.Arbitrary<Uint8Array> = peerMessage.map(encodePeerMessage)

// --- /v1/hocuspocus -------------------------------------------------------------------------

/** A key of a session-aware provider is `name\0session`. */
const hocuspocusKey = fc.oneof({ weight: 4, arbitrary: fuzzDocName }, { weight: 1, arbitrary: fuzzDocName.map(name => `${name}\u0000s1`) })
const text = fc.string({ maxLength: 12 })

export const hocuspocusMessage: fc.Arbitrary<HocuspocusMessage> = fc.oneof(
  // Its type 2 is Hocuspocus's own auth message, not y-websocket's.
  { weight: 6, arbitrary: fc.record({ type: fc.constant('y' as const), key: hocuspocusKey, message: yMessage.filter(m => m.type !== 'auth-denied') }) },
  { weight: 2, arbitrary: fc.record({ type: fc.constant('token' as const), key: hocuspocusKey, token: fc.oneof(text, fc.constant('eyJhbGciOiJIUzI1NiJ9.e30.x')), version: fc.option(text) }) },
  { weight: 1, arbitrary: fc.record({ type: fc.constant('stateless' as const), key: hocuspocusKey, payload: text }) },
  { weight: 1, arbitrary: fc.record({ type: fc.constant('close' as const), key: hocuspocusKey, reason: fc.option(text) }) },
  { weight: 1, arbitrary: fc.constantFrom<HocuspocusMessage>({ type: 'ping' }, { type: 'pong' }) },
  // Relay-to-client messages, which a relay must refuse from a client.
  { weight: 1, arbitrary: fc.record({ type: fc.constant('permission-denied' as const), key: hocuspocusKey, reason: text }) },
  { weight: 1, arbitrary: fc.record({ type: fc.constant('authenticated' as const), key: hocuspocusKey, scope: fc.constantFrom('read-write' as const, 'readonly' as const) }) },
  { weight: 1, arbitrary: fc.record({ type: fc.constant('sync-status' as const), key: hocuspocusKey, applied: fc.boolean() }) },
)

export const hocuspocusFrame: fc.Arbitrary<Uint8Array> = hocuspocusMessage.map(encodeHocuspocusMessage)
