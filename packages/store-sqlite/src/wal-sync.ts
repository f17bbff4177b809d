/**
 * fsync of the WAL off the event loop. better-sqlite3 is synchronous: with `synchronous =
 * FULL` every commit waited for fsync on the main thread, and a relay's fan-out stopped with
 * it (in the paced bench, 40 % of the event loop's time). So the store commits with `NORMAL`
 * (in WAL mode a commit is then a write() to the WAL, consistent after a crash but not yet
 * durable) and makes commits durable here: `fdatasync` of the WAL file runs in libuv's thread
 * pool, and an append is acknowledged only once a sync that started after its commit has
 * finished. fsync flushes the file, not the descriptor, so syncing our own descriptor of the
 * WAL covers the frames SQLite wrote through its own.
 *
 * Syncs coalesce: while one runs, every commit made meanwhile waits for the next one, which
 * starts as soon as it ends, so a busy relay pays one fsync per round trip to the disk, not
 * one per transaction. Checkpoints keep SQLite's own ordering (with NORMAL it syncs the WAL
 * before a checkpoint and the database after), so what a finished sync covered stays durable.
 */
import fs from 'node:fs'

export type Fdatasync = (fd: number) => Promise<void>

const fdatasync: Fdatasync = fd =>
  new Promise((resolve, reject) => fs.fdatasync(fd, err => err === null ? resolve() : reject(err)))

export class WalSync {
  private fd: number | null = null
  /** The sync running now: it covers commits made before it started. */
  private running: Promise<void> | null = null
  /** The sync that starts when the running one ends: it covers commits made meanwhile. */
  private next: Promise<void> | null = null
  /** How many fdatasync calls were made (for tests and the bench). */
  syncs = 0

  constructor (private readonly walPath: string, private readonly sync: Fdatasync = fdatasync) {}

  /** Resolves once everything committed before the call is on disk. */
  durable (): Promise<void> {
    if (this.running === null) return this.start()
    this.next ??= this.running.then(() => this.startNext(), () => this.startNext())
    return this.next
  }

  /** Closes the descriptor (after the last sync: call once appends are settled). */
  close (): void {
    if (this.fd !== null) fs.closeSync(this.fd)
    this.fd = null
  }

  private startNext (): Promise<void> {
    this.next = null
    return this.start()
  }

  private start (): Promise<void> {
    // Opened on first use: SQLite creates the WAL with the first write, not at open.
    this.fd ??= fs.openSync(this.walPath, 'r')
    this.syncs++
    const run: Promise<void> = this.sync(this.fd).finally(() => { if (this.running === run) this.running = null })
    this.running = run
    return run
  }
}
