/**
 * Relay configuration (the relay README lists every field): a JSON file, `GEORELAY_*` environment variables and
 * command-line flags, in rising precedence, checked against one schema. A bad field is
 * refused at start with its path and what is wrong with it.
 */
import fs from 'node:fs'
import path from 'node:path'
import { z } from 'zod'
import { PolicyError, REGION_NAME, REGION_NAME_RULE, compilePolicies } from '@georelay/core'

const regionName = z.string().regex(REGION_NAME, REGION_NAME_RULE)
const wsUrl = z.string().regex(/^wss?:\/\/[^\s/]+/, 'must be a ws:// or wss:// URL, like "ws://127.0.0.1:4001"')

/** Shortest mesh secret accepted, in bytes. */
export const MIN_SECRET_BYTES = 32

const rateLimit = z.object({
  rate: z.number().min(0),
  burst: z.number().int().min(0),
}).strict().refine(l => l.rate === 0 || l.burst >= 1, { message: 'a burst of at least 1 is needed when rate is not 0' })

export const relayConfigSchema = z.object({
  region: regionName,
  listen: z.object({
    host: z.string().min(1).default('127.0.0.1'),
    port: z.number().int().min(0).max(65535).default(4001),
  }).strict().default({}),
  /** The URL clients and peers use to reach this relay; defaults to ws://host:port. */
  publicUrl: wsUrl.optional(),
  /** Where the embedded store keeps its file; defaults to ./data/<region>. */
  dataDir: z.string().min(1).optional(),
  /**
   * `sqlite` (durable, the default: one file in dataDir), `postgres` (durable, in the database
   * `storage.postgres.url` names) or `memory` (forgets everything on exit).
   */
  store: z.enum(['sqlite', 'postgres', 'memory']).default('sqlite'),
  /**
   * This relay's name among the nodes of its region (a region of several nodes shares one
   * Postgres store and one Redis); defaults to `<hostname>-<pid>`.
   */
  node: z.string().regex(/^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$/, 'must be 1 to 64 letters, digits, ".", "_" or "-", like "eu-west-1"').optional(),
  /** The Redis that carries hints and presence between the nodes of a region (docs/operations.md). */
  redis: z.object({
    /** redis://[user:password@]host:port[/db]; prefer GEORELAY_REDIS_URL to a file or flag. */
    url: z.string().regex(/^rediss?:\/\/\S+$/, 'must be a redis:// URL, like "redis://127.0.0.1:6379"').optional(),
    /**
     * How often a node reads the shared log for its documents whether or not a hint came: the
     * longest a lost hint can delay an update.
     */
    pollMs: z.number().int().min(50).max(60_000).default(1000),
    /** `url` is one node of a Redis Cluster (the client learns the others from it). */
    cluster: z.boolean().default(false),
  }).strict().default({}),
  peers: z.array(z.object({
    region: regionName,
    /** Where this relay dials the peer. */
    url: wsUrl,
    /**
     * More addresses of the same region (its other nodes): a link that closes or cannot connect
     * dials the next one, in turn.
     */
    urls: z.array(wsUrl).max(16).optional(),
    /** Where clients reach the peer, when it differs from `url` (a private mesh network). */
    publicUrl: wsUrl.optional(),
  }).strict()).default([]),
  /**
   * The secret every relay of the mesh shares: at least 32 bytes. Prefer `meshSecretFile` or
   * GEORELAY_MESH_SECRET to the command line, where `ps` shows it.
   */
  meshSecret: z.string().refine(s => Buffer.byteLength(s) >= MIN_SECRET_BYTES, `must be at least ${MIN_SECRET_BYTES} bytes; make one with \`openssl rand -hex 32\``).optional(),
  /** A file holding the mesh secret (a trailing newline is ignored). */
  meshSecretFile: z.string().min(1).optional(),
  /**
   * Secrets this relay still accepts from peers, and dials with when a peer refuses
   * `meshSecret`: what makes a rotation possible one relay at a time with no link refused
   * (docs/operations.md, rotating the mesh secret).
   */
  previousMeshSecrets: z.array(z.string().refine(s => Buffer.byteLength(s) >= MIN_SECRET_BYTES, `must be at least ${MIN_SECRET_BYTES} bytes`)).max(4).default([]),
  /** Client authentication: JWTs (HS256 secret or a JWKS file) and what anonymous clients may do. */
  auth: z.object({
    jwtSecret: z.string().min(32, 'an HS256 secret needs at least 32 characters').optional(),
    /** A file holding the HS256 secret (a trailing newline is ignored); or GEORELAY_JWT_SECRET. */
    jwtSecretFile: z.string().min(1).optional(),
    jwksFile: z.string().min(1).optional(),
    issuer: z.string().min(1).optional(),
    audience: z.string().min(1).optional(),
    /** Without a token: `none` (refused, the default), `ro` (read only) or `rw`. */
    anonymous: z.enum(['none', 'ro', 'rw']).default('none'),
  }).strict().default({}),
  /** Where documents may live and how they are written (docs/deployment-models.md); first match wins. */
  namespaces: z.array(z.object({
    match: z.string(),
    mode: z.enum(['active-active', 'active-passive']).optional(),
    regions: z.array(regionName).min(1).optional(),
    primary: regionName.optional(),
    standby: z.array(regionName).optional(),
    ack: z.enum(['local', 'majority', 'all']).optional(),
    promoteAfterMs: z.number().int().optional(),
    standbyReads: z.boolean().optional(),
  }).strict()).default([]),
  limits: z.object({
    /**
     * The largest message a socket may send; larger ones close it with 4413. Default: enough for
     * one update of `maxDocumentBytes`, so a large paste or import is stored, not refused.
     */
    maxMessageBytes: z.number().int().min(1024).max(1024 * 1024 * 1024).optional(),
    /**
     * Bytes of large messages still arriving, over every socket, that the relay holds at once;
     * past it, sockets sending more are not read until others complete (see receive-budget.ts).
     */
    maxReceivingBytes: z.number().int().min(1024 * 1024).default(256 * 1024 * 1024),
    /** How long a socket may stay over its rate (and be slowed) before it is closed with 4429. */
    throttledCloseAfterMs: z.number().int().min(100).default(30_000),
    /** Presence (awareness) bounds, see presence.ts. */
    presence: z.object({
      perClient: z.number().int().min(1).default(4),
      perDocument: z.number().int().min(1).default(1000),
      stateBytes: z.number().int().min(64).default(16 * 1024),
    }).strict().default({}),
    maxDocsPerConnection: z.number().int().min(1).default(256),
    /** Client sockets open at once; one more is closed with 4429. */
    maxConnections: z.number().int().min(1).default(10_000),
    /** A document's stored size past which client writes are refused (it stays readable). */
    maxDocumentBytes: z.number().int().min(1024).default(64 * 1024 * 1024),
    /** Messages per second one client socket may send (rate 0: no limit). */
    messagesPerSecond: rateLimit.default({ rate: 1000, burst: 5000 }),
    /** The same, shared by every socket from one address (off by default: behind a proxy all clients share one). */
    messagesPerSecondPerAddress: rateLimit.default({ rate: 0, burst: 0 }),
    /** Bytes waiting in a client's send buffer past which it is cut as a slow reader. */
    maxBufferedBytes: z.number().int().min(64 * 1024).default(8 * 1024 * 1024),
  }).strict().default({}),
  storage: z.object({
    compactAfterUpdates: z.number().int().min(1).default(500),
    compactAfterBytes: z.number().int().min(1).default(1024 * 1024),
    /**
     * When a write counts as durable (SQLite store): `full` after fsync (survives a power cut),
     * `normal` after the WAL write (survives kill -9 of the relay, not the machine going down).
     */
    synchronous: z.enum(['full', 'normal']).default('full'),
    /** The Postgres store (store: postgres); see packages/store-postgres/README.md. */
    postgres: z.object({
      /** postgres://user:password@host:port/database; prefer GEORELAY_POSTGRES_URL to a file or flag. */
      url: z.string().regex(/^postgres(ql)?:\/\/\S+$/, 'must be a postgres:// URL, like "postgres://georelay:PASSWORD@127.0.0.1:5432/georelay"').optional(),
      /** The schema holding this region's tables: regions sharing one database need one each. */
      schema: z.string().regex(/^[a-z_][a-z0-9_]{0,62}$/, 'must be a lower-case SQL identifier (letters, digits, _), like "georelay_eu_west"').default('georelay'),
      /** Connections the relay keeps open. */
      poolSize: z.number().int().min(1).max(1000).default(10),
      /** A statement running longer than this is cancelled and the write refused (the client retries). */
      statementTimeoutMs: z.number().int().min(100).default(10_000),
    }).strict().default({}),
  }).strict().default({}),
  replication: z.object({
    /** How long updates gather before a batch leaves for a peer. */
    batchWindowMs: z.number().int().min(0).max(1000).default(5),
    /** How often links are pinged and link state is announced. */
    heartbeatMs: z.number().int().min(10).default(1000),
    /** Silence after which a peer link is dropped and redialled. */
    linkTimeoutMs: z.number().int().min(50).default(3000),
    /** permessage-deflate on peer links (off only to inspect the traffic, as the residency test does). */
    compress: z.boolean().default(true),
    /**
     * At start, how long documents wait to load until every peer has sent the erasures it knows
     * (a region that was down must not serve a document erased meanwhile); peers that are down
     * too are waited for this long at most.
     */
    erasureWaitMs: z.number().int().min(0).default(2000),
  }).strict().default({}),
  /**
   * After a broadcast to a document's clients, later updates gather this long and go out merged
   * as one frame per client; the first update after a quiet spell goes at once. 0 (the
   * default): what became durable in one event-loop turn goes out merged, at the end of it. A
   * window saves little CPU once frames are built once for all readers, and each of its
   * milliseconds adds to the delivery latency of a steady typist's updates.
   */
  fanoutWindowMs: z.number().int().min(0).max(1000).default(0),
  /** How long a document with no clients stays in memory before it is released. */
  idleReleaseMs: z.number().int().min(0).default(30_000),
  /** The HTTP side of the port. */
  http: z.object({
    /**
     * What GET /v1/regions shows: `discovery` (the default: regions, their public URLs and
     * whether they are up — what an SDK needs), `full` (also every peer link's state, lag and
     * namespace rules, for operators), or `off` (404). A request with
     * `Authorization: Bearer <adminToken>` always gets `full`.
     */
    regions: z.enum(['discovery', 'full', 'off']).default('discovery'),
    /** Origins browsers may read /healthz and /v1/regions from (`*`: any; SDKs probe every region). */
    allowOrigins: z.array(z.string().min(1)).default(['*']),
    adminToken: z.string().refine(s => Buffer.byteLength(s) >= MIN_SECRET_BYTES, `must be at least ${MIN_SECRET_BYTES} bytes`).optional(),
  }).strict().default({}),
  /**
   * Receivers told of changes and erasures (server/webhooks.ts): a POST per burst of writes a
   * document took in this region, signed with the webhook's secret.
   */
  webhooks: z.array(z.object({
    url: z.string().regex(/^https?:\/\/\S+$/, 'must be an http:// or https:// URL'),
    events: z.array(z.enum(['change', 'delete'])).min(1).default(['change', 'delete']),
    /** A burst ends after this long without a write… */
    debounceMs: z.number().int().min(0).default(2000),
    /** …or this long after its first write, whichever comes first. */
    maxWaitMs: z.number().int().min(0).default(10_000),
    /** The HMAC-SHA256 key of X-Georelay-Signature. */
    secret: z.string().refine(s => Buffer.byteLength(s) >= MIN_SECRET_BYTES, `must be at least ${MIN_SECRET_BYTES} bytes`),
  }).strict()).max(16).default([]),
}).strict()

