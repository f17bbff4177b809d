/**
 * `georelay status`: the rows and the table from views of /v1/regions, the probe's answers for
 * relays that do not answer as they should, then the real command against three real relay
 * processes meshed together, before and after one of them stops.
 */
import { afterAll, afterEach, beforeAll, describe, expect, it } from '@jest/globals'
import { spawn } from 'node:child_process'
import http from 'node:http'
import type { AddressInfo } from 'node:net'
import { GEORELAY_BIN, TestCluster, every, nextEvent, waitUntil } from '@georelay/testkit'
import {
  type Probe, type RegionsView, type StatusReport, type StatusRow, httpOrigin, probeRelay, renderStatusTable,
  statusReport,
} from '../src/cli/status.js'

const ADMIN_TOKEN = 'status-test-admin-token-of-32-bytes-at-least'

/** How a test sees one peer of a relay; what it leaves out is a healthy link. */
interface PeerSketch {
  state?: string
  inbound?: boolean
  lagMs?: number
  pendingUpdates?: number
  agreement?: string
  error?: string
}

/** A full view of region `self` (what /v1/regions shows with the admin token). */
const fullView = (
  self: string,
  peers: Record<string, PeerSketch>,
  extra: Partial<RegionsView['regions'][number]> = {},
): RegionsView => ({
  region: self,
  publicUrl: `ws://${self}.example:4001`,
  regions: [
    { name: self, url: `ws://${self}.example:4001`, self: true, state: 'up', ...extra },
    ...Object.entries(peers).map(([name, p]) => ({
      name,
      url: `ws://${name}.example:4001`,
      self: false,
      state: (p.state ?? 'up') === 'up' || (p.inbound ?? true) ? 'up' : 'down',
      ...(p.error === undefined ? {} : { error: p.error }),
      ...(p.agreement === 'mismatch' ? { policy: 'mismatch' } : {}),
    })),
  ],
  peers: Object.entries(peers).map(([name, p]) => ({
    region: name,
    state: p.state ?? 'up',
    inbound: p.inbound ?? true,
    lagMs: p.lagMs ?? 0,
    pendingUpdates: p.pendingUpdates ?? 0,
    policy: { agreement: p.agreement ?? 'match' },
    ...(p.error === undefined ? {} : { error: p.error }),
  })),
})

/** The same without what only operators see. */
const discoveryOf = ({ region, publicUrl, regions }: RegionsView): RegionsView => ({ region, publicUrl, regions })

