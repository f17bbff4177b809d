/**
 * `georelay backup` of a running relay's SQLite store while writes go on, and `georelay restore`
 * of it: two real relay processes meshed (regions a and b), a backed up mid-traffic, more writes
 * in both regions after the backup, a stopped and restored from the backup, started again. a
 * must end up holding everything — what the backup missed comes back from b — and what it
 * takes after the restore must reach b.
 */
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals'
import { spawn } from 'node:child_process'
import fs from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import type { WebsocketProvider } from 'y-websocket'
import Database from 'better-sqlite3'
import { SQLITE_FILE, backupSqliteStore, restoreSqliteStore, SqliteStore, UNKNOWN_SEQ_GAP } from '@georelay/store-sqlite'
import {
  GEORELAY_BIN, TestCluster, connectProvider, destroyProvider, nextEvent, on, readStoredDoc, setFullCheck, waitSynced,
  waitUntil,
} from '@georelay/testkit'
import * as Y from 'yjs'

/** The environment without GEORELAY_* variables, so a developer's shell cannot change a test. */
const cleanEnv = (): NodeJS.ProcessEnv =>
  Object.fromEntries(Object.entries(process.env).filter(([key]) => !key.startsWith('GEORELAY_')))

interface CliResult { code: number | null, stdout: string, stderr: string }

/** Runs the real `georelay` launcher to its end; 'close' also means stdout and stderr are complete. */
const runCli = async (args: string[]): Promise<CliResult> => {
  const child = spawn(process.execPath, [GEORELAY_BIN, ...args], { env: cleanEnv(), stdio: ['ignore', 'pipe', 'pipe'] })
  let stdout = ''
  let stderr = ''
  child.stdout.setEncoding('utf8').on('data', (chunk: string) => { stdout += chunk })
  child.stderr.setEncoding('utf8').on('data', (chunk: string) => { stderr += chunk })
  try {
    const [code] = await nextEvent<[number | null]>(child, 'close', { what: `georelay ${args.join(' ')} to exit`, timeoutMs: 20_000 })
    return { code, stdout, stderr }
  } finally {
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL')
  }
}

const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'georelay-backup-'))
afterAll(() => { fs.rmSync(tmp, { recursive: true, force: true }) })

const items = (doc: Y.Doc): string[] => doc.getArray<string>('set').toArray()

/** Waits until the provider's document holds every element of `elements`. */
const waitForAll = (
  provider: WebsocketProvider,
  elements: readonly string[],
  what: string,
  timeoutMs = 20_000,
): Promise<true> =>
  waitUntil([on(provider.doc, 'update')], () => {
    const have = new Set(items(provider.doc))
    return elements.every(e => have.has(e))
  }, { what, timeoutMs })

