/**
 * The `georelay` command. Exit codes: 0 done, 1 runtime failure, 2 bad usage or configuration.
 */
import os from 'node:os'
import { isRegionName } from '@georelay/core'
import { ConfigError, type ConfigOverrides, MIN_SECRET_BYTES, type RelayConfig, loadRelayConfig } from '../config/index.js'
import { LOG_FORMATS, type LogFormat, type Logger, type LogLevel, stderrLogger } from '../observability/index.js'
import { Relay } from '../server/index.js'
import { runBackup, runRestore } from './backup.js'
import { parseCommand } from './command-line.js'
import { runStatus } from './status.js'

/**
 * `georelay cluster` runs this package, loaded only by that command: it depends on this one (and
 * holds the WAN simulator, which a production relay has no use for), so it is an optional peer,
 * imported by a name held in a variable rather than statically.
 */
const CLUSTER_PACKAGE: string = '@georelay/cluster'

/** What `georelay cluster` uses of @georelay/cluster. */
export interface ClusterPackage {
  /** `--latency A:B=MS` flags as one-way delay overrides; throws saying which one is wrong. */
  parseLatencies (texts: readonly string[]): Record<string, number>
  LocalCluster: {
    start (options: {
      regions: string[]
      basePort: number
      host: string
      dataDir: string
      store: 'sqlite' | 'postgres' | 'memory'
      postgresUrl?: string
      latency: Record<string, number>
      meshSecret?: string
      logger: Logger
      nodesPerRegion?: number
      redisUrl?: string
    }): Promise<RunningCluster>
  }
}

interface RunningCluster {
  /** Each region's URL, then each pair's one-way delay: what the command prints. */
  describe (): string[]
  close (): Promise<void>
}

