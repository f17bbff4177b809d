import { afterAll, afterEach, describe, expect, it } from '@jest/globals'
import { spawn } from 'node:child_process'
import fs from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import WebSocket from 'ws'
import type { WebsocketProvider } from 'y-websocket'
import {
  connectProvider, destroyProvider, GEORELAY_BIN, nextEvent, type RelayProcess, startRelayProcess, waitForText,
  waitSynced,
} from '@georelay/testkit'

interface CliResult { code: number | null, signal: NodeJS.Signals | null, stdout: string, stderr: string }

/** The environment without GEORELAY_* variables, so a developer's shell cannot change a test. */
const cleanEnv = (extra: NodeJS.ProcessEnv = {}): NodeJS.ProcessEnv => ({
  ...Object.fromEntries(Object.entries(process.env).filter(([key]) => !key.startsWith('GEORELAY_'))),
  ...extra,
})

/** Runs the real `georelay` launcher to its end; 'close' also means stdout and stderr are complete. */
const runCli = async (args: string[], env?: NodeJS.ProcessEnv): Promise<CliResult> => {
  const child = spawn(process.execPath, [GEORELAY_BIN, ...args], { env: cleanEnv(env), stdio: ['ignore', 'pipe', 'pipe'] })
  let stdout = ''
  let stderr = ''
  child.stdout.setEncoding('utf8').on('data', (chunk: string) => { stdout += chunk })
  child.stderr.setEncoding('utf8').on('data', (chunk: string) => { stderr += chunk })
  try {
    const [code, signal] = await nextEvent<[number | null, NodeJS.Signals | null]>(child, 'close', { what: `georelay ${args.join(' ')} to exit` })
    return { code, signal, stdout, stderr }
  } finally {
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL')
  }
}

const RELAY_FLAGS = ['--config', '--region', '--host', '--port', '--data', '--store', '--public-url', '--peer', '--mesh-secret', '--log-level', '--log-format']

const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'georelay-cli-'))
afterAll(() => { fs.rmSync(tmp, { recursive: true, force: true }) })

