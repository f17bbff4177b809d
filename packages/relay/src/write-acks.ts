/**
 * Acknowledgements of writes beyond this region: a write at local sequence number N is held by
 * a region once that region's durable mark for this origin reaches N (see Mesh.holders). Marks
 * only grow, so waiting writes are checked in order of N and the check stops at the first one
 * still short.
 */
import type { AckLevel } from '@georelay/core'
import type { Mesh } from './mesh.js'

interface Waiting {
  seq: number
  need: number
  /** Only these regions count (the document's allowed regions); undefined: all. */
  regions: string[] | undefined
  notify: () => void
  owner: object
}

const count = (holders: string[], regions: string[] | undefined): number =>
  regions === undefined ? holders.length : holders.filter(r => regions.includes(r)).length

/** How many regions (this one included) a level needs out of `regions`. */
export const regionsNeeded = (level: AckLevel, regions: number): number =>
  level === 'local' ? 1 : level === 'majority' ? Math.floor(regions / 2) + 1 : regions

export class WriteAcks {
  private waiting: Waiting[] = []
  private readonly check = (): void => this.settle()

  constructor (private readonly mesh: Mesh, private readonly regions: () => number) {
    mesh.on('acknowledged', this.check)
    mesh.on('change', this.check)
  }

  /**
   * Calls `notify` once the write at `seq` is durable in enough regions for `level`, unless
   * `cancel(owner)` comes first (the client left).
   */
  whenDurable (seq: number, level: AckLevel, owner: object, notify: () => void, regions?: string[]): void {
    const need = regionsNeeded(level, regions?.length ?? this.regions())
    if (count(this.mesh.holders(seq), regions) >= need) return notify()
    // Appends resolve in order, so sequence numbers arrive sorted; keep it so if one does not.
    const last = this.waiting[this.waiting.length - 1]
    this.waiting.push({ seq, need, regions, notify, owner })
    if (last !== undefined && last.seq > seq) this.waiting.sort((a, b) => a.seq - b.seq)
  }

  /** Forgets every wait of `owner`. */
  cancel (owner: object): void {
    this.waiting = this.waiting.filter(w => w.owner !== owner)
  }

  /** Writes still waiting, for a drain or a metric. */
  get pending (): number {
    return this.waiting.length
  }

  close (): void {
    this.mesh.off('acknowledged', this.check)
    this.mesh.off('change', this.check)
    this.waiting = []
  }

  private settle (): void {
    if (this.waiting.length === 0) return
    const held = new Map<number, string[]>()
    const still: Waiting[] = []
    for (const w of this.waiting) {
      const holders = held.get(w.seq) ?? this.mesh.holders(w.seq)
      held.set(w.seq, holders)
      if (count(holders, w.regions) >= w.need) w.notify()
      else still.push(w)
    }
    this.waiting = still
  }
}
