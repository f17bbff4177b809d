import fs from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import type Database from 'better-sqlite3'
import { afterEach, describe, expect, it } from '@jest/globals'
import * as Y from 'yjs'
import { SqliteStore } from '@georelay/store-sqlite'
import { GeoClient } from '@georelay/client'
import type { Relay } from '@georelay/relay'
import { on, startTestRelay, waitUntil } from '@georelay/testkit'

describe('a full disk', () => {
  let relay: Relay
  const clients: GeoClient[] = []
  let dir: string
  afterEach(async () => {
    for (const c of clients.splice(0)) await c.close()
    await relay?.close()
    fs.rmSync(dir, { recursive: true, force: true })
  })

  it('refuses writes with a clear error, keeps serving reads, and takes the writes once space returns', async () => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'georelay-full-'))
    const store = new SqliteStore(dir)
    relay = await startTestRelay({ store })
    const client = (): GeoClient => {
      const c = new GeoClient({ regions: [{ name: 'test', url: relay.url }], probeIntervalMs: 0 })
      clients.push(c)
      return c
    }
    const writerDoc = new Y.Doc()
    const writer = client().open('notes/1', writerDoc)
    await writer.synced
    writerDoc.getText('t').insert(0, 'before ')
    await writer.flush(5000)

    // SQLite's own "disk full": a page limit on the store's connection (tests run as root, so
    // permissions cannot make a write fail).
    const db = (store as unknown as { db: Database.Database }).db
    const pages = db.pragma('page_count', { simple: true }) as number
    db.pragma(`max_page_count = ${pages}`)
    const errors: string[] = []
    writer.on('error', err => { errors.push(err.message) })
    writerDoc.getText('t').insert(7, 'x'.repeat(300_000))
    await waitUntil([on(writer, 'error')], () => errors.length > 0, { what: 'the refusal' })
    expect(errors[0]).toMatch(/disk is full/)
    expect(writer.pendingWrites).toBeGreaterThan(0)

    // Reads go on: a new reader gets what was stored.
    const readerDoc = new Y.Doc()
    const reader = client().open('notes/1', readerDoc)
    await reader.synced
    expect(readerDoc.getText('t').toString()).toBe('before ')
    const metrics = await (await fetch(`${relay.url.replace('ws', 'http')}/metrics`)).text()
    expect(metrics).toMatch(/georelay_store_errors_total\{op="append",region="test"\} [1-9]/)

    // Space returns: the client's retry gets the write stored and acknowledged.
    db.pragma(`max_page_count = ${pages * 1000}`)
    await writer.flush(40_000)
    await waitUntil([on(readerDoc, 'update')], () => readerDoc.getText('t').length === 300_007, { what: 'the reader to get the write', timeoutMs: 10_000 })
  })
})
