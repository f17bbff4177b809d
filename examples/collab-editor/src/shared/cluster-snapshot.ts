/**
 * What the demo server tells the page about the cluster (GET /api/cluster, and each message of
 * GET /api/events): shared by the server that builds it and the page that draws it.
 */

export type RegionState = 'up' | 'down' | 'cut'

export interface PeerSnapshot {
  region: string
  /** This region's replication link to the peer. */
  link: 'up' | 'connecting' | 'down'
  /** Age of the oldest write of this region the peer has not confirmed yet (0: none). */
  lagMs: number
  pendingUpdates: number
}

export interface RegionSnapshot {
  name: string
  /** The relay's URL, for clients (ws://). */
  url: string
  /** down: its relay is stopped; cut: it runs but a link of it is cut; up otherwise. */
  state: RegionState
  /** The largest lag over its peers (null while it is down). */
  lagMs: number | null
  pendingUpdates: number | null
  peers: PeerSnapshot[]
}

export interface LinkSnapshot {
  a: string
  b: string
  /** Simulated one-way delay. */
  delayMs: number
  cut: boolean
}

export interface ClusterSnapshot {
  regions: RegionSnapshot[]
  links: LinkSnapshot[]
}

/** What the control API answers to a request it refuses. */
export interface ApiError {
  error: string
}