describe('the status rows and table', () => {
  it('gives one row per relay and peer with link, lag, pending and policy from the full view', () => {
    const report = statusReport([
      { url: 'ws://a.example:4001', view: fullView('a', { b: { lagMs: 12.4, pendingUpdates: 3 } }) },
      { url: 'ws://b.example:4001', view: fullView('b', { a: {} }) },
    ])
    const expected: StatusReport = {
      healthy: true,
      partial: false,
      rows: [
        { region: 'a', url: 'ws://a.example:4001', nodes: [], peer: 'b', link: 'up', lagMs: 12.4, pending: 3, policy: 'match', error: null },
        { region: 'b', url: 'ws://b.example:4001', nodes: [], peer: 'a', link: 'up', lagMs: 0, pending: 0, policy: 'match', error: null },
      ],
    }
    expect(report).toEqual(expected)
  })

  it('is unhealthy for a link down, a relay that did not answer, or rules that differ', () => {
    const down = statusReport([{ url: 'ws://a.example:4001', view: fullView('a', { b: { state: 'connecting', inbound: false, error: 'unreachable' } }) }])
    expect(down.healthy).toBe(false)
    expect(down.rows[0]).toMatchObject({ peer: 'b', link: 'connecting', error: 'unreachable' })

    const mismatch = statusReport([{ url: 'ws://a.example:4001', view: fullView('a', { b: { agreement: 'mismatch' } }) }])
    expect(mismatch.healthy).toBe(false)
    expect(mismatch.rows[0]).toMatchObject({ link: 'up', policy: 'mismatch' })

    const unanswered = statusReport([
      { url: 'ws://a.example:4001', view: fullView('a', { b: { state: 'down', inbound: false, error: 'unreachable' } }) },
      { url: 'http://b.example:4001/', error: 'unreachable: connection refused (is the relay running on that port?)' },
    ])
    expect(unanswered.healthy).toBe(false)
    // The relay that did not answer is named by what the others call the region at its address.
    const named: StatusRow = {
      region: 'b', url: 'http://b.example:4001/', nodes: [], peer: null, link: null, lagMs: null, pending: null, policy: null,
      error: 'unreachable: connection refused (is the relay running on that port?)',
    }
    expect(unanswered.rows[1]).toEqual(named)
    expect(statusReport([{ url: 'ws://z.example:1', error: 'unreachable: x' }]).rows[0]?.region).toBe('?')
  })

  it('shows only what the discovery view has: state, error kind, a policy mismatch', () => {
    const report = statusReport([{
      url: 'ws://a.example:4001',
      view: discoveryOf(fullView('a', { b: { lagMs: 50 }, c: { agreement: 'mismatch' }, d: { state: 'down', inbound: false, error: 'refused-secret' } })),
    }])
    expect(report.partial).toBe(true)
    expect(report.healthy).toBe(false)
    expect(report.rows.map(r => [r.peer, r.link, r.lagMs, r.pending, r.policy, r.error])).toEqual([
      ['b', 'up', null, null, null, null],
      ['c', 'up', null, null, 'mismatch', null],
      ['d', 'down', null, null, null, 'refused-secret'],
    ])
  })

  it('lists a region\'s nodes, marking the lease holder, and counts links another node holds as up', () => {
    const nodes = { nodes: [{ name: 'a-1', url: 'ws://a1.example:4001' }, { name: 'a-2', url: 'ws://a2.example:4001' }], meshNode: 'a-1' }
    const report = statusReport([{ url: 'ws://a2.example:4001', view: fullView('a', { b: { state: 'down', inbound: false, error: 'other-node' } }, nodes) }])
    expect(report.rows[0]).toMatchObject({ nodes: ['a-1*', 'a-2'], link: 'via a-1' })
    expect(report.healthy).toBe(true)
  })

  it('gives a relay without peers one row of its own', () => {
    const report = statusReport([{ url: 'ws://solo.example:4001', view: fullView('solo', {}) }])
    expect(report).toMatchObject({ healthy: true, rows: [{ region: 'solo', peer: null, link: null }] })
  })

  it('renders a padded plain-text table, numbers to the right, dashes for what is not known', () => {
    const table = renderStatusTable([
      { region: 'eu-west', url: 'ws://127.0.0.1:4001', nodes: ['eu-1*', 'eu-2'], peer: 'us-east', link: 'up', lagMs: 12.6, pending: 0, policy: 'match', error: null },
      { region: 'eu-west', url: 'ws://127.0.0.1:4001', nodes: ['eu-1*', 'eu-2'], peer: 'ap-south', link: 'down', lagMs: 1830, pending: 412, policy: 'match', error: 'timeout' },
      { region: 'us-east', url: 'ws://127.0.0.1:4002', nodes: [], peer: null, link: null, lagMs: null, pending: null, policy: null, error: 'unreachable: connection refused' },
    ])
    expect(table).toBe([
      'REGION   URL                  NODES       PEER      LINK  LAG MS  PENDING  POLICY  ERROR',
      'eu-west  ws://127.0.0.1:4001  eu-1*,eu-2  us-east   up        13        0  match   -',
      'eu-west  ws://127.0.0.1:4001  eu-1*,eu-2  ap-south  down    1830      412  match   timeout',
      'us-east  ws://127.0.0.1:4002  -           -         -          -        -  -       unreachable: connection refused',
      '',
    ].join('\n'))
  })

  it('takes ws://, wss://, http:// and https:// URLs of a relay, and nothing else', () => {
    expect(httpOrigin('ws://127.0.0.1:4001')).toBe('http://127.0.0.1:4001')
    expect(httpOrigin('wss://eu.example.com/some/path')).toBe('https://eu.example.com')
    expect(httpOrigin('http://[::1]:4001/')).toBe('http://[::1]:4001')
    expect(httpOrigin('https://eu.example.com')).toBe('https://eu.example.com')
    expect(httpOrigin('127.0.0.1:4001')).toBeNull()
    expect(httpOrigin('ftp://eu.example.com')).toBeNull()
  })
})