export type RelayConfigInput = z.input<typeof relayConfigSchema>
type ParsedConfig = z.output<typeof relayConfigSchema>
/** A checked configuration, with the defaults that depend on other fields filled in. */
export type RelayConfig = Omit<ParsedConfig, 'limits'> & { limits: ParsedConfig['limits'] & { maxMessageBytes: number } }

/** Room for the framing around one update (mux and sync headers). */
const FRAMING_BYTES = 64 * 1024

export interface ConfigProblem { path: string, message: string }

export class ConfigError extends Error {
  constructor (readonly problems: ConfigProblem[], readonly source: string) {
    super(`invalid configuration (${source}):\n${problems.map(p => `  ${p.path || '(root)'}: ${p.message}`).join('\n')}`)
    this.name = 'ConfigError'
  }
}

/**
 * A secret given in the configuration, or in a file beside it (so that it is in neither the
 * file nor `ps`): the file's content without a trailing newline, checked for length.
 */
const secretOf = (
  given: string | undefined,
  file: string | undefined,
  field: string,
  fileField: string,
  minBytes: number,
  problems: ConfigProblem[],
): string | undefined => {
  if (file === undefined) return given
  if (given !== undefined) problems.push({ path: fileField, message: `give ${field} or ${fileField}, not both` })
  try {
    const secret = fs.readFileSync(file, 'utf8').replace(/\r?\n$/, '')
    if (Buffer.byteLength(secret) < minBytes) problems.push({ path: fileField, message: `the secret in ${file} is shorter than ${minBytes} bytes` })
    return secret
  } catch (err) {
    problems.push({ path: fileField, message: `cannot read ${file}: ${(err as Error).message}` })
    return given
  }
}

