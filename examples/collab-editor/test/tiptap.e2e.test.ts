/**
 * The Tiptap page end to end, in headless Chromium: two tabs pinned to different regions type
 * into the same rich-text document through unchanged Hocuspocus providers, each sees the other's
 * text and named caret, and a stock y-websocket client on the third region sees both edits in
 * the document's Y.XmlFragment. Screenshots go to test-output/collab-editor/.
 */
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals'
import { mkdir, mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import path from 'node:path'
import { fileURLToPath } from 'node:url'
import type { Page } from 'playwright-core'
import { type ChromiumSession, connectProvider, destroyProvider, launchChromium, on, waitUntil } from '@georelay/testkit'
import { bundlePages, type DemoServer, startDemoServer } from '../src/server/demo-server.js'
import type { TiptapHandle } from '../src/web/tiptap.js'

const ROOT = fileURLToPath(new URL('../../../', import.meta.url))
const OUTPUT = path.join(ROOT, 'test-output', 'collab-editor')
const STEP_MS = 10_000
const VIEWPORT = { width: 1180, height: 600 }
const DOC = 'demo/rich-e2e'
const ADA = 'Hello from Ada in eu-west. '
const KENJI = 'Namaste from Kenji in ap-south. '

let demo: DemoServer
let dataDir: string
let browser: ChromiumSession
const pageErrors: string[] = []
/** Yjs warns on the console when a page loads two copies of it. */
const yjsWarnings: string[] = []

type Tiptap = { georelayTiptap?: TiptapHandle }

/**
 * Waits, in the page, until `check` holds for its Tiptap handle; says what it waited for if not.
 * `check` runs in the page, so it may use nothing but its arguments.
 */
const until = async (page: Page, what: string, check: (tiptap: TiptapHandle, arg: string) => boolean, arg = ''): Promise<void> => {
  const expression = `globalThis.georelayTiptap !== undefined && (${check.toString()})(globalThis.georelayTiptap, ${JSON.stringify(arg)})`
  await page.waitForFunction(expression, undefined, { timeout: STEP_MS }).catch(async (err: Error) => {
    const state = await page.evaluate(() => {
      const t = (globalThis as unknown as Tiptap).georelayTiptap
      if (t === undefined) return 'no Tiptap handle'
      return JSON.stringify({
        region: t.region(), socket: t.socket(), status: t.status(), unsynced: t.unsynced(), text: t.text(),
      })
    })
    throw new Error(`${page.url()}: waiting for ${what} failed (${err.message.split('\n')[0]}); page: ${state}`)
  })
}

const text = (page: Page): Promise<string> =>
  page.evaluate(() => (globalThis as unknown as Required<Tiptap>).georelayTiptap.text())

/** Types at the end of the document, as a user who clicked into the editor would. */
const typeAtEnd = async (page: Page, words: string): Promise<void> => {
  await page.click('.ProseMirror')
  await page.keyboard.press('Control+End')
  await page.keyboard.type(words)
}

const open = async (region: string, name: string): Promise<Page> => {
  const page = await browser.context.newPage()
  page.on('pageerror', err => pageErrors.push(`${region}: ${err.message}`))
  page.on('console', message => {
    if (message.text().includes('Yjs was already imported')) yjsWarnings.push(`${region}: ${message.text()}`)
  })
  await page.setViewportSize(VIEWPORT)
  await page.goto(`${demo.url}tiptap?region=${region}&name=${name}&doc=${encodeURIComponent(DOC)}`)
  await until(page, `the tab to sync with ${region}`, (t, r) => t.region() === r && t.synced() && t.status() === 'saved', region)
  return page
}

beforeAll(async () => {
  await mkdir(OUTPUT, { recursive: true })
  dataDir = await mkdtemp(path.join(tmpdir(), 'georelay-demo-tiptap-'))
  demo = await startDemoServer({ regions: ['us-east', 'eu-west', 'ap-south'], port: 0, basePort: 0, dataDir, store: 'sqlite' })
  browser = await launchChromium()
}, 30_000)

afterAll(async () => {
  await browser?.close()
  await demo?.close()
  if (dataDir !== undefined) await rm(dataDir, { recursive: true, force: true })
})

describe('the Tiptap page in Chromium', () => {
  it('bundles one copy of Yjs into each page', async () => {
    const { yjsFiles } = await bundlePages()
    expect([...yjsFiles.keys()].sort()).toEqual(['/app.js', '/tiptap.js'])
    for (const files of yjsFiles.values()) expect(files).toEqual(['node_modules/yjs/dist/yjs.mjs'])
  })

  it('keeps two Tiptap tabs in different regions and a y-websocket client in the third in agreement', async () => {
    const eu = await open('eu-west', 'Ada')
    const ap = await open('ap-south', 'Kenji')

    // Both type, one after the other (so that each phrase stays whole); both see both.
    await typeAtEnd(eu, ADA)
    await until(ap, 'the first greeting', (t, phrase) => t.text().includes(phrase), ADA)
    await typeAtEnd(ap, KENJI)
    for (const page of [eu, ap]) {
      await until(page, 'both greetings', (t, both) => both.split('|').every(phrase => t.text().includes(phrase)), `${ADA}|${KENJI}`)
    }
    expect(await text(ap)).toBe(await text(eu))
    // Each tab shows the other's caret with its name, from the provider's awareness across regions.
    await eu.waitForSelector('.collaboration-carets__label:text("Kenji")', { state: 'attached', timeout: STEP_MS })
    await ap.waitForSelector('.collaboration-carets__label:text("Ada")', { state: 'attached', timeout: STEP_MS })
    // Every edit confirmed durable by the tab's region.
    for (const page of [eu, ap]) await page.waitForSelector('[data-testid=status][data-status=saved][data-unsynced="0"]', { timeout: STEP_MS })

    // A stock y-websocket client in the third region reads the Tiptap document's fragment.
    const usEast = demo.cluster.regions.find(r => r.region === 'us-east')
    if (usEast === undefined) throw new Error('the demo cluster has no us-east')
    const reader = connectProvider(usEast.url, DOC)
    try {
      const fragment = reader.doc.getXmlFragment('default')
      await waitUntil([on(reader.doc, 'update')], () => fragment.toString().includes(ADA) && fragment.toString().includes(KENJI), {
        what: 'us-east to hold both edits',
        timeoutMs: STEP_MS,
      })
      expect(fragment.toString()).toMatch(/^<paragraph>/)
    } finally {
      destroyProvider(reader)
    }

    await eu.screenshot({ path: path.join(OUTPUT, 'tiptap-eu-west.png') })
    await ap.screenshot({ path: path.join(OUTPUT, 'tiptap-ap-south.png') })
    expect(pageErrors).toEqual([])
    expect(yjsWarnings).toEqual([])
  }, 30_000)
})
