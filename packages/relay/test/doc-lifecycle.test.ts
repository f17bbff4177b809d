import { afterEach, describe, expect, it } from '@jest/globals'
import type { WebsocketProvider } from 'y-websocket'
import { MemoryStore } from '@georelay/core'
import type { Relay } from '@georelay/relay'
import { connectProvider, destroyProvider, nextEvent, startTestRelay, waitForText, waitSynced } from '@georelay/testkit'

describe('documents in memory', () => {
  let relay: Relay
  const providers: WebsocketProvider[] = []
  afterEach(async () => {
    for (const provider of providers.splice(0)) destroyProvider(provider)
    await relay.close()
  })

  it('load on first use, are released when idle, and load again from the store', async () => {
    const store = new MemoryStore()
    relay = await startTestRelay({ store, config: { idleReleaseMs: 50 } })
    const loaded = nextEvent<[string]>(relay, 'loaded', { what: 'the document to load' })
    const first = connectProvider(relay.url, 'idle/doc')
    providers.push(first)
    expect(await loaded).toEqual(['idle/doc'])
    await waitSynced(first)
    first.doc.getText('t').insert(0, 'kept')
    const second = connectProvider(relay.url, 'idle/doc')
    providers.push(second)
    await waitForText(second.doc, t => t === 'kept', 'the second client to see the edit')
    expect(relay.loadedDocuments).toBe(1)

    const released = nextEvent<[string]>(relay, 'released', { what: 'the idle document to be released' })
    for (const provider of providers.splice(0)) destroyProvider(provider)
    expect(await released).toEqual(['idle/doc'])
    expect(relay.loadedDocuments).toBe(0)

    const again = connectProvider(relay.url, 'idle/doc')
    providers.push(again)
    await waitSynced(again)
    expect(again.doc.getText('t').toString()).toBe('kept')
  })

  it('stay loaded while a client is connected', async () => {
    relay = await startTestRelay({ config: { idleReleaseMs: 20 } })
    const a = connectProvider(relay.url, 'busy/doc')
    const b = connectProvider(relay.url, 'busy/doc')
    providers.push(a, b)
    await Promise.all([waitSynced(a), waitSynced(b)])
    const released = nextEvent<[string]>(relay, 'released', { what: 'release after the last client left' })
    destroyProvider(a)
    providers.splice(providers.indexOf(a), 1)
    // b still writes through the same in-memory document.
    b.doc.getText('t').insert(0, 'still here')
    const c = connectProvider(relay.url, 'busy/doc')
    providers.push(c)
    await waitForText(c.doc, t => t === 'still here', 'c to see b\'s edit')
    destroyProvider(b)
    destroyProvider(c)
    providers.splice(0)
    expect(await released).toEqual(['busy/doc'])
  })
})