/** Where every field is described, for a problem with a field's name. */
const REFERENCE = 'the relay README, "Configuration file", lists every field'

/** The schema inside defaults, optionals and refinements. */
const unwrap = (schema: z.ZodTypeAny): z.ZodTypeAny => {
  let s = schema
  for (;;) {
    if (s instanceof z.ZodDefault || s instanceof z.ZodOptional || s instanceof z.ZodNullable) {
      s = s._def.innerType as z.ZodTypeAny
    } else if (s instanceof z.ZodEffects) s = s._def.schema as z.ZodTypeAny
    else return s
  }
}

/** The fields an object of the configuration may have at `path`. */
const fieldsAt = (path: readonly (string | number)[]): string[] => {
  let schema = unwrap(relayConfigSchema)
  for (const key of path) {
    if (schema instanceof z.ZodArray) schema = unwrap(schema.element as z.ZodTypeAny)
    if (typeof key === 'number') continue
    if (!(schema instanceof z.ZodObject)) return []
    const next = (schema.shape as Record<string, z.ZodTypeAny>)[key]
    if (next === undefined) return []
    schema = unwrap(next)
  }
  if (schema instanceof z.ZodArray) schema = unwrap(schema.element as z.ZodTypeAny)
  return schema instanceof z.ZodObject ? Object.keys(schema.shape as object) : []
}

