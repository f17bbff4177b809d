import fs from 'node:fs'
import path from 'node:path'
import { afterEach, describe, expect, it } from '@jest/globals'
import WebSocket from 'ws'
import type { WebsocketProvider } from 'y-websocket'
import * as Y from 'yjs'
import { decodePeerMessage, encodePeerMessage } from '@georelay/core'
import { GeoClient } from '@georelay/client'
import { type LogLevel, streamLogger } from '@georelay/relay'
import {
  TEST_MESH_SECRET, TestCluster, capturedPayloads, connectProvider, destroyProvider, nextEvent, on, waitSynced,
  waitUntil,
} from '@georelay/testkit'

const REGIONS = ['us-east', 'eu-west', 'eu-central']
const EU_ONLY = [{ match: 'eu/**', regions: ['eu-west', 'eu-central'] }]
/** Unique strings that must never reach us-east; and one that must (so the search could find it). */
const MARKER = 'MARKER-7c1f0e9a-residency-content'
const AWARENESS_MARKER = 'MARKER-presence-5d2b'
const EU_DOC = 'eu/patients/42'
const SHARED_MARKER = 'SHARED-3a9e-travels-everywhere'

const filesUnder = (dir: string): string[] => fs.readdirSync(dir, { withFileTypes: true })
  .flatMap(entry => entry.isDirectory() ? filesUnder(path.join(dir, entry.name)) : [path.join(dir, entry.name)])

const httpOf = (wsUrl: string, route: string): string => wsUrl.replace(/^ws/, 'http') + route

