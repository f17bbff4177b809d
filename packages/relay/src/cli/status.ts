/**
 * `georelay status --url URL…`: the mesh as the relays themselves see it. Each URL's
 * `/v1/regions` is read (with the admin token when given, for the operators' view: lag,
 * pending entries, policy agreement), and every relay's link to every peer becomes one row of a
 * table. A relay that does not answer is a row saying why. Exit code 0 when every relay answered
 * and every link is up with agreeing rules, 1 otherwise, 2 for a bad command line.
 */
import http from 'node:http'
import https from 'node:https'
import { parseCommand } from './command-line.js'
import { z } from 'zod'

/** How long one relay may take to answer before its row says it did not. */
const DEFAULT_TIMEOUT_MS = 3000

/** The part of `/v1/regions` this command reads; anything else in it is ignored. */
const regionsSchema = z.object({
  region: z.string(),
  publicUrl: z.string(),
  regions: z.array(z.object({
    name: z.string(),
    url: z.string(),
    self: z.boolean(),
    state: z.string(),
    error: z.string().optional(),
    policy: z.string().optional(),
    nodes: z.array(z.object({ name: z.string(), url: z.string() })).optional(),
    meshNode: z.string().optional(),
  })),
  /** Only in the full view (`http.regions: "full"`, or the admin token). */
  peers: z.array(z.object({
    region: z.string(),
    state: z.string(),
    inbound: z.boolean(),
    lagMs: z.number(),
    pendingUpdates: z.number(),
    policy: z.object({ agreement: z.string() }),
    error: z.string().optional(),
  })).optional(),
})

export type RegionsView = z.infer<typeof regionsSchema>

/** What one URL gave: the relay's view of the mesh, or why there is none. */
export type Probe =
  | { url: string, view: RegionsView }
  | { url: string, error: string }

/** One relay's link to one peer (or the relay alone, when it answered nothing). */
export interface StatusRow {
  /** The relay's region; for a relay that did not answer, what the others call it, else "?". */
  region: string
  /** The URL asked. */
  url: string
  /** The region's live nodes (`*` marks the one holding the mesh lease); empty for a single relay. */
  nodes: string[]
  /** The peer region of this link; null on the row of a relay without peers or that did not answer. */
  peer: string | null
  /** `up`, `down`, `connecting`, or `via NODE` (another node of the region holds the link). */
  link: string | null
  /** Replication lag to the peer, and this region's entries it still lacks: full view only. */
  lagMs: number | null
  pending: number | null
  /** `match` or `mismatch` (or `unknown` before the peer's rules arrived); the discovery view only shows `mismatch`. */
  policy: string | null
  /** Why the link is down (its kind), or why the relay did not answer. */
  error: string | null
}

export interface StatusReport {
  /** Every relay answered, every link is up, every peer's rules agree. */
  healthy: boolean
  /** Whether any relay answered with the discovery view only (no lag, no pending counts). */
  partial: boolean
  rows: StatusRow[]
}

/** `ws://`, `wss://`, `http://` or `https://` URL of a relay, as its HTTP origin; null when it is none. */
export const httpOrigin = (text: string): string | null => {
  let url: URL
  try {
    url = new URL(text)
  } catch {
    return null
  }
  const scheme = { 'ws:': 'http:', 'wss:': 'https:', 'http:': 'http:', 'https:': 'https:' }[url.protocol]
  if (scheme === undefined || url.host === '') return null
  return `${scheme}//${url.host}`
}

/** A link another node of the region holds counts as up: this node is not the one that dials. */
const linkOf = (view: RegionsView, peer: RegionsView['regions'][number]): string => {
  if (peer.state === 'up') return 'up'
  if (peer.error === 'other-node') return `via ${view.regions.find(r => r.self)?.meshNode ?? 'another node'}`
  const full = view.peers?.find(p => p.region === peer.name)
  return full?.state === 'connecting' ? 'connecting' : 'down'
}

const rowsOfView = (url: string, view: RegionsView): StatusRow[] => {
  const self = view.regions.find(r => r.self)
  const nodes = (self?.nodes ?? []).map(n => n.name === self?.meshNode ? `${n.name}*` : n.name)
  const peers = view.regions.filter(r => !r.self)
  const alone: StatusRow = {
    region: view.region, url, nodes, peer: null, link: null, lagMs: null, pending: null, policy: null, error: null,
  }
  if (peers.length === 0) return [alone]
  return peers.map(peer => {
    const full = view.peers?.find(p => p.region === peer.name)
    return {
      ...alone,
      peer: peer.name,
      link: linkOf(view, peer),
      lagMs: full?.lagMs ?? null,
      pending: full?.pendingUpdates ?? null,
      policy: full?.policy.agreement ?? (peer.policy === 'mismatch' ? 'mismatch' : null),
      error: peer.state === 'up' ? null : peer.error ?? full?.error ?? null,
    }
  })
}

