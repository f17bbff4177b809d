/**
 * Browser tests against the distribution's Chromium (playwright-core drives it; it never
 * downloads a browser), with test code bundled by esbuild and served from 127.0.0.1.
 * playwright-core and esbuild are loaded on first use, so importing the testkit stays cheap
 * for tests that need no browser.
 */
import { access, constants, mkdtemp, rm } from 'node:fs/promises'
import { createServer } from 'node:http'
import { tmpdir } from 'node:os'
import path from 'node:path'
import type { AddressInfo } from 'node:net'
import type { BrowserContext } from 'playwright-core'

export const CHROMIUM_PATH = '/usr/bin/chromium'

/** Quiet and reproducible: no GPU, no background traffic to Google, no first-run UI. */
export const CHROMIUM_ARGS: readonly string[] = [
  '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking',
  '--disable-component-update', '--disable-sync',
]

export interface LaunchChromiumOptions {
  /**
   * The profile directory. Pass one to relaunch on the same profile (IndexedDB, caches); it is
   * then left in place. By default a fresh temporary profile is made and deleted on close.
   */
  userDataDir?: string
  executablePath?: string
}

export interface ChromiumSession {
  /** A persistent context: one profile across page reloads. */
  readonly context: BrowserContext
  readonly userDataDir: string
  /** Closes the browser, and deletes the profile if this session made it. */
  close(): Promise<void>
}

export const launchChromium = async (
  { userDataDir, executablePath = CHROMIUM_PATH }: LaunchChromiumOptions = {},
): Promise<ChromiumSession> => {
  try {
    await access(executablePath, constants.X_OK)
  } catch {
    throw new Error(`Chromium is not installed at ${executablePath}; install it with \`apt-get install -y chromium\` (Debian/Ubuntu, as root), the browser tests need it`)
  }
  const { chromium } = await import('playwright-core')
  const ownsProfile = userDataDir === undefined
  const profile = userDataDir ?? await mkdtemp(path.join(tmpdir(), 'georelay-chromium-'))
  let context: BrowserContext
  try {
    context = await chromium.launchPersistentContext(profile, {
      executablePath,
      headless: true,
      args: [...CHROMIUM_ARGS],
    })
  } catch (err) {
    if (ownsProfile) await rm(profile, { recursive: true, force: true })
    throw err
  }
  let closing: Promise<void> | undefined
  return {
    context,
    userDataDir: profile,
    close: () => closing ??= (async () => {
      await context.close()
      if (ownsProfile) await rm(profile, { recursive: true, force: true })
    })(),
  }
}

/** Bundles a browser entry (TypeScript or JavaScript) with its imports into one ES module. */
export const bundleForBrowser = async (entryFile: string): Promise<string> => {
  const esbuild = await import('esbuild')
  const result = await esbuild.build({
    entryPoints: [entryFile],
    bundle: true,
    format: 'esm',
    platform: 'browser',
    target: 'es2022',
    write: false,
    sourcemap: 'inline',
    logLevel: 'silent',
  }).catch(async (err: { errors?: Parameters<typeof esbuild.formatMessages>[0] }) => {
    const details = err.errors === undefined ? [String(err)] : await esbuild.formatMessages(err.errors, { kind: 'error' })
    throw new Error(`bundling ${entryFile} for the browser failed:\n${details.join('\n')}`)
  })
  const output = result.outputFiles[0]
  if (output === undefined) throw new Error(`bundling ${entryFile} produced no output`)
  return output.text
}

export interface StaticFile {
  /** Content-Type, e.g. 'text/html' or 'text/javascript'. */
  type: string
  body: string | Uint8Array
}

export interface StaticServer {
  /** `http://127.0.0.1:PORT`, no trailing slash. */
  readonly url: string
  close(): Promise<void>
}

/** Serves `files` by exact path ('/' falls back to '/index.html'); anything else is a 404. */
export const serveStatic = (files: Record<string, StaticFile>): Promise<StaticServer> =>
  new Promise((resolve, reject) => {
    const server = createServer((req, res) => {
      const pathname = new URL(req.url ?? '/', 'http://127.0.0.1').pathname
      const file = files[pathname] ?? (pathname === '/' ? files['/index.html'] : undefined)
      if (file === undefined) {
        res.writeHead(404, { 'content-type': 'text/plain' }).end(`no ${pathname} here`)
        return
      }
      res.writeHead(200, { 'content-type': file.type, 'cache-control': 'no-store' }).end(file.body)
    })
    server.once('error', reject)
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address() as AddressInfo
      resolve({
        url: `http://127.0.0.1:${port}`,
        close: () => new Promise<void>((done, fail) => {
          // A browser keeps idle keep-alive sockets open, which would hold close() forever.
          server.closeAllConnections()
          server.close(err => err === undefined ? done() : fail(err))
        }),
      })
    })
  })