// Each run is its own short-lived process with nothing shared, so they run side by side.
describe('georelay command line', () => {
  it.concurrent('--help exits 0 and documents every flag of the relay command', async () => {
    const { code, stdout, stderr } = await runCli(['--help'])
    expect(code).toBe(0)
    expect(stderr).toBe('')
    expect(stdout).toMatch(/georelay relay \[--config FILE\]/)
    for (const flag of RELAY_FLAGS) expect(stdout).toMatch(new RegExp(`^\\s+${flag} `, 'm'))
    expect(stdout).toMatch(/Exit codes: 0 .*1 .*2 /)
  })

  it.concurrent('relay --help also exits 0 with the help', async () => {
    const { code, stdout } = await runCli(['relay', '--help'])
    expect(code).toBe(0)
    expect(stdout).toContain('--mesh-secret')
  })

  it.concurrent('no command exits 2 and shows the help', async () => {
    const { code, stdout, stderr } = await runCli([])
    expect(code).toBe(2)
    expect(stdout + stderr).toMatch(/Usage:\n\s+georelay relay/)
  })

  it.concurrent('an unknown command exits 2, naming it', async () => {
    const { code, stdout, stderr } = await runCli(['serve', '--port', '1'])
    expect(code).toBe(2)
    expect(stdout).toBe('')
    expect(stderr).toMatch(/unknown command "serve"/)
    expect(stderr).toMatch(/georelay --help/)
  })

  it.concurrent('an unknown flag exits 2, naming it', async () => {
    const { code, stderr } = await runCli(['relay', '--region', 'x', '--prot', '4001'])
    expect(code).toBe(2)
    expect(stderr).toMatch(/--prot/)
  })

  it.concurrent('a bad port exits 2 and names listen.port', async () => {
    const { code, stdout, stderr } = await runCli(['relay', '--port', 'abc', '--region', 'x'])
    expect(code).toBe(2)
    expect(stdout).toBe('')
    expect(stderr).toMatch(/^ {2}listen\.port: /m)
  })

  it.concurrent('a bad port from the environment exits 2 and names listen.port', async () => {
    const { code, stderr } = await runCli(['relay', '--region', 'x'], { GEORELAY_PORT: '99999' })
    expect(code).toBe(2)
    expect(stderr).toMatch(/listen\.port: .*65535/)
    expect(stderr).toContain('environment')
  })

  it.concurrent('a bad --log-level exits 2, naming the choices', async () => {
    const { code, stderr } = await runCli(['relay', '--region', 'x', '--log-level', 'chatty'])
    expect(code).toBe(2)
    expect(stderr).toMatch(/--log-level must be debug, info, warn or error, not "chatty"/)
  })

  it.concurrent('a bad --log-format (flag or environment) exits 2, naming the choices', async () => {
    const fromFlag = await runCli(['relay', '--region', 'x', '--log-format', 'xml'])
    expect(fromFlag.code).toBe(2)
    expect(fromFlag.stderr).toMatch(/--log-format must be text or json, not "xml"/)
    const fromEnv = await runCli(['relay', '--region', 'x'], { GEORELAY_LOG_FORMAT: 'logfmt' })
    expect(fromEnv.code).toBe(2)
    expect(fromEnv.stderr).toMatch(/--log-format must be text or json, not "logfmt"/)
  })

  it.concurrent('a missing --config file exits 2, naming the file', async () => {
    const file = path.join(tmp, 'missing.json')
    const { code, stderr } = await runCli(['relay', '--config', file])
    expect(code).toBe(2)
    expect(stderr).toContain(`cannot read ${file}`)
  })

  it.concurrent('a config file with a misspelt field exits 2, naming the field and the file', async () => {
    const file = path.join(tmp, 'typo.json')
    fs.writeFileSync(file, JSON.stringify({ region: 'eu-west', listen: { prot: 4001 } }))
    const { code, stderr } = await runCli(['relay', '--config', file])
    expect(code).toBe(2)
    expect(stderr).toMatch(/listen\.prot: unknown field/)
    expect(stderr).toContain(file)
  })

  it.concurrent('a config file with a weak auth secret exits 2 and says what is needed', async () => {
    const file = path.join(tmp, 'auth.json')
    fs.writeFileSync(file, JSON.stringify({ region: 'eu-west', auth: { jwtSecret: 'k' } }))
    const { code, stderr } = await runCli(['relay', '--config', file])
    expect(code).toBe(2)
    expect(stderr).toMatch(/auth\.jwtSecret: an HS256 secret needs at least 32 characters/)
  })

  it.concurrent('a mesh secret shorter than 32 bytes exits 2 and says how to make one', async () => {
    const { code, stderr } = await runCli(['relay', '--region', 'x', '--mesh-secret', 'short', '--peer', 'y=ws://127.0.0.1:9'])
    expect(code).toBe(2)
    expect(stderr).toMatch(/meshSecret: must be at least 32 bytes; make one with `openssl rand -hex 32`/)
  })

  it.concurrent('--peer without "=" exits 2', async () => {
    const { code, stderr } = await runCli(['relay', '--region', 'x', '--mesh-secret', 's'.repeat(32), '--peer', 'us-east'])
    expect(code).toBe(2)
    expect(stderr).toMatch(/"us-east" is not REGION=URL/)
  })
})

