import { afterEach, describe, expect, it } from '@jest/globals'
import { type ChildProcess, spawn } from 'node:child_process'
import type { WebsocketProvider } from 'y-websocket'
import pg from 'pg'
import * as clusterPackage from '@georelay/cluster'
import {
  GEORELAY_BIN, connectProvider, destroyProvider, nextEvent, startRedis, testPostgresUrl, waitForExactSet, waitForText,
  waitSynced,
} from '@georelay/testkit'
import type { ClusterPackage } from '../../relay/src/cli/cli.js'

/**
 * Node flags under which `import('@georelay/cluster')` fails as it does where the package is not
 * installed (a resolve hook), so that a run shows what needs the package and what does not.
 */
const HIDE_CLUSTER_HOOK = [
  'export async function resolve (specifier, context, next) {',
  '  if (specifier !== "@georelay/cluster") return next(specifier, context)',
  '  throw Object.assign(new Error("Cannot find package \'@georelay/cluster\' imported from " + context.parentURL), { code: "ERR_MODULE_NOT_FOUND" })',
  '}',
].join('\n')
const WITHOUT_CLUSTER = ['--import', `data:text/javascript,${encodeURIComponent(`import { register } from 'node:module'; register(${JSON.stringify(`data:text/javascript,${encodeURIComponent(HIDE_CLUSTER_HOOK)}`)})`)}`]

/** Runs `georelay ARGS` to its end; 'close' comes after stdio is drained, so the output is complete. */
const run = async (
  args: string[],
  nodeFlags: string[] = [],
): Promise<{ code: number | null, stdout: string, stderr: string }> => {
  const child = spawn(process.execPath, [...nodeFlags, GEORELAY_BIN, ...args], { stdio: ['ignore', 'pipe', 'pipe'] })
  let stdout = ''
  let stderr = ''
  child.stdout.setEncoding('utf8').on('data', (chunk: string) => { stdout += chunk })
  child.stderr.setEncoding('utf8').on('data', (chunk: string) => { stderr += chunk })
  const [code] = await nextEvent<[number | null]>(child, 'close', { what: `georelay ${args.join(' ')} to exit` })
  return { code, stdout, stderr }
}

interface Started { child: ChildProcess, urls: Map<string, string>, output: () => string }

/** Runs `georelay cluster` and resolves once it printed every region's URL. */
const startCluster = (args: string[]): Promise<Started> => new Promise((resolve, reject) => {
  const child = spawn(process.execPath, [GEORELAY_BIN, 'cluster', ...args], { stdio: ['ignore', 'pipe', 'pipe'] })
  let stdout = ''
  let stderr = ''
  child.stderr.setEncoding('utf8').on('data', (chunk: string) => { stderr += chunk })
  child.stdout.setEncoding('utf8').on('data', (chunk: string) => {
    stdout += chunk
    if (!stdout.includes('Stop with Ctrl-C.')) return
    const urls = new Map([...stdout.matchAll(/^ {2}([a-z0-9-]+)\s+(ws:\/\/\S+)$/gm)].map(m => [m[1] as string, m[2] as string]))
    resolve({ child, urls, output: () => stdout + stderr })
  })
  child.once('exit', code => reject(new Error(`georelay cluster exited (${code}) before printing its regions:\n${stdout}${stderr}`)))
})

/** SIGTERM, and the exit code once the cluster drained. */
const drain = async ({ child }: Started): Promise<number | null> => {
  const exited = nextEvent<[number | null]>(child, 'exit', { what: 'the cluster to drain and exit' })
  child.kill('SIGTERM')
  return (await exited)[0]
}