describe('probing a relay', () => {
  const servers: http.Server[] = []
  afterEach(async () => {
    for (const server of servers.splice(0)) {
      server.closeAllConnections()
      await new Promise(resolve => server.close(resolve))
    }
  })
  const serve = async (handler: http.RequestListener): Promise<string> => {
    const server = http.createServer(handler)
    servers.push(server)
    server.listen(0, '127.0.0.1')
    await nextEvent(server, 'listening', { what: 'a test server to listen' })
    return `http://127.0.0.1:${(server.address() as AddressInfo).port}`
  }
  const errorOf = (probe: Probe): string => 'error' in probe ? probe.error : 'answered'

  it('says a closed port refused the connection', async () => {
    const url = await serve(() => {})
    await new Promise(resolve => (servers.pop() as http.Server).close(resolve))
    expect(errorOf(await probeRelay(url))).toBe('unreachable: connection refused (is the relay running on that port?)')
  })

  it('says a relay that does not answer in time did not', async () => {
    const url = await serve(() => {}) // takes the request, never answers
    expect(errorOf(await probeRelay(url, { timeoutMs: 200 }))).toBe('unreachable: no answer within 200 ms')
  })

  it('says how to get a view from a relay with http.regions "off", and sends the token it is given', async () => {
    const seen: (string | undefined)[] = []
    const url = await serve((req, res) => {
      seen.push(req.headers.authorization)
      res.writeHead(404, { 'content-type': 'application/json' }).end('{"error":"off"}')
    })
    expect(errorOf(await probeRelay(url, { token: 't0ken' }))).toMatch(/http\.regions is "off"\): give --token with its http\.adminToken/)
    expect(seen).toEqual(['Bearer t0ken'])
  })

  it('says when what answers is not a georelay relay', async () => {
    const html = await serve((_req, res) => { res.writeHead(200).end('<html></html>') })
    expect(errorOf(await probeRelay(html))).toMatch(/did not answer JSON: is this a georelay relay\?/)
    const other = await serve((_req, res) => { res.writeHead(200).end('{"status":"ok"}') })
    expect(errorOf(await probeRelay(other))).toMatch(/is not a georelay region list/)
  })
})

/** The environment without GEORELAY_* variables, so a developer's shell cannot change a test. */
const cleanEnv = (extra: NodeJS.ProcessEnv = {}): NodeJS.ProcessEnv => ({
  ...Object.fromEntries(Object.entries(process.env).filter(([key]) => !key.startsWith('GEORELAY_'))),
  ...extra,
})

interface CliResult { code: number | null, stdout: string, stderr: string }

/** Runs the real `georelay` launcher to its end; 'close' also means stdout and stderr are complete. */
const runCli = async (args: string[], env?: NodeJS.ProcessEnv): Promise<CliResult> => {
  const child = spawn(process.execPath, [GEORELAY_BIN, ...args], { env: cleanEnv(env), stdio: ['ignore', 'pipe', 'pipe'] })
  let stdout = ''
  let stderr = ''
  child.stdout.setEncoding('utf8').on('data', (chunk: string) => { stdout += chunk })
  child.stderr.setEncoding('utf8').on('data', (chunk: string) => { stderr += chunk })
  try {
    const [code] = await nextEvent<[number | null]>(child, 'close', { what: `georelay ${args.join(' ')} to exit`, timeoutMs: 15_000 })
    return { code, stdout, stderr }
  } finally {
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL')
  }
}

