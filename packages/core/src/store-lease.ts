/**
 * A duty that one process at a time performs among the processes sharing a store: the nodes of
 * a region share its store, and exactly one of them pushes the region's log to the other
 * regions. The store holds the lease because its availability is the region's anyway (a region
 * whose store is down takes no writes); a lease in Redis would stop replication whenever Redis,
 * which only hints, is away.
 *
 * `epoch` rises with every new holding: a holder that was paused and deposed meanwhile learns it
 * at its next renewal (which names its epoch) and stops; until then it may push entries the new
 * holder pushes too, which peers skip by origin sequence number.
 */
export interface StoreLease {
  /** Whether this process holds the lease now. */
  readonly held: boolean
  /** The epoch of this process's holding (0 while it holds none). */
  readonly epoch: number
  /** The holder as last seen in the store (this process's name while it holds), or null. */
  readonly holder: string | null
  /** Calls `listener` whenever `held` changes; returns the unsubscribe. */
  onChange(listener: (held: boolean) => void): () => void
  /** Gives the lease up (if held) and stops trying. */
  close(): Promise<void>
}

export interface LeaseOptions {
  /** What the lease is for, unique within the store (e.g. `mesh`). */
  name: string
  /** This process's name among the store's processes (a node name). */
  holder: string
  /** How often the holder renews and the others try, in ms. */
  renewMs?: number
  /** A holder that has not renewed for this long is deposed (its connection cut), in ms. */
  staleMs?: number
  /** Told of takeovers and failures, for the log. */
  onEvent?: (event: LeaseEvent) => void
}

export type LeaseEvent =
  | { type: 'acquired', epoch: number }
  | { type: 'lost', epoch: number, reason: string }
  | { type: 'deposed', holder: string, silentMs: number }

/** A store that can hold leases for the processes that share it. */
export interface LeaseStore {
  openLease(options: LeaseOptions): StoreLease
}

export const canLease = (store: object): store is LeaseStore =>
  typeof (store as Partial<LeaseStore>).openLease === 'function'
