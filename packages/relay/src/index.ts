/**
 * @georelay/relay: a region relay and its configuration. Everything else in this package is its
 * inside (see docs/architecture.md for the folders); `georelay cluster` and the WAN simulator are
 * @georelay/cluster's.
 */
export { Relay, type RegionInfo, type RelayEvents, type RelayOptions } from './server/index.js'
export {
  ConfigError, MIN_SECRET_BYTES, applyOverrides, dataDirOf, loadRelayConfig, overridesFromEnv, parseRelayConfig,
  relayConfigSchema, type ConfigOverrides, type ConfigProblem, type RelayConfig, type RelayConfigInput,
} from './config/index.js'
export type { Agreement, LinkErrorKind, MeshTiming, PeerInfo, PeerPolicyInfo } from './mesh/index.js'
export { type LogFields, type LogLevel, type Logger, formatLine, silentLogger, stderrLogger, streamLogger } from './observability/index.js'
