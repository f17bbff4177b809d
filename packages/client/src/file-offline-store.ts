/**
 * Pending writes of every document in one append-only file, for Node. Never import this module
 * statically from the rest of the SDK: the package's `browser` field maps it to nothing, and
 * `createOfflineStore` loads it with a dynamic import.
 *
 * File format: a header line, then records `[u32 body length][u32 crc32 of body][body]`
 * (little-endian), body = `u8 kind | u16 doc name length | doc name (UTF-8) | f64 write id |
 * update bytes (puts only)`. A remove is a tombstone record; replaying the records in order gives
 * the state. A kill -9 can only tear the last record, whose length or checksum then fails to
 * match: loading stops there and cuts the tail off before anything is appended after it.
 */
import { constants, type FileHandle, access, open, readFile, realpath, rm, rename, stat, writeFile } from 'node:fs/promises'
import path from 'node:path'
import { fileURLToPath } from 'node:url'
import zlib from 'node:zlib'
import { checkDocName, checkPut, checkRemove, closedError, type OfflineStore, type PendingWrite } from './offline-store.js'

export interface FileOfflineStoreOptions {
  /**
   * Rewrite the file without its removed writes once it is at least this large and removed
   * writes and tombstones take more than half of it. Default 1 MiB.
   */
  compactMinBytes?: number
}

const MAGIC = Buffer.from('georelay pending writes v1\n', 'utf8')
const PUT = 1
const REMOVE = 2
const FRAME = 8 // u32 length + u32 crc
const BODY_MIN = 1 + 2 + 8
const MAX_DOC_NAME_BYTES = 0xffff
const DEFAULT_COMPACT_MIN_BYTES = 1 << 20

// zlib.crc32 appeared in Node 20.15; older 20.x get the same checksum from a table.
let crcTable: Uint32Array | undefined
const crc32Fallback = (data: Uint8Array): number => {
  if (crcTable === undefined) {
    crcTable = new Uint32Array(256)
    for (let n = 0; n < 256; n++) {
      let c = n
      for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1
      crcTable[n] = c >>> 0
    }
  }
  let crc = 0xffffffff
  for (const byte of data) crc = (crcTable[(crc ^ byte) & 0xff] as number) ^ (crc >>> 8)
  return (crc ^ 0xffffffff) >>> 0
}
const crc32: (data: Uint8Array) => number = typeof zlib.crc32 === 'function' ? data => zlib.crc32(data) : crc32Fallback

const encodeRecord = (kind: number, docName: Buffer, writeId: number, update?: Uint8Array): Buffer => {
  const bodyLength = BODY_MIN + docName.length + (update?.length ?? 0)
  const record = Buffer.allocUnsafe(FRAME + bodyLength)
  record.writeUInt32LE(bodyLength, 0)
  let at = FRAME
  record.writeUInt8(kind, at); at += 1
  record.writeUInt16LE(docName.length, at); at += 2
  docName.copy(record, at); at += docName.length
  record.writeDoubleLE(writeId, at); at += 8
  if (update !== undefined) record.set(update, at)
  record.writeUInt32LE(crc32(record.subarray(FRAME)), 4)
  return record
}

type Decoded =
  | { kind: typeof PUT, docName: string, writeId: number, update: Uint8Array, size: number }
  | { kind: typeof REMOVE, docName: string, writeId: number, size: number }

/** The record at `at`, or null where the valid records end (torn or foreign bytes). */
const decodeRecord = (data: Buffer, at: number): Decoded | null => {
  if (data.length - at < FRAME) return null
  const bodyLength = data.readUInt32LE(at)
  if (bodyLength < BODY_MIN || bodyLength > data.length - at - FRAME) return null
  const body = data.subarray(at + FRAME, at + FRAME + bodyLength)
  if (crc32(body) !== data.readUInt32LE(at + 4)) return null
  const kind = body.readUInt8(0)
  const nameLength = body.readUInt16LE(1)
  if (3 + nameLength + 8 > bodyLength) return null
  const docName = body.toString('utf8', 3, 3 + nameLength)
  const writeId = body.readDoubleLE(3 + nameLength)
  const size = FRAME + bodyLength
  if (kind === PUT) return { kind, docName, writeId, update: new Uint8Array(body.subarray(3 + nameLength + 8)), size }
  if (kind === REMOVE) return { kind, docName, writeId, size }
  return null
}

