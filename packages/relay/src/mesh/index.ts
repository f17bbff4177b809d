// What the rest of the relay uses of mesh/: other folders import it from here only.
export { Mesh, type MeshTiming, type PeerInfo } from './mesh.js'
export { type LinkErrorKind, PEER_DEFLATE } from './outbound-link.js'
export type { Agreement, PeerPolicyInfo } from '../placement/index.js'
export type { Erasure, ErasureStatus } from './erasure.js'
export type { StrongReadResult, StrongReads } from './strong-read.js'
export type { AcceptForward, ForwardReply } from './write-forwarding.js'