describe('backing up and restoring the SQLite store', () => {
  it('refuses a missing data directory, one without a store, and an existing file without --force', async () => {
    const missing = path.join(tmp, 'nope')
    await expect(backupSqliteStore(missing, path.join(tmp, 'x.sqlite'))).rejects.toThrow(`no data directory at ${missing}: give --data the directory the relay runs on`)
    const empty = fs.mkdtempSync(path.join(tmp, 'empty-'))
    await expect(backupSqliteStore(empty, path.join(tmp, 'x.sqlite'))).rejects.toThrow(`${empty} holds no ${SQLITE_FILE}: is it a relay's data directory?`)

    const dataDir = fs.mkdtempSync(path.join(tmp, 'data-'))
    const store = new SqliteStore(dataDir)
    await store.append('doc', Y.encodeStateAsUpdate(new Y.Doc()))
    await store.close()
    const out = path.join(tmp, 'exists.sqlite')
    fs.writeFileSync(out, 'precious')
    await expect(backupSqliteStore(dataDir, out)).rejects.toThrow(`${out} exists: choose another --out, or give --force to replace it`)
    expect(fs.readFileSync(out, 'utf8')).toBe('precious')
    await expect(backupSqliteStore(dataDir, path.join(tmp, 'no-such-dir', 'x.sqlite'))).rejects.toThrow(/does not exist: create it first/)
    const replaced = await backupSqliteStore(dataDir, out, { force: true })
    expect(replaced).toMatchObject({ file: out, lastSeq: 1 })
    // One self-contained file: a rollback journal, nothing beside it.
    expect(fs.existsSync(`${out}-wal`)).toBe(false)
    const copy = new Database(out, { readonly: true })
    expect(copy.pragma('journal_mode', { simple: true })).toBe('delete')
    copy.close()

    // Through the command: the same refusals, exit 1, and a bad command line exits 2.
    const cli = await runCli(['backup', '--data', missing, '--out', path.join(tmp, 'y.sqlite')])
    expect(cli).toMatchObject({ code: 1, stdout: '' })
    expect(cli.stderr).toContain(`georelay: no data directory at ${missing}`)
    expect((await runCli(['backup', '--data', dataDir])).code).toBe(2)
    expect((await runCli(['restore', '--data', dataDir])).code).toBe(2)
  })

  it('restores into an empty data directory with its numbers far past the backup\'s, the last one unknown', async () => {
    const dataDir = fs.mkdtempSync(path.join(tmp, 'data-'))
    const store = new SqliteStore(dataDir)
    for (let i = 0; i < 3; i++) await store.append('doc', Y.encodeStateAsUpdate(new Y.Doc()))
    await store.close()
    const backup = path.join(tmp, 'three.sqlite')
    await backupSqliteStore(dataDir, backup)
    const fresh = path.join(tmp, 'fresh-machine')
    const result = restoreSqliteStore(backup, fresh)
    expect(result).toMatchObject({ replaced: null, backupSeq: 3, seqFloor: 3 + UNKNOWN_SEQ_GAP, seqKnown: false })
    const restored = new SqliteStore(fresh)
    expect(await restored.lastSeq()).toBe(3 + UNKNOWN_SEQ_GAP)
    expect(await restored.append('doc', Y.encodeStateAsUpdate(new Y.Doc()))).toBe(4 + UNKNOWN_SEQ_GAP)
    expect((await restored.read('doc')).log).toHaveLength(4)
    await restored.close()
  })

  it('refuses to restore under a process that has the store open', async () => {
    const dataDir = fs.mkdtempSync(path.join(tmp, 'data-'))
    const store = new SqliteStore(dataDir)
    await store.append('doc', Y.encodeStateAsUpdate(new Y.Doc()))
    const backup = path.join(tmp, 'open.sqlite')
    await backupSqliteStore(dataDir, backup)
    try {
      expect(() => restoreSqliteStore(backup, dataDir)).toThrow(`a process has ${path.join(dataDir, SQLITE_FILE)} open: stop the relay on this data directory first`)
    } finally {
      await store.close()
    }
  })
})

