/**
 * Online backup and offline restore of a relay's SQLite store.
 *
 * The backup reads the store through a connection of its own with SQLite's backup API
 * (better-sqlite3's `db.backup`), while the relay keeps writing: in WAL mode a reader never
 * blocks the relay, and the copy is one consistent state of the database. SQLite restarts a
 * stepwise backup whenever another connection writes, which under steady traffic could go on
 * forever; after a few restarts the rest is copied in one step, which holds one read snapshot
 * (the relay still writes meanwhile) and cannot be restarted.
 *
 * The restore puts a backup in place of a stopped relay's store. A restored store is older than
 * what its peers hold of it, so its sequence numbers are raised past every number the replaced
 * store had used: peers skip entries numbered at or below what they hold of a region, and new
 * writes numbered again from the backup's last one would be skipped by them as duplicates.
 */
import fs from 'node:fs'
import path from 'node:path'
import Database from 'better-sqlite3'
import { SQLITE_FILE } from './sqlite-store.js'

/** Pages per backup step (about 4 MiB at SQLite's default page size of 4 KiB). */
const PAGES_PER_STEP = 1000
/** Restarts (the relay wrote meanwhile) after which the rest is copied in one step. */
const RESTARTS_BEFORE_ONE_STEP = 3
/** The largest step better-sqlite3 takes: all remaining pages. */
const ALL_PAGES = 0x7fffffff
/**
 * When the replaced store cannot be read, nothing tells how far the region's numbers went
 * after the backup: the restored store's numbers start this far past the backup's instead
 * (a region writing 1,000 entries a second takes 35 years to use it up).
 */
export const UNKNOWN_SEQ_GAP = 2 ** 40

export class BackupError extends Error {
  constructor (message: string) {
    super(message)
    this.name = 'BackupError'
  }
}

export interface BackupProgress {
  /** Pages copied so far of the current pass, and pages of the database. */
  donePages: number
  totalPages: number
  /** Times the copy started over because the relay wrote meanwhile. */
  restarts: number
  /** The rest is being copied in one step (after too many restarts). */
  oneStep: boolean
}

export interface BackupOptions {
  /** Replace `out` if it exists (otherwise an existing file is refused). */
  force?: boolean
  /** Called after every step of the copy. */
  onProgress?: (progress: BackupProgress) => void
  /** Pages per step (default 1000). */
  pagesPerStep?: number
}

export interface BackupResult {
  file: string
  pages: number
  bytes: number
  restarts: number
  /** The highest log sequence number in the backup. */
  lastSeq: number
}

const storeFileOf = (dataDir: string): string => path.join(dataDir, SQLITE_FILE)

/** The data directory's store file, or an error that says what to give instead. */
const existingStore = (dataDir: string): string => {
  let stat: fs.Stats
  try {
    stat = fs.statSync(dataDir)
  } catch {
    throw new BackupError(`no data directory at ${dataDir}: give --data the directory the relay runs on (its --data, by default ./data/<region>)`)
  }
  if (!stat.isDirectory()) throw new BackupError(`${dataDir} is not a directory: give --data the relay's data directory`)
  const file = storeFileOf(dataDir)
  if (!fs.existsSync(file)) {
    throw new BackupError(`${dataDir} holds no ${SQLITE_FILE}: is it a relay's data directory? (relays on --store postgres or memory keep none; see docs/operations.md for Postgres)`)
  }
  return file
}

/** The highest sequence number the log ever used (AUTOINCREMENT keeps it after deletes). */
const lastSeqOf = (db: Database.Database): number =>
  db.prepare<[], { seq: number }>("SELECT seq FROM sqlite_sequence WHERE name = 'log'").get()?.seq ?? 0

/** Checks that a file is an intact georelay store; returns its last sequence number. */
const checkStore = (db: Database.Database, file: string): number => {
  const check = db.pragma('quick_check', { simple: true })
  if (check !== 'ok') throw new BackupError(`${file} is damaged (SQLite quick_check: ${String(check)})`)
  const tables = new Set(db.prepare<[], { name: string }>("SELECT name FROM sqlite_master WHERE type = 'table'").all().map(t => t.name))
  if (!tables.has('meta') || !tables.has('log')) throw new BackupError(`${file} is an SQLite file but not a georelay store (no meta and log tables)`)
  return lastSeqOf(db)
}

/** fsync of a file or directory, so a rename that follows is durable with what it names. */
const syncPath = (target: string): void => {
  const fd = fs.openSync(target, 'r')
  try {
    fs.fsyncSync(fd)
  } finally {
    fs.closeSync(fd)
  }
}

const removeQuietly = (file: string): void => {
  for (const f of [file, `${file}-wal`, `${file}-shm`, `${file}-journal`]) fs.rmSync(f, { force: true })
}

/**
 * Copies the store in `dataDir` to `out` while its relay runs: one consistent state, as one
 * self-contained SQLite file (rollback journal, no -wal beside it). Written beside `out` first
 * and renamed into place once checked, so `out` is never a half-written file.
 */
