/**
 * `--log-format json`: the formatter line by line, then real relay processes whose every stderr
 * line parses as JSON with the fields operators' pipelines index on (a region's only relay, and
 * a node of a region of several on Postgres and Redis).
 */
import { afterAll, afterEach, beforeAll, describe, expect, it } from '@jest/globals'
import { spawn } from 'node:child_process'
import fs from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import {
  GEORELAY_BIN, type RedisServer, type RelayProcess, type TestSchema, connectProvider, destroyProvider, nextEvent,
  startRedis, startRelayProcess, testSchema, waitSynced,
} from '@georelay/testkit'
import { eventName, formatJsonLine, formatLine, streamLogger } from '../src/observability/index.js'

type JsonLine = Record<string, unknown>

/** The environment without GEORELAY_* variables, so a developer's shell cannot change a test. */
const cleanEnv = (extra: NodeJS.ProcessEnv = {}): NodeJS.ProcessEnv => ({
  ...Object.fromEntries(Object.entries(process.env).filter(([key]) => !key.startsWith('GEORELAY_'))),
  GEORELAY_ANONYMOUS: 'rw',
  ...extra,
})

/** Every line of a process's stderr as JSON; a line that does not parse fails with the line. */
const jsonLines = (stderr: string): JsonLine[] =>
  stderr.split('\n').filter(line => line !== '').map(line => {
    try {
      return JSON.parse(line) as JsonLine
    } catch {
      throw new Error(`a stderr line is not JSON: ${line}`)
    }
  })

/** Runs the real `georelay` launcher to its end; 'close' also means stderr is complete. */
const runCli = async (args: string[]): Promise<{ code: number | null, stderr: string }> => {
  const child = spawn(process.execPath, [GEORELAY_BIN, ...args], { env: cleanEnv(), stdio: ['ignore', 'ignore', 'pipe'] })
  let stderr = ''
  child.stderr.setEncoding('utf8').on('data', (chunk: string) => { stderr += chunk })
  try {
    const [code] = await nextEvent<[number | null]>(child, 'close', { what: `georelay ${args.join(' ')} to exit` })
    return { code, stderr }
  } finally {
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL')
  }
}

const ISO_TIME = /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$/

