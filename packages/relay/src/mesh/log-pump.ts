/**
 * What one link streams: every entry the peer should get — this region's, and other origins'
 * while those cannot reach the peer themselves — after the peer's acknowledged marks, in
 * batches merged per document. Up to WINDOW batches travel unacknowledged; a dropped link
 * starts over from the acknowledged marks, so delivery is at least once. When compaction has
 * folded entries the peer may lack, the documents concerned are brought up to date by state
 * vector first (catch-up.ts), then the log is streamed from where it still holds entries.
 */
import { type BatchEntry, type Marks, type OriginEntry, type OriginRead, type PeerMessage, mergeUpdates } from '@georelay/core'

/** Unacknowledged batches in flight per link. */
export const WINDOW = 64
/** A batch holds at most this many log entries… */
export const MAX_BATCH_ENTRIES = 256
/** …and about this many bytes of updates (one larger entry still goes, alone). */
export const MAX_BATCH_BYTES = 512 * 1024

/** Groups a read's entries by document and merges each group into one update. */
export const mergeByDoc = (entries: readonly OriginEntry[], origin: string): BatchEntry[] => {
  const groups = new Map<string, OriginEntry[]>()
  for (const entry of entries) {
    const group = groups.get(entry.docName)
    if (group === undefined) groups.set(entry.docName, [entry])
    else group.push(entry)
  }
  // Ascending by their highest number: the receiver's duplicate check relies on it.
  return [...groups].map(([docName, group]) => ({
    docName,
    origin,
    originSeq: (group[group.length - 1] as OriginEntry).originSeq,
    update: mergeUpdates(group.map(e => e.update)),
  })).sort((a, b) => a.originSeq - b.originSeq)
}

/** The first entries of a read that fit in one batch. */
export const takeBatch = (entries: readonly OriginEntry[]): OriginEntry[] => {
  let bytes = 0
  let n = 0
  while (n < entries.length && (n === 0 || bytes + (entries[n] as OriginEntry).update.length <= MAX_BATCH_BYTES)) {
    bytes += (entries[n] as OriginEntry).update.length
    n++
  }
  return entries.slice(0, n)
}

/** Where a pump's batches go, and what it asks of its link. */
export interface PumpTarget {
  /** Whether the link is up: nothing is read or sent otherwise. */
  up(): boolean
  send(message: PeerMessage): boolean
  /** Bring the documents of `origin` folded past `after` up to date by state vector. */
  catchUp(origin: string, after: number): Promise<void>
  /** Streaming failed (the store could not be read): the link starts over. */
  failed(err: unknown): void
}

export interface LogPumpOptions {
  /** Reads of the replication log by origin (ReplicationLog.read). */
  read(origin: string, after: number, limit: number): Promise<OriginRead>
  /** Origins whose entries go to this peer now. */
  origins(): string[]
  /** Whether the peer may hold the document (entries of the others stay here). */
  mayReceive(docName: string): boolean
  /** How long updates gather behind unacknowledged batches. */
  batchWindowMs: number
  /** Counts entries sent (before merging). */
  sent?: (entries: number) => void
}

export class LogPump {
  /** The peer's durable marks, from its welcome and acks. */
  peerHave: Marks = {}
  /** Per origin: the highest entry sent on this link. */
  private readonly sent = new Map<string, number>()
  /** Per origin: the fold generation and mark the last catch-up covered. */
  private readonly covered = new Map<string, { generation: number, upTo: number }>()
  private inFlight = 0
  private pumping = false
  private again = false
  private timer: NodeJS.Timeout | null = null

  constructor (private readonly target: PumpTarget, private readonly options: LogPumpOptions) {}

  /** The link is up: stream from the peer's marks. */
  start (have: Marks): void {
    this.peerHave = { ...have }
    this.schedule(0)
  }

  /** The link went down: forget what was in flight (it is resent from the marks next time). */
  stop (): void {
    if (this.timer !== null) clearTimeout(this.timer)
    this.timer = null
    this.inFlight = 0
    this.sent.clear()
    this.covered.clear()
  }

  /** The peer acknowledged a batch with its new marks. */
  acknowledge (have: Marks): void {
    for (const [origin, seq] of Object.entries(have)) {
      if (seq > (this.peerHave[origin] ?? 0)) this.peerHave[origin] = seq
    }
    this.inFlight = Math.max(0, this.inFlight - 1)
    this.schedule(0)
  }

  /**
   * Wakes the pump: at once while nothing is in flight (a lone keystroke should not wait),
   * after the batching window behind unacknowledged batches (fast typing merges while it waits).
   */
  schedule (delayMs = this.inFlight === 0 ? 0 : this.options.batchWindowMs): void {
    if (!this.target.up() || this.timer !== null) return
    this.timer = setTimeout(() => {
      this.timer = null
      this.pump().catch(err => this.target.failed(err))
    }, delayMs)
  }

  private async pump (): Promise<void> {
    if (this.pumping) {
      this.again = true
      return
    }
    this.pumping = true
    try {
      do {
        this.again = false
        for (const origin of this.options.origins()) await this.pumpOrigin(origin)
      } while (this.again && this.target.up())
    } finally {
      this.pumping = false
    }
  }

  private async pumpOrigin (origin: string): Promise<void> {
    while (this.target.up() && this.inFlight < WINDOW) {
      const position = Math.max(this.sent.get(origin) ?? 0, this.peerHave[origin] ?? 0)
      const read = await this.options.read(origin, position, MAX_BATCH_ENTRIES)
      if (!this.target.up()) return
      const covered = this.covered.get(origin)
      if (read.foldedUpTo > position && covered?.generation !== read.foldGeneration) {
        // Compaction folded entries the peer may lack: bring those documents up to date by
        // state vector, then stream what is still in the log.
        await this.target.catchUp(origin, position)
        this.covered.set(origin, { generation: read.foldGeneration, upTo: read.foldedUpTo })
      }
      const taken = takeBatch(read.entries)
      const last = taken[taken.length - 1]
      if (last === undefined) {
        // Everything of this origin past the peer's mark was folded and caught up: say so,
        // so the peer's mark moves past the folded entries.
        const folded = this.covered.get(origin)?.upTo ?? 0
        if (folded > position && this.target.send({ type: 'batch', entries: [], upTo: { [origin]: folded } })) {
          this.sent.set(origin, folded)
          this.inFlight++
        }
        return
      }
      // Entries of documents the peer may not hold stay here; the claim below still covers
      // them, since the peer must never have them.
      const allowed = taken.filter(entry => this.options.mayReceive(entry.docName))
      if (!this.target.send({ type: 'batch', entries: mergeByDoc(allowed, origin), upTo: { [origin]: last.originSeq } })) return
      this.sent.set(origin, last.originSeq)
      this.inFlight++
      this.options.sent?.(allowed.length)
    }
  }
}
