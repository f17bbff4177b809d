/**
 * Offline edits survive a page reload in headless Chromium (IndexedDB): the browser twin of
 * offline-restart.test.ts. The page's client has no relay in reach, types, waits until its
 * edits are kept, and the page reloads; the new page's client, with a relay in reach, gets the
 * edits back from IndexedDB and delivers them, which a stock y-websocket reader then sees.
 */
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals'
import { createServer } from 'node:net'
import type { AddressInfo } from 'node:net'
import { fileURLToPath } from 'node:url'
import type { Page } from 'playwright-core'
import type { Relay } from '@georelay/relay'
import {
  bundleForBrowser, connectProvider, destroyProvider, launchChromium, serveStatic, startTestRelay, waitForText,
  waitSynced, type ChromiumSession, type StaticServer,
} from '@georelay/testkit'
import type { Edit, OfflineMode, SdkTestApi } from './browser/sdk-entry.js'

/** Where the page keeps its pending writes; 'memory' here must make the test fail. */
const OFFLINE: OfflineMode = 'indexeddb'
const DOC = 'browser/offline-notes'
const STEP_MS = 5000

/** Twelve lines, one struck out ('line 2'), a heading and some non-ASCII: one write per edit; at -1 is the end. */
const EDITS: Edit[] = [
  ...Array.from({ length: 12 }, (_, i): Edit => ({ at: -1, insert: `line ${i}\n` })),
  { at: 14, delete: 7 },
  { at: 0, insert: 'Notes\n' },
  { at: -1, insert: 'déjà vu ✓ 🚀\n' },
]

/** The same edits on a plain string, for the expected text; positions resolved for the page. */
const applyEdits = (edits: Edit[]): { edits: Edit[], text: string } => {
  let text = ''
  const resolved = edits.map(e => {
    const at = e.at === -1 ? text.length : e.at
    if ('insert' in e) text = text.slice(0, at) + e.insert + text.slice(at)
    else text = text.slice(0, at) + text.slice(at + e.delete)
    return { ...e, at }
  })
  return { edits: resolved, text }
}
const { edits: TYPED, text: EXPECTED } = applyEdits(EDITS)

const here = (file: string): string => fileURLToPath(new URL(file, import.meta.url))

/** A port on 127.0.0.1 nobody listens on: bound, then let go. */
const closedPort = (): Promise<number> =>
  new Promise((resolve, reject) => {
    const server = createServer()
    server.once('error', reject)
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address() as AddressInfo
      server.close(() => resolve(port))
    })
  })

let bundle: string
let server: StaticServer
let browser: ChromiumSession
let relay: Relay
let deadUrl: string
let page: Page
const pageErrors: string[] = []

const apiReady = (): Promise<unknown> =>
  page.waitForFunction(() => 'georelaySdk' in globalThis, undefined, { timeout: STEP_MS })

interface SdkGlobal { georelaySdk: Record<string, (...args: unknown[]) => unknown> }

/** Calls the page's test API; arguments and results cross as JSON-like values. */
const call = <K extends keyof SdkTestApi>(
  method: K,
  ...args: Parameters<SdkTestApi[K]>
): Promise<Awaited<ReturnType<SdkTestApi[K]>>> =>
  page.evaluate(
    ([m, a]) => ((globalThis as unknown as SdkGlobal).georelaySdk[m] as (...args: unknown[]) => unknown)(...a),
    [method, args as unknown[]] as const,
  ) as Promise<Awaited<ReturnType<SdkTestApi[K]>>>

/** What a stock y-websocket client reads from the relay. */
const relayText = async (until: (text: string) => boolean, what: string): Promise<string> => {
  const reader = connectProvider(relay.url, DOC)
  try {
    await waitSynced(reader, STEP_MS)
    await waitForText(reader.doc, until, what, 't', STEP_MS)
    return reader.doc.getText('t').toString()
  } finally {
    destroyProvider(reader)
  }
}