describe('the JSON log formatter', () => {
  const at = new Date('2026-12-01T10:00:00.000Z')

  it('writes time, level, event, msg, region and node first, then the fields', () => {
    const line = formatJsonLine('info', 'peer link changed', { peer: 'us-east', state: 'up', lagMs: 12, up: true }, { region: 'eu-west', node: 'eu-west-1' }, at)
    expect(line).not.toContain('\n')
    const parsed = JSON.parse(line) as JsonLine
    expect(Object.keys(parsed)).toEqual(['time', 'level', 'event', 'msg', 'region', 'node', 'peer', 'state', 'lagMs', 'up'])
    expect(parsed).toEqual({
      time: '2026-12-01T10:00:00.000Z', level: 'info', event: 'peer_link_changed', msg: 'peer link changed',
      region: 'eu-west', node: 'eu-west-1', peer: 'us-east', state: 'up', lagMs: 12, up: true,
    })
  })

  it('leaves out region and node when there are none, and fields that are undefined', () => {
    const parsed = JSON.parse(formatJsonLine('warn', 'stopping the relay is slow', { waitingFor: undefined, seconds: 5 }, {}, at)) as JsonLine
    expect(parsed).toEqual({ time: at.toISOString(), level: 'warn', event: 'stopping_the_relay_is_slow', msg: 'stopping the relay is slow', seconds: 5 })
  })

  it('keeps a field that names another region apart from the region writing the line', () => {
    const parsed = JSON.parse(formatJsonLine('warn', 'region unreachable; dropping its clients\' presence', { region: 'ap-south' }, { region: 'eu-west' }, at)) as JsonLine
    expect(parsed.region).toBe('eu-west')
    expect(parsed.field_region).toBe('ap-south')
    // The same region again adds nothing.
    const same = JSON.parse(formatJsonLine('info', 'relay stopped', { region: 'eu-west' }, { region: 'eu-west' }, at)) as JsonLine
    expect(same).toEqual({ time: at.toISOString(), level: 'info', event: 'relay_stopped', msg: 'relay stopped', region: 'eu-west' })
  })

  it('never lets a field overwrite time, level or msg', () => {
    const parsed = JSON.parse(formatJsonLine('error', 'x happened', { time: 'then', level: 'loud', msg: 'other' }, {}, at)) as JsonLine
    expect(parsed).toMatchObject({ time: at.toISOString(), level: 'error', msg: 'x happened', field_time: 'then', field_level: 'loud', field_msg: 'other' })
  })

  it('takes a field `event` as the event name, instead of the derived one', () => {
    const parsed = JSON.parse(formatJsonLine('error', 'the relay could not start (listen EADDRINUSE 127.0.0.1:4001)', { event: 'relay_could_not_start' }, {}, at)) as JsonLine
    expect(parsed.event).toBe('relay_could_not_start')
    expect(Object.keys(parsed)).toEqual(['time', 'level', 'event', 'msg'])
  })

  it('escapes what JSON must: quotes, newlines and control characters stay on one line', () => {
    const line = formatJsonLine('info', 'a "quoted"\nmessage', { doc: 'notes/\u0001"42"\n' }, {}, at)
    expect(line.split('\n')).toHaveLength(1)
    expect((JSON.parse(line) as JsonLine).doc).toBe('notes/\u0001"42"\n')
  })

  it('derives event names from the message words, stable across the values in it', () => {
    expect(eventName('relay listening')).toBe('relay_listening')
    expect(eventName('this node holds the mesh lease: it dials the peers and pushes the region\'s log')).toBe('this_node_holds_the_mesh_lease_it_dials')
    // Two messages that share their first clause still get different names.
    expect(eventName('refused a peer link: wrong or missing mesh secret')).not.toBe(eventName('refused a peer link: region is not a configured peer'))
    // Quoted names and URLs vary from line to line; the name does not.
    const announced = (name: string, url: string): string => eventName(`node name "${name}" is also announced at ${url}: two nodes share a name`)
    expect(announced('eu-1', 'ws://10.0.0.1:4001')).toBe(announced('eu-2', 'wss://eu.example.com'))
    expect(announced('eu-1', 'ws://10.0.0.1:4001')).toBe('node_name_is_also_announced_at_two_nodes')
    expect(eventName('')).toBe('log')
  })

  it('leaves the text format as it was, and filters by level in both', () => {
    const text: string[] = []
    const json: string[] = []
    const textLogger = streamLogger(line => text.push(line), 'info')
    const jsonLogger = streamLogger(line => json.push(line), 'info', { format: 'json', context: { region: 'eu-west' } })
    for (const logger of [textLogger, jsonLogger]) {
      logger.log('debug', 'document loaded', { doc: 'a' })
      logger.log('info', 'peer link changed', { peer: 'us-east', state: 'up' })
    }
    expect(text).toHaveLength(1)
    expect(text[0]).toMatch(/^\d{4}-\d\d-\d\dT\S+Z info peer link changed peer=us-east state=up$/)
    expect((text[0] as string).slice(25)).toBe(formatLine('info', 'peer link changed', { peer: 'us-east', state: 'up' }).slice(25))
    expect(json).toHaveLength(1)
    expect(JSON.parse(json[0] as string)).toMatchObject({ level: 'info', event: 'peer_link_changed', region: 'eu-west', peer: 'us-east' })
  })
})