interface Kept { update: Uint8Array, size: number }

interface Op {
  /** Bytes to append durably before `run`; none for reads. */
  record: Buffer | null
  /** Applies the op to the in-memory state once its record is durable. */
  run: () => unknown
  resolve: (value: never) => void
  reject: (err: unknown) => void
}

const errnoOf = (err: unknown): string | undefined => (err as NodeJS.ErrnoException | null)?.code

/** Stores open in this process, by real path: two stores appending to one file lose writes. */
const openInProcess = new Set<string>()

export class FileOfflineStore implements OfflineStore {
  /** Bytes cut off the end of the file when it was opened (a record torn by a crash). */
  readonly discardedTailBytes: number

  private readonly docs: Map<string, Map<number, Kept>>
  private handle: FileHandle
  private size: number
  private liveBytes: number
  private readonly compactMinBytes: number
  private nextCompactAt: number
  private queue: Op[] = []
  private draining: Promise<void> | null = null
  private failure: Error | null = null
  private closing: Promise<void> | null = null

  private constructor (
    readonly path: string,
    private readonly key: string,
    state: {
      handle: FileHandle
      size: number
      docs: Map<string, Map<number, Kept>>
      liveBytes: number
      discarded: number
    },
    options: FileOfflineStoreOptions,
  ) {
    this.handle = state.handle
    this.size = state.size
    this.docs = state.docs
    this.liveBytes = state.liveBytes
    this.discardedTailBytes = state.discarded
    this.compactMinBytes = options.compactMinBytes ?? DEFAULT_COMPACT_MIN_BYTES
    this.nextCompactAt = this.compactMinBytes
  }

  /**
   * Opens (or creates) the store at `file`, a path or a `file://` URL, and reads every pending
   * write into memory. The file's directory must exist.
   */
  static async open (file: string, options: FileOfflineStoreOptions = {}): Promise<FileOfflineStore> {
    const filePath = path.resolve(file.startsWith('file://') ? fileURLToPath(file) : file)
    const dir = path.dirname(filePath)
    await checkDirectory(filePath, dir)
    const key = path.join(await realpath(dir), path.basename(filePath))
    if (openInProcess.has(key)) {
      throw new Error(`offline store ${filePath} is already open in this process; use that store, or close it before opening the file again`)
    }
    openInProcess.add(key)
    let locked = false
    let handle: FileHandle | undefined
    try {
      await lock(filePath)
      locked = true
      // A compaction that crashed before its rename left only this; the file itself is intact.
      await rm(compactPath(filePath), { force: true })
      handle = await openOrCreate(filePath)
      const state = await readState(filePath, handle)
      const store = new FileOfflineStore(filePath, key, { handle, ...state }, options)
      await store.compactIfDue()
      return store
    } catch (err) {
      await handle?.close().catch(() => undefined)
      if (locked) await unlock(filePath)
      openInProcess.delete(key)
      throw err
    }
  }

  load (docName: string): Promise<PendingWrite[]> {
    try { checkDocName(docName) } catch (err) { return Promise.reject(err) }
    return this.enqueue(null, () => {
      const writes = this.docs.get(docName)
      if (writes === undefined) return []
      return [...writes]
        .sort(([a], [b]) => a - b)
        .map(([writeId, kept]) => ({ writeId, update: new Uint8Array(kept.update) }))
    })
  }

  put (docName: string, write: PendingWrite): Promise<void> {
    let record: Buffer
    let name: Buffer
    try {
      checkPut(docName, write)
      name = encodeDocName(docName)
      record = encodeRecord(PUT, name, write.writeId, write.update)
    } catch (err) {
      return Promise.reject(err)
    }
    // Copied now (not with `.slice()`, a view on a Buffer): the caller may reuse its buffer.
    const update = new Uint8Array(write.update)
    return this.enqueue(record, () => {
      let writes = this.docs.get(docName)
      if (writes === undefined) this.docs.set(docName, writes = new Map())
      const replaced = writes.get(write.writeId)
      if (replaced !== undefined) this.liveBytes -= replaced.size
      writes.set(write.writeId, { update, size: record.length })
      this.liveBytes += record.length
    })
  }