export const HELP = `georelay — multi-region, active-active sync for Yjs documents

Usage:
  georelay relay [--config FILE] [flags]   run one region's relay
  georelay cluster [flags]                 run a local multi-region cluster
  georelay status --url URL [--url URL...] the mesh as its relays see it
  georelay backup --data DIR --out FILE    online backup of a relay's SQLite store
  georelay restore --from FILE --data DIR  put a backup in place (relay stopped)
  georelay --help                          this text

georelay relay
  Serves Yjs documents on ws://HOST:PORT/<document> to any stock y-websocket
  provider, stores every update durably before forwarding it, and serves
  GET /healthz, /readyz, /metrics (Prometheus) and /v1/regions on the same port.
  SIGTERM or SIGINT drains: stop accepting, close clients with 1001, flush, exit 0.

  --config FILE        JSON configuration (see the relay package README); flags
                       and environment variables override its fields
  --region NAME        this relay's region, like eu-west          GEORELAY_REGION
  --host HOST          address to listen on (default 127.0.0.1)   GEORELAY_HOST
  --port PORT          port to listen on (default 4001; 0 = any)  GEORELAY_PORT
  --data DIR           data directory (default ./data/<region>)   GEORELAY_DATA
  --store KIND         sqlite (default, durable), postgres        GEORELAY_STORE
                       (durable, shared) or memory (forgets on exit)
  --postgres-url URL   the database of store postgres:            GEORELAY_POSTGRES_URL
                       postgres://USER:PASSWORD@HOST:PORT/DB (prefer
                       the environment variable: ps shows flags)
  --node NAME          this node's name in a region of several    GEORELAY_NODE
                       nodes (default <hostname>-<pid>)
  --redis-url URL      the Redis between the region's nodes       GEORELAY_REDIS_URL
                       (needs --store postgres: hints only, the
                       log in Postgres stays the truth)
  --redis-cluster      --redis-url is one node of a Redis Cluster GEORELAY_REDIS_CLUSTER=true
  --public-url URL     URL that clients and peers use to reach it GEORELAY_PUBLIC_URL
  --peer REGION=URL[,URL...]                                      GEORELAY_PEERS (comma-separated)
                       a peer region's relay (or its nodes' URLs,
                       dialled in turn); repeat per peer
  --mesh-secret-file FILE  file holding the mesh secret          GEORELAY_MESH_SECRET_FILE
  --mesh-secret SECRET shared secret of the relays of one mesh    GEORELAY_MESH_SECRET
                       (required with --peer; the same on every relay;
                       at least 32 bytes: openssl rand -hex 32; on the
                       command line other users see it in ps, so prefer
                       the file or the environment variable)
  --anonymous ACCESS   what clients without a token may do:       GEORELAY_ANONYMOUS
                       none, ro or rw (auth.anonymous; tokens need
                       an HS256 secret or auth.jwksFile in --config)
  --jwt-secret-file FILE  file holding the HS256 token secret    GEORELAY_JWT_SECRET_FILE
                       (auth.jwtSecretFile; or the secret itself in
                       GEORELAY_JWT_SECRET; at least 32 characters)
  --synchronous MODE   full (default: acknowledged after fsync)  GEORELAY_SYNCHRONOUS
                       or normal (after the WAL write: survives
                       kill -9, not a power cut; much faster acks)
  --log-level LEVEL    debug, info (default), warn or error       GEORELAY_LOG_LEVEL
  --log-format FORMAT  text (default: time level message k=v)     GEORELAY_LOG_FORMAT
                       or json (one object per line: time, level,
                       event, msg, region, node and the fields)
                       GEORELAY_CONFIG names a configuration file like --config.

georelay cluster
  Starts one relay per region on this machine, each with its own store, linked
  through a simulated WAN whose one-way delays come from a built-in table of
  real inter-region latencies (50 ms for pairs it does not know). Prints each
  region's URL. Clients connect straight to their region's relay.

  --regions A,B,C      region names (default us-east,eu-west,ap-south)
  --base-port PORT     first relay's port, the others follow (default 4001; 0 = any)
  --host HOST          address to listen on (default 127.0.0.1)
  --data DIR           data directory; region R uses DIR/R (default ./data/cluster)
  --store KIND         sqlite (default), postgres or memory
  --postgres-url URL   with --store postgres: one database for all regions,
                       region R in schema georelay_R (dashes as _)   GEORELAY_POSTGRES_URL
  --nodes-per-region N relays per region (default 1; up to 8): the nodes of a
                       region share its Postgres schema and one Redis, and
                       peers dial them in turn (needs --store postgres)
  --redis-url URL      with --nodes-per-region above 1              GEORELAY_REDIS_URL
  --latency A:B=MS     one-way delay between two regions; repeatable
  --mesh-secret SECRET mesh secret (default: random for this run)
  --log-level LEVEL    debug, info, warn (default) or error

georelay status
  Reads /v1/regions of each relay given and prints one row per relay and peer:
  link state, lag and pending entries, policy agreement, and why a link or a
  relay is down. \`georelay status --help\` for its flags and exit codes.

  --url URL            a relay's URL; repeat per relay
  --token TOKEN        the relays' http.adminToken, for lag and   GEORELAY_ADMIN_TOKEN
                       pending counts
  --json               JSON instead of a table

georelay backup, georelay restore
  backup copies a running relay's SQLite store to one file, consistently,
  while it writes; restore puts one back with the relay stopped.
  \`georelay backup --help\` for their flags.

  --data DIR           the relay's data directory                 GEORELAY_DATA
  --out FILE           backup: the file to write (--force replaces it)
  --from FILE          restore: the backup to put in place

Examples:
  georelay relay --region eu-west --port 4001
  georelay relay --config relay.json --port 5001
  georelay cluster --regions us-east,eu-west,ap-south --latency eu-west:us-east=40
  georelay cluster --nodes-per-region 2 --store postgres --postgres-url URL --redis-url redis://127.0.0.1:6379
  georelay status --url wss://eu-west.example.com --url wss://us-east.example.com
  georelay backup --data /var/lib/georelay --out /backups/georelay-$(date +%F).sqlite

Exit codes: 0 stopped cleanly, 1 failed while running, 2 bad command line or configuration.
georelay status: 0 every relay answered and every link is up with agreeing rules,
1 a relay did not answer, a link is down or rules differ, 2 bad command line.
`

const LOG_LEVELS = new Set(['debug', 'info', 'warn', 'error'])

const usage = (message: string): number => {
  process.stderr.write(`georelay: ${message}\nRun \`georelay --help\` for the commands and flags.\n`)
  return 2
}

const isLogFormat = (text: string): text is LogFormat => (LOG_FORMATS as readonly string[]).includes(text)

/**
 * The node name a relay of a region of several goes by (the relay's own default, `<hostname>-<pid>`,
 * when none is given), so that every JSON log line names it, those written while starting too.
 * Undefined for the region's only relay, which is no node.
 */
const nodeNameOf = (config: RelayConfig): string | undefined => {
  if (config.redis.url === undefined) return undefined
  return config.node ?? `${os.hostname().replace(/[^A-Za-z0-9._-]/g, '-').slice(0, 50)}-${process.pid}`
}

const failOnStderr = (message: string): void => { process.stderr.write(`georelay: ${message}\n`) }

/** Runs until SIGTERM or SIGINT, then stops cleanly: exit code 0, or 1 if stopping failed. */
const untilSignal = (
  what: string,
  stop: () => Promise<void>,
  onSignal: (signal: string) => void = () => {},
  fail: (message: string, fields: Record<string, string>) => void = failOnStderr,
): Promise<number> =>
  new Promise(resolve => {
    const handle = (signal: string): void => {
      onSignal(signal)
      stop().then(() => resolve(0), err => {
        fail(`${what} failed (${(err as Error).message})`, { event: `${what.replace(/\W+/g, '_')}_failed` })
        resolve(1)
      })
    }
    process.once('SIGTERM', handle)
    process.once('SIGINT', handle)
  })

