/**
 * Where the bytes between regions go: every captured peer-link frame, decoded, summed by what
 * it carried (batch, ack, link-state, ping…), at its size on the wire. Needs a WAN simulator
 * constructed with `capture: true`. What is left of a direction's bytes after its frames is
 * the HTTP upgrade of each connection.
 */
import { CompactBatchReader, decodePeerMessage } from '@georelay/core'
import type { WanSimulator } from '@georelay/cluster'
import { decodeWsCapture } from './ws-capture.js'

export type MeshBytes = Record<string, number>

const CONTROL: Record<number, string> = { 8: 'close', 9: 'ping', 10: 'pong' }

/** `link`: the connection's compact-batch state, read in order as the receiver does. */
const kindOf = (opcode: number, payload: Buffer, link: CompactBatchReader): string => {
  if (opcode !== 2) return CONTROL[opcode] ?? `opcode ${opcode}`
  try {
    return decodePeerMessage(new Uint8Array(payload.buffer, payload.byteOffset, payload.byteLength), link).type
  } catch {
    return 'undecodable'
  }
}

/** Wire bytes, and messages, by kind. */
export interface MeshTally {
  bytes: MeshBytes
  messages: MeshBytes
}

/**
 * What `from` sent to `to` by kind, since the simulator started: all of each connection's
 * capture, or of connection i its first `upTo[i]` bytes (lengths taken earlier: a connection
 * opened since counts nothing). A frame cut by such a length counts as upgrade bytes up to it.
 */
export const directionTally = (wan: WanSimulator, from: string, to: string, upTo?: readonly number[]): MeshTally => {
  const tally: MeshTally = { bytes: {}, messages: {} }
  const add = (kind: string, bytes: number, messages: number): void => {
    tally.bytes[kind] = (tally.bytes[kind] ?? 0) + bytes
    tally.messages[kind] = (tally.messages[kind] ?? 0) + messages
  }
  wan.captureByConnection(from, to).forEach((whole, i) => {
    const connection = upTo === undefined ? whole : whole.subarray(0, upTo[i] ?? 0)
    let framed = 0
    const link = new CompactBatchReader()
    for (const message of decodeWsCapture(connection)) {
      add(kindOf(message.opcode, message.payload, link), message.wireBytes, 1)
      framed += message.wireBytes
    }
    if (connection.length > framed) add('http upgrade', connection.length - framed, 0)
  })
  return tally
}

/** Wire bytes by kind that `from` sent to `to`, since the simulator started. */
export const directionBytesByKind = (wan: WanSimulator, from: string, to: string): MeshBytes =>
  directionTally(wan, from, to).bytes

/** The same over every direction between `regions`. */
export const meshBytesByKind = (wan: WanSimulator, regions: readonly string[]): MeshBytes => {
  const bytes: MeshBytes = {}
  for (const from of regions) {
    for (const to of regions) {
      if (from === to) continue
      for (const [kind, n] of Object.entries(directionBytesByKind(wan, from, to))) bytes[kind] = (bytes[kind] ?? 0) + n
    }
  }
  return bytes
}

/** All the bytes of one count. */
export const totalBytes = (bytes: MeshBytes): number => Object.values(bytes).reduce((n, b) => n + b, 0)

/** What `after` holds beyond `before`, kind by kind (both from meshBytesByKind). */
export const meshBytesBetween = (before: MeshBytes, after: MeshBytes): MeshBytes =>
  Object.fromEntries(Object.entries(after)
    .map(([kind, n]) => [kind, n - (before[kind] ?? 0)])
    .filter(([, n]) => n !== 0))
