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

/** Wire bytes by kind that `from` sent to `to`, since the simulator started. */
export const directionBytesByKind = (wan: WanSimulator, from: string, to: string): MeshBytes => {
  const bytes: MeshBytes = {}
  const add = (kind: string, n: number): void => { bytes[kind] = (bytes[kind] ?? 0) + n }
  for (const connection of wan.captureByConnection(from, to)) {
    let framed = 0
    const link = new CompactBatchReader()
    for (const message of decodeWsCapture(connection)) {
      add(kindOf(message.opcode, message.payload, link), message.wireBytes)
      framed += message.wireBytes
    }
    add('http upgrade', connection.length - framed)
  }
  return bytes
}

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
