/**
 * What a peer link needs of the relay around it, and nothing more. Links are built on this, not
 * on the mesh that owns them: the mesh hands each link a context, and the parts of a link
 * (socket, pump, catch-up) can be tested against a plain log and fakes.
 */
import type { PeerMessage } from '@georelay/core'
import type { Logger, RelayMetrics } from '../observability/index.js'
import type { ReplicationLog } from '../replication/index.js'

export interface MeshTiming {
  /** How long updates gather before a batch leaves for a peer. */
  batchWindowMs: number
  /** How often links are pinged and link state is announced. */
  heartbeatMs: number
  /** Silence after which a link is dropped and a region's word counts as stale. */
  linkTimeoutMs: number
  /** permessage-deflate on links (default on). */
  compress?: boolean
}

/** Where a document may go, as links need it (see placement/). */
export interface LinkPlacement {
  /** This relay's namespace rules in canonical JSON: the `policy` message. */
  readonly canonical: string
  setPeerRules(peer: string, canonical: string): unknown
  /** Whether the document may live in this region. */
  allowsHere(docName: string): boolean
  /** Whether the document may go to `peer` (both sides' rules allow it). */
  mayReceive(docName: string, peer: string): boolean
  /** Where restricted documents `peer` may hold begin (see Placement.restrictedPrefixes). */
  restrictedPrefixes(peer: string): string[]
  /** Whether the document is restricted to some of the regions (and so cannot be forwarded through the others). */
  restricted(docName: string): boolean
}

/** The documents, as links need them. */
export interface LinkDocuments {
  /** The document's state, from memory or the store. */
  stateOf(docName: string): Promise<Uint8Array>
  /** An update became durable in the store: loaded documents send it to their clients. */
  applyDurable(docName: string, update: Uint8Array): void
  /** Stored documents whose names begin with `prefix`. */
  listDocs(prefix: string): Promise<string[]>
  /** Erased documents take nothing more from peers. */
  isErased(docName: string): boolean
}

/** What travels on any link, either way, for the mesh rather than the link: `LinkContext.control`. */
export type ControlMessage = Extract<PeerMessage, { type: ControlType }>
type ControlType = 'link-state' | 'awareness' | 'erase' | 'erased' | 'pull' | 'pulled' | 'forward' | 'forwarded'
const CONTROL_TYPES: ReadonlySet<string> = new Set<ControlType>(['link-state', 'awareness', 'erase', 'erased', 'pull', 'pulled', 'forward', 'forwarded'])

export const isControl = (message: PeerMessage): message is ControlMessage => CONTROL_TYPES.has(message.type)

export type RefusedKind = 'update' | 'catch-up' | 'awareness' | 'sv-request'

export interface LinkContext {
  region: string
  /** The secret to dial with first, then the previous ones of a rotation in progress. */
  meshSecrets: string[]
  timing: MeshTiming
  /** The largest peer message taken or sent, in bytes. */
  maxPayload: number
  log: ReplicationLog
  documents: LinkDocuments
  placement: LinkPlacement
  metrics: RelayMetrics
  logger: Logger
  /** For lines a stranger can cause (refused links). */
  refusalLog: Logger
  /** Origins whose entries go to `peer` now (ours, and those that cannot reach it). */
  originsFor(peer: string): string[]
  /** This relay's link to `peer` came up or went down. */
  linkChanged(peer: string): void
  /** `peer` acknowledged entries as durable. */
  acknowledged(peer: string): void
  /** Link state, awareness, erasures, strong reads' pulls, forwarded writes: the mesh's, whichever link brings them. */
  control(message: ControlMessage, from: string): void
  /** A peer sent something of a document that may not live here: dropped, counted, not logged by name. */
  refuse(peer: string, kind: RefusedKind): void
}
