import { afterEach, describe, expect, it } from '@jest/globals'
import { spawn } from 'node:child_process'
import fs from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import { fileURLToPath } from 'node:url'
import * as Y from 'yjs'
import { GeoClient } from '@georelay/client'
import type { Relay } from '@georelay/relay'
import { connectProvider, destroyProvider, nextEvent, startTestRelay, waitForText, waitSynced } from '@georelay/testkit'

const CLIENT_DIST = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../dist/index.js')

/** A Node app that edits while no relay is reachable, says when its edits are kept, then waits to be killed. */
const CHILD = (store: string) => `
import * as Y from 'yjs'
import { GeoClient } from ${JSON.stringify(CLIENT_DIST)}
const client = new GeoClient({ regions: [{ name: 'nowhere', url: 'ws://127.0.0.1:9' }], offline: ${JSON.stringify(`file:${store}`)}, probeIntervalMs: 0 })
const doc = new Y.Doc()
const session = client.open('offline/notes', doc)
for (let i = 0; i < 20; i++) doc.getText('t').insert(doc.getText('t').length, 'line ' + i + '\\n')
await session.whenKept()
process.stdout.write('KEPT ' + JSON.stringify(doc.getText('t').toString()) + '\\n')
setInterval(() => {}, 1000)
`

describe('offline edits', () => {
  let dir: string
  let relay: Relay | null = null
  afterEach(async () => {
    await relay?.close()
    fs.rmSync(dir, { recursive: true, force: true })
  })

  it('survive a crash of the client process (file store) and reach the relay after restart', async () => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'georelay-offline-'))
    const store = path.join(dir, 'pending.bin')
    const script = path.join(path.dirname(CLIENT_DIST), '..', `offline-child-${process.pid}.mjs`)
    fs.writeFileSync(script, CHILD(store))
    try {
      const child = spawn(process.execPath, [script], { stdio: ['ignore', 'pipe', 'pipe'] })
      let out = ''
      let err = ''
      child.stderr.setEncoding('utf8').on('data', (c: string) => { err += c })
      const kept = new Promise<string>((resolve, reject) => {
        child.stdout.setEncoding('utf8').on('data', (c: string) => {
          out += c
          const match = /KEPT (".*")\n/.exec(out)
          if (match !== null) resolve(JSON.parse(match[1] as string) as string)
        })
        child.once('exit', code => reject(new Error(`child exited (${code}) before keeping its edits:\n${err}`)))
      })
      const text = await kept
      const exited = nextEvent(child, 'exit', { what: 'the child to die' })
      child.kill('SIGKILL')
      await exited
      expect(text).toContain('line 19')

      // The app starts again, this time with a relay in reach.
      relay = await startTestRelay()
      const client = new GeoClient({ regions: [{ name: 'a', url: relay.url }], offline: `file:${store}`, probeIntervalMs: 0 })
      const session = client.open('offline/notes', new Y.Doc())
      await session.synced
      await session.flush(5000)
      const reader = connectProvider(relay.url, 'offline/notes')
      await waitSynced(reader)
      await waitForText(reader.doc, t => t === text, 'the relay to hold every edit made offline')
      destroyProvider(reader)
      await client.close()
    } finally {
      fs.rmSync(script, { force: true })
    }
  })
})
