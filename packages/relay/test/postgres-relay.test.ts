/**
 * A relay on the Postgres store, against a real PostgreSQL: what it keeps, what it never shows
 * (the password), and what happens when the database goes away under writing clients or the
 * relay dies mid-commit.
 */
import fs from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import { afterEach, describe, expect, it } from '@jest/globals'
import * as Y from 'yjs'
import { GeoClient, type GeoSession } from '@georelay/client'
import { PostgresStore } from '@georelay/store-postgres'
import { Relay, parseRelayConfig, streamLogger, type RelayConfigInput } from '@georelay/relay'
import {
  type PostgresServer, type RelayProcess, type TestSchema, on, startPostgres, startRelayProcess, testSchema, waitUntil,
} from '@georelay/testkit'

const PASSWORD = 'pw-never-shown-4711'
/** The test server trusts loopback, so any password is accepted: one is given to see that it never leaks. */
const withPassword = (url: string): string => url.replace('postgres://postgres@', `postgres://postgres:${PASSWORD}@`)
const ADMIN = 'a'.repeat(32)

const httpOf = (relay: { url: string }): string => relay.url.replace('ws://', 'http://')

describe('a relay on Postgres', () => {
  const cleanup: (() => Promise<unknown>)[] = []
  afterEach(async () => {
    for (const step of cleanup.splice(0).reverse()) await step()
  })

  const startRelay = async (
    url: string, schema: string, lines: string[], extra: Partial<RelayConfigInput> = {},
  ): Promise<Relay> => {
    const relay = await Relay.start({
      config: parseRelayConfig({
        region: 'eu-west',
        listen: { host: '127.0.0.1', port: 0 },
        store: 'postgres',
        storage: { postgres: { url, schema, poolSize: 4 } },
        auth: { anonymous: 'rw' },
        http: { adminToken: ADMIN },
        ...extra,
      }),
      logger: streamLogger(line => { lines.push(line) }, 'debug'),
    })
    cleanup.push(() => relay.close())
    return relay
  }
  const clientOf = (relay: Relay): GeoClient => {
    const client = new GeoClient({ regions: [{ name: 'eu-west', url: relay.url }], probeIntervalMs: 0 })
    cleanup.push(() => client.close())
    return client
  }
  const schemaForTest = async (): Promise<TestSchema> => {
    const schema = await testSchema('relay')
    cleanup.push(() => schema.drop())
    return schema
  }

  it('stores documents across restarts and never shows the password in logs, /v1/regions or /metrics', async () => {
    const { url, schema } = await schemaForTest()
    const lines: string[] = []
    const first = await startRelay(withPassword(url), schema, lines)
    expect(first.storeLocation).toBe(`postgres ${withPassword(url).replace(PASSWORD, '***')} schema ${schema}`)
    const doc = new Y.Doc()
    const session = clientOf(first).open('notes/pg', doc)
    await session.synced
    doc.getText('t').insert(0, 'kept in postgres')
    await session.flush(10_000)
    const regions = await (await fetch(`${httpOf(first)}/v1/regions`, { headers: { authorization: `Bearer ${ADMIN}` } })).text()
    const metrics = await (await fetch(`${httpOf(first)}/metrics`)).text()
    expect(metrics).toMatch(/georelay_store_available\{region="eu-west"\} 1/)
    await first.close()

    const second = await startRelay(withPassword(url), schema, lines)
    const again = new Y.Doc()
    await clientOf(second).open('notes/pg', again).synced
    expect(again.getText('t').toString()).toBe('kept in postgres')
    expect(lines.some(line => line.includes('relay listening') && line.includes('postgres://postgres:***@'))).toBe(true)
    for (const text of [regions, metrics, ...lines]) expect(text).not.toContain(PASSWORD)
  })

  it('refuses to start on a database that does not answer, saying so without the password', async () => {
    const lines: string[] = []
    // A port nothing listens on: PostgreSQL's own, on a loopback address no test server uses.
    const err = await startRelay(`postgres://postgres:${PASSWORD}@127.0.0.2:1/none`, 'georelay', lines).then(() => null, (e: Error) => e)
    expect(err?.message).toMatch(/the database does not answer/)
    expect(err?.message).not.toContain(PASSWORD)
    expect(lines.join('\n')).not.toContain(PASSWORD)
  })

  describe('when Postgres goes down under writing clients', () => {
    let server: PostgresServer
    afterEach(async () => { await server?.destroy() })

    it('stays up, serves what it has loaded, refuses writes clearly, is not ready, and takes the writes when the database returns', async () => {
      server = await startPostgres()
      const lines: string[] = []
      const relay = await startRelay(server.url, 'georelay', lines)
      const writerDoc = new Y.Doc()
      const writer = clientOf(relay).open('notes/outage', writerDoc)
      await writer.synced
      writerDoc.getText('t').insert(0, 'before ')
      await writer.flush(10_000)
      expect((await fetch(`${httpOf(relay)}/readyz`)).status).toBe(200)

      await server.stop()
      const errors: string[] = []
      writer.on('error', err => { errors.push(err.message) })
      writerDoc.getText('t').insert(7, 'during the outage')
      await waitUntil([on(writer, 'error')], () => errors.length > 0, { what: 'the refusal of the write', timeoutMs: 15_000 })
      expect(errors[0]).toMatch(/database does not answer/)
      expect(writer.pendingWrites).toBeGreaterThan(0)

      const readyz = await fetch(`${httpOf(relay)}/readyz`)
      expect(readyz.status).toBe(503)
      expect(await readyz.text()).toMatch(/the store does not answer/)
      const metrics = await (await fetch(`${httpOf(relay)}/metrics`)).text()
      expect(metrics).toMatch(/georelay_store_available\{region="eu-west"\} 0/)
      expect(metrics).toMatch(/georelay_messages_rejected_total\{code="ERR_STORE_UNAVAILABLE",region="eu-west"\} [1-9]/)

      // Reading goes on: a new client of the loaded document gets what was stored.
      const readerDoc = new Y.Doc()
      const reader = clientOf(relay).open('notes/outage', readerDoc)
      await reader.synced
      expect(readerDoc.getText('t').toString()).toBe('before ')

      await server.start()
      await waitUntil([on(relay, 'store')], async () => (await fetch(`${httpOf(relay)}/readyz`)).status === 200, { what: 'the relay to be ready again', timeoutMs: 15_000 })
      // The client's retry lands the write it kept; the reader gets it.
      await writer.flush(40_000)
      await waitUntil([on(readerDoc, 'update')], () => readerDoc.getText('t').toString() === 'before during the outage', { what: 'the reader to get the retried write' })
      expect(lines.some(line => line.includes('the database does not answer'))).toBe(true)
      expect(lines.some(line => line.includes('the database answers again'))).toBe(true)

      // Durable, not just in memory: the database itself holds it.
      await relay.close()
      const store = await PostgresStore.open({ url: server.url })
      cleanup.push(() => store.close())
      const stored = new Y.Doc()
      const { snapshot, log } = await store.read('notes/outage')
      for (const update of [...(snapshot === null ? [] : [snapshot]), ...log.map(e => e.update)]) {
        Y.applyUpdate(stored, update)
      }
      expect(stored.getText('t').toString()).toBe('before during the outage')
    }, 90_000)
  })

  describe('a relay process killed with kill -9 mid-commit', () => {
    let dir: string
    let relay: RelayProcess | undefined
    afterEach(async () => {
      await relay?.kill9()
      fs.rmSync(dir, { recursive: true, force: true })
    })

    it('keeps every write it acknowledged', async () => {
      const { url, schema } = await schemaForTest()
      dir = fs.mkdtempSync(path.join(os.tmpdir(), 'georelay-pg-kill-'))
      const config = path.join(dir, 'relay.json')
      fs.writeFileSync(config, JSON.stringify({ region: 'eu-west', store: 'postgres', storage: { postgres: { schema } } }))
      const start = (): Promise<RelayProcess> => startRelayProcess({ args: ['--config', config, '--port', '0'], env: { GEORELAY_POSTGRES_URL: url } })
      relay = await start()
      const first = relay
      const writerDoc = new Y.Doc()
      const client = new GeoClient({ regions: [{ name: 'eu-west', url: first.url }], probeIntervalMs: 0 })
      const writer: GeoSession = client.open('notes/kill', writerDoc)
      await writer.synced
      const items = writerDoc.getArray<number>('ids')
      // One writer pushes ids without pause while flushes mark what the relay acknowledged. The
      // pushes are bounded and stop with the test whatever happens: left running after a failed
      // flush, they would grow the document without end and starve every later test of CPU.
      const MAX_IDS = 20_000
      let next = 0
      let acknowledged = 0
      let writing = true
      const pushing = (async () => {
        while (writing && next < MAX_IDS) {
          items.push([next++])
          await new Promise(resolve => setImmediate(resolve))
        }
      })()
      try {
        while (acknowledged < 300) {
          const upTo = next
          await writer.flush(20_000)
          acknowledged = upTo
          // A flush with nothing pending resolves in a microtask: without a turn of the event
          // loop here the pusher never runs again and this loop spins forever, starving every
          // timer, the test's timeout included (a whole npm test hung on it).
          await new Promise(resolve => setImmediate(resolve))
        }
        // Writes are in flight (some in a commit) when the relay dies.
        expect(await first.kill9()).toBe('SIGKILL')
      } finally {
        writing = false
        await pushing
      }
      // The writer must not resend what it kept: only the database may answer for the writes.
      await client.close()

      relay = await start()
      const reader = new GeoClient({ regions: [{ name: 'eu-west', url: relay.url }], probeIntervalMs: 0 })
      cleanup.push(() => reader.close())
      const readerDoc = new Y.Doc()
      await reader.open('notes/kill', readerDoc).synced
      const stored = new Set(readerDoc.getArray<number>('ids').toArray())
      const lost = Array.from({ length: acknowledged }, (_, i) => i).filter(id => !stored.has(id))
      expect({ acknowledged, lost }).toEqual({ acknowledged, lost: [] })
      expect(next).toBeGreaterThan(acknowledged)
    }, 60_000)
  })
})