/** The name another relay gives the region at `url`, for the row of a relay that did not answer. */
const regionAt = (url: string, probes: readonly Probe[]): string => {
  const origin = httpOrigin(url)
  for (const probe of probes) {
    if (!('view' in probe)) continue
    const at = (u: string): boolean => httpOrigin(u) === origin
    const named = probe.view.regions.find(r => at(r.url) || (r.nodes?.some(n => at(n.url)) ?? false))
    if (named !== undefined) return named.name
  }
  return '?'
}

/** The rows of every probe, in the order the URLs were given, and whether all is well. */
export const statusReport = (probes: readonly Probe[]): StatusReport => {
  const unanswered = (url: string, error: string): StatusRow => ({
    region: regionAt(url, probes), url, nodes: [], peer: null, link: null, lagMs: null, pending: null, policy: null,
    error,
  })
  const rows = probes.flatMap(p => 'view' in p ? rowsOfView(p.url, p.view) : [unanswered(p.url, p.error)])
  const linkUp = (r: StatusRow): boolean => r.link === 'up' || (r.link?.startsWith('via ') ?? false)
  const healthy = probes.every(p => 'view' in p) && rows.every(r => r.peer === null || (linkUp(r) && r.policy !== 'mismatch'))
  const partial = probes.some(p => 'view' in p && p.view.peers === undefined)
  return { healthy, partial, rows }
}

const COLUMNS: { title: string, cell: (row: StatusRow) => string, right?: boolean }[] = [
  { title: 'REGION', cell: r => r.region },
  { title: 'URL', cell: r => r.url },
  { title: 'NODES', cell: r => r.nodes.join(',') || '-' },
  { title: 'PEER', cell: r => r.peer ?? '-' },
  { title: 'LINK', cell: r => r.link ?? '-' },
  { title: 'LAG MS', cell: r => r.lagMs === null ? '-' : String(Math.round(r.lagMs)), right: true },
  { title: 'PENDING', cell: r => r.pending === null ? '-' : String(r.pending), right: true },
  { title: 'POLICY', cell: r => r.policy ?? '-' },
  { title: 'ERROR', cell: r => r.error ?? '-' },
]

/** The rows as a plain-text table, columns padded with spaces, one line per row. */
export const renderStatusTable = (rows: readonly StatusRow[]): string => {
  const cells = [COLUMNS.map(c => c.title), ...rows.map(row => COLUMNS.map(c => c.cell(row)))]
  const widths = COLUMNS.map((_, i) => Math.max(...cells.map(line => (line[i] as string).length)))
  return cells.map(line => line
    .map((text, i) => {
      const width = widths[i] as number
      return COLUMNS[i]?.right === true ? text.padStart(width) : text.padEnd(width)
    })
    .join('  ')
    .trimEnd()).join('\n') + '\n'
}

/** Why a request failed, in words an operator acts on. */
const describeFailure = (err: Error & { code?: string }, timeoutMs: number): string => {
  if (err.code === 'ECONNREFUSED') return 'unreachable: connection refused (is the relay running on that port?)'
  if (err.code === 'ENOTFOUND' || err.code === 'EAI_AGAIN') return `unreachable: the host name does not resolve (${err.code})`
  if (err.code === 'ETIMEDOUT' || err.code === 'GEORELAY_TIMEOUT') return `unreachable: no answer within ${timeoutMs} ms`
  if (err.code === 'EHOSTUNREACH' || err.code === 'ENETUNREACH') return `unreachable: no route to the host (${err.code})`
  return `unreachable: ${err.message}`
}

