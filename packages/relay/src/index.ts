export { Relay, type RelayOptions } from './relay.js'
export {
  ConfigError, applyOverrides, dataDirOf, loadRelayConfig, overridesFromEnv, parseRelayConfig, relayConfigSchema,
  type ConfigOverrides, type ConfigProblem, type RelayConfig, type RelayConfigInput,
} from './config.js'
export { checkedName, parseRequestPath, type PathTarget } from './doc-path.js'
export { MAX_DOC_NAME_BYTES, RESERVED_NAMES } from '@georelay/core'
export { type Logger, type LogLevel, type LogFields, silentLogger, stderrLogger, streamLogger, formatLine } from './logger.js'
export { createRelayMetrics, type RelayMetrics } from './metrics.js'
export type { RegionInfo } from './http-endpoints.js'
export {
  WanSimulator, type DirectionOptions, type DirectionStats, type LinkConditions, type LinkEndpoint, type LossConditions, type WanEvents,
  type WanSimulatorOptions,
} from './wan-simulator.js'
export { Mesh, type MeshTiming, type PeerInfo } from './mesh.js'
export { ReplicationLog } from './replication-log.js'
export { LinkStateTable, shouldForward } from './link-state.js'
export { LocalCluster, freePort, type ClusterRegionInfo, type LocalClusterOptions } from './local-cluster.js'
export { DEFAULT_ONE_WAY_MS, knownOneWayMs, oneWayDelayMs, parseLatency } from './latency-table.js'
export { Placement, digestOf, type Agreement, type MeshView, type PeerPolicyInfo, type Route } from './placement.js'