const runRelay = async (args: string[]): Promise<number> => {
  const parsed = parseCommand(args, {
    config: { type: 'string' },
    region: { type: 'string' },
    host: { type: 'string' },
    port: { type: 'string' },
    data: { type: 'string' },
    store: { type: 'string' },
    'public-url': { type: 'string' },
    peer: { type: 'string', multiple: true },
    'mesh-secret': { type: 'string' },
    'mesh-secret-file': { type: 'string' },
    'jwt-secret-file': { type: 'string' },
    anonymous: { type: 'string' },
    synchronous: { type: 'string' },
    'postgres-url': { type: 'string' },
    node: { type: 'string' },
    'redis-url': { type: 'string' },
    'redis-cluster': { type: 'boolean' },
    'log-level': { type: 'string' },
    'log-format': { type: 'string' },
    help: { type: 'boolean', short: 'h' },
  }, HELP, usage)
  if (typeof parsed === 'number') return parsed
  // The overrides read only the fields they know (not `help`).
  const { config: file, 'log-level': logLevelFlag, 'log-format': logFormatFlag, ...flags } = parsed
  const logLevel = logLevelFlag ?? process.env.GEORELAY_LOG_LEVEL ?? 'info'
  if (!LOG_LEVELS.has(logLevel)) return usage(`--log-level must be debug, info, warn or error, not "${logLevel}"`)
  // An empty variable counts as unset, as for every other GEORELAY_* variable.
  const logFormat = logFormatFlag ?? (process.env.GEORELAY_LOG_FORMAT || 'text')
  if (!isLogFormat(logFormat)) return usage(`--log-format must be text or json, not "${logFormat}"`)
  let config: RelayConfig
  try {
    config = loadRelayConfig({
      ...(file === undefined ? {} : { file }),
      flags: flags as ConfigOverrides,
      env: process.env,
    })
  } catch (err) {
    if (err instanceof ConfigError) return usage(err.message)
    throw err
  }
  const node = nodeNameOf(config)
  if (node !== undefined) config = { ...config, node }
  const logger = stderrLogger(logLevel as LogLevel, { format: logFormat, context: { region: config.region, node } })
  // In JSON, every line of stderr must parse: the CLI's own failures become log lines too.
  const fail = (message: string, fields: Record<string, string> = {}): void => {
    if (logFormat === 'json') logger.log('error', message, fields)
    else process.stderr.write(`georelay: ${message}\n`)
  }
  if (flags['mesh-secret'] !== undefined) {
    logger.log('warn', 'the mesh secret is on the command line, where any user of this machine can read it (ps); use --mesh-secret-file or GEORELAY_MESH_SECRET', {})
  }
  let relay: Relay
  try {
    relay = await Relay.start({ config, logger })
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code
    const hint = code === 'EADDRINUSE' ? `: port ${config.listen.port} is taken; pick another with --port` : ''
    fail(`the relay could not start (${(err as Error).message})${hint}`, { event: 'relay_could_not_start' })
    return 1
  }
  process.stdout.write(`georelay relay ${config.region} listening on ${relay.url} (store: ${relay.storeLocation})\n`)
  return untilSignal('drain', () => relay.close(), signal => logger.log('info', 'draining', { signal }), fail)
}

/** @georelay/cluster, or null once it said why it cannot be loaded. */
const loadClusterPackage = async (): Promise<ClusterPackage | null> => {
  try {
    return await import(CLUSTER_PACKAGE) as ClusterPackage
  } catch (err) {
    const { code, message } = err as NodeJS.ErrnoException
    const missing = code === 'ERR_MODULE_NOT_FOUND' && message.includes(`'${CLUSTER_PACKAGE}'`)
    process.stderr.write(missing
      ? `georelay cluster needs the ${CLUSTER_PACKAGE} package: npm install ${CLUSTER_PACKAGE}\n`
      : `georelay: ${CLUSTER_PACKAGE} could not be loaded (${message})\n`)
    return null
  }
}

