/**
 * Log lines for operators: `time level message key=value…` on stderr. Callers pass only
 * names, sizes and codes: document content never goes into a log.
 */
export type LogFields = Record<string, string | number | boolean | undefined>
export type LogLevel = 'debug' | 'info' | 'warn' | 'error'

export interface Logger {
  log(level: LogLevel, message: string, fields?: LogFields): void
}

const LEVELS: Record<LogLevel, number> = { debug: 10, info: 20, warn: 30, error: 40 }

const formatValue = (value: string | number | boolean): string => {
  const text = String(value)
  return /^[^\s"=]+$/.test(text) ? text : JSON.stringify(text)
}

export const formatLine = (level: LogLevel, message: string, fields: LogFields = {}): string => {
  const pairs = Object.entries(fields)
    .filter((entry): entry is [string, string | number | boolean] => entry[1] !== undefined)
    .map(([key, value]) => `${key}=${formatValue(value)}`)
  return [new Date().toISOString(), level, message, ...pairs].join(' ')
}

export const streamLogger = (write: (line: string) => void, minLevel: LogLevel = 'info'): Logger => ({
  log (level, message, fields) {
    if (LEVELS[level] >= LEVELS[minLevel]) write(formatLine(level, message, fields))
  },
})

export const stderrLogger = (minLevel: LogLevel = 'info'): Logger =>
  streamLogger(line => process.stderr.write(line + '\n'), minLevel)

export const silentLogger: Logger = { log () {} }
