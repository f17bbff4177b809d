/**
 * When each of this region's recent writes was made, for replication lag: how many writes a
 * peer has not acknowledged, and since when. Sequence numbers arrive in increasing order, so
 * two arrays and a binary search answer both in O(log n) on every acknowledgement, and what
 * every peer has acknowledged is dropped from the front.
 */
export class LocalWriteTimes {
  private seqs: number[] = []
  private times: number[] = []
  private head = 0

  add (seq: number, at: number): void {
    this.seqs.push(seq)
    this.times.push(at)
  }

  /** Writes after `acked`. */
  countAfter (acked: number): number {
    return this.seqs.length - this.firstAfter(acked)
  }

  /** When the first write after `acked` was made (undefined when there is none). */
  since (acked: number): number | undefined {
    return this.times[this.firstAfter(acked)]
  }

  /** Forgets writes up to `seq`. */
  forgetUpTo (seq: number): void {
    this.head = this.firstAfter(seq)
    // Compact now and then, not on every acknowledgement.
    if (this.head > 1024 && this.head * 2 > this.seqs.length) {
      this.seqs = this.seqs.slice(this.head)
      this.times = this.times.slice(this.head)
      this.head = 0
    }
  }

  get size (): number {
    return this.seqs.length - this.head
  }

  private firstAfter (seq: number): number {
    let lo = this.head
    let hi = this.seqs.length
    while (lo < hi) {
      const mid = (lo + hi) >>> 1
      if ((this.seqs[mid] as number) <= seq) lo = mid + 1
      else hi = mid
    }
    return lo
  }
}
