import { afterEach, describe, expect, it } from '@jest/globals'
import pg from 'pg'
import { LOCAL_ORIGIN, StoreError, type StoreOptions } from '@georelay/core'
import { describeDocStore, typedUpdates } from '@georelay/core/testing'
import { PostgresStore, SCHEMA_VERSION, describeUrl, redactUrl } from '@georelay/store-postgres'
import { type TestSchema, testSchema } from '@georelay/testkit'

describeDocStore('PostgresStore', async (options?: StoreOptions) => {
  const { url, schema, drop } = await testSchema()
  let store = await PostgresStore.open({ url, schema, ...options })
  return {
    store,
    reopen: async () => {
      await store.close()
      store = await PostgresStore.open({ url, schema, ...options })
      return store
    },
    teardown: async () => {
      await store.close()
      await drop()
    },
  }
}, { persistent: true, propertyRuns: 30 })

describe('PostgresStore', () => {
  const cleanup: (() => Promise<void>)[] = []
  afterEach(async () => {
    for (const step of cleanup.splice(0).reverse()) await step()
  })
  const fresh = async (): Promise<TestSchema> => {
    const schema = await testSchema()
    cleanup.push(() => schema.drop())
    return schema
  }
  const open = async (schema: TestSchema): Promise<PostgresStore> => {
    const store = await PostgresStore.open({ url: schema.url, schema: schema.schema, poolSize: 4 })
    cleanup.push(() => store.close())
    return store
  }

  it('never lets a cursor skip: relays appending at once, a reader following the local stream sees every entry once', async () => {
    const schema = await fresh()
    // Four stores are four relay processes sharing the region's database.
    const writers = await Promise.all([1, 2, 3, 4].map(() => open(schema)))
    const reader = await open(schema)
    const { updates } = typedUpdates(400)
    const seen: number[] = []
    let cursor = 0
    let writing = true
    const follow = async (): Promise<void> => {
      // The reader reads while the writers commit, as a peer link's pump does.
      while (writing || seen.length < updates.length) {
        // Only a read that began after the last commit may end the loop: one in flight while
        // it committed can come back empty and still miss it.
        const afterWriting = !writing
        const read = await reader.readOrigin(LOCAL_ORIGIN, cursor, 50)
        for (const entry of read.entries) {
          seen.push(entry.originSeq)
          cursor = entry.originSeq
        }
        if (afterWriting && read.entries.length === 0) break
      }
    }
    const following = follow()
    // One append at a time per writer: hundreds of small transactions racing to commit.
    const given = await Promise.all(writers.map(async (store, w) => {
      const seqs: number[] = []
      for (const update of updates.filter((_, i) => i % writers.length === w)) seqs.push(await store.append(`doc-${w}`, update))
      return seqs
    }))
    writing = false
    await following
    const all = given.flat().sort((a, b) => a - b)
    // Gapless and in commit order: what a cursor read is exactly every number given, once each.
    expect(all).toEqual(Array.from({ length: updates.length }, (_, i) => i + 1))
    expect(seen).toEqual(all)
  }, 60_000)

  it('group-commits one turn\'s appends in one statement', async () => {
    const schema = await fresh()
    const store = await open(schema)
    const admin = new pg.Client({ connectionString: schema.url })
    await admin.connect()
    cleanup.push(() => admin.end())
    const commits = async (): Promise<number> => Number((await admin.query<{ n: string }>('SELECT xact_commit AS n FROM pg_stat_database WHERE datname = current_database()')).rows[0]?.n)
    await store.append('warm', typedUpdates(1).updates[0] as Uint8Array)
    const before = await commits()
    const { updates } = typedUpdates(200)
    const seqs = await Promise.all(updates.map(update => store.append('doc', update)))
    expect(seqs).toEqual([...seqs].sort((a, b) => a - b))
    // One for the appends, one for the admin query itself (and at most a stray autovacuum).
    expect((await commits()) - before).toBeLessThanOrEqual(3)
  })

  it('refuses a schema written by a newer georelay, saying what to do', async () => {
    const schema = await fresh()
    const store = await PostgresStore.open({ url: schema.url, schema: schema.schema })
    await store.close()
    const admin = new pg.Client({ connectionString: schema.url })
    await admin.connect()
    await admin.query(`UPDATE "${schema.schema}".meta SET value = $1 WHERE key = 'schema_version'`, [String(SCHEMA_VERSION + 1)])
    await admin.end()
    const refused = PostgresStore.open({ url: schema.url, schema: schema.schema })
    await expect(refused).rejects.toBeInstanceOf(StoreError)
    await expect(refused).rejects.toThrow(`holds georelay data of schema ${SCHEMA_VERSION + 1}; this georelay reads schema ${SCHEMA_VERSION}: run a newer georelay`)
  })

  it('several relays starting at once create the schema once', async () => {
    const schema = await fresh()
    const { url } = schema
    const stores = await Promise.all([1, 2, 3].map(() => PostgresStore.open({ url, schema: schema.schema })))
    for (const store of stores) cleanup.push(() => store.close())
    expect(await (stores[0] as PostgresStore).lastSeq()).toBe(0)
  })

  it('says the database does not answer, without the password', async () => {
    const url = 'postgres://georelay:s3cret-pass@127.0.0.1:1/georelay'
    const failure = PostgresStore.open({ url, schema: 'x' })
    await expect(failure).rejects.toMatchObject({ code: 'ERR_STORE_UNAVAILABLE' })
    await expect(failure).rejects.toThrow(/the database does not answer/)
    expect(String(await failure.catch(err => (err as Error).message))).not.toContain('s3cret-pass')
  })
})

describe('connection strings', () => {
  it('never show a password', () => {
    const url = 'postgres://ada:p%40ss-word@db.example.com:5432/georelay'
    expect(describeUrl(url)).toBe('postgres://ada:***@db.example.com:5432/georelay')
    expect(redactUrl(`cannot reach ${url}: refused`, url)).toBe('cannot reach postgres://ada:***@db.example.com:5432/georelay: refused')
    expect(redactUrl('password "p@ss-word" is wrong', url)).toBe('password "***" is wrong')
    expect(redactUrl('postgresql://bob:hunter22@h/db failed')).toBe('postgresql://bob:***@h/db failed')
  })
})
