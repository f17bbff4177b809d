/**
 * Acknowledgements of writes beyond this region (`majority`, `all`). A write at local sequence
 * number N is held by a region once that region's durable mark for this region's entries
 * reaches N. Marks only grow, so for a set of regions and a count needed there is one
 * threshold T (the count-th highest mark among them) and every write numbered up to T is
 * durable enough: settling is popping the waits at or below T, nearest first, from a heap.
 *
 * Memory is bounded while a peer is down: an acknowledgement covers every earlier write of its
 * document, so past MAX_WAITS_PER_OWNER waits of one document and level the newest wait
 * replaces the last one instead of queueing behind it.
 */
import type { AckLevel } from '@georelay/core'

/** What acknowledgements need to know of the mesh. */
export interface DurabilityView {
  /** Every region of the mesh, this one first. */
  regions(): readonly string[]
  /** Up to which local sequence number `region` durably holds this region's writes (Infinity for this region). */
  heldUpTo(region: string): number
  /** Calls `listener` whenever marks may have moved; returns the unsubscribe. */
  subscribe(listener: () => void): () => void
}

/** Waits kept per document and level; more are folded into the last (see above). */
export const MAX_WAITS_PER_OWNER = 64

/** How many regions (this one included) a level needs out of `regions`. */
export const regionsNeeded = (level: AckLevel, regions: number): number =>
  level === 'local' ? 1 : level === 'majority' ? Math.floor(regions / 2) + 1 : regions

interface Wait { seq: number, notify: () => void }

/** One owner's waits in one group, in order of sequence number. */
interface Queue {
  readonly owner: object
  readonly waits: Wait[]
  head: number
  cancelled: boolean
  inHeap: boolean
}

/** The waits of one set of regions and one count needed. */
class Group {
  readonly queues = new Map<object, Queue>()
  /** Queues by the sequence number at their head; cancelled ones are skipped (and compacted away). */
  private heap: Queue[] = []
  private cancelled = 0

  constructor (readonly regions: readonly string[], readonly need: number) {}

  threshold (view: DurabilityView): number {
    const marks = this.regions.map(region => view.heldUpTo(region)).sort((a, b) => b - a)
    return marks[this.need - 1] ?? 0
  }

  add (owner: object, wait: Wait): void {
    let queue = this.queues.get(owner)
    if (queue === undefined) {
      queue = { owner, waits: [], head: 0, cancelled: false, inHeap: false }
      this.queues.set(owner, queue)
    }
    const pending = queue.waits.length - queue.head
    if (pending === 0) {
      queue.waits.length = 0
      queue.head = 0
      queue.waits.push(wait)
      this.push(queue)
      return
    }
    const last = queue.waits[queue.waits.length - 1] as Wait
    // Appends complete in order, so this is the newest; one that is not waits in its place.
    if (wait.seq < last.seq) {
      const at = queue.waits.findIndex((w, i) => i >= queue.head && w.seq > wait.seq)
      queue.waits.splice(at, 0, wait)
      if (at === queue.head) this.reheap()
    } else if (pending >= MAX_WAITS_PER_OWNER) {
      queue.waits[queue.waits.length - 1] = wait
    } else {
      queue.waits.push(wait)
    }
  }

  cancel (owner: object): void {
    const queue = this.queues.get(owner)
    if (queue === undefined) return
    this.queues.delete(owner)
    queue.cancelled = true
    if (queue.inHeap && ++this.cancelled * 2 > this.heap.length) this.reheap()
  }

  /** Notifies every wait at or below `threshold`. */
  settle (threshold: number): void {
    while (this.heap.length > 0) {
      const queue = this.heap[0] as Queue
      if (queue.cancelled) {
        this.pop()
        this.cancelled--
        continue
      }
      if ((queue.waits[queue.head] as Wait).seq > threshold) return
      this.pop()
      while (queue.head < queue.waits.length && (queue.waits[queue.head] as Wait).seq <= threshold) {
        (queue.waits[queue.head++] as Wait).notify()
      }
      if (queue.cancelled) continue // a notify closed its own document
      if (queue.head < queue.waits.length) this.push(queue)
      else this.queues.delete(queue.owner)
    }
  }

  get size (): number {
    let n = 0
    for (const queue of this.queues.values()) n += queue.waits.length - queue.head
    return n
  }

  private key (queue: Queue): number {
    return (queue.waits[queue.head] as Wait).seq
  }

  private push (queue: Queue): void {
    const heap = this.heap
    queue.inHeap = true
    heap.push(queue)
    let i = heap.length - 1
    while (i > 0) {
      const parent = (i - 1) >> 1
      if (this.key(heap[parent] as Queue) <= this.key(queue)) break
      heap[i] = heap[parent] as Queue
      i = parent
    }
    heap[i] = queue
  }

  private pop (): void {
    const heap = this.heap
    ;(heap[0] as Queue).inHeap = false
    const last = heap.pop() as Queue
    if (heap.length === 0) return
    let i = 0
    for (;;) {
      const left = 2 * i + 1
      if (left >= heap.length) break
      const right = left + 1
      const child = right < heap.length && this.key(heap[right] as Queue) < this.key(heap[left] as Queue) ? right : left
      if (this.key(heap[child] as Queue) >= this.key(last)) break
      heap[i] = heap[child] as Queue
      i = child
    }
    heap[i] = last
  }

  private reheap (): void {
    const live = this.heap.filter(queue => !queue.cancelled)
    for (const queue of this.heap) queue.inHeap = false
    this.heap = []
    this.cancelled = 0
    for (const queue of live) this.push(queue)
  }
}

export class WriteAcks {
  private readonly groups = new Map<string, Group>()
  private readonly unsubscribe: () => void

  constructor (private readonly view: DurabilityView) {
    this.unsubscribe = view.subscribe(() => this.settle())
  }

  /**
   * Calls `notify` once the write at `seq` is durable in enough regions for `level`, unless
   * `cancel(owner)` comes first (the client left). `regions`: the regions that count (the
   * document's allowed regions; default every region).
   */
  whenDurable (seq: number, level: AckLevel, owner: object, notify: () => void, regions?: readonly string[]): void {
    const counted = regions ?? this.view.regions()
    const need = regionsNeeded(level, counted.length)
    const key = `${need}:${[...counted].sort().join(',')}`
    let group = this.groups.get(key)
    if (group === undefined) this.groups.set(key, group = new Group(counted, need))
    if (seq <= group.threshold(this.view)) return notify()
    group.add(owner, { seq, notify })
  }

  /** Forgets every wait of `owner`. */
  cancel (owner: object): void {
    for (const group of this.groups.values()) group.cancel(owner)
  }

  /** Writes still waiting, for a drain or a metric. */
  get pending (): number {
    let n = 0
    for (const group of this.groups.values()) n += group.size
    return n
  }

  close (): void {
    this.unsubscribe()
    this.groups.clear()
  }

  private settle (): void {
    for (const group of this.groups.values()) if (group.queues.size > 0) group.settle(group.threshold(this.view))
  }
}
