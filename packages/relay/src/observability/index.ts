// What the rest of the relay uses of observability/: other folders import it from here only.
export { throttledLogger } from './log-throttle.js'
export { formatLine, type LogFields, type Logger, type LogLevel, silentLogger, stderrLogger, streamLogger } from './logger.js'
export { createRelayMetrics, type RelayMetrics } from './metrics.js'
