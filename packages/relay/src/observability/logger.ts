/**
 * Log lines for operators on stderr, one per event: `time level message key=value…` (text, the
 * default) or one JSON object per line (`--log-format json`, for log pipelines). Callers pass
 * only names, sizes and codes: document content never goes into a log.
 */
export type LogFields = Record<string, string | number | boolean | undefined>
export type LogLevel = 'debug' | 'info' | 'warn' | 'error'
export type LogFormat = 'text' | 'json'

export const LOG_FORMATS: readonly LogFormat[] = ['text', 'json']

export interface Logger {
  log(level: LogLevel, message: string, fields?: LogFields): void
}

/** Who writes the lines, on every JSON line: the relay's region, and its node in a region of several. */
export interface LogContext {
  region?: string | undefined
  node?: string | undefined
}

export interface StreamLoggerOptions {
  format?: LogFormat
  context?: LogContext
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

/** Words past this many are left out of an event name: enough to tell the relay's messages apart. */
const EVENT_WORDS = 8

/**
 * The stable name of a message: its first words, lower-case, joined by `_` ("peer link changed"
 * → `peer_link_changed`). Quoted names and URLs are left out, since they vary from line to
 * line. The name stays the same as long as the message's words do; a field `event` overrides it.
 */
export const eventName = (message: string): string => {
  const words = message
    .replace(/"[^"]*"/g, ' ')
    .replace(/\b[a-z][a-z0-9+.-]*:\/\/\S+/gi, ' ')
    .replace(/(\w)'(\w)/g, '$1$2')
    .toLowerCase()
    .match(/[a-z0-9]+/g) ?? []
  return words.slice(0, EVENT_WORDS).join('_') || 'log'
}

/** The keys every JSON line starts with; a field of the same name is written as `field_<key>`. */
const CORE_KEYS = new Set(['time', 'level', 'event', 'msg'])

/** One JSON object: time, level, event, msg, region, node, then the fields. */
export const formatJsonLine = (
  level: LogLevel,
  message: string,
  fields: LogFields = {},
  context: LogContext = {},
  now: Date = new Date(),
): string => {
  const given = fields.event
  const line: Record<string, string | number | boolean> = {
    time: now.toISOString(),
    level,
    event: typeof given === 'string' && given !== '' ? given : eventName(message),
    msg: message,
  }
  if (context.region !== undefined) line.region = context.region
  if (context.node !== undefined) line.node = context.node
  for (const [key, value] of Object.entries(fields)) {
    if (value === undefined || key === 'event') continue
    // `region` and `node` say who writes the line: a field naming another region (the one a
    // link reaches) must not pass for it, and one repeating it adds nothing.
    const bound = key === 'region' || key === 'node' ? context[key] : undefined
    if (bound !== undefined && value === bound) continue
    line[CORE_KEYS.has(key) || bound !== undefined ? `field_${key}` : key] = value
  }
  return JSON.stringify(line)
}

export const streamLogger = (
  write: (line: string) => void,
  minLevel: LogLevel = 'info',
  { format = 'text', context = {} }: StreamLoggerOptions = {},
): Logger => ({
  log (level, message, fields) {
    if (LEVELS[level] < LEVELS[minLevel]) return
    write(format === 'json' ? formatJsonLine(level, message, fields, context) : formatLine(level, message, fields))
  },
})

export const stderrLogger = (minLevel: LogLevel = 'info', options: StreamLoggerOptions = {}): Logger =>
  streamLogger(line => process.stderr.write(line + '\n'), minLevel, options)

export const silentLogger: Logger = { log () {} }
