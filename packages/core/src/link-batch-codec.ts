/**
 * Compact batches (peer message 15, peer protocol 2): the same `batch` in fewer bytes, using
 * what both ends of one link already said to each other. Measured over many human-pace typists
 * (docs/architecture.md, cross-region bytes), a plain batch spent most of its deflated bytes on
 * what repeats: the origin of every entry, absolute sequence numbers, and document names, which
 * past a few hundred active documents fall out of deflate's 32 KB window. Here
 *
 * - the origin is written once (a batch carries one origin's entries);
 * - each sequence number is the difference from the entry before it, the first from the
 *   `upTo` this link last carried for the origin, and `upTo` from the last entry;
 * - a document is named once per link: `0` then its name gives it the next number, and later
 *   batches write that number (1-based). The table is bounded; past MAX_LINK_NAMES names are
 *   written out each time.
 *
 * Both ends keep the state per socket, so it starts empty with every connection, and frames
 * must be read in the order they were written (a link's are). A batch the form cannot hold
 * (entries of several origins, numbers going down) goes as a plain batch, which leaves the state
 * untouched on both ends.
 *
 *   varUint CompactBatch, varString origin, varUint n,
 *   n × (varUint docRef [, varString name if docRef = 0], varUint seqDelta, varUint8Array update),
 *   varUint upToDelta
 */
import * as encoding from 'lib0/encoding'
import type { FrameReader } from './frame-reader.js'
import type { BatchEntry, Marks } from './peer-messages.js'
import { ProtocolError } from './protocol-error.js'

export const COMPACT_BATCH_TYPE = 15
/** Document names one link numbers at most (about a few MB of names per end). */
export const MAX_LINK_NAMES = 65_536

export interface Batch {
  entries: BatchEntry[]
  upTo: Marks
}

/** The sending end of a link: numbers names and remembers the last `upTo` of each origin. */
export class CompactBatchWriter {
  private readonly names = new Map<string, number>()
  private readonly lastUpTo = new Map<string, number>()

  /** The batch as message 15, or null when it does not fit the form (send a plain batch). */
  encode ({ entries, upTo }: Batch): Uint8Array | null {
    const marks = Object.entries(upTo)
    if (marks.length !== 1) return null
    const [origin, claim] = marks[0] as [string, number]
    let previous = this.lastUpTo.get(origin) ?? 0
    for (const entry of entries) {
      if (entry.origin !== origin || entry.originSeq < previous) return null
      previous = entry.originSeq
    }
    if (claim < previous) return null
    const e = encoding.createEncoder()
    encoding.writeVarUint(e, COMPACT_BATCH_TYPE)
    encoding.writeVarString(e, origin)
    encoding.writeVarUint(e, entries.length)
    previous = this.lastUpTo.get(origin) ?? 0
    for (const entry of entries) {
      const ref = this.names.get(entry.docName)
      if (ref !== undefined) {
        encoding.writeVarUint(e, ref)
      } else {
        encoding.writeVarUint(e, 0)
        encoding.writeVarString(e, entry.docName)
        if (this.names.size < MAX_LINK_NAMES) this.names.set(entry.docName, this.names.size + 1)
      }
      encoding.writeVarUint(e, entry.originSeq - previous)
      encoding.writeVarUint8Array(e, entry.update)
      previous = entry.originSeq
    }
    encoding.writeVarUint(e, claim - previous)
    this.lastUpTo.set(origin, claim)
    return encoding.toUint8Array(e)
  }
}

/** The receiving end: mirrors the writer's table and marks as it reads, in order. */
export class CompactBatchReader {
  private readonly names: string[] = []
  private readonly lastUpTo = new Map<string, number>()

  /** Reads message 15's fields (after its type); throws a ProtocolError on anything malformed. */
  read (r: FrameReader): Batch {
    const origin = r.string('origin')
    let previous = this.lastUpTo.get(origin) ?? 0
    const entries = r.list('entries', 3, () => {
      const ref = r.uint('document number')
      let docName: string
      if (ref === 0) {
        docName = r.string('document name')
        if (this.names.length < MAX_LINK_NAMES) this.names.push(docName)
      } else {
        const known = this.names[ref - 1]
        if (known === undefined) throw new ProtocolError('ERR_UNKNOWN_DOC_NUMBER', `malformed peer message: document number ${ref} was never named on this link (${this.names.length} are)`)
        docName = known
      }
      const originSeq = this.advance(previous, r.uint('sequence number delta'))
      previous = originSeq
      return { docName, origin, originSeq, update: r.bytes('update') }
    })
    const upTo = this.advance(previous, r.uint('upTo delta'))
    this.lastUpTo.set(origin, upTo)
    return { entries, upTo: Object.fromEntries([[origin, upTo]]) }
  }

  private advance (from: number, delta: number): number {
    const next = from + delta
    if (!Number.isSafeInteger(next)) throw new ProtocolError('ERR_TRUNCATED', 'malformed peer message: a sequence number past 2^53')
    return next
  }
}
