import fs from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import { afterEach, beforeEach, describe, expect, it } from '@jest/globals'
import Database from 'better-sqlite3'
import { LOCAL_ORIGIN, StoreError, type StoreOptions } from '@georelay/core'
import { SQLITE_FILE, SqliteStore } from '@georelay/store-sqlite'
import { describeDocStore, typedUpdates } from '@georelay/core/testing'

const tempDir = () => fs.mkdtempSync(path.join(os.tmpdir(), 'georelay-sqlite-'))

/** An fdatasync that waits for the test: each call is held until finish(). */
const syncGate = () => {
  const held: { done: (err?: Error) => void }[] = []
  const waiters: (() => void)[] = []
  const gate = {
    calls: 0,
    sync: (): Promise<void> => new Promise<void>((resolve, reject) => {
      gate.calls++
      held.push({ done: err => err === undefined ? resolve() : reject(err) })
      for (const wake of waiters.splice(0)) wake()
    }),
    /** Resolves once `n` syncs have started. */
    started: async (n: number): Promise<void> => {
      while (gate.calls < n) await new Promise<void>(resolve => waiters.push(resolve))
    },
    /** Ends the oldest sync still held, with `err` or fine. */
    finish: (err?: Error): void => { held.shift()?.done(err) },
  }
  return gate
}

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

  it('acknowledges an append only after an fsync of the WAL that started after its commit', async () => {
    const gate = syncGate()
    store = new SqliteStore(dir, { fdatasync: gate.sync })
    let resolved = false
    const append = store.append('doc', update).then(seq => { resolved = true; return seq })
    await gate.started(1)
    // Committed, not yet durable: not acknowledged, and not read out for replication.
    expect(resolved).toBe(false)
    expect((await store.readOrigin(LOCAL_ORIGIN, 0, 10)).entries).toEqual([])
    gate.finish()
    const seq = await append
    expect((await store.readOrigin(LOCAL_ORIGIN, 0, 10)).entries.map(e => e.originSeq)).toEqual([seq])
  })

  it('commits what arrives while a batch waits for its fsync together, once it is durable', async () => {
    const gate = syncGate()
    store = new SqliteStore(dir, { fdatasync: gate.sync })
    const pageSize = withRawDb(db => db.pragma('page_size', { simple: true }) as number)
    const walFrames = () => (fs.statSync(`${file()}-wal`).size - 32) / (pageSize + 24)
    const first = store.append('doc-0', update)
    await gate.started(1)
    const before = walFrames()
    const { updates } = typedUpdates(20)
    // One append per turn: each would be a transaction of its own.
    const later: Promise<number>[] = []
    for (const u of updates) {
      later.push(store.append('doc-1', u))
      await new Promise(setImmediate)
    }
    expect(walFrames()).toBe(before)
    gate.finish()
    await first
    await gate.started(2)
    const oneCommit = walFrames() - before
    gate.finish()
    const seqs = await Promise.all(later)
    expect(seqs).toEqual(seqs.map((_, i) => (seqs[0] as number) + i))
    expect(oneCommit).toBeGreaterThan(0)
    expect(oneCommit).toBeLessThan(updates.length / 2)
    expect(gate.calls).toBe(2)
  })

  it('with synchronous: normal acknowledges at the commit, without an fsync', async () => {
    const gate = syncGate()
    store = new SqliteStore(dir, { synchronous: 'normal', fdatasync: gate.sync })
    const seq = await store.append('doc', update)
    expect((await store.read('doc')).log.map(e => e.seq)).toEqual([seq])
    expect(gate.calls).toBe(0)
  })

  it('takes no more writes once an fsync failed, and says what to do', async () => {
    const gate = syncGate()
    store = new SqliteStore(dir, { fdatasync: gate.sync })
    const append = store.append('doc', update)
    await gate.started(1)
    gate.finish(Object.assign(new Error('EIO: i/o error, fdatasync'), { code: 'EIO' }))
    const refused = expect.objectContaining({ code: 'ERR_STORE_IO', message: expect.stringMatching(/could not make its writes durable .*EIO.*check the disk, then restart/) })
    await expect(append).rejects.toEqual(refused)
    await expect(store.append('doc', update)).rejects.toEqual(refused)
    await expect(store.writeHave('eu', 3)).rejects.toEqual(refused)
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
