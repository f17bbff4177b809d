// What the rest of the relay uses of observability/: other folders import it from here only.
export { throttledLogger } from './log-throttle.js'
export {
  eventName, formatJsonLine, formatLine, LOG_FORMATS, type LogContext, type LogFields, type LogFormat, type Logger,
  type LogLevel, silentLogger, stderrLogger, streamLogger, type StreamLoggerOptions,
} from './logger.js'
export { createRelayMetrics, type RelayMetrics } from './metrics.js'
