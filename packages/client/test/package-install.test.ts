/**
 * What an app outside the repository gets from `npm install @georelay/client yjs`: the packed
 * tarballs of core and client, installed into an empty project as registry packages would be.
 * It builds no native code, and bundles for the browser without Node built-ins and with one Yjs.
 * Needs dist/ (`npm test` runs `tsc -b` first) and the npm cache or registry for the other packages.
 */
import { execFile } from 'node:child_process'
import fs from 'node:fs'
import { builtinModules } from 'node:module'
import os from 'node:os'
import path from 'node:path'
import { fileURLToPath } from 'node:url'
import { promisify } from 'node:util'
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals'
import { build, type Metafile } from 'esbuild'

const packages = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..')
const SDK = ['core', 'client'].map(name => path.join(packages, name))

// `npm test` hands its own invocation to child processes as npm_* variables (the monorepo as
// local prefix, a --workspace when given); the app must install as a project of its own would.
const KEEP = new Set(['npm_config_cache', 'npm_config_userconfig', 'npm_config_globalconfig', 'npm_config_registry'])
const env = Object.fromEntries(Object.entries(process.env).filter(([key]) => !/^npm_/i.test(key) || KEEP.has(key.toLowerCase())))

const npm = async (cwd: string, args: string[], { allowFailure = false, timeout = 90_000 } = {}): Promise<string> => {
  try {
    return (await promisify(execFile)('npm', args, { cwd, env, timeout, maxBuffer: 64 << 20 })).stdout
  } catch (err) {
    const { stdout, stderr } = err as { stdout?: string, stderr?: string }
    if (allowFailure && stdout !== undefined) return stdout
    throw new Error(`npm ${args.join(' ')} in ${cwd} failed: ${(err as Error).message}\n${stderr ?? ''}`)
  }
}

/** Every path under `dir`, relative to it; symbolic links are listed, not followed. */
const walk = (dir: string, prefix = ''): string[] => fs.readdirSync(dir, { withFileTypes: true }).flatMap(entry => {
  const relative = path.posix.join(prefix, entry.name)
  return entry.isDirectory() ? [relative, ...walk(path.join(dir, entry.name), relative)] : [relative]
})

let tmp: string
let app: string

beforeAll(async () => {
  for (const dir of SDK) {
    if (!fs.existsSync(path.join(dir, 'dist/index.js'))) throw new Error(`${dir}/dist is missing: run \`npx tsc -b\` first`)
  }
  tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'georelay-install-'))
  app = path.join(tmp, 'app')
  fs.mkdirSync(app)
  // Neither package has lifecycle scripts, and `npm pack` in a workspace runs only the package's
  // own (not the monorepo's `prepare`), so this packs dist/ as built.
  const tarballs: string[] = []
  for (const dir of SDK) {
    const [{ filename }] = JSON.parse(await npm(dir, ['pack', '--json', '--pack-destination', tmp])) as [{ filename: string }]
    tarballs.push(path.join(tmp, filename))
  }
  fs.writeFileSync(path.join(app, 'package.json'), JSON.stringify({ name: 'app', version: '1.0.0', private: true, type: 'module' }))
  // Scripts allowed, as in an app: a native dependency would show up built (a .node file).
  await npm(app, ['install', '--no-audit', '--no-fund', '--prefer-offline', '--ignore-scripts=false', ...tarballs, 'yjs@^13.6.33'], { timeout: 110_000 })
}, 120_000)

afterAll(() => {
  if (tmp !== undefined) fs.rmSync(tmp, { recursive: true, force: true })
})

describe('an SDK install (@georelay/client, @georelay/core and yjs from their tarballs)', () => {
  it('holds no better-sqlite3 and no native addon', async () => {
    const installed = walk(path.join(app, 'node_modules'))
    expect(installed).toContain('@georelay/client/package.json')
    expect(installed.filter(p => /(^|\/)better-sqlite3(\/|$)/.test(p) || p.endsWith('.node'))).toEqual([])
    // npm exits 1 when nothing matches; what counts is that it lists nothing.
    const listed = JSON.parse(await npm(app, ['ls', 'better-sqlite3', '--all', '--json'], { allowFailure: true })) as { dependencies?: object }
    expect(listed.dependencies ?? {}).toEqual({})
  })

  describe('bundled for the browser', () => {
    let inputs: Metafile['inputs']
    beforeAll(async () => {
      const entry = path.join(app, 'entry.js')
      fs.writeFileSync(entry, "import { GeoClient } from '@georelay/client'; import * as Y from 'yjs'; console.log(typeof GeoClient, typeof Y.Doc)\n")
      // Throws on any error, such as a Node built-in that the browser field does not map away.
      const result = await build({
        entryPoints: [entry], absWorkingDir: app, platform: 'browser', bundle: true, format: 'esm', write: false, metafile: true, logLevel: 'silent',
      })
      expect(result.outputFiles).toHaveLength(1)
      inputs = result.metafile.inputs
    })

    it('uses no Node built-in module', () => {
      const builtins = new Set(builtinModules)
      const isBuiltin = (p: string) => p.startsWith('node:') || builtins.has(p) || builtins.has(p.split('/')[0] as string)
      // Inputs are the files bundled; an import left external would name the module itself.
      const used = [...Object.keys(inputs), ...Object.values(inputs).flatMap(input => input.imports.map(i => i.path))]
      expect(used.filter(isBuiltin)).toEqual([])
      // The client's browser field replaced its Node-only modules by empty ones: without it, ws
      // would bundle its browser stub, which throws when constructed.
      const disabled = Object.keys(inputs).filter(p => p.startsWith('(disabled):'))
      expect(disabled).toContain('(disabled):node_modules/@georelay/client/dist/file-offline-store.js')
      expect(disabled.filter(p => p.startsWith('(disabled):node_modules/ws/'))).toHaveLength(1)
    })

    it('holds one copy of yjs', () => {
      const marker = 'node_modules/yjs/'
      const yjs = Object.keys(inputs).filter(p => p.includes(marker))
      expect(yjs.length).toBeGreaterThan(0)
      expect([...new Set(yjs.map(p => p.slice(0, p.lastIndexOf(marker) + marker.length)))]).toEqual([marker])
      // Nor its CommonJS build beside the ESM one (the dual-package hazard).
      expect(yjs.filter(p => p.endsWith('.cjs'))).toEqual([])
    })
  })
})
