/**
 * `georelay backup` (an online copy of a running relay's SQLite store) and `georelay restore`
 * (putting one back while the relay is stopped). The work is @georelay/store-sqlite's; this is
 * the command line around it: flags, progress lines on stderr, what happened on stdout.
 */
import path from 'node:path'
import { BackupError, type BackupProgress, SQLITE_FILE, backupSqliteStore, restoreSqliteStore } from '@georelay/store-sqlite'
import { parseCommand } from './command-line.js'

/** Progress lines are at most this often (and once at the end). */
const PROGRESS_EVERY_MS = 1000

export const BACKUP_HELP = `georelay backup — an online backup of a relay's SQLite store

Usage:
  georelay backup --data DIR --out FILE [--force]
  georelay restore --from FILE --data DIR

backup
  Copies DIR/${SQLITE_FILE} to FILE while the relay runs and writes: one
  consistent state of the store, as one self-contained SQLite file. Progress
  (pages copied of the total) goes to stderr, the result to stdout.

  --data DIR           the relay's data directory (its --data)   GEORELAY_DATA
  --out FILE           where to write the backup; its directory must exist
  --force              replace FILE if it exists (refused otherwise)

restore
  Puts a backup in place as DIR/${SQLITE_FILE}, with the relay STOPPED
  (a relay still running on DIR is detected and refused). The store there is
  kept beside it as ${SQLITE_FILE}.replaced-<time>, with its -wal and -shm.
  The restored store's sequence numbers continue past the replaced one's, so
  peers take its new writes. Start the relay again: its peers send it what
  they hold of theirs since the backup.

  --from FILE          a file georelay backup wrote
  --data DIR           the relay's data directory (its --data)   GEORELAY_DATA

Exit codes: 0 done, 1 failed (the message says why), 2 bad command line.
`

/** An empty variable counts as unset, as for every other GEORELAY_* variable. */
const dataDirFrom = (flag: unknown): string | undefined =>
  typeof flag === 'string' ? flag : (process.env.GEORELAY_DATA || undefined)

const megabytes = (bytes: number): string => `${(bytes / 1024 / 1024).toFixed(1)} MB`

/** Progress on stderr, one line a second at most: pages copied of the total. */
const progressLines = (): ((progress: BackupProgress) => void) => {
  let lastAt = 0
  let saidOneStep = false
  return ({ donePages, totalPages, restarts, oneStep }) => {
    if (oneStep && !saidOneStep) {
      saidOneStep = true
      process.stderr.write(`georelay backup: the relay wrote during the copy ${restarts} times; copying the rest in one step\n`)
    }
    const now = Date.now()
    if (now - lastAt < PROGRESS_EVERY_MS) return
    lastAt = now
    const percent = totalPages === 0 ? 100 : Math.floor(donePages / totalPages * 100)
    process.stderr.write(`georelay backup: ${donePages}/${totalPages} pages (${percent}%)\n`)
  }
}

export const runBackup = async (args: string[], usage: (message: string) => number): Promise<number> => {
  const v = parseCommand(args, {
    data: { type: 'string' },
    out: { type: 'string' },
    force: { type: 'boolean' },
    help: { type: 'boolean', short: 'h' },
  }, BACKUP_HELP, usage)
  if (typeof v === 'number') return v
  const dataDir = dataDirFrom(v.data)
  if (dataDir === undefined) return usage('georelay backup needs --data DIR, the relay\'s data directory (or GEORELAY_DATA)')
  if (typeof v.out !== 'string' || v.out === '') return usage('georelay backup needs --out FILE, where to write the backup')
  try {
    const result = await backupSqliteStore(dataDir, v.out, { force: v.force === true, onProgress: progressLines() })
    process.stderr.write(`georelay backup: ${result.pages}/${result.pages} pages (100%)\n`)
    process.stdout.write(`georelay backup: ${path.join(dataDir, SQLITE_FILE)} backed up to ${result.file} (${result.pages} pages, ${megabytes(result.bytes)}, log up to seq ${result.lastSeq})\n`)
    return 0
  } catch (err) {
    if (!(err instanceof BackupError)) throw err
    process.stderr.write(`georelay: ${err.message}\n`)
    return 1
  }
}

export const runRestore = async (args: string[], usage: (message: string) => number): Promise<number> => {
  const v = parseCommand(args, {
    from: { type: 'string' },
    data: { type: 'string' },
    help: { type: 'boolean', short: 'h' },
  }, BACKUP_HELP, usage)
  if (typeof v === 'number') return v
  const dataDir = dataDirFrom(v.data)
  if (typeof v.from !== 'string' || v.from === '') return usage('georelay restore needs --from FILE, a backup georelay backup wrote')
  if (dataDir === undefined) return usage('georelay restore needs --data DIR, the relay\'s data directory (or GEORELAY_DATA)')
  try {
    const result = restoreSqliteStore(v.from, dataDir)
    const lines = [`georelay restore: ${v.from} is now ${result.file}`]
    if (result.replaced !== null) lines.push(`  the store it replaced is at ${result.replaced} (remove it once the region is back and converged)`)
    lines.push(result.seqKnown
      ? `  new entries are numbered after ${result.seqFloor}, the last number the replaced store used`
      : `  the replaced store could not be read: new entries are numbered after ${result.seqFloor} (the backup's ${result.backupSeq} plus a margin), past anything its peers may hold`)
    lines.push('  start the relay: its peers send what they hold since the backup')
    process.stdout.write(lines.join('\n') + '\n')
    return 0
  } catch (err) {
    if (!(err instanceof BackupError)) throw err
    process.stderr.write(`georelay: ${err.message}\n`)
    return 1
  }
}
