// What the rest of the relay uses of config/: other folders import it from here only.
export { applyOverrides, ConfigError, type ConfigOverrides, type ConfigProblem, dataDirOf, loadRelayConfig, MIN_SECRET_BYTES, overridesFromEnv, parseRelayConfig, type RelayConfig, type RelayConfigInput, relayConfigSchema } from './relay-config.js'