describe('georelay cluster', () => {
  let started: Started | null = null
  const providers: WebsocketProvider[] = []

  afterEach(async () => {
    for (const provider of providers.splice(0)) destroyProvider(provider)
    if (started !== null && started.child.exitCode === null) {
      started.child.kill('SIGKILL')
      await nextEvent(started.child, 'exit', { what: 'the cluster to exit' })
    }
    started = null
  })

  it('starts linked regions, prints their URLs and delays, and replicates between them', async () => {
    started = await startCluster(['--regions', 'us-east,eu-west,ap-south', '--base-port', '0', '--store', 'memory', '--latency', 'eu-west:us-east=20'])
    expect([...started.urls.keys()]).toEqual(['us-east', 'eu-west', 'ap-south'])
    expect(started.output()).toMatch(/us-east <-> eu-west\s+20 ms one way/)
    expect(started.output()).toMatch(/us-east <-> ap-south\s+95 ms one way/)
    const us = connectProvider(started.urls.get('us-east') as string, 'notes/1')
    const ap = connectProvider(started.urls.get('ap-south') as string, 'notes/1')
    providers.push(us, ap)
    await Promise.all([waitSynced(us), waitSynced(ap)])
    us.doc.getText('t').insert(0, 'from us-east')
    await waitForText(ap.doc, t => t === 'from us-east', 'ap-south to see the us-east edit')

    const regions = await (await fetch(`${(started.urls.get('eu-west') as string).replace('ws:', 'http:')}/v1/regions`)).json() as { peers: { region: string }[] }
    expect(regions.peers.map(p => p.region).sort()).toEqual(['ap-south', 'us-east'])
    expect(await drain(started)).toBe(0)
  })

  it('--store postgres keeps each region in a schema of its own in one database', async () => {
    const url = testPostgresUrl()
    const regions = ['cli-pg-a', 'cli-pg-b']
    const schemas = regions.map(clusterPackage.schemaOf)
    expect(schemas).toEqual(['georelay_cli_pg_a', 'georelay_cli_pg_b'])
    const admin = new pg.Client({ connectionString: url })
    await admin.connect()
    try {
      started = await startCluster(['--regions', regions.join(','), '--base-port', '0', '--store', 'postgres', '--postgres-url', url])
      expect(started.output()).toContain('(store: postgres, one schema per region)')
      const a = connectProvider(started.urls.get('cli-pg-a') as string, 'notes/pg')
      const b = connectProvider(started.urls.get('cli-pg-b') as string, 'notes/pg')
      providers.push(a, b)
      await Promise.all([waitSynced(a), waitSynced(b)])
      a.doc.getText('t').insert(0, 'in postgres')
      await waitForText(b.doc, t => t === 'in postgres', 'region b to see the edit')
      // Each region's own schema holds the document: the local write in a, the replicated one in b.
      const origins = await admin.query<{ schema: string, origin: string }>(
        `SELECT 'georelay_cli_pg_a' AS schema, origin FROM georelay_cli_pg_a.log WHERE doc = 'notes/pg'
         UNION ALL SELECT 'georelay_cli_pg_b', origin FROM georelay_cli_pg_b.log WHERE doc = 'notes/pg'`)
      expect(new Set(origins.rows.map(r => `${r.schema}:${r.origin}`))).toEqual(new Set(['georelay_cli_pg_a:', 'georelay_cli_pg_b:cli-pg-a']))
      expect(await drain(started)).toBe(0)
    } finally {
      for (const schema of schemas) await admin.query(`DROP SCHEMA IF EXISTS ${schema} CASCADE`)
      await admin.end()
    }
  })

  it('--nodes-per-region 2 runs each region as two nodes on one schema and one Redis, one document across all four', async () => {
    const url = testPostgresUrl()
    const redis = await startRedis()
    const regions = ['cli-nodes-a', 'cli-nodes-b']
    const admin = new pg.Client({ connectionString: url })
    await admin.connect()
    try {
      started = await startCluster(['--regions', regions.join(','), '--base-port', '0', '--store', 'postgres', '--postgres-url', url,
        '--nodes-per-region', '2', '--redis-url', redis.url])
      expect(started.output()).toContain('(store: postgres, one schema per region, 2 nodes each on one Redis)')
      // Each region's line lists its nodes' URLs.
      const lines = [...started.output().matchAll(/^ {2}(cli-nodes-[ab]) +(ws:\/\/\S+) +(ws:\/\/\S+)$/gm)]
      expect(lines.map(m => m[1])).toEqual(regions)
      const clients = lines.flatMap(m => [m[2], m[3]]).map(node => connectProvider(node as string, 'notes/nodes'))
      providers.push(...clients)
      await Promise.all(clients.map(p => waitSynced(p)))
      const expected = clients.flatMap((client, i) => {
        const items = [`n${i}-1`, `n${i}-2`]
        client.doc.getArray<string>('set').push(items)
        return items
      })
      await waitForExactSet(clients.map(c => c.doc), expected, { what: 'clients on all four nodes to hold every item' })
      // One node of each region dials the other region: the region's entry names it.
      const view = await (await fetch(`${(lines[0]?.[2] as string).replace('ws:', 'http:')}/v1/regions`)).json() as { regions: { self: boolean, meshNode?: string }[] }
      expect(['cli-nodes-a-1', 'cli-nodes-a-2']).toContain(view.regions.find(r => r.self)?.meshNode)
      expect(await drain(started)).toBe(0)
    } finally {
      for (const region of regions) await admin.query(`DROP SCHEMA IF EXISTS ${clusterPackage.schemaOf(region)} CASCADE`)
      await admin.end()
      await redis.destroy()
    }
  })

  it('refuses --nodes-per-region without Postgres or Redis, saying what to give', async () => {
    const sqlite = await run(['cluster', '--nodes-per-region', '2'])
    expect(sqlite.code).toBe(2)
    expect(sqlite.stderr).toMatch(/--nodes-per-region 2: the nodes of a region share its store, so give --store postgres --postgres-url URL/)
    const noRedis = await run(['cluster', '--nodes-per-region', '2', '--store', 'postgres', '--postgres-url', 'postgres://u@127.0.0.1:1/db'])
    expect(noRedis.code).toBe(2)
    expect(noRedis.stderr).toMatch(/give --redis-url redis:\/\/HOST:PORT \(or GEORELAY_REDIS_URL\)/)
    expect((await run(['cluster', '--nodes-per-region', '9'])).stderr).toMatch(/--nodes-per-region must be 1 to 8, not "9"/)
  })

  it('refuses --store postgres without a database, saying how to name one', async () => {
    const { code, stderr } = await run(['cluster', '--store', 'postgres'])
    expect(code).toBe(2)
    expect(stderr).toMatch(/--store postgres needs --postgres-url postgres:\/\/USER:PASSWORD@HOST:PORT\/DB \(or GEORELAY_POSTGRES_URL\)/)
  })

  it('refuses bad flags with exit code 2 and says what is wrong', async () => {
    const { code, stderr } = await run(['cluster', '--latency', 'eu-west=40'])
    expect(code).toBe(2)
    expect(stderr).toMatch(/--latency "eu-west=40" is not REGION:REGION=MS/)
  })

  it('without @georelay/cluster installed, exits 1 saying how to install it; the rest of the CLI does not need it', async () => {
    const cluster = await run(['cluster', '--base-port', '0', '--store', 'memory'], WITHOUT_CLUSTER)
    expect(cluster).toEqual({ code: 1, stdout: '', stderr: 'georelay cluster needs the @georelay/cluster package: npm install @georelay/cluster\n' })
    // Bad flags are still bad flags.
    expect((await run(['cluster', '--store', 'disk'], WITHOUT_CLUSTER)).code).toBe(2)
    const help = await run(['--help'], WITHOUT_CLUSTER)
    expect(help.code).toBe(0)
    // The help states the table's default delay without loading the table: it must say the same.
    expect(help.stdout).toContain(`real inter-region latencies (${clusterPackage.DEFAULT_ONE_WAY_MS} ms for pairs it does not know)`)
  })

  it('the package is what the CLI, which imports it by a name in a variable, takes it for', () => {
    const asTheCliSeesIt: ClusterPackage = clusterPackage
    expect(asTheCliSeesIt.parseLatencies(['us-east:eu-west=40', 'ap-south:eu-west=7'])).toEqual({ 'eu-west:us-east': 40, 'ap-south:eu-west': 7 })
    expect(() => asTheCliSeesIt.parseLatencies(['eu-west=40'])).toThrow('--latency "eu-west=40" is not REGION:REGION=MS')
  })
})