describe('georelay relay --log-format json', () => {
  const relays: RelayProcess[] = []
  const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'georelay-json-logs-'))
  afterEach(async () => { await Promise.all(relays.splice(0).map(relay => relay.kill9())) })
  afterAll(() => { fs.rmSync(tmp, { recursive: true, force: true }) })

  const start = async (args: string[], env: NodeJS.ProcessEnv = {}): Promise<RelayProcess> => {
    const relay = await startRelayProcess({ args, env: cleanEnv(env) })
    relays.push(relay)
    return relay
  }

  it('writes every stderr line as one JSON object, from start to drain', async () => {
    const relay = await start(['--region', 'eu-west', '--port', '0', '--data', path.join(tmp, 'eu-west'), '--log-format', 'json', '--log-level', 'debug'])
    // A client's document is loaded: one more event of the running relay.
    const provider = connectProvider(relay.url, 'notes/json')
    await waitSynced(provider)
    destroyProvider(provider)
    expect(await relay.stop()).toBe(0)

    const lines = jsonLines(relay.stderr())
    for (const line of lines) {
      expect(line.time).toMatch(ISO_TIME)
      expect(['debug', 'info', 'warn', 'error']).toContain(line.level)
      expect(line.event).toMatch(/^[a-z0-9_]+$/)
      expect(typeof line.msg).toBe('string')
      expect(line.region).toBe('eu-west')
      // The region's only relay is no node.
      expect(line).not.toHaveProperty('node')
    }
    const events = lines.map(line => line.event)
    expect(events).toEqual(expect.arrayContaining(['relay_listening', 'document_loaded', 'draining', 'relay_stopped']))
    expect(lines.find(line => line.event === 'relay_listening')).toMatchObject({ level: 'info', msg: 'relay listening', url: relay.url, peers: 0 })
    expect(lines.find(line => line.event === 'document_loaded')).toMatchObject({ level: 'debug', doc: 'notes/json' })
    expect(lines.find(line => line.event === 'draining')).toMatchObject({ signal: 'SIGTERM' })
  })

  it('takes the format from GEORELAY_LOG_FORMAT, and the flag wins over it', async () => {
    const fromEnv = await start(['--region', 'eu-west', '--port', '0', '--store', 'memory'], { GEORELAY_LOG_FORMAT: 'json' })
    expect(jsonLines(fromEnv.stderr()).map(line => line.event)).toContain('relay_listening')
    const flagWins = await start(['--region', 'eu-west', '--port', '0', '--store', 'memory', '--log-format', 'text'], { GEORELAY_LOG_FORMAT: 'json' })
    expect(flagWins.stderr()).toMatch(/^\d{4}-\d\d-\d\dT\S+Z info relay listening region=eu-west /m)
  })

  it('writes the CLI\'s own failure as a JSON line too', async () => {
    const first = await start(['--region', 'first', '--port', '0', '--store', 'memory'])
    const { code, stderr } = await runCli(['relay', '--region', 'second', '--port', String(first.port), '--store', 'memory', '--log-format', 'json'])
    expect(code).toBe(1)
    // Every line parses (the relay also says it stopped what it had opened), the failure among them.
    const failure = jsonLines(stderr).find(line => line.event === 'relay_could_not_start')
    expect(failure).toMatchObject({ level: 'error', region: 'second' })
    expect(failure?.msg).toMatch(new RegExp(`port ${first.port} is taken; pick another with --port`))
  })

  describe('on a node of a region of several', () => {
    let redis: RedisServer
    let schema: TestSchema
    beforeAll(async () => {
      redis = await startRedis()
      schema = await testSchema('jsonlogs')
    })
    afterAll(async () => {
      await schema?.drop()
      await redis?.destroy()
    })

    const startNode = (extra: string[]): Promise<RelayProcess> => {
      const file = path.join(tmp, `node-${extra.length}.json`)
      // The schema has no flag: it is in a file, as an operator's would be.
      fs.writeFileSync(file, JSON.stringify({ storage: { postgres: { schema: schema.schema } } }))
      return start(['--config', file, '--region', 'eu-west', '--port', '0', '--store', 'postgres', '--log-format', 'json', ...extra], {
        GEORELAY_POSTGRES_URL: schema.url, GEORELAY_REDIS_URL: redis.url,
      })
    }

    it('names the node on every line: the one given, or the default <hostname>-<pid>', async () => {
      const named = await startNode(['--node', 'eu-west-1'])
      const unnamed = await startNode([])
      expect(await named.stop()).toBe(0)
      expect(await unnamed.stop()).toBe(0)
      const defaultName = `${os.hostname().replace(/[^A-Za-z0-9._-]/g, '-').slice(0, 50)}-${unnamed.child.pid}`
      for (const [relay, node] of [[named, 'eu-west-1'], [unnamed, defaultName]] as const) {
        const lines = jsonLines(relay.stderr())
        expect(lines.length).toBeGreaterThanOrEqual(2)
        for (const line of lines) expect(line).toMatchObject({ region: 'eu-west', node })
        expect(lines.map(line => line.event)).toEqual(expect.arrayContaining(['relay_listening', 'relay_stopped']))
      }
    })
  })
})
