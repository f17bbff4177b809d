/**
 * The node quickstart runs as written against a three-region cluster: it discovers the regions
 * from one URL, writes a line, waits until it is durable in a majority, and exits; a stock
 * y-websocket reader in another region sees the line.
 */
import { afterEach, describe, expect, it } from '@jest/globals'
import { spawn } from 'node:child_process'
import { tmpdir } from 'node:os'
import { fileURLToPath } from 'node:url'
import type { WebsocketProvider } from 'y-websocket'
import { LocalCluster } from '@georelay/cluster'
import { connectProvider, destroyProvider, nextEvent, waitForText, waitSynced } from '@georelay/testkit'

const SCRIPT = fileURLToPath(new URL('../quickstart.js', import.meta.url))

describe('examples/node-quickstart', () => {
  let cluster: LocalCluster | undefined
  let reader: WebsocketProvider | undefined
  afterEach(async () => {
    if (reader !== undefined) destroyProvider(reader)
    await cluster?.close()
  })

  it('writes a line that is durable in a majority and reaches the other regions', async () => {
    cluster = await LocalCluster.start({ regions: ['us-east', 'eu-west', 'ap-south'], basePort: 0, dataDir: tmpdir(), store: 'memory', latency: { 'eu-west:us-east': 5, 'ap-south:us-east': 5, 'ap-south:eu-west': 5 } })
    const [first, , last] = cluster.regions.map(r => r.url)
    const child = spawn(process.execPath, [SCRIPT], { env: { ...process.env, GEORELAY_URL: first, GEORELAY_DOC: 'quickstart/test' }, stdio: ['ignore', 'pipe', 'pipe'] })
    let output = ''
    child.stdout.setEncoding('utf8').on('data', (chunk: string) => { output += chunk })
    child.stderr.setEncoding('utf8').on('data', (chunk: string) => { output += chunk })
    const [code] = await nextEvent<[number | null]>(child, 'close', { what: 'the quickstart to finish', timeoutMs: 15_000 })
    expect({ code, output }).toEqual({ code: 0, output: expect.stringMatching(/^connected to [a-z-]+ \(initial\)\ndurable in a majority of 3 regions: "Hello from Node, pid \d+\."\n$/) })

    reader = connectProvider(last as string, 'quickstart/test')
    await waitSynced(reader)
    await waitForText(reader.doc, t => t === `Hello from Node, pid ${child.pid ?? ''}.`, 'the line to reach the last region')
  })
})