/** Levenshtein distance, for a "did you mean". */
const distance = (a: string, b: string): number => {
  const row = Array.from({ length: b.length + 1 }, (_, j) => j)
  for (let i = 1; i <= a.length; i++) {
    let previous = row[0] as number
    row[0] = i
    for (let j = 1; j <= b.length; j++) {
      const here = row[j] as number
      const same = a[i - 1]?.toLowerCase() === b[j - 1]?.toLowerCase()
      row[j] = Math.min(here + 1, (row[j - 1] as number) + 1, previous + (same ? 0 : 1))
      previous = here
    }
  }
  return row[b.length] as number
}

const closest = (word: string, candidates: readonly string[]): string | null => {
  const ranked = candidates.map(c => ({ c, d: distance(word, c) })).sort((x, y) => x.d - y.d)[0]
  return ranked !== undefined && ranked.d <= Math.max(2, Math.floor(word.length / 3)) ? ranked.c : null
}

const describeIssue = (issue: z.ZodIssue): ConfigProblem[] => {
  const at = issue.path.join('.')
  if (issue.code === 'unrecognized_keys') {
    const fields = fieldsAt(issue.path)
    return issue.keys.map(key => {
      const full = at === '' ? key : `${at}.${key}`
      const near = closest(key, fields)
      return { path: full, message: `unknown field${near === null ? '' : `; did you mean "${near}"?`} (${REFERENCE})` }
    })
  }
  return [{ path: at, message: issue.message }]
}

/** Region names in a namespace rule's problem get a reminder of where the known ones come from. */
const REGION_FIELD = /\.(regions|primary|standby)(\.|$)/

const policyProblems = (namespaces: unknown, regions: string[]): ConfigProblem[] => {
  try {
    compilePolicies(namespaces as Parameters<typeof compilePolicies>[0], regions)
    return []
  } catch (err) {
    if (!(err instanceof PolicyError)) throw err
    return err.problems.map(p => REGION_FIELD.test(p.path) ? { ...p, message: `${p.message} (regions are this relay's and its peers')` } : p)
  }
}

/**
 * When the schema refuses a configuration, the namespace rules are still checked against the
 * region names given (as far as they are readable), so that one run reports both kinds.
 */