  remove (docName: string, upToWriteId: number): Promise<void> {
    let record: Buffer
    try {
      checkRemove(docName, upToWriteId)
      record = encodeRecord(REMOVE, encodeDocName(docName), upToWriteId)
    } catch (err) {
      return Promise.reject(err)
    }
    // Nothing to forget costs no append (and no fsync): acks of already removed ids are common.
    const writes = this.docs.get(docName)
    const pending = this.queue.length > 0 || this.draining !== null
    if (!pending && (writes === undefined || ![...writes.keys()].some(id => id <= upToWriteId))) {
      return this.enqueue(null, () => undefined)
    }
    return this.enqueue(record, () => {
      const current = this.docs.get(docName)
      if (current === undefined) return
      for (const [writeId, kept] of current) {
        if (writeId > upToWriteId) continue
        current.delete(writeId)
        this.liveBytes -= kept.size
      }
      if (current.size === 0) this.docs.delete(docName)
    })
  }

  /** Waits for every write already asked for, then releases the file. Idempotent. */
  close (): Promise<void> {
    this.closing ??= (async () => {
      await this.draining
      await this.handle.close().catch(() => undefined)
      await unlock(this.path)
      openInProcess.delete(this.key)
    })()
    return this.closing
  }

  private enqueue<T> (record: Buffer | null, run: () => T): Promise<T> {
    if (this.closing !== null) return Promise.reject(closedError(`FileOfflineStore ${this.path}`))
    if (this.failure !== null) return Promise.reject(this.failure)
    return new Promise<T>((resolve, reject) => {
      this.queue.push({ record, run, resolve: resolve as (value: never) => void, reject })
      this.draining ??= this.drain()
    })
  }

  /**
   * Appends whatever is queued as one write and one fdatasync (group commit: a burst of puts
   * costs one disk flush), then settles those ops in order, then compacts if it is time.
   */
  private async drain (): Promise<void> {
    // Calls made in this same turn join the first batch; and `draining` is assigned before this
    // function can reach its end and clear it.
    await Promise.resolve()
    while (this.queue.length > 0) {
      const batch = this.queue
      this.queue = []
      const records = batch.flatMap(op => op.record === null ? [] : [op.record])
      try {
        if (records.length > 0) {
          const bytes = records.length === 1 ? records[0] as Buffer : Buffer.concat(records)
          await writeFully(this.handle, bytes, this.size)
          await this.handle.datasync()
          this.size += bytes.length
        }
      } catch (err) {
        this.fail(err, 'appending to')
        for (const op of [...batch, ...this.queue]) op.reject(this.failure)
        this.queue = []
        break
      }
      for (const op of batch) {
        try {
          op.resolve(op.run() as never)
        } catch (err) {
          op.reject(err)
        }
      }
      try {
        await this.compactIfDue()
      } catch {
        for (const op of this.queue) op.reject(this.failure)
        this.queue = []
        break
      }
    }
    this.draining = null
  }

  /** Throws only when the store has failed; a compaction that could not finish is retried later. */
  private async compactIfDue (): Promise<void> {
    if (this.size < this.nextCompactAt || this.size - MAGIC.length <= 2 * this.liveBytes) return
    try {
      await this.compact()
    } catch {
      if (this.failure !== null) throw this.failure
      // The old file is still whole and in use: keep appending, retry once it has grown as much again.
      this.nextCompactAt = this.size * 2
    }
  }

