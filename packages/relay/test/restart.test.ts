import { afterEach, beforeEach, describe, expect, it } from '@jest/globals'
import fs from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import type { WebsocketProvider } from 'y-websocket'
import { connectProvider, destroyProvider, type RelayProcess, startRelayProcess, waitForText, waitSynced } from '@georelay/testkit'

describe('a restarted relay serves what it had', () => {
  let dataDir: string
  let relay: RelayProcess | null = null
  const providers: WebsocketProvider[] = []
  const start = async (): Promise<RelayProcess> => {
    relay = await startRelayProcess({ args: ['--region', 'eu-west', '--port', '0', '--data', dataDir] })
    return relay
  }
  const connect = (url: string, name: string): WebsocketProvider => {
    const provider = connectProvider(url, name)
    providers.push(provider)
    return provider
  }

  beforeEach(() => { dataDir = fs.mkdtempSync(path.join(os.tmpdir(), 'georelay-restart-')) })
  afterEach(async () => {
    for (const provider of providers.splice(0)) destroyProvider(provider)
    await relay?.kill9()
    fs.rmSync(dataDir, { recursive: true, force: true })
  })

  it('after a clean stop (SIGTERM)', async () => {
    const first = await start()
    const writer = connect(first.url, 'notes/clean')
    await waitSynced(writer)
    for (let i = 0; i < 50; i++) writer.doc.getText('t').insert(0, `${i};`)
    const expected = writer.doc.getText('t').toString()
    const reader = connect(first.url, 'notes/clean')
    await waitForText(reader.doc, t => t === expected, 'a reader to get all 50 edits')
    expect(await first.stop()).toBe(0)

    const second = await start()
    const after = connect(second.url, 'notes/clean')
    await waitSynced(after)
    expect(after.doc.getText('t').toString()).toBe(expected)
  })

  it('after kill -9: everything another client had received', async () => {
    const first = await start()
    const writer = connect(first.url, 'notes/crash')
    const reader = connect(first.url, 'notes/crash')
    await Promise.all([waitSynced(writer), waitSynced(reader)])
    // The relay forwards an update only after appending it durably, so whatever the reader
    // has seen must survive a crash that gives the relay no chance to flush.
    for (let i = 0; i < 200; i++) writer.doc.getText('t').insert(i % 7, String.fromCharCode(97 + (i % 26)))
    const seen = writer.doc.getText('t').toString()
    await waitForText(reader.doc, t => t === seen, 'the reader to receive all 200 edits')
    expect(await first.kill9()).toBe('SIGKILL')

    const second = await start()
    const after = connect(second.url, 'notes/crash')
    await waitSynced(after)
    expect(after.doc.getText('t').toString()).toBe(seen)
  })

  it('across compactions: a log folded into snapshots restarts intact', async () => {
    relay = await startRelayProcess({ args: ['--region', 'eu-west', '--port', '0', '--data', dataDir], env: {} })
    const writer = connect(relay.url, 'notes/compacted')
    await waitSynced(writer)
    // 1,200 updates cross the default 500-update compaction threshold twice.
    for (let i = 0; i < 1200; i++) writer.doc.getText('t').insert(writer.doc.getText('t').length, String(i % 10))
    const expected = writer.doc.getText('t').toString()
    const reader = connect(relay.url, 'notes/compacted')
    await waitForText(reader.doc, t => t === expected, 'the reader to receive 1,200 edits')
    expect(await relay.kill9()).toBe('SIGKILL')
    const second = await start()
    const after = connect(second.url, 'notes/compacted')
    await waitSynced(after)
    expect(after.doc.getText('t').toString()).toBe(expected)
  })
})
