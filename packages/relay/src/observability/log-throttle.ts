/**
 * A logger for lines that clients can cause at will (refused tokens, malformed frames, limits
 * passed): at most PER_WINDOW lines of one message per window, then one line saying how many
 * were left out. A flood of bad sockets costs the relay a few lines, not a disk.
 */
import type { LogFields, LogLevel, Logger } from './logger.js'

const PER_WINDOW = 20
const WINDOW_MS = 10_000

export const throttledLogger = (logger: Logger, perWindow = PER_WINDOW, windowMs = WINDOW_MS): Logger => {
  const counts = new Map<string, { lines: number, dropped: number, level: LogLevel }>()
  let windowStart = 0
  const summarize = (): void => {
    for (const [message, { dropped, level }] of counts) {
      if (dropped > 0) logger.log(level, 'similar log lines were left out', { message, suppressed: dropped, windowMs })
    }
    counts.clear()
  }
  return {
    log (level: LogLevel, message: string, fields?: LogFields): void {
      const now = Date.now()
      if (now - windowStart >= windowMs) {
        summarize()
        windowStart = now
      }
      let count = counts.get(message)
      if (count === undefined) counts.set(message, count = { lines: 0, dropped: 0, level })
      if (count.lines < perWindow) {
        count.lines++
        logger.log(level, message, fields)
      } else {
        count.dropped++
      }
    },
  }
}