describe('georelay backup and restore of a running region', () => {
  let cluster: TestCluster
  const providers: WebsocketProvider[] = []
  const connect = (region: string, doc: string): WebsocketProvider => {
    const provider = connectProvider(cluster.url(region), doc)
    providers.push(provider)
    return provider
  }
  const disconnect = (provider: WebsocketProvider): void => {
    providers.splice(providers.indexOf(provider), 1)
    destroyProvider(provider)
  }
  const push = (provider: WebsocketProvider, element: string, written: string[]): void => {
    provider.doc.getArray<string>('set').push([element])
    written.push(element)
  }
  const [docOne, docTwo, docNew] = ['notes/one', 'notes/two', 'notes/after-backup']
  /** Per document: every element written, by when and where. */
  const written = {
    beforeBackup: { [docOne]: [] as string[], [docTwo]: [] as string[] },
    duringBackup: [] as string[],
    /** In a, after the backup: to docOne, and to a document the backup never saw. */
    aAfter: { [docOne]: [] as string[], [docNew]: [] as string[] },
    /** In b, after the backup. */
    bAfter: { [docOne]: [] as string[], [docTwo]: [] as string[] },
  }
  const all = (doc: string): string[] => [
    ...written.beforeBackup[doc] ?? [],
    ...doc === docOne ? written.duringBackup : [],
    ...written.aAfter[doc] ?? [],
    ...written.bAfter[doc] ?? [],
  ]
  let bOne: WebsocketProvider
  let readers: Record<string, WebsocketProvider>
  let backup: CliResult
  let restore: CliResult
  let aDir: string
  /** What the backup holds of docOne, read from the file itself. */
  let inBackup: string[]

  // The whole story once; the tests below look at what a holds afterwards.
  beforeAll(async () => {
    cluster = await TestCluster.start({ regions: ['a', 'b'], mode: 'process' })
    aDir = path.join(cluster.dataDir, 'a')
    const backupFile = path.join(tmp, 'a-backup.sqlite')

    const aOne = connect('a', docOne)
    const aTwo = connect('a', docTwo)
    bOne = connect('b', docOne)
    const bTwo = connect('b', docTwo)
    await Promise.all([aOne, aTwo, bOne, bTwo].map(p => waitSynced(p)))
    for (let i = 0; i < 100; i++) push(aOne, `before-${i}`, written.beforeBackup[docOne] as string[])
    for (let i = 0; i < 100; i++) push(aTwo, `before-${i}`, written.beforeBackup[docTwo] as string[])
    await waitForAll(bOne, written.beforeBackup[docOne] as string[], 'b to hold a\'s first writes')

    // Load during the backup, not synchronisation: a writer in a every few ms.
    const timer = setInterval(() => push(aOne, `during-${written.duringBackup.length}`, written.duringBackup), 3)
    try {
      backup = await runCli(['backup', '--data', aDir, '--out', backupFile])
    } finally {
      clearInterval(timer)
    }

    // The backup's own view of docOne, read as a relay would (a store needs its file in a directory).
    const view = fs.mkdtempSync(path.join(tmp, 'backup-view-'))
    fs.copyFileSync(backupFile, path.join(view, SQLITE_FILE))
    const store = new SqliteStore(view)
    inBackup = items(await readStoredDoc(store, docOne))
    await store.close()

    // After the backup: more writes in a (one document the backup never saw) and in b.
    const aNew = connect('a', docNew)
    await waitSynced(aNew)
    for (let i = 0; i < 100; i++) push(aOne, `a-after-${i}`, written.aAfter[docOne] as string[])
    for (let i = 0; i < 100; i++) push(aNew, `a-new-${i}`, written.aAfter[docNew] as string[])
    for (let i = 0; i < 100; i++) push(bOne, `b-after-${i}`, written.bAfter[docOne] as string[])
    for (let i = 0; i < 100; i++) push(bTwo, `b-after-${i}`, written.bAfter[docTwo] as string[])
    // b holds all of a's writes (replicated), a all of b's, before a goes.
    const bNew = connect('b', docNew)
    await Promise.all([
      waitForAll(bOne, all(docOne), 'b to hold everything of one'),
      waitForAll(bNew, all(docNew), 'b to hold a\'s new document'),
      waitForAll(aTwo, all(docTwo), 'a to hold everything of two'),
      waitForAll(aOne, all(docOne), 'a to hold everything of one'),
    ])
    // a's clients go with it: whatever a holds after the restore, it got from its store and b.
    for (const provider of [aOne, aTwo, aNew]) disconnect(provider)
    disconnect(bNew)

    await cluster.stopRegion('a')
    restore = await runCli(['restore', '--from', backupFile, '--data', aDir])
    await cluster.startRegion('a')
    readers = Object.fromEntries([docOne, docTwo, docNew].map(doc => [doc, connect('a', doc)]))
    await Promise.all(Object.values(readers).map(reader => waitSynced(reader)))
  }, 60_000)
  afterAll(async () => {
    for (const provider of providers.splice(0)) destroyProvider(provider)
    await cluster?.close()
  })

  it('backs up while a writes, and restores with a stopped', () => {
    expect(backup.stderr).not.toMatch(/georelay: /)
    expect(backup.code).toBe(0)
    expect(backup.stderr).toMatch(/^georelay backup: (\d+)\/\1 pages \(100%\)$/m)
    expect(backup.stdout).toMatch(/backed up to \S+ \(\d+ pages, [\d.]+ MB, log up to seq \d+\)/)
    expect(written.duringBackup.length).toBeGreaterThan(0) // a wrote while the copy ran
    expect(restore.stderr).toBe('')
    expect(restore.code).toBe(0)
    expect(restore.stdout).toMatch(/new entries are numbered after \d+, the last number the replaced store used/)
    expect(fs.readdirSync(aDir).filter(f => f.startsWith(`${SQLITE_FILE}.replaced-`))).toHaveLength(1)
  })

  it('wrote one consistent state: every write before it, then a gapless run of those during it', () => {
    const during = inBackup.filter(e => e.startsWith('during-'))
    expect(inBackup.filter(e => e.startsWith('before-'))).toEqual(written.beforeBackup[docOne])
    expect(during).toEqual(written.duringBackup.slice(0, during.length))
  })

  it('holds everything the backup held, and gets b\'s writes since back from b', async () => {
    const two = readers[docTwo] as WebsocketProvider
    await waitForAll(two, all(docTwo), 'a to hold everything of two')
    expect(setFullCheck(all(docTwo), { a: two.doc })).toMatchObject({ ok: true, lost: {}, duplicated: {} })
    const one = readers[docOne] as WebsocketProvider
    await waitForAll(one, inBackup, 'a to hold what the backup held of one')
    expect(items(one.doc).slice(0, inBackup.length)).toEqual(inBackup)
  })

  it('numbers its writes after the restore past what b holds of a, so b takes them', async () => {
    const reader = readers[docOne] as WebsocketProvider
    const afterRestore: string[] = []
    for (let i = 0; i < 50; i++) push(reader, `restored-${i}`, afterRestore)
    await waitForAll(bOne, afterRestore, 'b to take a\'s writes made after the restore')
  })
})
