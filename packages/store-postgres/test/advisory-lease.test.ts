import { afterEach, describe, expect, it } from '@jest/globals'
import pg from 'pg'
import type { LeaseEvent, StoreLease } from '@georelay/core'
import { PostgresStore } from '@georelay/store-postgres'
import { type TestSchema, every, testSchema, waitUntil } from '@georelay/testkit'

describe('AdvisoryLease (PostgresStore.openLease)', () => {
  const cleanup: (() => Promise<void>)[] = []
  afterEach(async () => {
    for (const step of cleanup.splice(0).reverse()) await step()
  })

  const setup = async (): Promise<{ schema: TestSchema, store: PostgresStore }> => {
    const schema = await testSchema()
    cleanup.push(() => schema.drop())
    const store = await PostgresStore.open({ url: schema.url, schema: schema.schema, poolSize: 2 })
    cleanup.push(() => store.close())
    return { schema, store }
  }
  const lease = (
    store: PostgresStore, holder: string, options: { renewMs?: number, staleMs?: number } = {},
  ): { lease: StoreLease, events: LeaseEvent[] } => {
    const events: LeaseEvent[] = []
    const opened = store.openLease({ name: 'mesh', holder, renewMs: 50, staleMs: 2000, ...options, onEvent: e => events.push(e) })
    cleanup.push(() => opened.close())
    return { lease: opened, events }
  }
  const admin = async (url: string): Promise<pg.Client> => {
    const client = new pg.Client({ connectionString: url })
    await client.connect()
    cleanup.push(() => client.end())
    return client
  }

  it('is held by one of the nodes sharing a schema, and the others see which', async () => {
    const { store } = await setup()
    const a = lease(store, 'a1')
    await waitUntil([a.lease.onChange.bind(a.lease)], () => a.lease.held, { what: 'a1 to take the free lease' })
    const b = lease(store, 'a2')
    await waitUntil([every(20)], () => b.lease.holder === 'a1', { what: 'a2 to see a1 holding' })
    expect(b.lease.held).toBe(false)
    expect(b.lease.epoch).toBe(0)
    expect({ held: a.lease.held, epoch: a.lease.epoch, holder: a.lease.holder }).toEqual({ held: true, epoch: 1, holder: 'a1' })
    expect(a.events).toEqual([{ type: 'acquired', epoch: 1 }])
  })

  it('passes to another node with a higher epoch when the holder gives it up', async () => {
    const { store } = await setup()
    const a = lease(store, 'a1')
    await waitUntil([a.lease.onChange.bind(a.lease)], () => a.lease.held, { what: 'a1 to take the lease' })
    const b = lease(store, 'a2')
    await a.lease.close()
    await waitUntil([b.lease.onChange.bind(b.lease)], () => b.lease.held, { what: 'a2 to take over' })
    expect(b.lease.epoch).toBe(2)
  })

  it('is lost by a holder whose connection dies, and taken again with a higher epoch', async () => {
    const { schema, store } = await setup()
    const a = lease(store, 'a1')
    await waitUntil([a.lease.onChange.bind(a.lease)], () => a.lease.held, { what: 'a1 to take the lease' })
    const b = lease(store, 'a2')
    const db = await admin(schema.url)
    const { rows } = await db.query<{ pid: number }>(`SELECT pid FROM "${schema.schema}".lease WHERE name = 'mesh'`)
    await db.query('SELECT pg_terminate_backend($1)', [rows[0]?.pid])
    // a1 lives on (a database restart, a network blip), so it contends again, as a2 does:
    // whichever tries first holds it, under a new epoch; never both.
    const changes = [a.lease.onChange.bind(a.lease), b.lease.onChange.bind(b.lease)]
    const next = await waitUntil(changes, () => [a.lease, b.lease].find(l => l.held && l.epoch === 2), { what: 'the lease to be taken again' })
    expect([a.lease, b.lease].filter(l => l.held)).toEqual([next])
    expect(a.events.map(e => e.type).slice(0, 2)).toEqual(['acquired', 'lost'])
  })

  it('is taken from a holder that stopped renewing (paused), which learns it was deposed', async () => {
    const { store } = await setup()
    // a1 takes the lease at once, then renews only after a minute: to the others, it is paused.
    const a = lease(store, 'a1', { renewMs: 60_000 })
    await waitUntil([a.lease.onChange.bind(a.lease)], () => a.lease.held, { what: 'a1 to take the lease' })
    const b = lease(store, 'a2', { staleMs: 300 })
    await waitUntil([b.lease.onChange.bind(b.lease)], () => b.lease.held, { what: 'a2 to depose the silent a1' })
    const deposed = b.events.find(e => e.type === 'deposed')
    expect(deposed).toMatchObject({ type: 'deposed', holder: 'a1' })
    expect((deposed as { silentMs: number }).silentMs).toBeGreaterThan(300)
    expect(b.lease.epoch).toBe(2)
    // Its connection was cut: a1 hears it from the connection, before its next renewal.
    await waitUntil([a.lease.onChange.bind(a.lease)], () => !a.lease.held, { what: 'a1 to learn it lost the lease' })
  })

  it('is free again for the next holder after every holder closed', async () => {
    const { store } = await setup()
    const a = lease(store, 'a1')
    await waitUntil([a.lease.onChange.bind(a.lease)], () => a.lease.held, { what: 'a1 to take the lease' })
    await a.lease.close()
    expect(a.lease.held).toBe(false)
    const c = lease(store, 'a3')
    await waitUntil([c.lease.onChange.bind(c.lease)], () => c.lease.held, { what: 'a3 to take the lease' })
    expect(c.lease.epoch).toBe(2)
  })
})
