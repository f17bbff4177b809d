import { checkDocName, checkPut, checkRemove, closedError, type OfflineStore, type PendingWrite } from './offline-store.js'

export interface IndexedDbOfflineStoreOptions {
  /** Database name; one database holds the pending writes of every document. */
  name?: string
  /** The IndexedDB factory; defaults to `globalThis.indexedDB`. */
  indexedDB?: IDBFactory
}

export const DEFAULT_INDEXEDDB_NAME = 'georelay-offline'
const VERSION = 1
const STORE = 'pending'
const BLOCKED_TIMEOUT_MS = 5000

interface Row { doc: string, writeId: number, update: Uint8Array }

const explain = (err: unknown): string =>
  err instanceof DOMException || err instanceof Error ? `${err.name}: ${err.message}` : String(err)

const hint = (err: unknown): string =>
  (err as { name?: string } | null)?.name === 'QuotaExceededError'
    ? 'the browser\'s storage quota for this site is used up; free some, or ask for persistent storage (navigator.storage.persist())'
    : 'reload the page; if it persists, the browser may forbid storage here (private mode, storage settings)'

const request = <T>(req: IDBRequest<T>): Promise<T> =>
  new Promise((resolve, reject) => {
    req.onsuccess = () => resolve(req.result)
    req.onerror = () => reject(req.error)
  })

/** Settles when the transaction is durable ('complete'), not when its requests succeed. */
const completion = (tx: IDBTransaction): Promise<void> =>
  new Promise((resolve, reject) => {
    tx.oncomplete = () => resolve()
    tx.onerror = () => reject(tx.error)
    tx.onabort = () => reject(tx.error ?? new DOMException('transaction aborted', 'AbortError'))
  })

/** Every write of one document: keys are [doc, writeId] and any number sorts after -Infinity. */
const writesOf = (docName: string, upTo = Number.POSITIVE_INFINITY): IDBKeyRange =>
  IDBKeyRange.bound([docName, Number.NEGATIVE_INFINITY], [docName, upTo])

/**
 * Pending writes in IndexedDB, for browsers: one database, one object store keyed
 * [docName, writeId], so a document's writes come back in write-id order from one range read.
 */
export class IndexedDbOfflineStore implements OfflineStore {
  private closed = false
  private failure: Error | null = null

  private constructor (private readonly db: IDBDatabase, readonly name: string) {
    // Another tab upgrading or deleting the database waits for us to let go; holding on would
    // block it forever.
    db.onversionchange = () => {
      db.close()
      this.failure ??= new Error(`IndexedDB '${name}' was upgraded or deleted by another tab; reload this page to keep storing offline edits`)
    }
    db.onclose = () => {
      this.failure ??= new Error(`IndexedDB '${name}' was closed by the browser (site data cleared?); reload this page to keep storing offline edits`)
    }
  }

  static async open (
    { name = DEFAULT_INDEXEDDB_NAME, indexedDB = globalThis.indexedDB }: IndexedDbOfflineStoreOptions = {},
  ): Promise<IndexedDbOfflineStore> {
    if (indexedDB === undefined) {
      throw new Error('IndexedDbOfflineStore needs IndexedDB, and globalThis.indexedDB is undefined here; in Node use a file: or memory store')
    }
    const db = await new Promise<IDBDatabase>((resolve, reject) => {
      const req = indexedDB.open(name, VERSION)
      let blocked: ReturnType<typeof setTimeout> | undefined
      let settled = false
      req.onupgradeneeded = () => {
        if (!req.result.objectStoreNames.contains(STORE)) req.result.createObjectStore(STORE, { keyPath: ['doc', 'writeId'] })
      }
      req.onsuccess = () => {
        clearTimeout(blocked)
        if (settled) req.result.close()
        else resolve(req.result)
      }
      req.onerror = () => {
        clearTimeout(blocked)
        settled = true
        reject(new Error(`cannot open IndexedDB '${name}' (${explain(req.error)}); ${hint(req.error)}`))
      }
      // Also fired while another tab's connection finishes its last transactions; the open then
      // proceeds by itself. Only a tab that keeps an older version open stops it for good.
      req.onblocked = () => {
        blocked ??= setTimeout(() => {
          settled = true
          reject(new Error(`IndexedDB '${name}' is held open at an older version by another tab; close or reload the other tabs of this site`))
        }, BLOCKED_TIMEOUT_MS)
      }
    })
    if (!db.objectStoreNames.contains(STORE)) {
      db.close()
      throw new Error(`IndexedDB '${name}' exists but is not a georelay offline store (no '${STORE}' object store); pass another name`)
    }
    return new IndexedDbOfflineStore(db, name)
  }

  async load (docName: string): Promise<PendingWrite[]> {
    checkDocName(docName)
    const tx = this.transaction('readonly', 'load')
    const rows = await request(tx.objectStore(STORE).getAll(writesOf(docName)) as IDBRequest<Row[]>)
      .catch((err: unknown) => { throw this.wrap(err, `loading '${docName}'`) })
    return rows.map(row => ({ writeId: row.writeId, update: row.update }))
  }

  async put (docName: string, write: PendingWrite): Promise<void> {
    checkPut(docName, write)
    const tx = this.transaction('readwrite', 'put')
    const done = completion(tx)
    // A structured clone of a view clones its whole buffer; copy just the bytes of the update.
    const row: Row = { doc: docName, writeId: write.writeId, update: new Uint8Array(write.update) }
    tx.objectStore(STORE).put(row)
    await done.catch((err: unknown) => { throw this.wrap(err, `storing write ${write.writeId} of '${docName}'`) })
  }

  async remove (docName: string, upToWriteId: number): Promise<void> {
    checkRemove(docName, upToWriteId)
    if (upToWriteId === Number.NEGATIVE_INFINITY) return
    const tx = this.transaction('readwrite', 'remove')
    const done = completion(tx)
    tx.objectStore(STORE).delete(writesOf(docName, upToWriteId))
    await done.catch((err: unknown) => { throw this.wrap(err, `removing writes of '${docName}'`) })
  }

  /** Transactions already started still complete (and their puts resolve). */
  async close (): Promise<void> {
    if (this.closed) return
    this.closed = true
    this.db.close()
  }

  private transaction (mode: IDBTransactionMode, what: string): IDBTransaction {
    if (this.closed) throw closedError(`IndexedDbOfflineStore '${this.name}'`)
    if (this.failure !== null) throw this.failure
    try {
      // 'strict' makes 'complete' wait until the data is flushed to disk; a browser's default may
      // resolve earlier, and a resolved put must survive a crash.
      return this.db.transaction(STORE, mode, { durability: mode === 'readwrite' ? 'strict' : 'default' })
    } catch (err) {
      throw this.wrap(err, what)
    }
  }

  private wrap (err: unknown, doing: string): Error {
    if (this.failure !== null && err === this.failure) return this.failure
    return new Error(`IndexedDB '${this.name}': ${doing} failed (${explain(err)}); ${hint(err)}`, { cause: err })
  }
}