export const backupSqliteStore = async (
  dataDir: string,
  out: string,
  options: BackupOptions = {},
): Promise<BackupResult> => {
  const source = existingStore(dataDir)
  const target = path.resolve(out)
  if (!options.force && fs.existsSync(target)) throw new BackupError(`${out} exists: choose another --out, or give --force to replace it`)
  if (!fs.existsSync(path.dirname(target))) throw new BackupError(`the directory of ${out} does not exist: create it first`)
  if (path.resolve(source) === target) throw new BackupError(`${out} is the store itself: back it up to another file`)
  const partial = `${target}.partial-${process.pid}`
  removeQuietly(partial)
  // Read only: the backup never writes to the relay's store, nor checkpoints its WAL.
  const db = new Database(source, { readonly: true, fileMustExist: true, timeout: 5000 })
  const pagesPerStep = options.pagesPerStep ?? PAGES_PER_STEP
  let restarts = 0
  let lastRemaining = Infinity
  let oneStep = false
  try {
    const { totalPages } = await db.backup(partial, {
      progress: ({ totalPages, remainingPages }) => {
        if (remainingPages > lastRemaining) restarts++
        lastRemaining = remainingPages
        if (restarts >= RESTARTS_BEFORE_ONE_STEP) oneStep = true
        options.onProgress?.({ donePages: totalPages - remainingPages, totalPages, restarts, oneStep })
        return oneStep ? ALL_PAGES : pagesPerStep
      },
    })
    const copy = new Database(partial, { fileMustExist: true })
    let lastSeq: number
    try {
      lastSeq = checkStore(copy, source)
      // The copy carries the store's WAL mode; a backup is better one file that copies alone.
      copy.pragma('journal_mode = DELETE')
    } finally {
      copy.close()
    }
    syncPath(partial)
    fs.renameSync(partial, target)
    syncPath(path.dirname(target))
    return { file: target, pages: totalPages, bytes: fs.statSync(target).size, restarts, lastSeq }
  } catch (err) {
    removeQuietly(partial)
    if (err instanceof BackupError) throw err
    throw new BackupError(`the backup of ${source} failed: ${(err as Error).message}`)
  } finally {
    db.close()
  }
}

export interface RestoreResult {
  /** The store file now in place. */
  file: string
  /** Where the replaced store was moved (null when the data directory had none). */
  replaced: string | null
  /** The backup's highest sequence number, and the one the restored store continues after. */
  backupSeq: number
  seqFloor: number
  /** Whether the replaced store could be read to learn how far its numbers went. */
  seqKnown: boolean
}

/**
 * What the store in `dataDir` says before it is replaced: its last sequence number, or null
 * when it cannot be read. Refuses while a relay has it open: switching it out of WAL mode needs
 * every other connection closed, so SQLite answers "busy" while one is.
 */
const replacedStore = (file: string): { lastSeq: number | null } => {
  let db: Database.Database
  try {
    db = new Database(file, { fileMustExist: true, timeout: 0 })
  } catch {
    return { lastSeq: null }
  }
  try {
    try {
      db.pragma('journal_mode = DELETE')
    } catch (err) {
      if ((err as { code?: string }).code === 'SQLITE_BUSY') {
        throw new BackupError(`a process has ${file} open: stop the relay on this data directory first, then restore`)
      }
      return { lastSeq: null }
    }
    try {
      return { lastSeq: lastSeqOf(db) }
    } catch {
      return { lastSeq: null }
    }
  } finally {
    db.close()
  }
}

/**
 * Puts the backup `from` in place as the store of `dataDir`, whose relay must be stopped. The
 * store there is kept beside it (`georelay.sqlite.replaced-<time>`), its -wal and -shm go, and
 * the restored store's sequence numbers continue past every number the replaced one used.
 */
export const restoreSqliteStore = (from: string, dataDir: string, now: Date = new Date()): RestoreResult => {
  if (!fs.existsSync(from)) throw new BackupError(`no backup at ${from}: give --from the file georelay backup wrote`)
  const check = new Database(from, { readonly: true, fileMustExist: true })
  let backupSeq: number
  try {
    backupSeq = checkStore(check, from)
  } finally {
    check.close()
  }
  fs.mkdirSync(dataDir, { recursive: true })
  const file = storeFileOf(dataDir)
  let replaced: string | null = null
  let replacedSeq: number | null = null
  if (fs.existsSync(file)) {
    replacedSeq = replacedStore(file).lastSeq
    replaced = `${file}.replaced-${now.toISOString().replace(/[:.]/g, '-')}`
    fs.renameSync(file, replaced)
  }
  // A -wal left by a killed relay would be applied to the restored file on open: it is the old one's.
  for (const stale of [`${file}-wal`, `${file}-shm`, `${file}-journal`]) {
    if (fs.existsSync(stale) && replaced !== null) fs.renameSync(stale, `${replaced}${stale.slice(file.length)}`)
    else fs.rmSync(stale, { force: true })
  }
  const seqKnown = replacedSeq !== null
  const seqFloor = Math.max(backupSeq, replacedSeq ?? backupSeq + UNKNOWN_SEQ_GAP)
  const partial = `${file}.restoring-${process.pid}`
  removeQuietly(partial)
  try {
    fs.copyFileSync(from, partial)
    const db = new Database(partial, { fileMustExist: true })
    try {
      // AUTOINCREMENT continues after sqlite_sequence's number for the table.
      const raised = db.prepare("UPDATE sqlite_sequence SET seq = max(seq, ?) WHERE name = 'log'").run(seqFloor)
      if (raised.changes === 0) db.prepare("INSERT INTO sqlite_sequence (name, seq) VALUES ('log', ?)").run(seqFloor)
      db.pragma('journal_mode = DELETE')
    } finally {
      db.close()
    }
    syncPath(partial)
    fs.renameSync(partial, file)
    syncPath(dataDir)
  } catch (err) {
    removeQuietly(partial)
    throw new BackupError(`restoring ${from} into ${dataDir} failed: ${(err as Error).message}${replaced === null ? '' : `; the replaced store is at ${replaced}`}`)
  }
  return { file, replaced, backupSeq, seqFloor, seqKnown }
}
