import { afterEach, describe, expect, it } from '@jest/globals'
import { SignJWT } from 'jose'
import * as Y from 'yjs'
import { GeoClient } from '@georelay/client'
import type { Relay } from '@georelay/relay'
import { TestCluster, on, startTestRelay, storeOf, waitUntil } from '@georelay/testkit'

const SECRET = 'a-test-secret-of-at-least-32-chars!!'
const token = (docs: Record<string, 'rw' | 'ro'>): Promise<string> =>
  new SignJWT({ docs }).setProtectedHeader({ alg: 'HS256' }).setExpirationTime('1h').sign(new TextEncoder().encode(SECRET))

describe('GeoClient tokens and refusals', () => {
  let relay: Relay | undefined
  let cluster: TestCluster | undefined
  const clients: GeoClient[] = []
  afterEach(async () => {
    for (const c of clients.splice(0)) await c.close()
    await relay?.close()
    await cluster?.close()
    relay = undefined
    cluster = undefined
  })

  it('a read-only token gets its write refused once (no retry loop); setToken with a writable one gets it stored', async () => {
    relay = await startTestRelay({ config: { auth: { jwtSecret: SECRET, anonymous: 'none' } } })
    const client = new GeoClient({ regions: [{ name: 'test', url: relay.url }], token: await token({ 'notes/**': 'ro' }), probeIntervalMs: 0 })
    clients.push(client)
    const doc = new Y.Doc()
    const session = client.open('notes/1', doc)
    const errors: number[] = []
    session.on('error', err => { errors.push(err.code) })
    await session.synced
    doc.getText('t').insert(0, 'hello')
    await waitUntil([on(session, 'error')], () => errors.length > 0, { what: 'the refusal' })
    expect(errors).toEqual([4403])
    expect(session.pendingWrites).toBe(1)
    expect(await storeOf(relay).listDocs()).toEqual([])

    client.setToken(await token({ 'notes/**': 'rw' }))
    await session.flush(5000)
    expect(errors).toEqual([4403])
    expect((await storeOf(relay).read('notes/1')).log.length).toBeGreaterThan(0)
  })

  it('documents that live in different regions on one client: the second is refused with 4307, no ping-pong', async () => {
    cluster = await TestCluster.start({
      regions: ['us-east', 'eu-west'],
      config: { namespaces: [{ match: 'eu/**', regions: ['eu-west'] }, { match: 'us/**', regions: ['us-east'] }] },
    })
    const client = new GeoClient({ regions: [{ name: 'us-east', url: cluster.url('us-east') }, { name: 'eu-west', url: cluster.url('eu-west') }], probeIntervalMs: 0 })
    clients.push(client)
    const moves: string[] = []
    client.on('region', change => { moves.push(`${change.reason}:${change.region}`) })
    const eu = client.open('eu/1', new Y.Doc())
    await eu.synced
    const us = client.open('us/1', new Y.Doc())
    // Whichever document the client's current region cannot hold is refused, the other keeps the socket.
    const errors: string[] = []
    for (const [name, session] of [['eu/1', eu], ['us/1', us]] as const) session.on('error', err => { errors.push(`${name} ${err.code} ${err.message}`) })
    await waitUntil([on(us, 'error'), on(eu, 'error')], () => errors.length > 0, { what: 'one of the documents to be refused' })
    const refused = errors[0]?.split(' ')[0] === 'eu/1' ? { name: 'eu/1', lives: 'eu-west', kept: 'us-east' } : { name: 'us/1', lives: 'us-east', kept: 'eu-west' }
    expect(errors).toEqual([expect.stringMatching(new RegExp(`^${refused.name} 4307 .*lives in ${refused.lives}.*open it with a second GeoClient`))])
    expect(client.region).toBe(refused.kept)
    expect(moves.filter(m => m.startsWith('redirect')).length).toBeLessThanOrEqual(2)
  })
})