describe('data residency', () => {
  let cluster: TestCluster
  const providers: WebsocketProvider[] = []
  const closers: (() => unknown)[] = []
  const connect = (region: string, doc: string): WebsocketProvider => {
    const provider = connectProvider(cluster.url(region), doc)
    providers.push(provider)
    return provider
  }

  afterEach(async () => {
    for (const provider of providers.splice(0)) destroyProvider(provider)
    for (const close of closers.splice(0)) await close()
    await cluster?.close()
  })

  it('an eu/* document written in eu-west leaves no byte in us-east: data directory, peer traffic, logs, metrics', async () => {
    const logs = new Map<string, string[]>(REGIONS.map(r => [r, []]))
    cluster = await TestCluster.start({
      regions: REGIONS,
      store: 'sqlite',
      wan: { capture: true },
      // Small compaction thresholds, so snapshots and state-vector catch-ups run too.
      config: { namespaces: EU_ONLY, storage: { compactAfterUpdates: 4, compactAfterBytes: 1 << 20 } },
      logger: region => streamLogger(line => logs.get(region)?.push(line), 'debug' as LogLevel),
    })
    const writer = connect('eu-west', EU_DOC)
    const euReader = connect('eu-central', EU_DOC)
    const sharedWriter = connect('eu-west', 'shared/1')
    const usReader = connect('us-east', 'shared/1')
    await Promise.all([writer, euReader, sharedWriter, usReader].map(p => waitSynced(p)))
    writer.awareness.setLocalStateField('user', { name: AWARENESS_MARKER })
    for (let i = 0; i < 10; i++) writer.doc.getText('t').insert(0, `${MARKER}-${i} `)
    sharedWriter.doc.getText('t').insert(0, SHARED_MARKER)

    // A cut and heal of eu-west ↔ us-east: the link comes up again and reconciles restricted documents.
    cluster.wan.cut('eu-west', 'us-east')
    await waitUntil([on(cluster.relay('eu-west'), 'peers')], () => cluster.relay('eu-west').peers().find(p => p.region === 'us-east')?.state !== 'up', { what: 'the link to go down' })
    for (let i = 10; i < 14; i++) writer.doc.getText('t').insert(0, `${MARKER}-${i} `)
    cluster.wan.heal('eu-west', 'us-east')

    await waitUntil([on(euReader.doc, 'update')], () => euReader.doc.getText('t').toString().includes(`${MARKER}-13`), { what: 'eu-central to get the eu document' })
    await waitUntil([on(euReader.awareness, 'change')], () => [...euReader.awareness.getStates().values()].some(s => JSON.stringify(s).includes(AWARENESS_MARKER)), { what: 'eu-central to see the eu presence' })
    await waitUntil([on(usReader.doc, 'update')], () => usReader.doc.getText('t').toString().includes(SHARED_MARKER), { what: 'us-east to get the shared document' })
    // Quiescence: us-east holds every eu-west entry (its marks passed the eu document's entries too).
    const euWest = cluster.relay('eu-west')
    await waitUntil([on(euWest, 'peers')], () => euWest.peers().every(p => p.pendingUpdates === 0), { what: 'every region to acknowledge eu-west\'s entries' })

    const needles = [MARKER, AWARENESS_MARKER, EU_DOC]
    const leaks = (where: string, bytes: Buffer): string[] => needles.filter(n => bytes.includes(n)).map(n => `${n} in ${where}`)

    // Peer traffic, decoded (unmasked, inflated) connection by connection, both directions.
    const traffic = (from: string, to: string): Buffer => capturedPayloads(cluster.wan.captureByConnection(from, to))
    const toUs = Buffer.concat([traffic('eu-west', 'us-east'), traffic('eu-central', 'us-east')])
    const fromUs = Buffer.concat([traffic('us-east', 'eu-west'), traffic('us-east', 'eu-central')])
    const euToEu = Buffer.concat([traffic('eu-west', 'eu-central'), traffic('eu-central', 'eu-west')])
    // us-east's data directory (SQLite file, WAL), its logs and its metrics.
    const dataDir = path.join(cluster.dataDir, 'us-east')
    const files = filesUnder(dataDir)
    const data = Buffer.concat(files.map(f => fs.readFileSync(f)))
    const usLogs = Buffer.from((logs.get('us-east') ?? []).join('\n'))
    const metrics = Buffer.from(await (await fetch(httpOf(cluster.url('us-east'), '/metrics'))).text())

    expect([
      ...leaks('traffic to us-east', toUs), ...leaks('traffic from us-east', fromUs),
      ...leaks('us-east data', data), ...leaks('us-east logs', usLogs), ...leaks('us-east metrics', metrics),
    ]).toEqual([])
    // The search would have found them: the content crossed eu-west → eu-central, and the shared
    // document's content reached us-east's traffic and data.
    expect(euToEu.includes(`${MARKER}-13`)).toBe(true)
    expect(euToEu.includes(AWARENESS_MARKER)).toBe(true)
    expect(toUs.includes(SHARED_MARKER)).toBe(true)
    expect(files.length).toBeGreaterThan(0)
    expect(await cluster.store('us-east').listDocs()).toEqual(['shared/1'])
    // Nothing was refused either: the eu document was never sent to us-east.
    expect(metrics.toString()).not.toMatch(/georelay_residency_refused_total\{/)
    process.stdout.write(`residency capture: to us-east ${toUs.length} B, from us-east ${fromUs.length} B decoded; eu-west↔eu-central ${euToEu.length} B; us-east data ${data.length} B in ${files.length} files, logs ${usLogs.length} B, metrics ${metrics.length} B\n`)
  })

  it('a client configured for us-east opening an eu/* document ends up on eu-west and syncs; a stock client gets 4307', async () => {
    cluster = await TestCluster.start({ regions: REGIONS, config: { namespaces: EU_ONLY } })
    const writer = connect('eu-west', EU_DOC)
    await waitSynced(writer)
    writer.doc.getText('t').insert(0, 'kept in europe')

    const client = new GeoClient({ regions: [{ name: 'us-east', url: cluster.url('us-east') }], probeIntervalMs: 0 })
    closers.push(() => client.close())
    const doc = new Y.Doc()
    const session = client.open(EU_DOC, doc)
    await session.synced
    await waitUntil([on(doc, 'update')], () => doc.getText('t').toString() === 'kept in europe', { what: 'the client to see the eu document' })
    expect(client.region).toBe('eu-west')
    doc.getText('t').insert(0, '+ ')
    await session.flush(5000)
    await waitUntil([on(writer.doc, 'update')], () => writer.doc.getText('t').toString() === '+ kept in europe', { what: 'the edit to reach eu-west' })
    expect(await cluster.store('us-east').listDocs()).toEqual([])

    // A stock y-websocket client cannot follow, but is told where to go.
    const ws = new WebSocket(`${cluster.url('us-east')}/${EU_DOC}`)
    const [code, reason] = await nextEvent(ws, 'close', { what: 'us-east to close the stock client' }) as [number, Buffer]
    expect(code).toBe(4307)
    expect(reason.toString()).toMatch(new RegExp(`^eu-(west|central) ws://127\\.0\\.0\\.1:\\d+ `))
  })

  it('relays whose rules differ report it loudly and send each document only where both allow it', async () => {
    const logs: string[] = []
    // us-east keeps eu/** out of itself; eu-west has no rules, so by its own it could send anything anywhere.
    cluster = await TestCluster.start({
      regions: ['us-east', 'eu-west'],
      wan: { capture: true },
      configFor: region => region === 'us-east' ? { namespaces: [{ match: 'eu/**', regions: ['eu-west'] }, { match: 'us/**', regions: ['us-east'] }] } : {},
      logger: region => streamLogger(line => logs.push(`${region} ${line}`)),
    })
    const eu = connect('eu-west', EU_DOC)
    const us = connect('us-east', 'us/private')
    const sharedEu = connect('eu-west', 'shared/1')
    const sharedUs = connect('us-east', 'shared/1')
    await Promise.all([eu, us, sharedEu, sharedUs].map(p => waitSynced(p)))
    eu.doc.getText('t').insert(0, MARKER)
    us.doc.getText('t').insert(0, `${MARKER}-us`)
    sharedEu.doc.getText('t').insert(0, SHARED_MARKER)
    await waitUntil([on(sharedUs.doc, 'update')], () => sharedUs.doc.getText('t').toString() === SHARED_MARKER, { what: 'the shared document to cross' })
    const euWest = cluster.relay('eu-west')
    await waitUntil([on(euWest, 'peers')], () => euWest.peers().every(p => p.pendingUpdates === 0), { what: 'us-east to acknowledge eu-west\'s entries' })

    for (const [region, peer] of [['eu-west', 'us-east'], ['us-east', 'eu-west']] as const) {
      const regions = await (await fetch(httpOf(cluster.url(region), '/v1/regions'))).json() as {
        peers: { region: string, policy: { agreement: string } }[]
        regions: { name: string, policy?: string }[]
      }
      expect(regions.peers.find(p => p.region === peer)?.policy.agreement).toBe('mismatch')
      // Also in the regions anyone may see.
      expect(regions.regions.find(r => r.name === peer)?.policy).toBe('mismatch')
      expect(regions.regions.find(r => r.name === region)?.policy).toBeUndefined()
      const metrics = await (await fetch(httpOf(cluster.url(region), '/metrics'))).text()
      expect(metrics).toMatch(new RegExp(`georelay_policy_mismatch\\{peer="${peer}",region="${region}"\\} 1`))
    }
    expect(logs.filter(line => /namespace rules differ/.test(line)).map(line => line.split(' ')[0]).sort()).toEqual(['eu-west', 'us-east'])
    // Nothing crossed that either side's rules exclude.
    const all = Buffer.concat([
      capturedPayloads(cluster.wan.captureByConnection('eu-west', 'us-east')),
      capturedPayloads(cluster.wan.captureByConnection('us-east', 'eu-west')),
    ])
    expect([MARKER, EU_DOC, 'us/private'].filter(n => all.includes(n))).toEqual([])
    expect(all.includes(SHARED_MARKER)).toBe(true)
    expect(await cluster.store('us-east').listDocs()).toEqual(expect.not.arrayContaining([EU_DOC]))
    expect(await cluster.store('eu-west').listDocs()).toEqual(expect.not.arrayContaining(['us/private']))
  })

  it('refuses what a misconfigured peer sends of a document it may not hold: nothing stored, counted, logged without the name', async () => {
    const logs: string[] = []
    cluster = await TestCluster.start({
      regions: ['us-east', 'eu-west'],
      config: { namespaces: [{ match: 'eu/**', regions: ['eu-west'] }] },
      logger: region => streamLogger(line => { if (region === 'us-east') logs.push(line) }),
    })
    await cluster.stopRegion('eu-west')
    // A peer that ignores the rules: it dials us-east as eu-west and pushes the eu document.
    const ws = new WebSocket(`${cluster.url('us-east')}/v1/peer`, { headers: { authorization: `Bearer ${TEST_MESH_SECRET}`, 'x-georelay-region': 'eu-west' } })
    closers.push(() => ws.terminate())
    const replies: string[] = []
    ws.on('message', (data: Buffer) => replies.push(decodePeerMessage(new Uint8Array(data)).type))
    await nextEvent(ws, 'open', { what: 'the rogue peer link to open' })
    const doc = new Y.Doc()
    doc.getText('t').insert(0, MARKER)
    const update = Y.encodeStateAsUpdate(doc)
    // A link handles its messages in order: the batch's ack comes after the others were handled.
    ws.send(encodePeerMessage({ type: 'awareness', docName: EU_DOC, origin: 'eu-west', update: new Uint8Array([0]) }))
    ws.send(encodePeerMessage({ type: 'catch-up', docName: EU_DOC, update }))
    ws.send(encodePeerMessage({ type: 'batch', entries: [{ docName: EU_DOC, origin: 'eu-west', originSeq: 1, update }], upTo: { 'eu-west': 1 } }))
    await waitUntil([on(ws, 'message')], () => replies.includes('ack'), { what: 'us-east to acknowledge the batch' })
    const metrics = await (await fetch(httpOf(cluster.url('us-east'), '/metrics'))).text()
    expect(metrics).toMatch(/georelay_residency_refused_total\{peer="eu-west",kind="awareness",region="us-east"\} 1/)
    expect(metrics).toMatch(/georelay_residency_refused_total\{peer="eu-west",kind="update",region="us-east"\} 1/)
    expect(metrics).toMatch(/georelay_residency_refused_total\{peer="eu-west",kind="catch-up",region="us-east"\} 1/)
    expect(await cluster.store('us-east').listDocs()).toEqual([])
    expect(logs.some(line => /refused a document from a peer/.test(line))).toBe(true)
    expect(logs.filter(line => line.includes(EU_DOC) || line.includes(MARKER))).toEqual([])
  })
})