const runCluster = async (args: string[]): Promise<number> => {
  const v = parseCommand(args, {
    regions: { type: 'string', default: 'us-east,eu-west,ap-south' },
    'base-port': { type: 'string', default: '4001' },
    host: { type: 'string', default: '127.0.0.1' },
    data: { type: 'string', default: 'data/cluster' },
    store: { type: 'string', default: 'sqlite' },
    'postgres-url': { type: 'string' },
    'nodes-per-region': { type: 'string', default: '1' },
    'redis-url': { type: 'string' },
    latency: { type: 'string', multiple: true },
    'mesh-secret': { type: 'string' },
    'log-level': { type: 'string', default: 'warn' },
    help: { type: 'boolean', short: 'h' },
  }, HELP, usage)
  if (typeof v === 'number') return v
  const regions = v.regions.split(',').map(r => r.trim()).filter(Boolean)
  const bad = regions.find(r => !isRegionName(r))
  if (bad !== undefined) return usage(`--regions: "${bad}" is not a region name (lowercase letters, digits and dashes)`)
  const nodes = /^[1-8]$/.test(v['nodes-per-region']) ? Number(v['nodes-per-region']) : NaN
  if (Number.isNaN(nodes)) return usage(`--nodes-per-region must be 1 to 8, not "${v['nodes-per-region']}"`)
  if (!/^\d+$/.test(v['base-port']) || Number(v['base-port']) + regions.length * nodes - 1 > 65535) return usage(`--base-port must be a port number, not "${v['base-port']}"`)
  if (v.store !== 'sqlite' && v.store !== 'postgres' && v.store !== 'memory') return usage(`--store must be sqlite, postgres or memory, not "${v.store}"`)
  const postgresUrl = v['postgres-url'] ?? process.env.GEORELAY_POSTGRES_URL
  if (v.store === 'postgres' && postgresUrl === undefined) return usage('--store postgres needs --postgres-url postgres://USER:PASSWORD@HOST:PORT/DB (or GEORELAY_POSTGRES_URL)')
  const redisUrl = v['redis-url'] ?? process.env.GEORELAY_REDIS_URL
  if (nodes > 1 && v.store !== 'postgres') return usage(`--nodes-per-region ${nodes}: the nodes of a region share its store, so give --store postgres --postgres-url URL`)
  if (nodes > 1 && redisUrl === undefined) return usage(`--nodes-per-region ${nodes}: the nodes of a region talk over Redis, so give --redis-url redis://HOST:PORT (or GEORELAY_REDIS_URL)`)
  if (!LOG_LEVELS.has(v['log-level'])) return usage(`--log-level must be debug, info, warn or error, not "${v['log-level']}"`)
  const secret = v['mesh-secret']
  if (secret !== undefined && Buffer.byteLength(secret) < MIN_SECRET_BYTES) return usage(`--mesh-secret must be at least ${MIN_SECRET_BYTES} bytes (openssl rand -hex 32)`)
  const clusterPackage = await loadClusterPackage()
  if (clusterPackage === null) return 1
  let latency: Record<string, number>
  try {
    latency = clusterPackage.parseLatencies(v.latency ?? [])
  } catch (err) {
    return usage((err as Error).message)
  }
  let cluster: RunningCluster
  try {
    cluster = await clusterPackage.LocalCluster.start({
      regions,
      basePort: Number(v['base-port']),
      host: v.host,
      dataDir: v.data,
      store: v.store,
      ...(v.store === 'postgres' && postgresUrl !== undefined ? { postgresUrl } : {}),
      latency,
      ...(v['mesh-secret'] === undefined ? {} : { meshSecret: v['mesh-secret'] }),
      ...(nodes > 1 ? { nodesPerRegion: nodes, redisUrl } : {}),
      logger: stderrLogger(v['log-level'] as LogLevel),
    })
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code
    const hint = code === 'EADDRINUSE' ? `; a port from ${v['base-port']} on is taken: pick another with --base-port` : ''
    process.stderr.write(`georelay: the cluster could not start (${(err as Error).message})${hint}\n`)
    return 1
  }
  const where = v.store === 'sqlite' ? ` in ${v.data}` : v.store === 'postgres' ? ', one schema per region' : ''
  const several = nodes > 1 ? `, ${nodes} nodes each on one Redis` : ''
  const lines = [`georelay cluster: ${regions.length} regions (store: ${v.store}${where}${several})`, ...cluster.describe()]
  lines.push('Stop with Ctrl-C.')
  process.stdout.write(lines.join('\n') + '\n')
  return untilSignal('cluster shutdown', () => cluster.close())
}

export const main = async (argv: string[]): Promise<number> => {
  const [command, ...rest] = argv
  if (command === undefined || command === '--help' || command === '-h' || command === 'help') {
    process.stdout.write(HELP)
    return command === undefined ? 2 : 0
  }
  if (command === 'relay') return runRelay(rest)
  if (command === 'cluster') return runCluster(rest)
  if (command === 'status') return runStatus(rest, usage)
  if (command === 'backup') return runBackup(rest, usage)
  if (command === 'restore') return runRestore(rest, usage)
  return usage(`unknown command "${command}"`)
}
