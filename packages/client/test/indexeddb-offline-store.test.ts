/**
 * IndexedDbOfflineStore in a real Chromium: the shared conformance checks run inside the page,
 * then persistence across a reload and a browser restart (one profile throughout).
 */
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals'
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import path from 'node:path'
import { fileURLToPath } from 'node:url'
import type { Page } from 'playwright-core'
import { bundleForBrowser, launchChromium, serveStatic, type ChromiumSession, type StaticServer } from '@georelay/testkit'
import { checksFor, write } from './offline-store-conformance.js'
import type { IndexedDbTestApi, PlainWrite } from './browser/indexeddb-entry.js'

const here = (file: string): string => fileURLToPath(new URL(file, import.meta.url))
const html = (script: string): string =>
  `<!doctype html><meta charset="utf-8"><title>georelay offline store</title><script type="module" src="${script}"></script>`

let profile: string
let server: StaticServer
let browser: ChromiumSession
let page: Page
let createBundle: string
const pageErrors: string[] = []

const openPage = async (): Promise<void> => {
  page = browser.context.pages()[0] ?? await browser.context.newPage()
  page.on('pageerror', err => pageErrors.push(err.message))
  await page.goto(`${server.url}/`)
  await page.waitForFunction(() => 'georelayIndexedDb' in globalThis, undefined, { timeout: 5000 })
}

type TestMethod = (...args: unknown[]) => Promise<unknown>
interface IndexedDbGlobal { georelayIndexedDb: Record<string, TestMethod> }

/** Calls the page's test API; arguments and results cross as JSON-like values. */
const call = <K extends keyof IndexedDbTestApi>(
  method: K,
  ...args: Parameters<IndexedDbTestApi[K]>
): Promise<Awaited<ReturnType<IndexedDbTestApi[K]>>> =>
  page.evaluate(
    ([m, a]) => ((globalThis as unknown as IndexedDbGlobal).georelayIndexedDb[m] as TestMethod)(...a),
    [method, args as unknown[]] as const,
  ) as Promise<Awaited<ReturnType<IndexedDbTestApi[K]>>>

const plain = (ids: number[], length?: number): PlainWrite[] =>
  ids.map(id => write(id, length)).map(w => ({ writeId: w.writeId, update: Array.from(w.update) }))

beforeAll(async () => {
  const [indexedDbBundle, created] = await Promise.all([
    bundleForBrowser(here('./browser/indexeddb-entry.ts')),
    bundleForBrowser(here('./browser/create-offline-store-entry.js')),
  ])
  createBundle = created
  server = await serveStatic({
    '/index.html': { type: 'text/html', body: html('/indexeddb.js') },
    '/indexeddb.js': { type: 'text/javascript', body: indexedDbBundle },
    '/create.html': { type: 'text/html', body: html('/create.js') },
    '/create.js': { type: 'text/javascript', body: createBundle },
  })
  profile = await mkdtemp(path.join(tmpdir(), 'georelay-idb-profile-'))
  browser = await launchChromium({ userDataDir: profile })
  await openPage()
}, 20_000)

afterAll(async () => {
  await browser?.close()
  await server?.close()
  if (profile !== undefined) await rm(profile, { recursive: true, force: true })
})

describe('IndexedDbOfflineStore conformance, in Chromium', () => {
  for (const check of checksFor(true)) {
    it(check.name, async () => {
      expect(await call('run', check.name)).toEqual({ ok: true })
      expect(pageErrors).toEqual([])
    })
  }
})

describe('IndexedDbOfflineStore persistence, in Chromium', () => {
  it('loads the pending writes back after a page reload', async () => {
    await call('put', 'reload', 'notes/1', plain([1, 2, 3, 4], 300))
    await call('put', 'reload', 'notes/2', plain([7]))
    await call('remove', 'reload', 'notes/1', 2)
    await page.evaluate(() => { (globalThis as unknown as { beforeReload?: boolean }).beforeReload = true })

    await page.reload()
    await page.waitForFunction(() => 'georelayIndexedDb' in globalThis, undefined, { timeout: 5000 })
    // A fresh page: what loads now can only come from IndexedDB.
    const beforeReload = await page.evaluate(() => (globalThis as unknown as { beforeReload?: boolean }).beforeReload)
    expect(beforeReload).toBeUndefined()
    expect(await call('load', 'reload', 'notes/1')).toEqual(plain([3, 4], 300))
    expect(await call('load', 'reload', 'notes/2')).toEqual(plain([7]))
    expect(pageErrors).toEqual([])
  })

  it('loads the pending writes back after the browser restarts on the same profile', async () => {
    await call('put', 'restart', 'doc', plain([1, 2, 3], 1000))
    await browser.close()
    browser = await launchChromium({ userDataDir: profile })
    await openPage()
    expect(await call('load', 'restart', 'doc')).toEqual(plain([1, 2, 3], 1000))
    expect(pageErrors).toEqual([])
  })
})

describe('createOfflineStore in a browser bundle', () => {
  it('leaves the file store and node:fs out, and opens IndexedDB', async () => {
    // The code only: the inline source map names every source file, the left-out one included.
    const code = createBundle.replace(/\/\/# sourceMappingURL=.*$/m, '')
    expect(code).toContain('createOfflineStore')
    expect(code).not.toMatch(/node:fs|datasync|georelay pending writes/)
    await page.goto(`${server.url}/create.html`)
    await page.waitForFunction(() => 'georelayCreate' in globalThis, undefined, { timeout: 5000 })
    type Api = { roundTrip(): Promise<PlainWrite[]>, fileStoreError(): Promise<string> }
    expect(await page.evaluate(() => (globalThis as unknown as { georelayCreate: Api }).georelayCreate.roundTrip()))
      .toEqual([{ writeId: 1, update: [1, 2, 3] }])
    expect(await page.evaluate(() => (globalThis as unknown as { georelayCreate: Api }).georelayCreate.fileStoreError())).toBe("offline store 'file:/tmp/pending.log' needs Node's file system, which this runtime lacks; in a browser use 'indexeddb'")
    expect(pageErrors).toEqual([])
  })
})

describe('launchChromium', () => {
  it('says how to install Chromium when the binary is missing', async () => {
    await expect(launchChromium({ executablePath: path.join(tmpdir(), 'no-such-chromium') }))
      .rejects.toThrow(/is not installed at .*no-such-chromium; install it with `apt-get install -y chromium`/)
  })
})
