// What the rest of the relay uses of placement/: other folders import it from here only.
export { type Agreement, type MeshView, type PeerPolicyInfo, Placement, type Route } from './placement.js'
