/**
 * `npm start`: the root package's start command brings up the cluster and the demo page,
 * prints the URLs, serves the page and its control API, and stops cleanly on SIGTERM. It runs
 * the command of the `start` script itself (npm does not pass SIGTERM on to its child), on free
 * ports and a temporary data directory so that it does not collide with a running demo.
 */
import { afterEach, describe, expect, it } from '@jest/globals'
import { type ChildProcess, spawn } from 'node:child_process'
import { mkdtemp, readFile, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import path from 'node:path'
import { fileURLToPath } from 'node:url'
import { nextEvent, on, waitUntil } from '@georelay/testkit'
import type { ClusterSnapshot } from '../src/shared/cluster-snapshot.js'

const ROOT = fileURLToPath(new URL('../../../', import.meta.url))

/** The root package's `start` command as argv, run with this Node. */
const startCommand = async (): Promise<string[]> => {
  const { scripts } = JSON.parse(await readFile(path.join(ROOT, 'package.json'), 'utf8')) as { scripts: Record<string, string> }
  const [program, ...args] = (scripts.start ?? '').split(/\s+/)
  if (program !== 'node') throw new Error(`the start script should run node, not: ${scripts.start ?? '(none)'}`)
  return [process.execPath, ...args]
}

describe('npm start', () => {
  let child: ChildProcess | undefined
  let dataDir: string | undefined

  afterEach(async () => {
    if (child !== undefined && child.exitCode === null && child.signalCode === null) {
      const exited = nextEvent(child, 'exit', { what: 'the demo to exit' })
      child.kill('SIGKILL')
      await exited
    }
    if (dataDir !== undefined) await rm(dataDir, { recursive: true, force: true })
  })

  it('starts the cluster and the page, prints the URLs, serves the page, and stops on SIGTERM with exit 0', async () => {
    dataDir = await mkdtemp(path.join(tmpdir(), 'georelay-demo-start-'))
    const [node, ...args] = await startCommand()
    const started = spawn(node as string, [...args, '--port', '0', '--base-port', '0', '--data', dataDir], { cwd: ROOT, stdio: ['ignore', 'pipe', 'pipe'] })
    child = started
    const { stdout: out, stderr: err } = started
    if (out === null || err === null) throw new Error('spawned without pipes')
    let stdout = ''
    let stderr = ''
    out.setEncoding('utf8').on('data', (chunk: string) => { stdout += chunk })
    err.setEncoding('utf8').on('data', (chunk: string) => { stderr += chunk })
    await waitUntil([on(out, 'data'), on(started, 'exit')], () => {
      if (started.exitCode !== null) throw new Error(`the demo exited (${started.exitCode}) before it was ready:\n${stdout}${stderr}`)
      return stdout.includes('Stop with Ctrl-C.')
    }, { what: 'the demo to print its URLs', timeoutMs: 20_000 })

    const page = /^georelay demo: open (http:\/\/127\.0\.0\.1:\d+\/)$/m.exec(stdout)?.[1]
    expect(page).toBeDefined()
    expect(stdout).toContain(`${page as string}?region=eu-west`)
    expect(stdout).toContain(`${page as string}?region=ap-south`)
    expect(stdout).toContain(`${page as string}tiptap?region=eu-west`)
    const relays = [...stdout.matchAll(/^ {2}([a-z-]+)\s+(ws:\/\/127\.0\.0\.1:\d+)$/gm)].map(m => m[1])
    expect(relays).toEqual(['us-east', 'eu-west', 'ap-south'])

    const html = await fetch(page as string)
    expect(html.status).toBe(200)
    const body = await html.text()
    expect(body).toContain('<title>georelay demo</title>')
    expect(body).toContain('<script type="module" src="/app.js">')
    const script = await fetch(new URL('app.js', page))
    expect(script.headers.get('content-type')).toMatch(/^text\/javascript/)
    const code = await script.text()
    expect(code).toContain('cm-ySelection') // y-codemirror.next's remote cursors are in
    // The browser build of the SDK: ws, the file store and node: modules left out.
    expect(code).not.toMatch(/WebSocketServer|Sec-WebSocket-Key|georelay pending writes|node:fs/)
    // The second page: Tiptap over the Hocuspocus provider, its own bundle.
    expect(await (await fetch(new URL('tiptap', page))).text()).toContain('<script type="module" src="/tiptap.js">')
    const tiptap = await fetch(new URL('tiptap.js', page))
    expect(tiptap.headers.get('content-type')).toMatch(/^text\/javascript/)
    expect(await tiptap.text()).toContain('collaboration-carets__label') // Tiptap's caret extension is in
    const cluster = await (await fetch(new URL('api/cluster', page))).json() as ClusterSnapshot
    expect(cluster.regions.map(r => `${r.name}:${r.state}`)).toEqual(['us-east:up', 'eu-west:up', 'ap-south:up'])

    const exited = nextEvent<[number | null]>(started, 'exit', { what: 'the demo to stop after SIGTERM' })
    started.kill('SIGTERM')
    expect((await exited)[0]).toBe(0)
  }, 30_000)
})
