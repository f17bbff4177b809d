import { afterAll, beforeAll, describe, expect, it } from '@jest/globals'
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import path from 'node:path'
import { pathToFileURL } from 'node:url'
import { createOfflineStore, type OfflineStoreSpec } from '../src/create-offline-store.js'
import { FileOfflineStore } from '../src/file-offline-store.js'
import { MemoryOfflineStore } from '../src/memory-offline-store.js'
import { assertWrites, write } from './offline-store-conformance.js'

let dir: string
beforeAll(async () => { dir = await mkdtemp(path.join(tmpdir(), 'georelay-create-store-')) })
afterAll(async () => { await rm(dir, { recursive: true, force: true }) })

describe('createOfflineStore', () => {
  it("gives a fresh memory store for 'memory'", async () => {
    const first = await createOfflineStore('memory')
    const second = await createOfflineStore('memory')
    expect(first).toBeInstanceOf(MemoryOfflineStore)
    await first.put('doc', write(1))
    assertWrites(await second.load('doc'), [], 'a second memory store')
    await Promise.all([first.close(), second.close()])
  })

  it("opens a file store for 'file:PATH' and for a file:// URL, on the same data", async () => {
    const file = path.join(dir, 'pending.log')
    const store = await createOfflineStore(`file:${file}`)
    expect(store).toBeInstanceOf(FileOfflineStore)
    await store.put('doc', write(1))
    await store.close()
    const again = await createOfflineStore(pathToFileURL(file).href as `file:${string}`)
    assertWrites(await again.load('doc'), [write(1)], 'through the file:// URL')
    await again.close()
  })

  it('passes a store object through untouched', async () => {
    const mine = new MemoryOfflineStore()
    expect(await createOfflineStore(mine)).toBe(mine)
  })

  it("says that 'indexeddb' needs a browser, and what to use in Node", async () => {
    await expect(createOfflineStore('indexeddb')).rejects.toThrow(/needs IndexedDB.*in Node use 'file:\/path\/to\/pending-writes.log' or 'memory'/)
  })

  it('names the accepted specs for an unknown one or a file: without a path', async () => {
    await expect(createOfflineStore('localStorage' as OfflineStoreSpec)).rejects
      .toThrow(`unknown offline store "localStorage"; use 'memory', 'indexeddb' (browsers), 'file:/path/to/pending-writes.log' (Node), or an object implementing OfflineStore`)
    await expect(createOfflineStore({ load: () => [] } as unknown as OfflineStoreSpec)).rejects.toThrow(/unknown offline store \{\}; use 'memory'/)
    await expect(createOfflineStore('file:')).rejects.toThrow(/'file:' has no path; use 'memory'/)
  })

  it("passes the file store's errors on", async () => {
    await expect(createOfflineStore(`file:${path.join(dir, 'no', 'such', 'dir', 'p.log')}`)).rejects.toThrow(/does not exist; create it first/)
  })
})