  /** Writes the live records to a new file and renames it over the old one (atomic on POSIX). */
  private async compact (): Promise<void> {
    const temp = compactPath(this.path)
    const records: Buffer[] = [MAGIC]
    for (const [docName, writes] of this.docs) {
      const name = encodeDocName(docName)
      for (const [writeId, kept] of [...writes].sort(([a], [b]) => a - b)) {
        records.push(encodeRecord(PUT, name, writeId, kept.update))
      }
    }
    const bytes = Buffer.concat(records)
    let handle: FileHandle | undefined
    try {
      handle = await open(temp, 'w+', 0o600)
      await writeFully(handle, bytes, 0)
      await handle.sync()
    } catch (err) {
      await handle?.close().catch(() => undefined)
      await rm(temp, { force: true }).catch(() => undefined)
      throw err
    }
    try {
      await rename(temp, this.path)
    } catch (err) {
      await handle.close().catch(() => undefined)
      await rm(temp, { force: true }).catch(() => undefined)
      throw err
    }
    // From here the new file is the store; the old handle points at an unlinked inode.
    const old = this.handle
    this.handle = handle
    this.size = bytes.length
    this.nextCompactAt = Math.max(this.compactMinBytes, this.size * 2)
    await old.close().catch(() => undefined)
    try {
      await syncDirectory(path.dirname(this.path))
    } catch (err) {
      this.fail(err, 'compacting')
      throw this.failure
    }
  }

  private fail (err: unknown, doing: string): void {
    this.failure ??= new Error(
      `offline store ${this.path}: ${doing} the file failed (${errnoOf(err) ?? String(err)}); this store takes no more writes. ` +
      'Free disk space or fix the file\'s permissions, then open the store again: every write whose put resolved is kept.',
      { cause: err },
    )
  }
}

const compactPath = (file: string): string => `${file}.compact`
const lockPath = (file: string): string => `${file}.lock`

const encodeDocName = (docName: string): Buffer => {
  const name = Buffer.from(docName, 'utf8')
  if (name.length > MAX_DOC_NAME_BYTES) {
    throw new RangeError(`offline store: document name is ${name.length} bytes in UTF-8; at most ${MAX_DOC_NAME_BYTES} fit`)
  }
  return name
}

const writeFully = async (handle: FileHandle, bytes: Uint8Array, position: number): Promise<void> => {
  let done = 0
  while (done < bytes.length) {
    const { bytesWritten } = await handle.write(bytes, done, bytes.length - done, position + done)
    done += bytesWritten
  }
}

/** Makes a rename or a creation in `dir` durable; Windows cannot open directories, and needs not. */
const syncDirectory = async (dir: string): Promise<void> => {
  if (process.platform === 'win32') return
  const handle = await open(dir, 'r')
  try {
    await handle.sync()
  } finally {
    await handle.close()
  }
}

const checkDirectory = async (file: string, dir: string): Promise<void> => {
  const where = `offline store file:${file}`
  try {
    const info = await stat(dir)
    if (!info.isDirectory()) throw Object.assign(new Error('not a directory'), { code: 'ENOTDIR' })
  } catch (err) {
    const code = errnoOf(err)
    if (code === 'ENOENT') throw new Error(`${where}: the directory ${dir} does not exist; create it first (mkdir -p ${dir}) or choose a path in an existing directory`)
    if (code === 'ENOTDIR') throw new Error(`${where}: ${dir} is not a directory (part of the path is a file); choose a path inside a directory`)
    throw new Error(`${where}: cannot reach the directory ${dir} (${code ?? String(err)}); check its permissions or choose another path`, { cause: err })
  }
  try {
    await access(dir, constants.W_OK | constants.X_OK)
  } catch {
    throw new Error(`${where}: the directory ${dir} is not writable by this process; fix its permissions (chmod/chown) or choose a writable directory`)
  }
  const info = await stat(file).catch(() => null)
  if (info?.isDirectory() === true) throw new Error(`${where}: this is a directory; give a file path inside it, e.g. file:${path.join(file, 'pending-writes.log')}`)
}

const processIsAlive = (pid: number): boolean => {
  try {
    process.kill(pid, 0)
    return true
  } catch (err) {
    return errnoOf(err) === 'EPERM'
  }
}

/**
 * Keeps a second process from appending to (and compacting under) an open store. A lock left by
 * a process that died, e.g. by kill -9, is taken over.
 */
