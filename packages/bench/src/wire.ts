/**
 * The two client framings the contenders speak, for a load generator that sends precomputed
 * updates and reads only what it must: y-websocket (docs/protocol.md; georelay, `@y/websocket-server`
 * and the echo) and Hocuspocus's, which prefixes every message with the document name and
 * wants an auth message before anything else of that document is handled.
 */
import * as decoding from 'lib0/decoding'
import * as encoding from 'lib0/encoding'

export type Framing = 'y-websocket' | 'hocuspocus'

const SYNC = 0
const AWARENESS = 1
const AUTH = 2
const STEP1 = 0
const STEP2 = 1
const UPDATE = 2
/** Hocuspocus's AuthMessageType.Token. */
const AUTH_TOKEN = 0

const frame = (framing: Framing, docName: string, write: (encoder: encoding.Encoder) => void): Uint8Array => {
  const encoder = encoding.createEncoder()
  if (framing === 'hocuspocus') encoding.writeVarString(encoder, docName)
  write(encoder)
  return encoding.toUint8Array(encoder)
}

/** What a client sends on opening a document: (Hocuspocus: auth, then) sync step 1 with an empty state vector. */
export const openingFrames = (framing: Framing, docName: string): Uint8Array[] => {
  const step1 = frame(framing, docName, e => {
    encoding.writeVarUint(e, SYNC)
    encoding.writeVarUint(e, STEP1)
    encoding.writeVarUint8Array(e, new Uint8Array([0]))
  })
  if (framing === 'y-websocket') return [step1]
  const auth = frame(framing, docName, e => {
    encoding.writeVarUint(e, AUTH)
    encoding.writeVarUint(e, AUTH_TOKEN)
    encoding.writeVarString(e, '')
  })
  return [auth, step1]
}

/** One sync update message (sub-type 2), as a provider sends a local edit. */
export const updateFrame = (framing: Framing, docName: string, update: Uint8Array): Uint8Array =>
  frame(framing, docName, e => {
    encoding.writeVarUint(e, SYNC)
    encoding.writeVarUint(e, UPDATE)
    encoding.writeVarUint8Array(e, update)
  })

/** The sync step 2 answer to a server's step 1, holding `update` (empty for a reader with nothing). */
export const step2Frame = (framing: Framing, docName: string, update: Uint8Array): Uint8Array =>
  frame(framing, docName, e => {
    encoding.writeVarUint(e, SYNC)
    encoding.writeVarUint(e, STEP2)
    encoding.writeVarUint8Array(e, update)
  })

/** An empty Yjs update (no structs, no deletions). */
export const EMPTY_UPDATE = new Uint8Array([0, 0])

export interface IncomingSync {
  /** Updates carried by sync step 2 and update messages (views into the frame, not copies). */
  updates: Uint8Array[]
  /** The server asked for our state (sync step 1). */
  askedState: boolean
  /** Sync step 2 messages in the frame (answers to our step 1). */
  step2s: number
  /** Hocuspocus said the document is authenticated. */
  authenticated: boolean
}

/**
 * Reads the sync messages of a frame. Anything other than sync, awareness and auth ends the
 * reading: readers only need updates, and Hocuspocus's other types carry no sync content.
 */
export const readFrame = (framing: Framing, data: Uint8Array): IncomingSync => {
  const result: IncomingSync = { updates: [], askedState: false, step2s: 0, authenticated: false }
  const decoder = decoding.createDecoder(data)
  while (decoding.hasContent(decoder)) {
    if (framing === 'hocuspocus') decoding.readVarString(decoder)
    const type = decoding.readVarUint(decoder)
    if (type === SYNC) {
      const sub = decoding.readVarUint(decoder)
      const payload = decoding.readVarUint8Array(decoder)
      if (sub === STEP1) {
        result.askedState = true
      } else {
        if (sub === STEP2) result.step2s++
        result.updates.push(payload)
      }
    } else if (type === AWARENESS) {
      decoding.readVarUint8Array(decoder)
    } else if (type === AUTH && framing === 'hocuspocus') {
      result.authenticated = true
      break
    } else {
      break
    }
  }
  return result
}
