/**
 * Readable standbys: an active-passive rule with `standbyReads` serves sessions at a region
 * that does not write the document, and passes their writes on to the writer, which alone
 * stores them — for the SDK (acknowledged at the level asked) and for stock y-websocket
 * clients, on the one socket each already has.
 */
import { afterEach, describe, expect, it } from '@jest/globals'
import * as Y from 'yjs'
import type { WebsocketProvider } from 'y-websocket'
import { LOCAL_ORIGIN } from '@georelay/core'
import { GeoClient } from '@georelay/client'
import { TestCluster, connectProvider, destroyProvider, on, waitForText, waitSynced, waitUntil } from '@georelay/testkit'

const RULES = [{ match: 'billing/**', mode: 'active-passive' as const, primary: 'us-east', standby: ['eu-west'], standbyReads: true }]

describe('readable standbys', () => {
  let cluster: TestCluster
  const providers: WebsocketProvider[] = []
  const clients: GeoClient[] = []
  afterEach(async () => {
    for (const provider of providers.splice(0)) destroyProvider(provider)
    for (const client of clients.splice(0)) await client.close()
    await cluster?.close()
  })

  it('serves a standby\'s sessions there and has the writer store their writes', async () => {
    cluster = await TestCluster.start({ regions: ['us-east', 'eu-west'], delayMs: () => 10, config: { namespaces: RULES } })
    await waitUntil([on(cluster.relay('eu-west'), 'peers')], () => cluster.relay('eu-west').peers().every(p => p.state === 'up'), { what: 'eu-west linked' })
    const writer = connectProvider(cluster.url('us-east'), 'billing/1')
    providers.push(writer)
    await waitSynced(writer)
    writer.doc.getText('t').insert(0, 'invoice')

    // The SDK, knowing only eu-west: not redirected; reads there; writes acknowledged at majority.
    const client = new GeoClient({ regions: [{ name: 'eu-west', url: cluster.url('eu-west') }], probeIntervalMs: 0 })
    clients.push(client)
    const doc = new Y.Doc()
    const session = client.open('billing/1', doc, { ack: 'majority' })
    await session.synced
    await waitForText(doc, text => text === 'invoice', 'the standby\'s session to read the document')
    expect(client.region).toBe('eu-west')
    doc.getText('t').insert(7, ' paid')
    await session.flush(10_000)
    await waitForText(writer.doc, text => text === 'invoice paid', 'the writer\'s client to get the standby\'s write')
    // us-east stored it as its own write; eu-west holds it from us-east's log, never as its own.
    const hasDoc = (entries: readonly { docName: string }[]): boolean => entries.some(e => e.docName === 'billing/1')
    expect(hasDoc((await cluster.store('eu-west').readOrigin(LOCAL_ORIGIN, 0, 1000)).entries)).toBe(false)
    expect(hasDoc((await cluster.store('eu-west').readOrigin('us-east', 0, 1000)).entries)).toBe(true)

    // A stock y-websocket client at the standby is served too, and its edits reach the writer.
    const stock = connectProvider(cluster.url('eu-west'), 'billing/1')
    providers.push(stock)
    await waitSynced(stock)
    await waitForText(stock.doc, text => text === 'invoice paid', 'the stock client to read at the standby')
    stock.doc.getText('t').insert(0, 'final ')
    await waitForText(writer.doc, text => text === 'final invoice paid', 'the stock client\'s write to reach the writer')
    expect(stock.wsconnected).toBe(true)
    expect(hasDoc((await cluster.store('eu-west').readOrigin(LOCAL_ORIGIN, 0, 1000)).entries)).toBe(false)
  })
})