const lock = async (file: string): Promise<void> => {
  const at = lockPath(file)
  for (let attempt = 0; attempt < 2; attempt++) {
    try {
      await writeFile(at, String(process.pid), { flag: 'wx', mode: 0o600 })
      return
    } catch (err) {
      if (errnoOf(err) !== 'EEXIST') {
        throw new Error(`offline store file:${file}: cannot create its lock file ${at} (${errnoOf(err) ?? String(err)}); check the directory's permissions`, { cause: err })
      }
    }
    const owner = Number.parseInt(await readFile(at, 'utf8').catch(() => ''), 10)
    if (Number.isSafeInteger(owner) && owner !== process.pid && processIsAlive(owner)) {
      throw new Error(`offline store file:${file} is in use by process ${owner}; close that client first, or give this one another path (if no such process of yours is running, delete ${at})`)
    }
    await rm(at, { force: true })
  }
  throw new Error(`offline store file:${file}: another process keeps taking its lock ${at}; give each client its own path`)
}

const unlock = (file: string): Promise<void> => rm(lockPath(file), { force: true }).catch(() => undefined)

/** Opens the file for reading and positioned writes, creating it whole (header) if absent. */
const openOrCreate = async (file: string): Promise<FileHandle> => {
  try {
    return await open(file, 'r+')
  } catch (err) {
    const code = errnoOf(err)
    if (code === 'EACCES' || code === 'EPERM') {
      throw new Error(`offline store file:${file}: the file is not readable and writable by this process; fix its permissions or choose another path`, { cause: err })
    }
    if (code !== 'ENOENT') throw new Error(`offline store file:${file}: cannot open it (${code ?? String(err)})`, { cause: err })
  }
  // Created under another name and renamed, so that the path never holds a file without its header.
  const temp = compactPath(file)
  const handle = await open(temp, 'w+', 0o600)
  try {
    await writeFully(handle, MAGIC, 0)
    await handle.sync()
    await rename(temp, file)
    await syncDirectory(path.dirname(file))
    return handle
  } catch (err) {
    await handle.close().catch(() => undefined)
    await rm(temp, { force: true }).catch(() => undefined)
    throw new Error(`offline store file:${file}: cannot create it (${errnoOf(err) ?? String(err)}); check free space and permissions`, { cause: err })
  }
}

const readState = async (file: string, handle: FileHandle) => {
  const data = await handle.readFile()
  const docs = new Map<string, Map<number, Kept>>()
  let liveBytes = 0
  const foreign = data.length < MAGIC.length
    ? !MAGIC.subarray(0, data.length).equals(data)
    : !MAGIC.equals(data.subarray(0, MAGIC.length))
  if (foreign) {
    throw new Error(`offline store file:${file} is not a georelay offline store (its first bytes do not match); choose another path, or move that file away if it is yours to discard`)
  }
  if (data.length < MAGIC.length) {
    // Only a crash while the header was being written leaves this; nothing was stored yet.
    await writeFully(handle, MAGIC, 0)
    await handle.truncate(MAGIC.length)
    await handle.sync()
    return { size: MAGIC.length, docs, liveBytes, discarded: 0 }
  }
  let at = MAGIC.length
  for (;;) {
    const record = decodeRecord(data, at)
    if (record === null) break
    at += record.size
    let writes = docs.get(record.docName)
    if (record.kind === PUT) {
      if (writes === undefined) docs.set(record.docName, writes = new Map())
      liveBytes -= writes.get(record.writeId)?.size ?? 0
      writes.set(record.writeId, { update: record.update, size: record.size })
      liveBytes += record.size
    } else if (writes !== undefined) {
      for (const [writeId, kept] of writes) {
        if (writeId > record.writeId) continue
        writes.delete(writeId)
        liveBytes -= kept.size
      }
      if (writes.size === 0) docs.delete(record.docName)
    }
  }
  const discarded = data.length - at
  if (discarded > 0) {
    // Appending after torn bytes would hide every later record behind them on the next load.
    await handle.truncate(at)
    await handle.sync()
  }
  return { size: at, docs, liveBytes, discarded }
}