const rawPolicyProblems = (input: unknown): ConfigProblem[] => {
  if (typeof input !== 'object' || input === null) return []
  const { region, peers, namespaces } = input as { region?: unknown, peers?: unknown, namespaces?: unknown }
  if (typeof region !== 'string' || !Array.isArray(namespaces)) return []
  const peerRegions = Array.isArray(peers) ? peers.map(p => (p as { region?: unknown })?.region).filter((r): r is string => typeof r === 'string') : []
  if (!namespaces.every(rule => typeof rule === 'object' && rule !== null && typeof (rule as { match?: unknown }).match === 'string')) return []
  try {
    return policyProblems(namespaces, [region, ...peerRegions])
  } catch {
    return [] // rules too malformed to check: the schema's problems say why
  }
}

/** Checks a configuration object; throws ConfigError listing every problem. */
export const parseRelayConfig = (input: unknown, source = 'configuration'): RelayConfig => {
  const result = relayConfigSchema.safeParse(input)
  if (!result.success) {
    const problems = result.error.issues.flatMap(describeIssue)
    const seen = new Set(problems.map(p => p.path))
    throw new ConfigError([...problems, ...rawPolicyProblems(input).filter(p => !seen.has(p.path))], source)
  }
  const parsed = result.data
  const problems: ConfigProblem[] = []
  const meshSecret = secretOf(parsed.meshSecret, parsed.meshSecretFile, 'meshSecret', 'meshSecretFile', MIN_SECRET_BYTES, problems)
  const jwtSecret = secretOf(parsed.auth.jwtSecret, parsed.auth.jwtSecretFile, 'auth.jwtSecret', 'auth.jwtSecretFile', 32, problems)
  const config: RelayConfig = {
    ...parsed,
    ...(meshSecret === undefined ? {} : { meshSecret }),
    auth: { ...parsed.auth, ...(jwtSecret === undefined ? {} : { jwtSecret }) },
    limits: {
      ...parsed.limits,
      maxMessageBytes: parsed.limits.maxMessageBytes ?? parsed.limits.maxDocumentBytes + FRAMING_BYTES,
    },
  }
  if (config.peers.length > 0 && config.meshSecret === undefined) {
    problems.push({ path: 'meshSecret', message: 'peers are configured but no meshSecret: set the same secret on every relay of the mesh' })
  }
  config.peers.forEach((peer, i) => {
    if (peer.region === config.region) problems.push({ path: `peers.${i}.region`, message: `"${peer.region}" is this relay's own region` })
    if (config.peers.findIndex(p => p.region === peer.region) !== i) problems.push({ path: `peers.${i}.region`, message: `"${peer.region}" is listed twice` })
  })
  if (config.auth.jwtSecret !== undefined && config.auth.jwksFile !== undefined) {
    problems.push({ path: 'auth', message: 'give either jwtSecret (HS256) or jwksFile (public keys), not both' })
  }
  problems.push(...policyProblems(config.namespaces, [config.region, ...config.peers.map(p => p.region)]))
  if (config.store === 'postgres' && config.storage.postgres.url === undefined) {
    problems.push({ path: 'storage.postgres.url', message: 'store is postgres but no database is named: set GEORELAY_POSTGRES_URL (or --postgres-url, or storage.postgres.url)' })
  }
  problems.push(...nodeProblems(config))
  if (config.replication.linkTimeoutMs <= config.replication.heartbeatMs) {
    problems.push({ path: 'replication.linkTimeoutMs', message: 'must be longer than replication.heartbeatMs, or healthy links would time out' })
  }
  if (problems.length > 0) throw new ConfigError(problems, source)
  return config
}

/**
 * Several nodes of a region need both the shared store and Redis. Redis without Postgres has
 * no shared log to hint about; a node named as one of several on Postgres without Redis would
 * never hear of its siblings' writes. (One relay on Postgres alone is fine: it names no node.)
 */
