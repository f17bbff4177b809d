/**
 * Erasure (DELETE /v1/docs/{name}) across three regions, one of them down during the delete:
 * every region purges the document and confirms, clients are closed with 4410, reads and
 * writes get 410, the returning region applies the tombstone before it serves the document,
 * and afterwards no data directory, log or metric of any region holds the content.
 */
import fs from 'node:fs'
import path from 'node:path'
import { afterEach, describe, expect, it } from '@jest/globals'
import WebSocket from 'ws'
import * as Y from 'yjs'
import type { WebsocketProvider } from 'y-websocket'
import { type LogLevel, streamLogger } from '@georelay/relay'
import {
  TestCluster, type TestHocuspocusProvider, connectHocuspocus, connectProvider, destroyHocuspocus, destroyProvider,
  every, nextEvent, on, readStoredDoc, waitSynced, waitUntil,
} from '@georelay/testkit'

const REGIONS = ['us-east', 'eu-west', 'ap-south']
const MARKER = 'MARKER-erasure-4c9e1b77'
const DOC = 'gdpr/subject-17'

const filesUnder = (dir: string): string[] => fs.readdirSync(dir, { withFileTypes: true })
  .flatMap(entry => entry.isDirectory() ? filesUnder(path.join(dir, entry.name)) : [path.join(dir, entry.name)])
const httpOf = (wsUrl: string, route: string): string => wsUrl.replace(/^ws/, 'http') + route
const docUrl = (wsUrl: string): string => httpOf(wsUrl, `/v1/docs/${encodeURIComponent(DOC)}`)

const textIn = async (cluster: TestCluster, region: string): Promise<string> =>
  (await readStoredDoc(cluster.store(region), DOC)).getText('t').toString()

interface Answer { status: number, body: Record<string, unknown> }
const call = async (url: string, init: RequestInit = {}): Promise<Answer> => {
  const res = await fetch(url, init)
  const text = await res.text()
  return { status: res.status, body: (res.headers.get('content-type') ?? '').startsWith('application/json') ? JSON.parse(text) as Record<string, unknown> : { text } }
}

