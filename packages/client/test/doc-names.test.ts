/**
 * One document-name rule for the SDK and stock y-websocket providers (docs/protocol.md, document
 * names): every name the relay accepts reaches the same document through both, given to each as
 * it is; the names a URL would read otherwise are refused by the SDK, and a provider's form of
 * them either reaches the document the table says or is refused with a readable reason.
 */
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals'
import * as Y from 'yjs'
import { GeoClient } from '@georelay/client'
import type { Relay } from '@georelay/relay'
import { connectProvider, destroyProvider, nextEvent, readStoredDoc, startTestRelay, storeOf, waitForText } from '@georelay/testkit'

/** Names that both clients take as they are. */
const SHARED = [
  'notes/plain', 'café/ñ menu', 'a b', '100%/x', '50%off', '%', '/leading', 'a//b', 'x|y^z', 'q"<>`{}', 'emoji/😀',
  'notes/...', 'a..b', '.hidden', "it's [1]", 'a+b=c&d', 'semi;colon', 'tilde~@!$*,',
]

/** What a stock provider's room reaches, where a URL reads it otherwise; the SDK refuses each. */
const PROVIDER_READS: [room: string, docName: string][] = [
  ['notes/a%2Fb', 'notes/a/b'],
  ['caf%C3%A9', 'café'],
  ['a\\b', 'a/b'],
  ['notes/../x', 'x'],
  ['notes/./y', 'notes/y'],
]

const bothWrite = async (relay: Relay, client: GeoClient, room: string, docName: string): Promise<void> => {
  const sdkDoc = new Y.Doc()
  const session = client.open(docName, sdkDoc)
  const provider = connectProvider(relay.url, room)
  try {
    sdkDoc.getText('t').insert(0, 'sdk ')
    provider.doc.getText('t').insert(0, 'provider ')
    const both = (text: string): boolean => text.includes('sdk') && text.includes('provider')
    await waitForText(sdkDoc, both, `the SDK's "${docName}" to hold the provider's edit`)
    await waitForText(provider.doc, both, `the provider's "${room}" to hold the SDK's edit`)
    await session.flush()
    expect((await readStoredDoc(storeOf(relay), docName)).getText('t').toString()).toMatch(/sdk|provider/)
  } finally {
    session.close()
    destroyProvider(provider)
  }
}

describe('document names through the SDK and a stock y-websocket provider', () => {
  let relay: Relay
  let client: GeoClient
  beforeAll(async () => {
    relay = await startTestRelay()
    client = new GeoClient({ regions: [{ name: 'test', url: relay.url }], probeIntervalMs: 0 })
  })
  afterAll(async () => {
    await client.close()
    await relay.close()
  })

  it.each(SHARED)('%j is one document to both', async name => {
    await bothWrite(relay, client, name, name)
    const stored = await readStoredDoc(storeOf(relay), name)
    expect(stored.getText('t').toString()).toMatch(/^(sdk provider|provider sdk) $/)
  })

  it.each(PROVIDER_READS)('a provider\'s %j reaches %j; the SDK refuses it', async (room, docName) => {
    expect(() => client.open(room, new Y.Doc())).toThrow(new RegExp(`^open\\(${JSON.stringify(room).replace(/[\\^$.*+?()[\]{}|]/g, '\\$&')}\\): the document name`))
    await bothWrite(relay, client, room, docName)
  })

  it('refuses "?" in a name: the SDK at open, and a provider\'s socket with a readable 4400', async () => {
    expect(() => client.open('notes/?q', new Y.Doc())).toThrow(/holds "\?", which a URL reads as the start of its query/)
    const provider = connectProvider(relay.url, 'notes/?q')
    try {
      const [event] = await nextEvent<[{ code: number, reason: string }]>(provider, 'connection-close', { what: 'the relay to close the provider' })
      expect(event.code).toBe(4400)
      expect(event.reason).toMatch(/did the document name hold "\?"\? Names may not/)
    } finally {
      destroyProvider(provider)
    }
    expect((await storeOf(relay).read('notes/')).log).toEqual([])
  })

  it('refuses "#" in a name: the SDK at open; a provider cannot even be made', () => {
    expect(() => client.open('notes/#frag', new Y.Doc())).toThrow(/holds "#", which a URL reads as the start of its fragment/)
    expect(() => connectProvider(relay.url, 'notes/#frag')).toThrow(/fragment/)
  })
})
