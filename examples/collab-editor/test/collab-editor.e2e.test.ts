/**
 * The demo end to end, in headless Chromium: two tabs pinned to different regions type into
 * the same document and both show the same text; killing the first tab's region from the panel
 * moves that tab to another region and its typing still reaches the second; after the region is
 * revived, both still agree. Screenshots go to test-output/ (and, with UPDATE_SCREENSHOT=1, the
 * README's docs/images/collab-editor.png).
 */
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals'
import { copyFile, mkdir, mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import path from 'node:path'
import { fileURLToPath } from 'node:url'
import type { Page } from 'playwright-core'
import { type ChromiumSession, launchChromium } from '@georelay/testkit'
import { type DemoServer, startDemoServer } from '../src/server/demo-server.js'
import type { DemoHandle } from '../src/web/main.js'

const ROOT = fileURLToPath(new URL('../../../', import.meta.url))
const OUTPUT = path.join(ROOT, 'test-output', 'collab-editor')
const STEP_MS = 10_000
const VIEWPORT = { width: 1180, height: 600 }

let demo: DemoServer
let dataDir: string
let browser: ChromiumSession
const pageErrors: string[] = []

type Demo = { georelayDemo?: DemoHandle }

/**
 * Waits, in the page, until `check` holds for its demo handle; says what it waited for if not.
 * `check` runs in the page, so it may use nothing but its arguments.
 */
const until = async (page: Page, what: string, check: (demo: DemoHandle, arg: string) => boolean, arg = ''): Promise<void> => {
  const expression = `globalThis.georelayDemo !== undefined && (${check.toString()})(globalThis.georelayDemo, ${JSON.stringify(arg)})`
  await page.waitForFunction(expression, undefined, { timeout: STEP_MS }).catch(async (err: Error) => {
    const state = await page.evaluate(() => {
      const d = (globalThis as unknown as Demo).georelayDemo
      return d === undefined ? 'no demo handle' : JSON.stringify({ region: d.region(), status: d.status(), text: d.text() })
    })
    throw new Error(`${page.url()}: waiting for ${what} failed (${err.message.split('\n')[0]}); page: ${state}`)
  })
}

const text = (page: Page): Promise<string> =>
  page.evaluate(() => (globalThis as unknown as Required<Demo>).georelayDemo.text())

/** Types at the end of the document, as a user who clicked into the editor would. */
const typeAtEnd = async (page: Page, words: string): Promise<void> => {
  await page.click('.cm-content')
  await page.keyboard.press('Control+End')
  await page.keyboard.type(words)
}

const open = async (region: string, name: string): Promise<Page> => {
  const page = await browser.context.newPage()
  page.on('pageerror', err => pageErrors.push(`${region}: ${err.message}`))
  await page.setViewportSize(VIEWPORT)
  await page.goto(`${demo.url}?region=${region}&name=${name}`)
  await until(page, `the tab to connect to ${region}`, (d, r) => d.region() === r && d.status() === 'synced', region)
  return page
}

/** Both tabs side by side in one picture. */
const screenshotBoth = async (left: Page, right: Page, file: string): Promise<string> => {
  const [a, b] = await Promise.all([left.screenshot(), right.screenshot()])
  const page = await browser.context.newPage()
  try {
    await page.setViewportSize({ width: VIEWPORT.width * 2 + 12, height: VIEWPORT.height })
    const img = (png: Buffer): string => `<img src="data:image/png;base64,${png.toString('base64')}" width="${VIEWPORT.width}" height="${VIEWPORT.height}">`
    await page.setContent(`<body style="margin:0;background:#d0d5dd;display:flex;gap:12px">${img(a)}${img(b)}</body>`)
    const target = path.join(OUTPUT, file)
    await page.screenshot({ path: target })
    return target
  } finally {
    await page.close()
  }
}

beforeAll(async () => {
  await mkdir(OUTPUT, { recursive: true })
  dataDir = await mkdtemp(path.join(tmpdir(), 'georelay-demo-e2e-'))
  demo = await startDemoServer({ regions: ['us-east', 'eu-west', 'ap-south'], port: 0, basePort: 0, dataDir, store: 'sqlite' })
  browser = await launchChromium()
}, 30_000)

afterAll(async () => {
  await browser?.close()
  await demo?.close()
  if (dataDir !== undefined) await rm(dataDir, { recursive: true, force: true })
})

describe('the collab-editor demo in Chromium', () => {
  it('keeps two tabs in different regions in agreement through a region kill and revive', async () => {
    const eu = await open('eu-west', 'Ada')
    const ap = await open('ap-south', 'Kenji')

    // Both type, one after the other (so that each phrase stays whole); both see both.
    await typeAtEnd(eu, 'Hello from Ada in eu-west. ')
    await until(ap, 'the first greeting', d => d.text().includes('Hello from Ada in eu-west. '))
    await typeAtEnd(ap, 'Namaste from Kenji in ap-south. ')
    for (const page of [eu, ap]) {
      await until(page, 'both greetings', d => d.text().includes('Hello from Ada in eu-west. ') && d.text().includes('Namaste from Kenji in ap-south. '))
    }
    expect(await text(ap)).toBe(await text(eu))
    // Each tab sees the other's cursor, named, from awareness across regions.
    await eu.waitForSelector('.cm-ySelectionInfo:text("Kenji")', { state: 'attached', timeout: STEP_MS })
    await ap.waitForSelector('.cm-ySelectionInfo:text("Ada")', { state: 'attached', timeout: STEP_MS })
    // The status line: every edit durable in all three regions.
    await eu.waitForSelector('[data-testid=status][data-status=synced][data-ack=all]', { timeout: STEP_MS })

    // Kill the first tab's region from its panel: the tab moves to another region.
    await eu.click('[data-testid=kill-eu-west]')
    await until(eu, 'the tab to fail over', d => d.region() !== null && d.region() !== 'eu-west')
    await ap.waitForSelector('tr[data-region=eu-west] [data-testid=region-state]:text("down")', { timeout: STEP_MS })
    const refuge = await eu.evaluate(() => (globalThis as unknown as Required<Demo>).georelayDemo.region())
    await typeAtEnd(eu, 'Still here after the failover. ')
    await until(ap, 'the edit made after the failover', d => d.text().includes('Still here after the failover. '))
    // With eu-west down, the newest edit is durable in a majority but cannot be in all regions.
    await eu.waitForSelector('[data-testid=status][data-status=pending][data-ack=majority]', { timeout: STEP_MS })
    const picture = await screenshotBoth(eu, ap, 'failover.png')

    // Revive: the first tab goes back to its region, and both still agree.
    await eu.click('[data-testid=revive-eu-west]')
    await until(eu, 'the tab to move back to eu-west', d => d.region() === 'eu-west')
    await typeAtEnd(ap, 'Welcome back. ')
    await until(eu, 'the edit made after the revive', d => d.text().includes('Welcome back. '))
    const final = await text(eu)
    await until(ap, 'both tabs to agree', (d, expected) => d.text() === expected, final)
    for (const phrase of ['Hello from Ada in eu-west. ', 'Namaste from Kenji in ap-south. ', 'Still here after the failover. ', 'Welcome back. ']) {
      expect(final.split(phrase)).toHaveLength(2)
    }
    // eu-west caught up on what it missed: every edit is durable in every region again.
    for (const page of [eu, ap]) await page.waitForSelector('[data-testid=status][data-status=synced][data-ack=all]', { timeout: STEP_MS })
    await screenshotBoth(eu, ap, 'after-revive.png')
    if (process.env.UPDATE_SCREENSHOT === '1') await copyFile(picture, path.join(ROOT, 'docs', 'images', 'collab-editor.png'))
    console.log(`collab-editor e2e: ${refuge} took over from eu-west; screenshots in ${path.relative(ROOT, OUTPUT)}`)
    expect(pageErrors).toEqual([])
  }, 45_000)
})
