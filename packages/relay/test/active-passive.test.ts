import path from 'node:path'
import { afterEach, describe, expect, it } from '@jest/globals'
import * as Y from 'yjs'
import { SqliteStore } from '@georelay/store-sqlite'
import { GeoClient, type GeoSession } from '@georelay/client'
import { TestCluster, docOfStored, on, setFullCheck, waitUntil } from '@georelay/testkit'

const PROMOTE_AFTER_MS = 1500
const LEDGER = 'billing/ledger'
const NAMESPACES = [{ match: 'billing/**', mode: 'active-passive' as const, primary: 'us-east', standby: ['eu-west'], promoteAfterMs: PROMOTE_AFTER_MS }]
/** One-way delays from a client's place to each region: near us-east, or near eu-west. */
const NEAR_US = { 'us-east': 5, 'eu-west': 30, 'ap-south': 60 }
const NEAR_EU = { 'us-east': 30, 'eu-west': 5, 'ap-south': 60 }

const elementsOf = (doc: Y.Doc): string[] => doc.getArray<string>('set').toArray()

interface RegionsBody { policy: { namespaces: { match: string, writer?: string | null }[] } }

describe('active-passive namespaces', () => {
  let cluster: TestCluster
  const clients: GeoClient[] = []
  afterEach(async () => {
    for (const c of clients.splice(0)) await c.close()
    await cluster?.close()
  })

  const clientNear = async (
    place: string,
    delays: Record<string, number>,
  ): Promise<{ client: GeoClient, doc: Y.Doc, session: GeoSession }> => {
    const client = new GeoClient({
      regions: await cluster.clientEndpoints(place, delays),
      heartbeatMs: 100,
      heartbeatTimeoutMs: 500,
      probeIntervalMs: 0,
    })
    clients.push(client)
    const doc = new Y.Doc()
    const session = client.open(LEDGER, doc, { ack: 'local' })
    await session.synced
    return { client, doc, session }
  }

  const writerSeenBy = async (region: string): Promise<string | null | undefined> => {
    const body = await (await fetch(`${cluster.url(region).replace(/^ws/, 'http')}/v1/regions`)).json() as RegionsBody
    return body.policy.namespaces[0]?.writer
  }

  /** Every region's stored replica, read from its SQLite file after the relays stopped. */
  const storedReplicas = async (): Promise<Record<string, Y.Doc>> => {
    await Promise.all(['us-east', 'eu-west', 'ap-south'].map(r => cluster.stopRegion(r)))
    const replicas: Record<string, Y.Doc> = {}
    for (const region of ['us-east', 'eu-west', 'ap-south']) {
      const store = new SqliteStore(path.join(cluster.dataDir, region))
      const stored = await store.read(LEDGER)
      await store.close()
      replicas[region] = docOfStored(stored)
    }
    return replicas
  }

  it('writes only at the primary; a standby takes over when it dies, and gives the role back once it caught up', async () => {
    cluster = await TestCluster.start({ regions: ['us-east', 'eu-west', 'ap-south'], mode: 'process', config: { namespaces: NAMESPACES } })
    // A client near eu-west is sent to the primary.
    const euClient = await clientNear('eu', NEAR_EU)
    expect(euClient.client.region).toBe('us-east')
    const usClient = await clientNear('us', NEAR_US)
    euClient.doc.getArray<string>('set').push(['before-eu'])
    usClient.doc.getArray<string>('set').push(['before-us'])
    await Promise.all([euClient.session.flush(5000), usClient.session.flush(5000)])

    await cluster.killRegion('us-east')
    const killedAt = performance.now()
    usClient.doc.getArray<string>('set').push(['during'])
    // The standby accepts the write once it promoted itself; the deadline is the contract.
    await usClient.session.flush(PROMOTE_AFTER_MS + 1000)
    const rtoMs = performance.now() - killedAt
    expect(usClient.client.region).toBe('eu-west')
    expect(await writerSeenBy('eu-west')).toBe('eu-west')
    process.stdout.write(`active-passive RTO: primary killed → write acknowledged by the standby in ${Math.round(rtoMs)} ms (promoteAfterMs ${PROMOTE_AFTER_MS})\n`)

    await cluster.startRegion('us-east')
    // The standby hands the role back once us-east holds its writes, and its clients follow.
    await waitUntil([on(usClient.client, 'region')], () => usClient.client.region === 'us-east', { what: 'the client to move back to the primary', timeoutMs: 15_000 })
    expect(await writerSeenBy('eu-west')).toBe('us-east')
    usClient.doc.getArray<string>('set').push(['after'])
    await usClient.session.flush(5000)
    await waitUntil([on(euClient.doc, 'update')], () => elementsOf(euClient.doc).includes('after'), { what: 'the eu client to see every write', timeoutMs: 15_000 })

    const written = ['before-eu', 'before-us', 'during', 'after']
    const replicas = { ...await storedReplicas(), usClient: usClient.doc, euClient: euClient.doc }
    const check = setFullCheck(written, replicas)
    expect(check.ok).toBe(true)
  })

  it('a partition leaves two writers; after heal nothing is lost and every replica agrees', async () => {
    cluster = await TestCluster.start({ regions: ['us-east', 'eu-west', 'ap-south'], mode: 'process', config: { namespaces: NAMESPACES } })
    const usClient = await clientNear('us', NEAR_US)
    // us-east loses both of its region links; its own clients still reach it.
    cluster.wan.cut('us-east', 'eu-west')
    cluster.wan.cut('us-east', 'ap-south')
    // eu-west takes over once us-east has been silent for promoteAfterMs (watched on /v1/regions).
    let writer: string | null | undefined
    const refresh = (notify: () => void): () => void => {
      const timer = setInterval(() => { writerSeenBy('eu-west').then(w => { writer = w; notify() }, () => {}) }, 100)
      return () => clearInterval(timer)
    }
    await waitUntil([refresh], () => writer === 'eu-west', { what: 'eu-west to promote itself', timeoutMs: PROMOTE_AFTER_MS + 5000 })
    const euClient = await clientNear('eu', NEAR_EU)
    expect(euClient.client.region).toBe('eu-west')
    const written: string[] = []
    for (let i = 0; i < 5; i++) {
      usClient.doc.getArray<string>('set').push([`us-${i}`])
      euClient.doc.getArray<string>('set').push([`eu-${i}`])
      written.push(`us-${i}`, `eu-${i}`)
    }
    // Both sides acknowledge: each believes it writes (eu-west after promoteAfterMs).
    await Promise.all([usClient.session.flush(5000), euClient.session.flush(PROMOTE_AFTER_MS + 5000)])
    expect(elementsOf(usClient.doc).some(e => e.startsWith('eu-'))).toBe(false)

    cluster.wan.heal('us-east', 'eu-west')
    cluster.wan.heal('us-east', 'ap-south')
    await Promise.all([usClient, euClient].map(({ doc }) => waitUntil([on(doc, 'update')], () => written.every(e => elementsOf(doc).includes(e)), { what: 'both clients to hold both sides\' writes', timeoutMs: 15_000 })))
    await waitUntil([on(euClient.client, 'region')], () => euClient.client.region === 'us-east', { what: 'the eu client to follow the primary back', timeoutMs: 15_000 })
    const replicas = { ...await storedReplicas(), usClient: usClient.doc, euClient: euClient.doc }
    const check = setFullCheck(written, replicas)
    expect(check.ok).toBe(true)
  })
})