const nodeProblems = (config: RelayConfig): ConfigProblem[] => {
  const problems: ConfigProblem[] = []
  if (config.redis.url !== undefined && config.store !== 'postgres') {
    problems.push({ path: 'redis.url', message: `Redis carries hints between nodes that share a Postgres store, and store is ${config.store}: set store postgres with storage.postgres.url (--store postgres --postgres-url URL), or drop redis.url` })
  }
  if (config.redis.url !== undefined && config.peers.length > 0 && config.namespaces.some(n => n.mode === 'active-passive')) {
    problems.push({ path: 'namespaces', message: 'active-passive namespaces are not supported yet in a region of several nodes with peers (each node would judge the writer region from its own links): run such a region as one relay, or make these namespaces active-active' })
  }
  if (config.node !== undefined && config.store === 'postgres' && config.redis.url === undefined) {
    problems.push({ path: 'redis.url', message: `node "${config.node}" is one of several nodes of region ${config.region}, and they need Redis for hints: set GEORELAY_REDIS_URL (or --redis-url, or redis.url); a single relay on Postgres names no node` })
  }
  return problems
}

export const readConfigFile = (file: string): unknown => {
  let text: string
  try {
    text = fs.readFileSync(file, 'utf8')
  } catch (err) {
    throw new ConfigError([{ path: '', message: `cannot read ${file}: ${(err as Error).message}` }], file)
  }
  try {
    return JSON.parse(text)
  } catch (err) {
    throw new ConfigError([{ path: '', message: `${file} is not valid JSON: ${(err as Error).message}` }], file)
  }
}

/** Flags and environment variables share these names (flag `--mesh-secret`, env `GEORELAY_MESH_SECRET`). */
export interface ConfigOverrides {
  region?: string
  host?: string
  port?: string
  data?: string
  store?: string
  'public-url'?: string
  'mesh-secret'?: string
  anonymous?: string
  synchronous?: string
  'mesh-secret-file'?: string
  /** Environment only (GEORELAY_JWT_SECRET): a flag would show it in ps. */
  'jwt-secret'?: string
  'jwt-secret-file'?: string
  'postgres-url'?: string
  node?: string
  'redis-url'?: string
  /** A flag (true) or GEORELAY_REDIS_CLUSTER (true/false, 1/0). */
  'redis-cluster'?: string | boolean
  peer?: string[]
}

const asPort = (text: string): number | string => /^\d+$/.test(text) ? Number(text) : text

/** `REGION=URL[,URL...]`: a peer region and the addresses of its nodes. */
const parsePeer = (text: string): { region: string, url: string, urls?: string[] } => {
  const at = text.indexOf('=')
  if (at <= 0) throw new ConfigError([{ path: 'peers', message: `"${text}" is not REGION=URL[,URL...], like us-east=ws://127.0.0.1:4002` }], 'flags')
  const [url = '', ...more] = text.slice(at + 1).split(',').map(s => s.trim()).filter(Boolean)
  return { region: text.slice(0, at), url, ...(more.length === 0 ? {} : { urls: more }) }
}

/**
 * GEORELAY_PEERS is comma-separated, and so are a peer's node URLs: an item that starts with
 * `REGION=` begins a peer, any other item is one more URL of the peer before it.
 */
const splitPeers = (text: string): string[] => {
  const peers: string[] = []
  for (const item of text.split(',').map(s => s.trim()).filter(Boolean)) {
    if (/^[^=/:]+=/.test(item) || peers.length === 0) peers.push(item)
    else peers[peers.length - 1] += `,${item}`
  }
  return peers
}

