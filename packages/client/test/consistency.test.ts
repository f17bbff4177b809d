/**
 * Consistency chosen on both sides: a namespace's default acknowledgement level reaches the
 * SDK, and strong reads (`session.refresh`) pull what this region lacks from enough others,
 * under the WAN simulator with real relays.
 */
import { afterEach, describe, expect, it } from '@jest/globals'
import * as Y from 'yjs'
import { LOCAL_ORIGIN } from '@georelay/core'
import { GeoClient, type GeoSession } from '@georelay/client'
import { TestCluster, on, waitUntil } from '@georelay/testkit'

const REGIONS = ['a', 'b', 'c']

describe('consistency levels', () => {
  let cluster: TestCluster
  const clients: GeoClient[] = []
  afterEach(async () => {
    for (const c of clients.splice(0)) await c.close()
    await cluster?.close()
  })

  const session = (region: string, name: string, options: { ack?: 'local' | 'majority' | 'all' } = {}): GeoSession => {
    const client = new GeoClient({ regions: [{ name: region, url: cluster.url(region) }], probeIntervalMs: 0 })
    clients.push(client)
    return client.open(name, new Y.Doc(), options)
  }
  const linked = (region: string): Promise<true> => waitUntil([on(cluster.relay(region), 'peers')],
    () => cluster.relay(region).peers().every(p => p.state === 'up'), { what: `${region}'s links up` })

  it('uses the namespace\'s ack level when open() names none, and an explicit level when it does', async () => {
    cluster = await TestCluster.start({
      regions: REGIONS,
      delayMs: () => 10,
      config: { namespaces: [{ match: 'ledger/**', ack: 'majority' }, { match: '*', mode: 'active-active' }] },
    })
    const byDefault = session('a', 'ledger/1')
    const level = new Promise(resolve => byDefault.on('ackLevel', resolve))
    await byDefault.synced
    expect(await level).toBe('majority')
    expect(byDefault.ackLevel).toBe('majority')
    const explicit = session('a', 'ledger/2', { ack: 'local' })
    await explicit.synced
    expect(explicit.ackLevel).toBe('local')
    const plain = session('a', 'notes/1')
    await plain.synced
    await waitUntil([statusOf(plain)], () => plain.ackLevel === 'local', { what: 'notes/1 to be told local' })

    // With two of three regions cut away, majority cannot be had: flush waits for it.
    await linked('a')
    cluster.wan.partition('b')
    cluster.wan.partition('c')
    byDefault.doc.getText('t').insert(0, 'debit')
    explicit.doc.getText('t').insert(0, 'credit')
    await explicit.flush(5000)
    await expect(byDefault.flush(500)).rejects.toThrow(/^flush of "ledger\/1" timed out after 500 ms: 1 edit durable in 1 of the document's 3 regions \(a\); 'majority' needs 2; waiting for 1 of b( \(no fresh word from it for [\d.]+ m?s\))?, c( \(no fresh word from it for [\d.]+ m?s\))?$/)
    cluster.wan.healAll()
    await byDefault.flush(10_000)
  })

  it('says where a flush that timed out got, in regions: two regions, the other silent', async () => {
    cluster = await TestCluster.start({ regions: ['a', 'b'], delayMs: () => 10 })
    await Promise.all(['a', 'b'].map(linked))
    const writer = session('a', 'two/1', { ack: 'majority' })
    await writer.synced
    cluster.wan.partition('b')
    await waitUntil([on(writer as never, 'staleness')], () => (writer.staleness.b?.lagMs ?? 0) > 0, { what: 'a to tell the session it has no fresh word from b', timeoutMs: 15_000 })
    writer.doc.getText('t').insert(0, 'x')
    await expect(writer.flush(300)).rejects.toThrow(
      /^flush of "two\/1" timed out after 300 ms: 1 edit durable in 1 of the document's 2 regions \(a\); 'majority' needs 2 \(with two regions, majority is both\); waiting for b \(no fresh word from it for [\d.]+ m?s\)$/,
    )
  })

  it('refresh({ level: majority }) pulls what this region lacks from the nearest other region, past a slow direct link', async () => {
    // Links that live through a 1.5 s one-way delay.
    const replication = { linkTimeoutMs: 6000 }
    cluster = await TestCluster.start({ regions: REGIONS, delayMs: () => 10, config: { replication } })
    await Promise.all(REGIONS.map(linked))
    // a's own link to b is slow now: its entries take 1.5 s to get there directly.
    cluster.wan.setConditions('a', 'b', { delayMs: 1500 })
    const writer = session('a', 'strong/1', { ack: 'majority' })
    const reader = session('b', 'strong/1')
    await Promise.all([writer.synced, reader.synced])
    writer.doc.getText('t').insert(0, 'acknowledged at majority')
    await writer.flush(5000)
    const started = performance.now()
    await reader.refresh({ level: 'majority', timeoutMs: 5000 })
    const tookMs = performance.now() - started
    expect(reader.doc.getText('t').toString()).toBe('acknowledged at majority')
    // It came by the pull (b stored it as its own catch-up), not down the slow link.
    const pulled = (await cluster.store('b').readOrigin(LOCAL_ORIGIN, 0, 100)).entries.filter(e => e.docName === 'strong/1')
    expect(pulled.length).toBeGreaterThan(0)
    // `all` needs no other region: what was acknowledged at all is here already.
    await reader.refresh({ level: 'all' })

    // The figures with real distances: b's nearest other region 40 ms away (the writer's 110 ms),
    // then every region 110 ms from every other.
    const measure = async (round: number): Promise<string> => {
      const samples: number[] = []
      for (let i = 0; i < 5; i++) {
        writer.doc.getText('t').insert(0, `${round}.${i} `)
        await writer.flush(5000)
        const t0 = performance.now()
        await reader.refresh({ level: 'majority', timeoutMs: 5000 })
        samples.push(performance.now() - t0)
        expect(reader.doc.getText('t').toString()).toContain(`${round}.${i} `)
      }
      const median = [...samples].sort((x, y) => x - y)[2] as number
      return `median of 5 ${median.toFixed(1)} ms (${samples.map(x => x.toFixed(0)).join(', ')})`
    }
    cluster.wan.setConditions('b', 'c', { delayMs: 40 })
    cluster.wan.setConditions('a', 'b', { delayMs: 110 })
    const near = await measure(1)
    cluster.wan.setConditions('b', 'c', { delayMs: 110 })
    cluster.wan.setConditions('a', 'c', { delayMs: 110 })
    const far = await measure(2)
    console.log(`strong read at b, refresh({ level: 'majority' }): ${tookMs.toFixed(1)} ms with b–c 10 ms and a–b 1500 ms one way; ${near} with b–c 40 ms and a–b 110 ms; ${far} with 110 ms between every pair`)
  })

  it('refresh() waits through a partition, then fails naming the regions it could not hear from', async () => {
    cluster = await TestCluster.start({ regions: REGIONS, delayMs: () => 10 })
    await Promise.all(REGIONS.map(linked))
    const reader = session('b', 'strong/cut')
    await reader.synced
    cluster.wan.partition('b')
    const failure = await reader.refresh({ level: 'majority', timeoutMs: 400 }).then(() => null, (err: Error & { unreachable?: string[] }) => err)
    expect(failure?.message).toMatch(/timed out after 400 ms: no answer from a, c/)
    expect(failure?.unreachable).toEqual(['a', 'c'])
    cluster.wan.healAll()
    await linked('b')
    await reader.refresh({ level: 'majority', timeoutMs: 5000 })
  })

  it('says how stale the region is per other region, and with maxStalenessMs holds synced and says stale until a partition heals', async () => {
    cluster = await TestCluster.start({ regions: REGIONS, delayMs: () => 10 })
    await Promise.all(REGIONS.map(linked))
    const writer = session('a', 'stale/1', { ack: 'local' })
    const client = new GeoClient({ regions: [{ name: 'b', url: cluster.url('b') }], probeIntervalMs: 0 })
    clients.push(client)
    const reader = client.open('stale/1', new Y.Doc(), { maxStalenessMs: 1000 })
    await Promise.all([writer.synced, reader.synced])
    await waitUntil([on(reader as never, 'staleness')], () => reader.staleness.a?.lagMs === 0 && reader.staleness.c?.lagMs === 0, { what: 'b to be told it is up to date with a and c' })
    expect(reader.status).toBe('synced')

    // b cut off while a writes: its word from a goes stale, and so does the session.
    cluster.wan.partition('b')
    writer.doc.getText('t').insert(0, 'written while b is away')
    await writer.flush(5000)
    await waitUntil([on(reader as never, 'status')], () => reader.status === 'stale', { what: 'the reader to say stale', timeoutMs: 15_000 })
    expect(reader.staleness.a?.lagMs).toBeGreaterThan(1000)
    // A new session with the bound does not call itself synced meanwhile.
    const late = client.open('stale/2', new Y.Doc(), { maxStalenessMs: 1000 })
    let lateSynced = false
    void late.synced.then(() => { lateSynced = true })
    await waitUntil([on(late as never, 'staleness')], () => Object.keys(late.staleness).length > 0, { what: 'the late session to be told the staleness' })
    expect(late.status).toBe('stale')
    expect(lateSynced).toBe(false)

    const healed = performance.now()
    cluster.wan.healAll()
    await waitUntil([on(reader as never, 'status')], () => reader.status === 'synced', { what: 'the reader to be within bounds again', timeoutMs: 15_000 })
    await late.synced
    const waitedMs = performance.now() - healed
    expect(reader.doc.getText('t').toString()).toBe('written while b is away')
    console.log(`bounded staleness: maxStalenessMs 1000 held synced until ${waitedMs.toFixed(0)} ms after the partition healed (heartbeat 200 ms, link timeout 1000 ms)`)
  }, 40_000)
})
/** Re-evaluates on the session's status changes. */
const statusOf = (s: GeoSession): ReturnType<typeof on> => on(s as never, 'status')