beforeAll(async () => {
  bundle = await bundleForBrowser(here('./browser/sdk-entry.ts'))
  server = await serveStatic({
    '/index.html': { type: 'text/html', body: '<!doctype html><meta charset="utf-8"><title>georelay SDK</title><script type="module" src="/sdk.js"></script>' },
    '/sdk.js': { type: 'text/javascript', body: bundle },
  })
  relay = await startTestRelay()
  deadUrl = `ws://127.0.0.1:${await closedPort()}`
  browser = await launchChromium()
  page = browser.context.pages()[0] ?? await browser.context.newPage()
  page.on('pageerror', err => pageErrors.push(err.message))
}, 20_000)

afterAll(async () => {
  await browser?.close()
  await server?.close()
  await relay?.close()
})

describe('the SDK in a browser bundle', () => {
  it('leaves ws, the file store and node:fs out', () => {
    // The code only: the inline source map names the left-out files too.
    const code = bundle.replace(/\/\/# sourceMappingURL=.*$/m, '')
    // From the package's dist, where its `browser` field applies (esbuild heads each module with its path).
    expect(code).toContain('// packages/client/dist/geo-client.js')
    expect(code).not.toContain('node:fs')
    // esbuild leaves an empty stub named '(disabled):…' for each module the `browser` field maps to false.
    expect(code).toContain('(disabled):node_modules/ws/')
    expect(code.replace(/\(disabled\):[^\s"]+/g, '')).not.toMatch(/node_modules\/ws\/|ws does not work in the browser|Sec-WebSocket-|permessage-deflate|WebSocketServer/)
    expect(code).not.toMatch(/datasync|georelay pending writes|better-sqlite3/)
  })
})

describe('offline edits in Chromium', () => {
  it('survive a page reload in IndexedDB and reach the relay once it is in reach', async () => {
    // Phase 1: no relay in reach; type, and wait until every edit is kept.
    await page.goto(`${server.url}/`)
    await apiReady()
    await call('start', { regions: [{ name: 'nowhere', url: deadUrl }], offline: OFFLINE, docName: DOC })
    expect(await call('edit', TYPED, STEP_MS)).toBe(EXPECTED)
    const before = await call('state')
    expect({ status: before.status, region: before.region }).toEqual({ status: 'offline', region: null })
    expect(await call('storedWrites', DOC)).toBe(TYPED.length)

    // The reload: the page's memory (client, session, doc) is gone; the profile stays.
    await page.evaluate(() => { (globalThis as unknown as { beforeReload?: boolean }).beforeReload = true })
    await page.reload()
    await apiReady()
    const beforeReload = await page.evaluate(() => (globalThis as unknown as { beforeReload?: boolean }).beforeReload)
    expect(beforeReload).toBeUndefined()
    // Nothing reached the relay, so whatever the new page's doc holds comes from IndexedDB.
    expect(await relayText(t => t === '', 'the relay to sync an empty document')).toBe('')

    // Phase 2: a new client with the relay in reach, and a fresh doc.
    await call('start', { regions: [{ name: 'test', url: relay.url }], offline: OFFLINE, docName: DOC })
    expect(await call('synced', STEP_MS)).toBe(EXPECTED)
    await call('flush', STEP_MS)
    await page.waitForFunction(() => (globalThis as unknown as { georelaySdk: SdkTestApi }).georelaySdk.state().status === 'synced', undefined, { timeout: STEP_MS })
      .catch(async (err: Error) => { throw new Error(`${err.message}\npage state: ${JSON.stringify(await call('state'))}`) })
    expect(await relayText(t => t === EXPECTED, 'the relay to hold exactly the text typed offline')).toBe(EXPECTED)

    // The acknowledged writes are gone from IndexedDB once the client has closed.
    await call('close')
    expect(await call('storedWrites', DOC)).toBe(0)
    expect(pageErrors).toEqual([])
  }, 20_000)
})