/** Applies overrides (flags or env) on top of a file's configuration object. */
export const applyOverrides = (base: Record<string, unknown>, o: ConfigOverrides): Record<string, unknown> => {
  const out: Record<string, unknown> = { ...base }
  const listen = { ...(typeof base.listen === 'object' && base.listen !== null ? base.listen as Record<string, unknown> : {}) }
  if (o.region !== undefined) out.region = o.region
  if (o.host !== undefined) listen.host = o.host
  if (o.port !== undefined) listen.port = asPort(o.port)
  if (o.host !== undefined || o.port !== undefined) out.listen = listen
  if (o.data !== undefined) out.dataDir = o.data
  if (o.store !== undefined) out.store = o.store
  if (o['public-url'] !== undefined) out.publicUrl = o['public-url']
  if (o['mesh-secret'] !== undefined) out.meshSecret = o['mesh-secret']
  if (o['mesh-secret-file'] !== undefined) out.meshSecretFile = o['mesh-secret-file']
  const storage = { ...(typeof base.storage === 'object' && base.storage !== null ? base.storage as Record<string, unknown> : {}) }
  if (o.synchronous !== undefined) out.storage = Object.assign(storage, { synchronous: o.synchronous })
  if (o['postgres-url'] !== undefined) {
    const postgres = typeof storage.postgres === 'object' && storage.postgres !== null ? storage.postgres as Record<string, unknown> : {}
    out.storage = Object.assign(storage, { postgres: { ...postgres, url: o['postgres-url'] } })
  }
  if (o.node !== undefined) out.node = o.node
  if (o['redis-url'] !== undefined) {
    out.redis = { ...(typeof base.redis === 'object' && base.redis !== null ? base.redis as Record<string, unknown> : {}), url: o['redis-url'] }
  }
  const cluster = o['redis-cluster']
  if (cluster !== undefined) {
    const redis = out.redis ?? base.redis
    // Anything but true/false, 1/0 goes through as it is, for the schema to refuse by name.
    const value = cluster === true || cluster === 'true' || cluster === '1' ? true : cluster === false || cluster === 'false' || cluster === '0' ? false : cluster
    out.redis = { ...(typeof redis === 'object' && redis !== null ? redis as Record<string, unknown> : {}), cluster: value }
  }
  const auth = (): Record<string, unknown> => ({ ...(typeof out.auth === 'object' && out.auth !== null ? out.auth as Record<string, unknown> : {}) })
  if (o.anonymous !== undefined) out.auth = { ...auth(), anonymous: o.anonymous }
  if (o['jwt-secret'] !== undefined) out.auth = { ...auth(), jwtSecret: o['jwt-secret'] }
  if (o['jwt-secret-file'] !== undefined) out.auth = { ...auth(), jwtSecretFile: o['jwt-secret-file'] }
  if (o.peer !== undefined && o.peer.length > 0) out.peers = o.peer.map(parsePeer)
  return out
}

export const overridesFromEnv = (env: NodeJS.ProcessEnv): ConfigOverrides => {
  const o: ConfigOverrides = {}
  const take = (key: keyof Omit<ConfigOverrides, 'peer'>, name: string): void => {
    const value = env[name]
    if (value !== undefined && value !== '') o[key] = value
  }
  take('region', 'GEORELAY_REGION')
  take('host', 'GEORELAY_HOST')
  take('port', 'GEORELAY_PORT')
  take('data', 'GEORELAY_DATA')
  take('store', 'GEORELAY_STORE')
  take('public-url', 'GEORELAY_PUBLIC_URL')
  take('mesh-secret', 'GEORELAY_MESH_SECRET')
  take('mesh-secret-file', 'GEORELAY_MESH_SECRET_FILE')
  take('jwt-secret', 'GEORELAY_JWT_SECRET')
  take('jwt-secret-file', 'GEORELAY_JWT_SECRET_FILE')
  take('anonymous', 'GEORELAY_ANONYMOUS')
  take('synchronous', 'GEORELAY_SYNCHRONOUS')
  take('postgres-url', 'GEORELAY_POSTGRES_URL')
  take('node', 'GEORELAY_NODE')
  take('redis-url', 'GEORELAY_REDIS_URL')
  take('redis-cluster', 'GEORELAY_REDIS_CLUSTER')
  if (env.GEORELAY_PEERS) o.peer = splitPeers(env.GEORELAY_PEERS)
  return o
}

/** File, then environment, then flags: the whole configuration, checked. */
export const loadRelayConfig = (
  { file, flags, env }: { file?: string, flags: ConfigOverrides, env: NodeJS.ProcessEnv },
): RelayConfig => {
  const configFile = file ?? env.GEORELAY_CONFIG
  const base = configFile === undefined ? {} : readConfigFile(configFile)
  if (typeof base !== 'object' || base === null || Array.isArray(base)) {
    throw new ConfigError([{ path: '', message: 'the configuration must be a JSON object' }], configFile ?? 'configuration')
  }
  const merged = applyOverrides(applyOverrides(base as Record<string, unknown>, overridesFromEnv(env)), flags)
  const source = [configFile, 'environment', 'flags'].filter(Boolean).join(' + ')
  return parseRelayConfig(merged, source)
}

/** Where the store lives when the configuration does not say. */
export const dataDirOf = (config: RelayConfig, cwd = process.cwd()): string =>
  path.resolve(cwd, config.dataDir ?? path.join('data', config.region))
