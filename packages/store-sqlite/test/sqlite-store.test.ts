import fs from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import { afterEach, beforeEach, describe, expect, it } from '@jest/globals'
import Database from 'better-sqlite3'
import { StoreError, type StoreOptions } from '@georelay/core'
import { SQLITE_FILE, SqliteStore } from '@georelay/store-sqlite'
import { describeDocStore, typedUpdates } from '@georelay/core/testing'

const tempDir = () => fs.mkdtempSync(path.join(os.tmpdir(), 'georelay-sqlite-'))

describeDocStore('SqliteStore', async (options?: StoreOptions) => {
  const dir = tempDir()
  let store = new SqliteStore(dir, options)
  return {
    store,
    reopen: async () => {
      await store.close()
      store = new SqliteStore(dir, options)
      return store
    },
    teardown: async () => {
      await store.close()
      fs.rmSync(dir, { recursive: true, force: true })
    },
  }
}, { persistent: true, propertyRuns: 30 })

describe('SqliteStore', () => {
  let dir: string
  let store: SqliteStore | undefined
  const file = () => path.join(dir, SQLITE_FILE)
  const [update] = typedUpdates(1).updates as [Uint8Array]

  beforeEach(() => { dir = tempDir() })
  afterEach(async () => {
    await store?.close()
    store = undefined
    fs.rmSync(dir, { recursive: true, force: true })
  })

  const withRawDb = <T>(use: (db: Database.Database) => T, readonly = true): T => {
    const db = new Database(file(), { readonly })
    try {
      return use(db)
    } finally {
      db.close()
    }
  }

  it(`keeps its data in ${SQLITE_FILE} in WAL mode`, async () => {
    store = new SqliteStore(dir)
    await store.append('doc', update)
    expect(withRawDb(db => db.pragma('journal_mode', { simple: true }))).toBe('wal')
    expect(fs.existsSync(`${file()}-wal`)).toBe(true)
  })

  it('refuses a file of another schema version, and leaves it untouched', async () => {
    await new SqliteStore(dir).close()
    withRawDb(db => db.prepare("UPDATE meta SET value = '2' WHERE key = 'schema'").run(), false)
    let err: unknown
    try {
      store = new SqliteStore(dir)
    } catch (e) {
      err = e
    }
    expect(err).toBeInstanceOf(StoreError)
    expect((err as StoreError).message).toContain(`${file()} has schema 2; this georelay reads schema 1`)
    expect(withRawDb(db => db.prepare("SELECT value FROM meta WHERE key = 'schema'").pluck().get())).toBe('2')
  })

  it('commits the appends of one event-loop turn in one transaction', async () => {
    store = new SqliteStore(dir)
    await store.append('warm-up', update)
    // Every commit appends at least one frame to the WAL, so its growth counts transactions.
    const pageSize = withRawDb(db => db.pragma('page_size', { simple: true }) as number)
    const walFrames = () => (fs.statSync(`${file()}-wal`).size - 32) / (pageSize + 24)
    const { updates } = typedUpdates(100)

    const before = walFrames()
    const seqs = await Promise.all(updates.map((u, i) => (store as SqliteStore).append(`doc-${i % 4}`, u)))
    const oneTurn = walFrames() - before
    expect(seqs).toEqual(seqs.map((_, i) => (seqs[0] as number) + i))

    const beforeSequential = walFrames()
    for (const u of updates) await store.append('doc-0', u)
    const oneTurnEach = walFrames() - beforeSequential

    expect(oneTurn).toBeLessThan(10)
    expect(oneTurnEach).toBeGreaterThanOrEqual(updates.length)
  })

  it('commits after fsync by default, after the WAL write with synchronous: normal', async () => {
    const pragmaOf = (st: SqliteStore): unknown => (st as unknown as { db: Database.Database }).db.pragma('synchronous', { simple: true })
    store = new SqliteStore(dir)
    expect(pragmaOf(store)).toBe(2) // FULL
    await store.close()
    store = new SqliteStore(dir, { synchronous: 'normal' })
    expect(pragmaOf(store)).toBe(1) // NORMAL
    const seq = await store.append('doc', update)
    expect((await store.read('doc')).log.map(e => e.seq)).toEqual([seq])
  })

  it('rejects appends with ERR_STORE_FULL when the disk is full, stores none of them, and recovers', async () => {
    store = new SqliteStore(dir)
    const first = await store.append('doc', update)
    // Tests run as root, so permissions cannot make a write fail. A page limit on the store's
    // own connection (per connection, hence the private field) is SQLite's "disk full".
    const db = (store as unknown as { db: Database.Database }).db
    const pages = db.pragma('page_count', { simple: true }) as number
    db.pragma(`max_page_count = ${pages}`)
    const big = new Uint8Array(256 * 1024)
    const err = await store.append('doc', big).then(() => null, (e: unknown) => e)
    expect(err).toBeInstanceOf(StoreError)
    expect(err).toMatchObject({ code: 'ERR_STORE_FULL' })
    expect((await store.read('doc')).log.map(e => e.seq)).toEqual([first])

    db.pragma(`max_page_count = ${pages * 1000}`)
    expect(await store.append('doc', big)).toBeGreaterThan(first)
    expect((await store.read('doc')).log).toHaveLength(2)
  })
})
