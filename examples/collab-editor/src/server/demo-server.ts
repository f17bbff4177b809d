/**
 * The demo: a three-region LocalCluster in this process, and on one HTTP port the pages (the
 * SDK's at `/`, Tiptap's at `/tiptap`, their scripts bundled by esbuild at start), their
 * stylesheet and the control API. Everything listens on 127.0.0.1.
 */
import { readFile } from 'node:fs/promises'
import { createServer } from 'node:http'
import type { AddressInfo } from 'node:net'
import { basename } from 'node:path'
import { fileURLToPath } from 'node:url'
import { LocalCluster } from '@georelay/cluster'
import type { Logger } from '@georelay/relay'
import { ControlApi } from './control-api.js'

export interface DemoOptions {
  regions: string[]
  /** The page's port (0: any free one). */
  port: number
  /** The first relay's port, the others follow (0: any free ones). */
  basePort: number
  /** Each region's store lives in `<dataDir>/<region>`. */
  dataDir: string
  store: 'sqlite' | 'memory'
  /** One-way delay overrides, keyed `a:b` with the names sorted. */
  latency?: Record<string, number>
  logger?: Logger
}

export interface DemoServer {
  /** `http://127.0.0.1:PORT/`. */
  readonly url: string
  readonly cluster: LocalCluster
  close(): Promise<void>
}

const HOST = '127.0.0.1'
/** The package's root: the same two levels up from src/server (tests) and dist/server (the bin). */
const packageFile = (file: string): string => fileURLToPath(new URL(`../../${file}`, import.meta.url))

/** The pages' scripts, each served at `/NAME.js`: what `<script src>` in web/*.html asks for. */
const PAGE_ENTRIES = { app: 'src/web/main.ts', tiptap: 'src/web/tiptap.ts' } as const

export interface PageBundles {
  /** Served path (`/app.js`) to the script. */
  scripts: Map<string, string>
  /** Served path to the files of the `yjs` package in that script: one, or Yjs's `instanceof` checks break. */
  yjsFiles: Map<string, string[]>
}

/**
 * Every page's script: the SDK or Tiptap with the Hocuspocus provider, each one ES module as an
 * app would ship it. One build, so that both resolve the same packages the same way; no shared
 * chunks, so that each page loads one file.
 */
export const bundlePages = async (): Promise<PageBundles> => {
  const esbuild = await import('esbuild')
  const entryPoints = Object.fromEntries(Object.entries(PAGE_ENTRIES).map(([name, file]) => [name, packageFile(file)]))
  const result = await esbuild.build({
    entryPoints,
    // Names the outputs (app.js, tiptap.js); nothing is written.
    outdir: packageFile('dist/web'),
    bundle: true,
    format: 'esm',
    platform: 'browser',
    target: 'es2022',
    minify: true,
    write: false,
    metafile: true,
    logLevel: 'silent',
  })
  const scripts = new Map<string, string>()
  const yjsFiles = new Map<string, string[]>()
  for (const name of Object.keys(PAGE_ENTRIES)) {
    const output = result.outputFiles.find(file => basename(file.path) === `${name}.js`)
    const meta = Object.entries(result.metafile.outputs).find(([file]) => basename(file) === `${name}.js`)?.[1]
    if (output === undefined || meta === undefined) throw new Error(`bundling the demo pages produced no ${name}.js`)
    scripts.set(`/${name}.js`, output.text)
    yjsFiles.set(`/${name}.js`, Object.keys(meta.inputs).filter(input => /(^|\/)node_modules\/yjs\//.test(input)))
  }
  return { scripts, yjsFiles }
}

export const startDemoServer = async (options: DemoOptions): Promise<DemoServer> => {
  const [{ scripts }, html, tiptapHtml, css] = await Promise.all([
    bundlePages(),
    readFile(packageFile('web/index.html'), 'utf8'),
    readFile(packageFile('web/tiptap.html'), 'utf8'),
    readFile(packageFile('web/style.css'), 'utf8'),
  ])
  const files = new Map<string, { type: string, body: string }>([
    ['/', { type: 'text/html; charset=utf-8', body: html }],
    ['/tiptap', { type: 'text/html; charset=utf-8', body: tiptapHtml }],
    ...[...scripts].map(([file, body]): [string, { type: string, body: string }] => [file, { type: 'text/javascript; charset=utf-8', body }]),
    ['/style.css', { type: 'text/css; charset=utf-8', body: css }],
  ])
  const cluster = await LocalCluster.start({
    regions: options.regions,
    basePort: options.basePort,
    host: HOST,
    dataDir: options.dataDir,
    store: options.store,
    ...(options.latency === undefined ? {} : { latency: options.latency }),
    ...(options.logger === undefined ? {} : { logger: options.logger }),
  })
  const api = new ControlApi(cluster)
  const server = createServer((req, res) => {
    const path = new URL(req.url ?? '/', `http://${HOST}`).pathname
    if (api.handle(req, res, path)) return
    const file = files.get(path)
    if (file === undefined || (req.method !== 'GET' && req.method !== 'HEAD')) {
      res.writeHead(404, { 'content-type': 'text/plain; charset=utf-8' }).end(`no ${path} here: the demo is at / and /tiptap\n`)
      return
    }
    res.writeHead(200, { 'content-type': file.type, 'cache-control': 'no-store' }).end(file.body)
  })
  try {
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject)
      server.listen(options.port, HOST, () => {
        server.off('error', reject)
        resolve()
      })
    })
  } catch (err) {
    await cluster.close()
    throw err
  }
  const { port } = server.address() as AddressInfo
  let closing: Promise<void> | undefined
  return {
    url: `http://${HOST}:${port}/`,
    cluster,
    close: () => closing ??= (async () => {
      api.close()
      // Browsers keep idle keep-alive sockets open, which would hold close() forever.
      server.closeAllConnections()
      await new Promise<void>(resolve => server.close(() => resolve()))
      await cluster.close()
    })(),
  }
}
