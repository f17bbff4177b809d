import { afterEach, describe, expect, it } from '@jest/globals'
import { type ChildProcess, spawn } from 'node:child_process'
import type { WebsocketProvider } from 'y-websocket'
import { GEORELAY_BIN, connectProvider, destroyProvider, nextEvent, waitForText, waitSynced } from '@georelay/testkit'

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
    const { child } = started
    const exited = nextEvent<[number | null]>(child, 'exit', { what: 'the cluster to drain and exit' })
    child.kill('SIGTERM')
    expect((await exited)[0]).toBe(0)
  })

  it('refuses bad flags with exit code 2 and says what is wrong', async () => {
    const child = spawn(process.execPath, [GEORELAY_BIN, 'cluster', '--latency', 'eu-west=40'], { stdio: ['ignore', 'pipe', 'pipe'] })
    let stderr = ''
    child.stderr.setEncoding('utf8').on('data', (chunk: string) => { stderr += chunk })
    // 'close' comes after stdio is drained, so stderr is complete.
    const [code] = await nextEvent<[number | null]>(child, 'close', { what: 'the cluster to refuse' })
    expect(code).toBe(2)
    expect(stderr).toMatch(/--latency "eu-west=40" is not REGION:REGION=MS/)
  })
})
