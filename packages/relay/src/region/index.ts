export { RegionNode, type RegionNodeOptions } from './region-node.js'
export { LogFollower, type FollowedDocs, type LogFollowerOptions, type ReadReason } from './log-follower.js'
export { NODE_TTL_MS, type LiveNode } from './node-directory.js'