describe('a running georelay relay', () => {
  const relays: RelayProcess[] = []
  const providers: WebsocketProvider[] = []
  const sockets: WebSocket[] = []
  const start = async (args: string[], env: NodeJS.ProcessEnv = {}): Promise<RelayProcess> => {
    const relay = await startRelayProcess({ args, env: cleanEnv(env) })
    relays.push(relay)
    return relay
  }
  const openSocket = async (url: string): Promise<WebSocket> => {
    const ws = new WebSocket(url)
    sockets.push(ws)
    // The close that the relay sends during a drain is asserted; errors after it are not the point.
    ws.on('error', () => {})
    await nextEvent(ws, 'open', { what: `a socket to ${url} to open` })
    return ws
  }

  afterEach(async () => {
    for (const provider of providers.splice(0)) destroyProvider(provider)
    for (const ws of sockets.splice(0)) ws.terminate()
    await Promise.all(relays.splice(0).map(relay => relay.kill9()))
  })

  it('takes its configuration from a file, the environment and flags, in that order', async () => {
    const file = path.join(tmp, 'layers.json')
    // Had the file's port 1 won, the relay would be on port 1, or (not root) fail to start.
    fs.writeFileSync(file, JSON.stringify({ region: 'from-file', store: 'memory', listen: { port: 1 } }))
    const relay = await start(['--config', file, '--port', '0'], { GEORELAY_REGION: 'from-env' })
    expect(relay.port).toBeGreaterThan(1)
    const regions = await (await fetch(`${relay.url.replace(/^ws:/, 'http:')}/v1/regions`)).json() as { region: string }
    expect(regions.region).toBe('from-env')
  })

  it('warns when the mesh secret comes from the command line, and takes it from a file silently', async () => {
    const secret = 'k'.repeat(40)
    const fromArgv = await start(['--region', 'a', '--port', '0', '--store', 'memory', '--peer', 'b=ws://127.0.0.1:9', '--mesh-secret', secret])
    expect(fromArgv.stderr()).toMatch(/the mesh secret is on the command line, where any user of this machine can read it \(ps\); use --mesh-secret-file or GEORELAY_MESH_SECRET/)
    const file = path.join(tmp, 'mesh-secret')
    fs.writeFileSync(file, `${secret}\n`)
    const fromFile = await start(['--region', 'a', '--port', '0', '--store', 'memory', '--peer', 'b=ws://127.0.0.1:9', '--mesh-secret-file', file])
    expect(fromFile.stderr()).not.toMatch(/command line/)
    expect(fromFile.stderr()).not.toContain(secret)
  })

  it('exits 1 and says the port is taken when another process holds it', async () => {
    const first = await start(['--region', 'first', '--port', '0', '--store', 'memory'])
    const { code, stdout, stderr } = await runCli(['relay', '--region', 'second', '--port', String(first.port), '--store', 'memory'])
    expect(code).toBe(1)
    expect(stdout).toBe('')
    expect(stderr).toMatch(new RegExp(`port ${first.port} is taken; pick another with --port`))
    expect(stderr).toMatch(/EADDRINUSE/)
    // The first relay is unharmed.
    expect((await fetch(`${first.url.replace(/^ws:/, 'http:')}/healthz`)).status).toBe(200)
  })

  it('drains on SIGTERM: clients get 1001, the store is flushed, the exit code is 0', async () => {
    const dataDir = fs.mkdtempSync(path.join(tmp, 'data-'))
    const relay = await start(['--region', 'eu-west', '--port', '0', '--data', dataDir])
    // A stock provider, with its awareness state, is the client whose departure once crashed a drain.
    const writer = connectProvider(relay.url, 'notes/term')
    providers.push(writer)
    await waitSynced(writer)
    writer.doc.getText('t').insert(0, 'kept')
    const ws = await openSocket(`${relay.url}/notes/term`)
    const closed = nextEvent<[number, Buffer]>(ws, 'close', { what: 'the relay to close the raw socket' })
    // The relay forwards only what it has stored, so a reader that sees the write proves it durable.
    const reader = connectProvider(relay.url, 'notes/term')
    providers.push(reader)
    await waitForText(reader.doc, t => t === 'kept', 'a reader to see the write')

    expect(await relay.stop()).toBe(0)
    const [code, reason] = await closed
    expect(code).toBe(1001)
    expect(reason.toString()).toMatch(/shutting down/)
    expect(relay.stderr()).toMatch(/draining signal=SIGTERM/)
    expect(relay.stderr()).toMatch(/relay stopped/)

    // The same data directory serves the write to the next relay.
    const again = await start(['--region', 'eu-west', '--port', '0', '--data', dataDir])
    const after = connectProvider(again.url, 'notes/term')
    providers.push(after)
    await waitSynced(after)
    expect(after.doc.getText('t').toString()).toBe('kept')
  })

  it('drains on SIGINT (Ctrl-C) as well', async () => {
    const relay = await start(['--region', 'eu-west', '--port', '0', '--store', 'memory'])
    const ws = await openSocket(`${relay.url}/notes/int`)
    const closed = nextEvent<[number, Buffer]>(ws, 'close', { what: 'the relay to close the raw socket' })
    relay.child.kill('SIGINT')
    expect(await relay.exited).toBe(0)
    expect((await closed)[0]).toBe(1001)
    expect(relay.stderr()).toMatch(/draining signal=SIGINT/)
  })
})