/** GET `/v1/regions` of one relay, on a connection of its own that is closed after. */
export const probeRelay = (
  url: string,
  { token, timeoutMs = DEFAULT_TIMEOUT_MS }: { token?: string, timeoutMs?: number } = {},
): Promise<Probe> =>
  new Promise(resolve => {
    const origin = httpOrigin(url)
    if (origin === null) return resolve({ url, error: 'not a ws://, wss://, http:// or https:// URL' })
    const target = new URL('/v1/regions', origin)
    const client = target.protocol === 'https:' ? https : http
    let settled = false
    const done = (probe: Probe): void => {
      if (settled) return
      settled = true
      clearTimeout(timer)
      resolve(probe)
    }
    const req = client.get(target, {
      agent: false,
      headers: { accept: 'application/json', ...(token === undefined ? {} : { authorization: `Bearer ${token}` }) },
    }, res => {
      let body = ''
      res.setEncoding('utf8')
      res.on('data', (chunk: string) => { body += chunk })
      res.on('error', err => done({ url, error: describeFailure(err, timeoutMs) }))
      res.on('end', () => {
        if (res.statusCode === 404) {
          return done({ url, error: 'it does not publish /v1/regions (http.regions is "off"): give --token with its http.adminToken' })
        }
        if (res.statusCode !== 200) return done({ url, error: `/v1/regions answered HTTP ${res.statusCode}` })
        let parsed: unknown
        try {
          parsed = JSON.parse(body)
        } catch {
          return done({ url, error: '/v1/regions did not answer JSON: is this a georelay relay?' })
        }
        const view = regionsSchema.safeParse(parsed)
        done(view.success ? { url, view: view.data } : { url, error: '/v1/regions is not a georelay region list: is this a georelay relay?' })
      })
    })
    // One deadline for connecting and answering alike.
    const timer = setTimeout(() => {
      req.destroy(Object.assign(new Error('timeout'), { code: 'GEORELAY_TIMEOUT' }))
    }, timeoutMs)
    req.on('error', (err: Error & { code?: string }) => done({ url, error: describeFailure(err, timeoutMs) }))
  })

export const STATUS_HELP = `georelay status — the mesh as its relays see it

Usage:
  georelay status --url URL [--url URL...] [--token TOKEN] [--json] [--timeout MS]

  Reads GET /v1/regions of each relay and prints one row per relay and peer:
  region, URL, nodes (* holds the mesh lease), link state, replication lag in
  ms and pending entries, whether the peer's namespace rules agree, and why a
  link or a relay is down. Lag and pending counts need the operators' view:
  http.regions "full" on the relay, or its http.adminToken given here.

  --url URL            a relay (ws://, wss://, http:// or https://); repeat per relay
  --token TOKEN        the relays' http.adminToken                GEORELAY_ADMIN_TOKEN
                       (prefer the environment variable: ps shows flags)
  --json               print {"healthy", "partial", "rows"} as JSON instead of a table
  --timeout MS         how long each relay may take to answer (default ${DEFAULT_TIMEOUT_MS})

Exit codes: 0 every relay answered and every link is up with agreeing rules,
1 a relay did not answer, a link is down or rules differ, 2 bad command line.
`

/** `georelay status`; `usage` reports a bad command line (exit 2). */
export const runStatus = async (args: string[], usage: (message: string) => number): Promise<number> => {
  const v = parseCommand(args, {
    url: { type: 'string', multiple: true },
    token: { type: 'string' },
    json: { type: 'boolean' },
    timeout: { type: 'string' },
    help: { type: 'boolean', short: 'h' },
  }, STATUS_HELP, usage)
  if (typeof v === 'number') return v
  const urls = v.url ?? []
  if (urls.length === 0) return usage('georelay status needs at least one --url URL of a relay, like --url ws://127.0.0.1:4001')
  const bad = urls.find(url => httpOrigin(url) === null)
  if (bad !== undefined) return usage(`--url "${bad}" is not a ws://, wss://, http:// or https:// URL`)
  const timeout = v.timeout ?? String(DEFAULT_TIMEOUT_MS)
  if (!/^\d+$/.test(timeout) || Number(timeout) < 1) return usage(`--timeout must be a number of milliseconds, not "${timeout}"`)
  // An empty variable counts as unset, as for every other GEORELAY_* variable.
  const token = v.token ?? (process.env.GEORELAY_ADMIN_TOKEN || undefined)
  const options = { ...(token === undefined ? {} : { token }), timeoutMs: Number(timeout) }
  const probes = await Promise.all(urls.map(url => probeRelay(url, options)))
  const report = statusReport(probes)
  if (v.json === true) {
    process.stdout.write(JSON.stringify(report, null, 2) + '\n')
  } else {
    process.stdout.write(renderStatusTable(report.rows))
    if (report.partial) process.stdout.write('lag and pending need the operators\' view: give --token with the relays\' http.adminToken\n')
  }
  return report.healthy ? 0 : 1
}
