import { afterAll, beforeAll, describe, expect, it } from '@jest/globals'
import { spawn } from 'node:child_process'
import { appendFile, mkdir, mkdtemp, readFile, rm, stat, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import path from 'node:path'
import { fileURLToPath, pathToFileURL } from 'node:url'
import { FileOfflineStore } from '../src/file-offline-store.js'
import type { PendingWrite } from '../src/offline-store.js'
import { assertWrites, checksFor, runCheck, trackingFixture, write } from './offline-store-conformance.js'

let root: string
beforeAll(async () => { root = await mkdtemp(path.join(tmpdir(), 'georelay-file-store-')) })
afterAll(async () => { await rm(root, { recursive: true, force: true }) })

let dirs = 0
const freshDir = async (): Promise<string> => {
  const dir = path.join(root, `d${dirs++}`)
  await mkdir(dir)
  return dir
}

describe('FileOfflineStore conformance', () => {
  const setup = async () => {
    const file = path.join(await freshDir(), 'pending.log')
    return trackingFixture(
      true,
      () => FileOfflineStore.open(file),
      () => rm(path.dirname(file), { recursive: true, force: true }),
    )
  }
  for (const check of checksFor(true)) it(check.name, () => runCheck(check, setup))
})

describe('FileOfflineStore conformance, compacting whenever removed writes dominate', () => {
  const setup = async () => {
    const file = path.join(await freshDir(), 'pending.log')
    return trackingFixture(
      true,
      () => FileOfflineStore.open(file, { compactMinBytes: 1 }),
      () => rm(path.dirname(file), { recursive: true, force: true }),
    )
  }
  for (const check of checksFor(true)) it(check.name, () => runCheck(check, setup))
})

const writes = (ids: number[], length?: number): PendingWrite[] => ids.map(id => write(id, length))
const range = (from: number, to: number): number[] => Array.from({ length: to - from + 1 }, (_, i) => from + i)

describe('FileOfflineStore on disk', () => {
  it('loads every record before a tail torn at any byte, and appends after it safely', async () => {
    const file = path.join(await freshDir(), 'pending.log')
    let store = await FileOfflineStore.open(file)
    for (const w of writes([1, 2, 3])) await store.put('a', w)
    await store.put('b', write(1))
    const before = (await stat(file)).size
    await store.put('b', write(2, 40))
    await store.close()
    const full = await readFile(file)
    const lastRecord = full.length - before
    for (let cut = 1; cut < lastRecord; cut++) {
      await writeFile(file, full.subarray(0, full.length - cut))
      store = await FileOfflineStore.open(file)
      expect(store.discardedTailBytes).toBe(lastRecord - cut)
      assertWrites(await store.load('a'), writes([1, 2, 3]), `'a' with ${cut} bytes cut`)
      assertWrites(await store.load('b'), writes([1]), `'b' with ${cut} bytes cut`)
      await store.close()
    }
    // The torn bytes are gone, so a write appended now is found on the next load.
    store = await FileOfflineStore.open(file)
    await store.put('b', write(3))
    await store.close()
    store = await FileOfflineStore.open(file)
    expect(store.discardedTailBytes).toBe(0)
    assertWrites(await store.load('a'), writes([1, 2, 3]), "'a' after appending past the tear")
    assertWrites(await store.load('b'), writes([1, 3]), "'b' after appending past the tear")
    await store.close()
  })

  it('ignores a last record with a flipped byte or junk appended after the records', async () => {
    const file = path.join(await freshDir(), 'pending.log')
    let store = await FileOfflineStore.open(file)
    for (const w of writes([1, 2, 3], 20)) await store.put('doc', w)
    await store.close()
    const full = await readFile(file)
    const flipped = Buffer.from(full)
    flipped[flipped.length - 5] = (flipped[flipped.length - 5] as number) ^ 0x40
    await writeFile(file, flipped)
    store = await FileOfflineStore.open(file)
    assertWrites(await store.load('doc'), writes([1, 2], 20), 'after a flipped byte in the last record')
    await store.close()

    await writeFile(file, full)
    // What a crash on some file systems leaves: the file's new length without its data.
    await appendFile(file, Buffer.alloc(4096))
    store = await FileOfflineStore.open(file)
    expect(store.discardedTailBytes).toBe(4096)
    assertWrites(await store.load('doc'), writes([1, 2, 3], 20), 'after zeros at the end')
    await store.close()
    expect((await stat(file)).size).toBe(full.length)
  })

  it('compacts once removed writes dominate, keeping the content and the appends after it', async () => {
    const file = path.join(await freshDir(), 'pending.log')
    let store = await FileOfflineStore.open(file, { compactMinBytes: 8192 })
    for (const w of writes(range(1, 200), 100)) await store.put('a', w)
    for (const w of writes(range(1, 10), 30)) await store.put('b', w)
    const grown = (await stat(file)).size
    expect(grown).toBeGreaterThan(200 * 100)
    await store.remove('a', 190)
    // The compaction runs after the remove resolved; a load is queued behind it.
    assertWrites(await store.load('a'), writes(range(191, 200), 100), "'a' after the remove")
    const compacted = (await stat(file)).size
    // 10 writes of 'a' and 10 of 'b' are left, about 2.3 kB with their framing.
    expect(compacted).toBeLessThan(3000)
    assertWrites(await store.load('a'), writes(range(191, 200), 100), "'a' after compaction")
    assertWrites(await store.load('b'), writes(range(1, 10), 30), "'b' after compaction")
    await store.put('a', write(201, 100))
    await store.remove('b', 5)
    await store.close()
    await expect(stat(`${file}.compact`)).rejects.toThrow(/ENOENT/)

    store = await FileOfflineStore.open(file, { compactMinBytes: 8192 })
    assertWrites(await store.load('a'), writes(range(191, 201), 100), "'a' after reopening")
    assertWrites(await store.load('b'), writes(range(6, 10), 30), "'b' after reopening")
    await store.close()
  })

  it('ignores what a compaction killed before its rename left behind', async () => {
    const file = path.join(await freshDir(), 'pending.log')
    let store = await FileOfflineStore.open(file)
    for (const w of writes([1, 2])) await store.put('doc', w)
    await store.close()
    await writeFile(`${file}.compact`, 'half a compaction')
    store = await FileOfflineStore.open(file)
    assertWrites(await store.load('doc'), writes([1, 2]), 'load')
    await store.close()
    await expect(stat(`${file}.compact`)).rejects.toThrow(/ENOENT/)
  })

  it('refuses every write once an append failed, and says to reopen; a reopen has the earlier writes', async () => {
    const file = path.join(await freshDir(), 'pending.log')
    let store = await FileOfflineStore.open(file)
    await store.put('doc', write(1))
    // Stands in for a disk error (EIO, ENOSPC): the next append fails.
    await (store as unknown as { handle: { close(): Promise<void> } }).handle.close()
    await expect(store.put('doc', write(2))).rejects.toThrow(/appending to the file failed .*open the store again/)
    await expect(store.put('doc', write(3))).rejects.toThrow(/this store takes no more writes/)
    await expect(store.load('doc')).rejects.toThrow(/this store takes no more writes/)
    await store.close()
    store = await FileOfflineStore.open(file)
    assertWrites(await store.load('doc'), writes([1]), 'after reopening')
    await store.close()
  })
})

describe('FileOfflineStore errors', () => {
  it('names the missing directory and how to create it', async () => {
    const dir = path.join(root, 'missing', 'deeper')
    await expect(FileOfflineStore.open(path.join(dir, 'pending.log')))
      .rejects.toThrow(`the directory ${dir} does not exist; create it first (mkdir -p ${dir})`)
  })

  it('says when part of the path is a file', async () => {
    const dir = await freshDir()
    await writeFile(path.join(dir, 'plain'), 'x')
    await expect(FileOfflineStore.open(path.join(dir, 'plain', 'pending.log'))).rejects.toThrow(/is not a directory \(part of the path is a file\)/)
  })

  it('says when the path is a directory, suggesting a file inside it', async () => {
    const dir = await freshDir()
    await expect(FileOfflineStore.open(dir)).rejects.toThrow(`this is a directory; give a file path inside it, e.g. file:${path.join(dir, 'pending-writes.log')}`)
  })

  it('refuses a file that is not an offline store, leaving it untouched', async () => {
    const file = path.join(await freshDir(), 'notes.json')
    const content = JSON.stringify({ precious: 'data'.repeat(50) })
    await writeFile(file, content)
    await expect(FileOfflineStore.open(file)).rejects.toThrow(/is not a georelay offline store .*choose another path/)
    expect(await readFile(file, 'utf8')).toBe(content)
    await expect(stat(`${file}.lock`)).rejects.toThrow(/ENOENT/)
  })

  it('refuses to open one file twice in a process, until the first store is closed', async () => {
    const file = path.join(await freshDir(), 'pending.log')
    const first = await FileOfflineStore.open(file)
    await expect(FileOfflineStore.open(path.join(path.dirname(file), '.', 'pending.log'))).rejects.toThrow(/already open in this process/)
    await first.close()
    const second = await FileOfflineStore.open(file)
    await second.close()
  })
})

/**
 * The child puts writes with up to 8 in flight (so the kill lands among batched appends, and
 * removes make compactions run), reports each put and remove once it resolved, and reports a
 * remove before issuing it. Payloads are derived from the write id so the parent can check them.
 * With SELF_KILL_AFTER it kills itself -9 right after reporting that many puts: the worst moment
 * for "resolved means kept", which a kill from outside hits only by chance.
 */
const CHILD = (moduleUrl: string): string => `
import { FileOfflineStore } from ${JSON.stringify(moduleUrl)}
const payload = id => {
  const bytes = new Uint8Array(id % 10 === 0 ? 100000 : 50 + (id * 37) % 500)
  for (let i = 0; i < bytes.length; i++) bytes[i] = (id * 31 + i) & 0xff
  return bytes
}
const store = await FileOfflineStore.open(process.env.STORE_FILE, { compactMinBytes: 64 * 1024 })
process.stdout.write('open\\n')
const selfKillAfter = Number(process.env.SELF_KILL_AFTER || Infinity)
let reported = 0
const inFlight = new Set()
for (let id = Number(process.env.FIRST_ID); ; id++) {
  const doc = id % 3 === 0 ? 'a' : 'b'
  const put = store.put(doc, { writeId: id, update: payload(id) }).then(() => {
    process.stdout.write('put ' + doc + ' ' + id + '\\n')
    if (++reported === selfKillAfter) process.kill(process.pid, 'SIGKILL')
  })
  inFlight.add(put)
  put.finally(() => inFlight.delete(put))
  if (id % 50 === 0) {
    const upTo = id - 20
    process.stdout.write('removing b ' + upTo + '\\n')
    store.remove('b', upTo).then(() => { process.stdout.write('removed b ' + upTo + '\\n') })
  }
  if (inFlight.size >= 8) await Promise.race(inFlight)
}
`

const payload = (id: number): Uint8Array => {
  const bytes = new Uint8Array(id % 10 === 0 ? 100000 : 50 + (id * 37) % 500)
  for (let i = 0; i < bytes.length; i++) bytes[i] = (id * 31 + i) & 0xff
  return bytes
}

interface ChildRun { lines: string[], exit: string, heldLockError: string }

/**
 * Runs the child until it reported `puts` resolved puts; then either it kills itself, or this
 * process checks that the child's lock holds and kills it -9.
 */
const runAndKill = (moduleUrl: string, file: string, firstId: number, puts: number, killer: 'self' | 'parent'): Promise<ChildRun> =>
  new Promise((resolve, reject) => {
    const child = spawn(process.execPath, ['--input-type=module', '-e', CHILD(moduleUrl)], {
      env: { ...process.env, STORE_FILE: file, FIRST_ID: String(firstId), SELF_KILL_AFTER: killer === 'self' ? String(puts) : '' },
      stdio: ['ignore', 'pipe', 'pipe'],
    })
    let stdout = ''
    let stderr = ''
    let killing = false
    let heldLockError = ''
    const timer = setTimeout(() => {
      child.kill('SIGKILL')
      reject(new Error(`the child did not report ${puts} puts within 15 s; stdout tail: ${stdout.slice(-300)}; stderr: ${stderr}`))
    }, 15_000)
    child.stderr.setEncoding('utf8').on('data', (chunk: string) => { stderr += chunk })
    child.stdout.setEncoding('utf8').on('data', (chunk: string) => {
      stdout += chunk
      if (killer === 'self' || killing || stdout.split('\nput ').length - 1 < puts) return
      killing = true
      // While the child lives, its lock must keep this process out.
      FileOfflineStore.open(file).then(
        async store => { await store.close(); heldLockError = 'opened while the child held the file' },
        (err: Error) => { heldLockError = err.message },
      ).finally(() => child.kill('SIGKILL'))
    })
    // 'close' comes after the pipes drained: every line the child wrote before dying is in.
    child.on('close', (code, signal) => {
      clearTimeout(timer)
      resolve({ lines: stdout.split('\n').filter(line => line !== ''), exit: signal ?? `code ${String(code)}; stderr: ${stderr}`, heldLockError })
    })
  })

describe('FileOfflineStore and kill -9', () => {
  let moduleUrl: string
  beforeAll(async () => {
    // Bundled from the source now, so the child never runs a stale dist.
    const esbuild = await import('esbuild')
    const out = path.join(root, 'file-offline-store.mjs')
    await esbuild.build({
      entryPoints: [fileURLToPath(new URL('../src/file-offline-store.ts', import.meta.url))],
      bundle: true, platform: 'node', format: 'esm', target: 'node20', outfile: out, logLevel: 'silent',
    })
    moduleUrl = pathToFileURL(out).href
  })

  it('keeps every write whose put resolved, and nothing corrupt, across kills at random points', async () => {
    const file = path.join(await freshDir(), 'pending.log')
    const resolved = { a: new Set<number>(), b: new Set<number>() }
    let removedUpTo = -1 // the highest remove of 'b' that resolved
    let removingUpTo = -1 // the highest remove of 'b' issued: it may have been applied
    let bytesPut = 0
    const rounds = [[150, 'parent'], [200, 'self'], [400, 'parent'], [60, 'self'], [120, 'self'], [250, 'parent'], [300, 'self'], [90, 'self']] as const
    for (const [index, [puts, killer]] of rounds.entries()) {
      const round = index + 1
      const run = await runAndKill(moduleUrl, file, round * 1_000_000, puts, killer)
      expect(run.exit).toBe('SIGKILL')
      if (killer === 'parent') expect(run.heldLockError).toMatch(/is in use by process \d+; close that client first/)
      for (const line of run.lines) {
        const [what, doc, id] = line.split(' ')
        if (what === 'put') {
          resolved[doc as 'a' | 'b'].add(Number(id))
          bytesPut += payload(Number(id)).length
        }
        if (what === 'removed') removedUpTo = Math.max(removedUpTo, Number(id))
        if (what === 'removing') removingUpTo = Math.max(removingUpTo, Number(id))
      }

      // The dead child's lock is taken over.
      const store = await FileOfflineStore.open(file)
      const loaded = { a: await store.load('a'), b: await store.load('b') }
      await store.close()
      for (const doc of ['a', 'b'] as const) {
        for (const w of loaded[doc]) {
          if (!Buffer.from(w.update).equals(payload(w.writeId))) throw new Error(`write ${w.writeId} of '${doc}' came back with other bytes (round ${round})`)
        }
        const loadedIds = new Set(loaded[doc].map(w => w.writeId))
        const mustHave = [...resolved[doc]].filter(id => doc === 'a' || id > removingUpTo)
        expect(mustHave.filter(id => !loadedIds.has(id))).toEqual([])
      }
      expect(loaded.b.filter(w => w.writeId <= removedUpTo).map(w => w.writeId)).toEqual([])
      expect(resolved.a.size).toBeGreaterThan(round * 20)
    }
    // Without a compaction the file would hold at least every payload ever put: compactions ran
    // between the kills, so kills could land in them.
    expect((await stat(file)).size).toBeLessThan(bytesPut)
  }, 30_000)
})