describe('georelay status against a running mesh', () => {
  const regions = ['a', 'b', 'c']
  let cluster: TestCluster
  beforeAll(async () => {
    // Strangers get the discovery view; the token the operators' one.
    cluster = await TestCluster.start({ regions, mode: 'process', config: { http: { regions: 'discovery', adminToken: ADMIN_TOKEN } } })
  }, 30_000)
  afterAll(async () => { await cluster?.close() })

  const urls = (): string[] => regions.map(region => cluster.url(region))
  const urlFlags = (): string[] => urls().flatMap(url => ['--url', url])
  type StatusResult = CliResult & { report: StatusReport | null }
  const status = async (args: string[], env?: NodeJS.ProcessEnv): Promise<StatusResult> => {
    const result = await runCli(['status', ...urlFlags(), ...args], env)
    return { ...result, report: args.includes('--json') ? JSON.parse(result.stdout) as StatusReport : null }
  }

  it('exits 2 for a bad command line, saying what is wrong', async () => {
    const none = await runCli(['status'])
    expect(none.code).toBe(2)
    expect(none.stderr).toMatch(/needs at least one --url URL/)
    const bad = await runCli(['status', '--url', '127.0.0.1:4001'])
    expect(bad.code).toBe(2)
    expect(bad.stderr).toMatch(/--url "127\.0\.0\.1:4001" is not a ws:\/\/, wss:\/\/, http:\/\/ or https:\/\/ URL/)
    const flag = await runCli(['status', '--url', 'ws://127.0.0.1:1', '--tokn', 'x'])
    expect(flag.code).toBe(2)
    expect(flag.stderr).toMatch(/--tokn/)
  })

  it('shows every link up with its lag, pending entries and agreeing rules, and exits 0', async () => {
    // Links come up within a heartbeat or two of the starts.
    await waitUntil([every(100)], async () => (await status(['--json', '--token', ADMIN_TOKEN])).code === 0, { what: 'every link of the mesh to be up', timeoutMs: 15_000 })

    const json = await status(['--json', '--token', ADMIN_TOKEN])
    expect(json.code).toBe(0)
    expect(json.report?.healthy).toBe(true)
    expect(json.report?.partial).toBe(false)
    expect(json.report?.rows.map(r => [r.region, r.peer])).toEqual([['a', 'b'], ['a', 'c'], ['b', 'a'], ['b', 'c'], ['c', 'a'], ['c', 'b']])
    for (const row of json.report?.rows ?? []) {
      expect(row).toMatchObject({ url: cluster.url(row.region), nodes: [], link: 'up', policy: 'match', error: null })
      expect(typeof row.lagMs).toBe('number')
      expect(typeof row.pending).toBe('number')
    }

    // The table, with the token from the environment.
    const table = await status([], { GEORELAY_ADMIN_TOKEN: ADMIN_TOKEN })
    expect(table.code).toBe(0)
    expect(table.stderr).toBe('')
    const [header, ...lines] = table.stdout.trimEnd().split('\n')
    expect(header?.split(/\s{2,}/)).toEqual(['REGION', 'URL', 'NODES', 'PEER', 'LINK', 'LAG MS', 'PENDING', 'POLICY', 'ERROR'])
    expect(lines).toHaveLength(6)
    for (const line of lines) {
      const [region, url, nodes, peer, link, lag, pending, policy, error] = line.split(/\s+/)
      expect([url, nodes, link, policy, error]).toEqual([cluster.url(region as string), '-', 'up', 'match', '-'])
      expect(regions.filter(r => r !== region)).toContain(peer)
      expect(lag).toMatch(/^\d+$/)
      expect(pending).toMatch(/^\d+$/)
    }

    // Without the token: the discovery view, which has no lag; the table says how to get it.
    const stranger = await status([])
    expect(stranger.code).toBe(0)
    expect(stranger.stdout).toMatch(/^a\s+\S+\s+-\s+b\s+up\s+-\s+-\s+-\s+-$/m)
    expect(stranger.stdout).toMatch(/lag and pending need the operators' view: give --token/)
  })

  it('shows a stopped relay unreachable and its peers\' links to it down, and exits 1', async () => {
    await cluster.stopRegion('c')
    // a and b notice within their link timeout (TEST_REPLICATION: 1 s).
    await waitUntil([every(100)], async () => {
      const { report } = await status(['--json', '--token', ADMIN_TOKEN])
      return report?.rows.filter(r => r.peer === 'c').every(r => r.link !== 'up') ?? false
    }, { what: 'a and b to see their links to c down', timeoutMs: 15_000 })

    const json = await status(['--json', '--token', ADMIN_TOKEN])
    expect(json.code).toBe(1)
    expect(json.report?.healthy).toBe(false)
    const rows = json.report?.rows ?? []
    expect(rows.map(r => [r.region, r.peer])).toEqual([['a', 'b'], ['a', 'c'], ['b', 'a'], ['b', 'c'], ['c', null]])
    expect(rows.filter(r => r.peer === 'c').map(r => r.link)).not.toContain('up')
    expect(rows.filter(r => r.region !== 'c' && r.peer !== 'c').map(r => r.link)).toEqual(['up', 'up'])
    // c's own row: named by what a and b call the region at that address.
    expect(rows[4]).toMatchObject({ region: 'c', url: cluster.url('c'), link: null, error: 'unreachable: connection refused (is the relay running on that port?)' })

    const table = await status(['--token', ADMIN_TOKEN])
    expect(table.code).toBe(1)
    expect(table.stdout).toMatch(new RegExp(`^c\\s+${cluster.url('c')}\\s+-\\s+-\\s+-\\s+-\\s+-\\s+-\\s+unreachable: connection refused`, 'm'))
    expect(table.stdout).toMatch(/^a\s+\S+\s+-\s+c\s+(down|connecting)\s/m)
  })
})
