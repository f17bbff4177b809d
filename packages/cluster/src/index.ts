/**
 * @georelay/cluster: several georelay regions on one machine behind a simulated WAN, for
 * `georelay cluster`, tests, benchmarks and demos. Not for production: a real deployment runs
 * one `georelay relay` per region (@georelay/relay).
 */
export {
  WanSimulator, type DirectionOptions, type DirectionStats, type LinkConditions, type LinkEndpoint, type LinkTarget,
  type LossConditions, type WanEvents, type WanSimulatorOptions,
} from './wan-simulator.js'
export { ClusterPlan, type ClusterPlanOptions, type PlannedPeer, type PlannedRelayConfig } from './cluster-plan.js'
export { LocalCluster, schemaOf, type ClusterLinkInfo, type ClusterRegionInfo, type LocalClusterOptions } from './local-cluster.js'
export { freePort, freePorts } from './free-port.js'
export { DEFAULT_ONE_WAY_MS, knownOneWayMs, oneWayDelayMs, parseLatencies, parseLatency } from './latency-table.js'