describe('erasure', () => {
  let cluster: TestCluster
  const providers: WebsocketProvider[] = []
  const tiptaps: TestHocuspocusProvider[] = []

  afterEach(async () => {
    for (const provider of providers.splice(0)) destroyProvider(provider)
    for (const provider of tiptaps.splice(0)) destroyHocuspocus(provider)
    await cluster?.close()
  })

  it('erases a document in every region, one of them down during the delete, and leaves no trace of it', async () => {
    const logs = new Map<string, string[]>(REGIONS.map(r => [r, []]))
    cluster = await TestCluster.start({
      regions: REGIONS,
      store: 'sqlite',
      delayMs: () => 10,
      // Compaction runs too, so that snapshots (and what compaction deleted) are erased as well.
      config: { storage: { compactAfterUpdates: 4, compactAfterBytes: 1 << 20 } },
      logger: region => streamLogger(line => logs.get(region)?.push(line), 'debug' as LogLevel),
    })
    const writer = connectProvider(cluster.url('us-east'), DOC)
    const reader = connectProvider(cluster.url('eu-west'), DOC)
    providers.push(writer, reader)
    await Promise.all([waitSynced(writer), waitSynced(reader)])
    for (let i = 0; i < 12; i++) writer.doc.getText('t').insert(0, `${MARKER}-${i} `)
    const tiptap = connectHocuspocus(4, `${cluster.url('eu-west')}/v1/hocuspocus`, DOC)
    tiptaps.push(tiptap)
    for (const region of REGIONS) {
      await waitUntil([every(50)], async () => (await textIn(cluster, region)).includes(`${MARKER}-11`), { what: `${region} to hold the document` })
    }
    await waitUntil([on(tiptap, 'synced')], () => tiptap.synced, { what: 'the Tiptap provider to sync' })
    // The search below would find the content: it is in ap-south's files now.
    const before = filesUnder(path.join(cluster.dataDir, 'ap-south')).map(file => fs.readFileSync(file))
    expect(before.some(bytes => bytes.includes(MARKER))).toBe(true)

    await cluster.stopRegion('ap-south')
    const writerClosed = nextEvent(writer, 'connection-close', { what: 'the us-east client to be closed' })
    const readerClosed = nextEvent(reader, 'connection-close', { what: 'the eu-west client to be closed' })
    const tiptapClosed = nextEvent(tiptap, 'close', { what: 'the Tiptap provider to hear its document closed' })
    const deleted = await call(docUrl(cluster.url('us-east')), { method: 'DELETE' })
    expect(deleted.status).toBe(202)
    expect(deleted.body).toMatchObject({ deleted: DOC, origin: 'us-east', complete: false })
    expect((deleted.body.regions as Record<string, string>)['us-east']).toBe('erased')
    expect((deleted.body.regions as Record<string, string>)['ap-south']).toBe('pending')

    // Every client of the document is closed with 4410, stock and Hocuspocus alike.
    for (const closed of [writerClosed, readerClosed]) {
      const [event] = await closed as [{ code: number }]
      expect(event.code).toBe(4410)
    }
    const [{ event }] = await tiptapClosed as [{ event: { reason: string } }]
    expect(event.reason).toMatch(/was deleted/)
    for (const provider of providers) provider.shouldConnect = false

    // eu-west applied the tombstone and confirmed; reads and writes get 410 wherever it is known.
    const progress = async (): Promise<Record<string, string>> =>
      (await call(docUrl(cluster.url('us-east')), { method: 'DELETE' })).body.regions as Record<string, string>
    await waitUntil([every(50)], async () => (await progress())['eu-west'] === 'erased', { what: 'eu-west to confirm' })
    const gone = await call(docUrl(cluster.url('eu-west')))
    expect(gone.status).toBe(410)
    expect(gone.body).toMatchObject({ error: 'ERR_DELETED', erasure: { origin: 'us-east' } })
    const update = (() => { const d = new Y.Doc(); d.getText('t').insert(0, 'again'); return Y.encodeStateAsUpdate(d) })()
    expect((await call(docUrl(cluster.url('us-east')), { method: 'POST', body: Buffer.from(update) })).status).toBe(410)
    const late = new WebSocket(`${cluster.url('eu-west')}/${DOC}`)
    const [code] = await nextEvent(late, 'close', { what: 'a new client to be refused' }) as [number]
    expect(code).toBe(4410)
    expect(await textIn(cluster, 'us-east')).toBe('')
    expect(await textIn(cluster, 'eu-west')).toBe('')

    // ap-south returns: before it serves the document it hears of the erasure from its peers.
    await cluster.startRegion('ap-south')
    const returning = connectProvider(cluster.url('ap-south'), DOC)
    providers.push(returning)
    const [returned] = await nextEvent(returning, 'connection-close', { what: 'ap-south to refuse the erased document' }) as [{ code: number }]
    expect(returned.code).toBe(4410)
    returning.shouldConnect = false
    expect(returning.doc.getText('t').toString()).toBe('')
    await waitUntil([every(50)], async () => (await call(docUrl(cluster.url('us-east')), { method: 'DELETE' })).status === 200, { what: 'every region to confirm' })
    const done = await call(docUrl(cluster.url('us-east')), { method: 'DELETE' })
    expect(done.body).toMatchObject({ complete: true, regions: { 'us-east': 'erased', 'eu-west': 'erased', 'ap-south': 'erased' } })

    // No trace: data directories (SQLite files and WAL), logs and metrics of every region.
    const leaks: string[] = []
    for (const region of REGIONS) {
      const files = filesUnder(path.join(cluster.dataDir, region))
      for (const file of files) if (fs.readFileSync(file).includes(MARKER)) leaks.push(`${region}: ${path.basename(file)}`)
      if ((logs.get(region) ?? []).join('\n').includes(MARKER)) leaks.push(`${region}: logs`)
      if ((await (await fetch(httpOf(cluster.url(region), '/metrics'))).text()).includes(MARKER)) leaks.push(`${region}: metrics`)
      expect(files.length).toBeGreaterThan(0)
    }
    expect(leaks).toEqual([])
    expect(await cluster.store('ap-south').listDocs()).toEqual([])
  }, 30_000)
})
