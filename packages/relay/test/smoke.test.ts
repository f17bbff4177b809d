import { afterAll, describe, expect, it } from '@jest/globals'
import fs from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import * as Y from 'yjs'
import type { WebsocketProvider } from 'y-websocket'
import { SqliteStore } from '@georelay/store-sqlite'
import type { Relay } from '@georelay/relay'
import { connectProvider, destroyProvider, startTestRelay, waitForText, waitSynced } from '@georelay/testkit'

const DOCS = 100
const CLIENTS = 50
const DOCS_PER_CLIENT = 4 // every document ends up with two clients

describe('smoke: 100 documents, 50 clients', () => {
  const dataDir = fs.mkdtempSync(path.join(os.tmpdir(), 'georelay-smoke-'))
  let relay: Relay
  const providers: { client: number, doc: number, provider: WebsocketProvider }[] = []

  afterAll(async () => {
    for (const { provider } of providers) destroyProvider(provider)
    await relay.close()
    fs.rmSync(dataDir, { recursive: true, force: true })
  })

  it('every document converges on the durable store', async () => {
    // Each stock provider adds a process 'exit' listener; 200 of them in one process is the point.
    process.setMaxListeners(CLIENTS * DOCS_PER_CLIENT + 20)
    relay = await startTestRelay({ store: new SqliteStore(dataDir) })
    for (let client = 0; client < CLIENTS; client++) {
      for (let k = 0; k < DOCS_PER_CLIENT; k++) {
        const doc = (client * 2 + k) % DOCS
        providers.push({ client, doc, provider: connectProvider(relay.url, `smoke/${doc}`) })
      }
    }
    await Promise.all(providers.map(p => waitSynced(p.provider, 30_000)))
    for (const { client, doc, provider } of providers) provider.doc.getText('t').insert(0, `[c${client}d${doc}]`)

    const markersOf = new Map<number, string[]>()
    for (const { client, doc } of providers) markersOf.set(doc, [...(markersOf.get(doc) ?? []), `[c${client}d${doc}]`])
    expect(markersOf.size).toBe(DOCS)
    await Promise.all(providers.map(({ doc, provider }) =>
      waitForText(provider.doc, text => (markersOf.get(doc) ?? []).every(m => text.includes(m)), `smoke/${doc} to hold every client's edit`, 't', 30_000)))

    // Both replicas of each document are identical, and so is a fresh reader's.
    const byDoc = new Map<number, WebsocketProvider[]>()
    for (const { doc, provider } of providers) byDoc.set(doc, [...(byDoc.get(doc) ?? []), provider])
    for (const [, replicas] of byDoc) {
      const [first, ...rest] = replicas as [WebsocketProvider, ...WebsocketProvider[]]
      for (const other of rest) expect(Y.encodeStateAsUpdate(other.doc)).toEqual(Y.encodeStateAsUpdate(first.doc))
    }
    const reader = connectProvider(relay.url, 'smoke/7')
    providers.push({ client: -1, doc: 7, provider: reader })
    await waitSynced(reader)
    expect(reader.doc.getText('t').toString()).toBe(byDoc.get(7)?.[0]?.doc.getText('t').toString())
  })
})
