/**
 * What every DocStore must do, as a jest suite: call `describeDocStore` from a store's test file
 * with a setup that opens a fresh, empty store with the given options. From another repository:
 *
 *     import { describeDocStore } from '@georelay/core/testing'
 *     describeDocStore('MyStore', async options => {
 *       const store = new MyStore(options)
 *       return { store, teardown: () => store.close() }
 *     })
 *
 * The adapter's dev dependencies then need jest (run as ESM: core is ESM only), fast-check and
 * yjs. A persistent store passes `{ persistent: true }` and a fixture with `reopen`.
 */
import { afterEach, describe, expect, it } from '@jest/globals'
import fc from 'fast-check'
import * as Y from 'yjs'
import { LOCAL_ORIGIN, StoreError, type DocStore, type OriginEntry, type StoredDoc, type StoreOptions } from '../doc-store.js'
import { MERGE_BATCH, yieldToEventLoop } from '../updates.js'

export interface DocStoreFixture {
  store: DocStore
  /** Closes the open store and opens another one on the same data (persistent stores). */
  reopen?: () => Promise<DocStore>
  /** Closes whichever store is open and deletes its data. */
  teardown: () => Promise<void>
}

export interface ConformanceOptions {
  /** The store keeps its data across a close; the fixture must then provide `reopen`. */
  persistent?: boolean
  /** Runs of each property (compaction race, replication catch-up). */
  propertyRuns?: number
}

const US = 'us-east'
const AP = 'ap-south'
const ALL = Number.POSITIVE_INFINITY

/** The whole document as stored, snapshot then log, for a Y.Doc to apply. */
const updatesOf = (stored: StoredDoc): Uint8Array[] =>
  [...(stored.snapshot === null ? [] : [stored.snapshot]), ...stored.log.map(e => e.update)]

/** `count` updates of one document, each typed on top of the previous ones. */
export const typedUpdates = (count: number, clientID = 1): { updates: Uint8Array[], doc: Y.Doc } => {
  const doc = new Y.Doc()
  doc.clientID = clientID
  const updates: Uint8Array[] = []
  doc.on('update', (update: Uint8Array) => updates.push(update))
  for (let i = 0; i < count; i++) {
    const text = doc.getText('t')
    if (i % 5 === 4) text.delete(0, 1)
    else if (i % 7 === 6) doc.getMap('m').set(`k${i % 3}`, i)
    else text.insert(text.length, String.fromCharCode(97 + (i % 26)))
  }
  return { updates, doc }
}

const contentOfDoc = (doc: Y.Doc) => ({ text: doc.getText('t').toString(), map: doc.getMap('m').toJSON() })

export const contentOfUpdates = (updates: Iterable<Uint8Array>) => {
  const doc = new Y.Doc()
  for (const update of updates) Y.applyUpdate(doc, update)
  return contentOfDoc(doc)
}

export const contentOf = (stored: StoredDoc) =>
  contentOfUpdates([...(stored.snapshot === null ? [] : [stored.snapshot]), ...stored.log.map(e => e.update)])

/** A pause that holds compaction at its first yield until released. */
const gatedPause = () => {
  let calls = 0
  let open = false
  let waiting: Array<() => void> = []
  let firstCalled!: () => void
  const firstCall = new Promise<void>(resolve => { firstCalled = resolve })
  return {
    pause: (): Promise<void> => {
      calls++
      firstCalled()
      return open ? Promise.resolve() : new Promise<void>(resolve => waiting.push(resolve))
    },
    firstCall,
    calls: () => calls,
    release: () => {
      open = true
      waiting.forEach(resolve => resolve())
      waiting = []
    },
  }
}

const expectClosedError = async (promise: Promise<unknown>) => {
  const err = await promise.then(() => null, (e: unknown) => e)
  expect(err).toBeInstanceOf(StoreError)
  expect(err).toMatchObject({ code: 'ERR_STORE_CLOSED' })
}

const expectIncreasing = (seqs: number[]) => {
  for (let i = 1; i < seqs.length; i++) expect(seqs[i]).toBeGreaterThan(seqs[i - 1] as number)
}

export const describeDocStore = (
  name: string,
  setup: (options?: StoreOptions) => Promise<DocStoreFixture>,
  options: ConformanceOptions = {},
): void => describe(`${name} (DocStore conformance)`, () => {
  let fixture: DocStoreFixture | undefined
  const open = async (storeOptions?: StoreOptions): Promise<DocStore> => {
    fixture = await setup(storeOptions)
    return fixture.store
  }
  afterEach(async () => {
    await fixture?.teardown()
    fixture = undefined
  })

  it('reads an unknown document as empty, without creating it', async () => {
    const store = await open()
    expect(await store.read('nothing-here')).toEqual({ snapshot: null, snapshotSeq: 0, log: [] })
    expect(await store.listDocs()).toEqual([])
  })

  it('returns appended updates in order, byte for byte, with their numbers', async () => {
    const store = await open()
    const { updates, doc } = typedUpdates(20)
    const seqs: number[] = []
    for (const update of updates) seqs.push(await store.append('doc', update))
    const stored = await store.read('doc')
    expect(stored.snapshot).toBeNull()
    expect(stored.log.map(e => e.seq)).toEqual(seqs)
    expect(stored.log.map(e => e.update)).toEqual(updates)
    expect(contentOf(stored)).toEqual(contentOfDoc(doc))
  })

  it('keeps its own copy of an appended update', async () => {
    const store = await open()
    const [update] = typedUpdates(1).updates as [Uint8Array]
    const callersBuffer = Buffer.from(update)
    const appended = store.append('doc', callersBuffer)
    // A caller such as a socket may reuse its buffer as soon as append() returns.
    callersBuffer.fill(0)
    await appended
    expect((await store.read('doc')).log[0]?.update).toEqual(update)
  })

  it('numbers appends from one counter shared by all documents', async () => {
    const store = await open()
    const { updates } = typedUpdates(24)
    const sequential: number[] = []
    for (const [i, update] of updates.slice(0, 8).entries()) sequential.push(await store.append(`doc-${i % 3}`, update))
    const concurrent = await Promise.all(updates.slice(8).map((update, i) => store.append(`doc-${(8 + i) % 3}`, update)))
    const all = [...sequential, ...concurrent]
    expectIncreasing(all)
    for (let d = 0; d < 3; d++) {
      const mine = all.filter((_, i) => i % 3 === d)
      expect((await store.read(`doc-${d}`)).log.map(e => e.seq)).toEqual(mine)
    }
  })

  it('accepts any document name, each its own document', async () => {
    const store = await open()
    const names = ['eu/notes/42', '/lead/and/trail/', 'a%2Fb', '100%', '%', 'ünï/名前/🙂', 'with space', `quo'te"`, 'Doc', 'doc', 'doc/']
    const { updates } = typedUpdates(names.length)
    await Promise.all(names.map((docName, i) => store.append(docName, updates[i] as Uint8Array)))
    for (const [i, docName] of names.entries()) {
      expect((await store.read(docName)).log.map(e => e.update)).toEqual([updates[i]])
    }
    expect((await store.listDocs()).sort()).toEqual([...names].sort())
  })

  it('lists the documents under a prefix, and only those', async () => {
    const store = await open()
    const names = ['eu/a', 'eu/b/c', 'eu', 'eu0', 'eu.x', 'EU/a', 'e', 'us/a', 'eu/\u{10FFFF}', 'eu\u{10FFFF}', 'ünï/a', 'ünï', 'ünïx/a']
    const { updates } = typedUpdates(names.length)
    await Promise.all(names.map((docName, i) => store.append(docName, updates[i] as Uint8Array)))
    await store.compact('eu/a') // one of them from a snapshot
    const under = async (prefix: string): Promise<string[]> => (await store.listDocs(prefix)).sort()
    const expected = (prefix: string): string[] => names.filter(n => n.startsWith(prefix)).sort()
    for (const prefix of ['eu/', 'eu', 'ünï/', 'ünï', 'eu\u{10FFFF}', 'us/a', 'none/']) expect(await under(prefix)).toEqual(expected(prefix))
    expect(await under('')).toEqual([...names].sort())
  })

  it('compact() folds the log into the snapshot without changing the content', async () => {
    const store = await open()
    const { updates, doc } = typedUpdates(40)
    const seqs: number[] = []
    for (const update of updates) seqs.push(await store.append('doc', update))
    await store.compact('doc')
    const stored = await store.read('doc')
    expect(stored.snapshot).not.toBeNull()
    expect(stored.snapshotSeq).toBe(seqs.at(-1))
    expect(stored.log).toEqual([])
    expect(contentOf(stored)).toEqual(contentOfDoc(doc))
    expect(await store.listDocs()).toEqual(['doc'])
    // Nothing left to fold: a second compaction changes nothing.
    await store.compact('doc')
    expect(await store.read('doc')).toEqual(stored)
  })

  it('numbers appends after a compaction higher, and folds them into the existing snapshot', async () => {
    const store = await open()
    const { updates, doc } = typedUpdates(20)
    for (const update of updates.slice(0, 10)) await store.append('doc', update)
    await store.compact('doc')
    const { snapshotSeq } = await store.read('doc')
    const later: number[] = []
    for (const update of updates.slice(10)) later.push(await store.append('doc', update))
    expect(later[0]).toBeGreaterThan(snapshotSeq)
    expect((await store.read('doc')).log.map(e => e.seq)).toEqual(later)
    await store.compact('doc')
    const stored = await store.read('doc')
    expect(stored).toMatchObject({ snapshotSeq: later.at(-1), log: [] })
    expect(contentOf(stored)).toEqual(contentOfDoc(doc))
  })

  it('compact() also folds what was appended while an earlier compaction was running', async () => {
    const gate = gatedPause()
    const store = await open({ pause: gate.pause })
    const { updates, doc } = typedUpdates(MERGE_BATCH + 2)
    for (const update of updates.slice(0, -1)) await store.append('doc', update)
    const first = store.compact('doc')
    await gate.firstCall
    const last = await store.append('doc', updates.at(-1) as Uint8Array)
    const second = store.compact('doc')
    gate.release()
    await Promise.all([first, second])
    const stored = await store.read('doc')
    expect(stored).toMatchObject({ snapshotSeq: last, log: [] })
    expect(contentOf(stored)).toEqual(contentOfDoc(doc))
  })

  const { updates: thresholdUpdates } = typedUpdates(MERGE_BATCH + 6)
  const thresholdBytes = thresholdUpdates.reduce((n, u) => n + u.length, 0)
  it.each([
    ['updates', { updates: thresholdUpdates.length, bytes: 1 << 30 }],
    ['bytes', { updates: 1 << 30, bytes: thresholdBytes }],
  ])('compacts by itself once the log reaches the %s threshold', async (_, compaction) => {
    // Above MERGE_BATCH updates compaction yields, which shows exactly when it started.
    const gate = gatedPause()
    const store = await open({ compaction, pause: gate.pause })
    const seqs: number[] = []
    for (const update of thresholdUpdates.slice(0, -1)) seqs.push(await store.append('doc', update))
    expect(gate.calls()).toBe(0)
    expect((await store.read('doc')).snapshot).toBeNull()
    seqs.push(await store.append('doc', thresholdUpdates.at(-1) as Uint8Array))
    await gate.firstCall
    gate.release()
    // Queued behind the automatic compaction, so it resolves once that one is done.
    await store.compact('doc')
    const stored = await store.read('doc')
    expect(stored).toMatchObject({ snapshotSeq: seqs.at(-1), log: [] })
    expect(contentOf(stored)).toEqual(contentOfUpdates(thresholdUpdates))
  })

  it('refuses every call after close() with ERR_STORE_CLOSED', async () => {
    const store = await open()
    await store.append('doc', typedUpdates(1).updates[0] as Uint8Array)
    await store.close()
    await expectClosedError(store.append('doc', typedUpdates(1).updates[0] as Uint8Array))
    await expectClosedError(store.read('doc'))
    await expectClosedError(store.compact('doc'))
    await expectClosedError(store.listDocs())
    await expectClosedError(store.readOrigin(LOCAL_ORIGIN, 0, 10))
    await expectClosedError(store.docsFoldedPast(LOCAL_ORIGIN, 0))
    await expectClosedError(store.readHave())
    await expectClosedError(store.writeHave(US, 1))
    await expectClosedError(store.lastSeq())
    await store.close()
  })

  it('close() finishes the appends it was called after', async () => {
    const store = await open()
    const { updates } = typedUpdates(5)
    const pending = updates.map(update => store.append('doc', update))
    await store.close()
    expectIncreasing(await Promise.all(pending))
  })

  describe('replication by origin', () => {
    const sorted = (names: string[]) => [...names].sort()

    it('reads its own appends as LOCAL_ORIGIN, numbered by their local sequence number', async () => {
      const store = await open()
      const [u0, u1, u2] = typedUpdates(3).updates as [Uint8Array, Uint8Array, Uint8Array]
      const a = await store.append('doc-a', u0)
      const b = await store.append('doc-b', u1)
      const c = await store.append('doc-a', u2)
      expect(await store.readOrigin(LOCAL_ORIGIN, 0, 10)).toEqual({
        entries: [
          { docName: 'doc-a', originSeq: a, update: u0 },
          { docName: 'doc-b', originSeq: b, update: u1 },
          { docName: 'doc-a', originSeq: c, update: u2 },
        ],
        foldedUpTo: 0,
        foldGeneration: 0,
      })
      expect(await store.readOrigin(US, 0, 10)).toEqual({ entries: [], foldedUpTo: 0, foldGeneration: 0 })
    })

    it('reads a replicated append under its origin and origin number, never as local', async () => {
      const store = await open()
      const [local, remote] = typedUpdates(2).updates as [Uint8Array, Uint8Array]
      const l = await store.append('doc', local)
      // The origin's number (7) has nothing to do with the local one, which comes from the shared counter.
      const r = await store.append('doc', remote, { region: US, seq: 7 })
      expect(r).toBeGreaterThan(l)
      expect(r).not.toBe(7)
      expect(await store.readOrigin(US, 0, 10)).toEqual({ entries: [{ docName: 'doc', originSeq: 7, update: remote }], foldedUpTo: 0, foldGeneration: 0 })
      expect((await store.readOrigin(US, 6, 10)).entries.map(e => e.originSeq)).toEqual([7])
      expect((await store.readOrigin(US, 7, 10)).entries).toEqual([])
      expect((await store.readOrigin(LOCAL_ORIGIN, 0, 10)).entries).toEqual([{ docName: 'doc', originSeq: l, update: local }])
      expect((await store.readOrigin(LOCAL_ORIGIN, l, 10)).entries).toEqual([])
      expect((await store.readOrigin(AP, 0, 10)).entries).toEqual([])
      // It is part of the document like any other append.
      expect((await store.read('doc')).log).toEqual([{ seq: l, update: local }, { seq: r, update: remote }])
    })

    it('reads an origin by increasing origin number across documents, `after` exclusive, at most `limit`', async () => {
      const store = await open()
      const { updates } = typedUpdates(12)
      const u = (i: number) => updates[i] as Uint8Array
      // Replicated entries may arrive out of order (over two links); reads are by origin number.
      const remote: Array<[string, number]> = [['doc-a', 5], ['doc-b', 2], ['doc-c', 9], ['doc-a', 3], ['doc-b', 12]]
      const us: OriginEntry[] = []
      const local: OriginEntry[] = []
      for (const [i, [docName, seq]] of remote.entries()) {
        await store.append(docName, u(2 * i), { region: US, seq })
        us.push({ docName, originSeq: seq, update: u(2 * i) })
        const docOfLocal = `doc-${'cab'[i % 3] as string}`
        local.push({
          docName: docOfLocal,
          originSeq: await store.append(docOfLocal, u(2 * i + 1)),
          update: u(2 * i + 1),
        })
      }
      await store.append('doc-a', u(10), { region: AP, seq: 4 })
      us.sort((x, y) => x.originSeq - y.originSeq)
      for (const [origin, all] of [[US, us], [LOCAL_ORIGIN, local]] as const) {
        expect((await store.readOrigin(origin, 0, ALL)).entries).toEqual(all)
        for (const after of [0, ...all.map(e => e.originSeq), ...all.map(e => e.originSeq - 1), 1000]) {
          expect((await store.readOrigin(origin, after, ALL)).entries).toEqual(all.filter(e => e.originSeq > after))
          for (const limit of [0, 1, 2, all.length, all.length + 1]) {
            expect((await store.readOrigin(origin, after, limit)).entries)
              .toEqual(all.filter(e => e.originSeq > after).slice(0, limit))
          }
        }
        // Paging from the last number read yields every entry once.
        const paged: OriginEntry[] = []
        for (
          let cursor = 0, page = await store.readOrigin(origin, 0, 2);
          page.entries.length > 0;
          page = await store.readOrigin(origin, cursor, 2)
        ) {
          paged.push(...page.entries)
          cursor = (page.entries.at(-1) as OriginEntry).originSeq
        }
        expect(paged).toEqual(all)
      }
      expect((await store.readOrigin(AP, 0, ALL)).entries).toEqual([{ docName: 'doc-a', originSeq: 4, update: u(10) }])
    })

    it('compaction raises the folded marks per origin and per document, never lowers them', async () => {
      const store = await open()
      const { updates } = typedUpdates(12)
      let next = 0
      const append = (docName: string, region?: string, seq?: number) => {
        const origin = region === undefined ? undefined : { region, seq: seq as number }
        return store.append(docName, updates[next++] as Uint8Array, origin)
      }
      const marks = async (origin: string, cursors: number[]) => {
        const out: Record<number, string[]> = {}
        for (const c of cursors) out[c] = sorted(await store.docsFoldedPast(origin, c))
        return out
      }
      const localIn = async (docName: string) =>
        (await store.readOrigin(LOCAL_ORIGIN, 0, ALL)).entries.filter(e => e.docName === docName)

      await append('doc-a')
      await append('doc-a', US, 4)
      await append('doc-a', US, 6)
      await append('doc-a', AP, 10)
      const l2 = await append('doc-a')
      const l3 = await append('doc-b')
      await append('doc-b', US, 8)
      await append('doc-c', AP, 3)
      for (const origin of [LOCAL_ORIGIN, US, AP, 'nowhere']) {
        expect((await store.readOrigin(origin, 0, ALL)).foldedUpTo).toBe(0)
        expect(await store.docsFoldedPast(origin, 0)).toEqual([])
      }

      await store.compact('doc-a')
      expect(await store.readOrigin(LOCAL_ORIGIN, 0, ALL)).toMatchObject({ entries: await localIn('doc-b'), foldedUpTo: l2 })
      expect((await store.readOrigin(LOCAL_ORIGIN, 0, ALL)).entries.map(e => e.originSeq)).toEqual([l3])
      expect(await store.readOrigin(US, 0, ALL)).toMatchObject({ entries: [{ docName: 'doc-b', originSeq: 8 }], foldedUpTo: 6 })
      expect(await store.readOrigin(AP, 0, ALL)).toMatchObject({ entries: [{ docName: 'doc-c', originSeq: 3 }], foldedUpTo: 10 })
      expect((await store.readOrigin('nowhere', 0, ALL)).foldedUpTo).toBe(0)
      expect(await marks(LOCAL_ORIGIN, [0, l2 - 1, l2])).toEqual({ 0: ['doc-a'], [l2 - 1]: ['doc-a'], [l2]: [] })
      expect(await marks(US, [0, 5, 6])).toEqual({ 0: ['doc-a'], 5: ['doc-a'], 6: [] })
      expect(await marks(AP, [9, 10])).toEqual({ 9: ['doc-a'], 10: [] })
      expect(await store.docsFoldedPast('nowhere', 0)).toEqual([])

      // Appended after the compaction: a late, lower entry of US (5 < 6) and a local one. Both stay.
      await append('doc-a', US, 5)
      const l4 = await append('doc-a')
      expect((await store.readOrigin(US, 0, ALL)).entries.map(e => [e.docName, e.originSeq])).toEqual([['doc-a', 5], ['doc-b', 8]])
      expect((await localIn('doc-a')).map(e => e.originSeq)).toEqual([l4])

      await store.compact('doc-b')
      await store.compact('doc-c')
      expect((await store.readOrigin(US, 0, ALL)).foldedUpTo).toBe(8)
      expect((await store.readOrigin(AP, 0, ALL)).foldedUpTo).toBe(10) // doc-c's 3 does not lower it
      expect((await store.readOrigin(LOCAL_ORIGIN, 0, ALL)).foldedUpTo).toBe(l3)
      expect(await marks(US, [4, 5, 6, 7, 8])).toEqual({ 4: ['doc-a', 'doc-b'], 5: ['doc-a', 'doc-b'], 6: ['doc-b'], 7: ['doc-b'], 8: [] })
      expect(await marks(AP, [2, 3, 9])).toEqual({ 2: ['doc-a', 'doc-c'], 3: ['doc-a'], 9: ['doc-a'] })
      expect(await marks(LOCAL_ORIGIN, [0, l2, l3])).toEqual({ 0: ['doc-a', 'doc-b'], [l2]: ['doc-b'], [l3]: [] })

      // Folding doc-a again with only a lower US entry keeps its US mark at 6.
      await store.compact('doc-a')
      expect(await marks(US, [5, 6])).toEqual({ 5: ['doc-a', 'doc-b'], 6: ['doc-b'] })
      expect((await store.readOrigin(US, 0, ALL))).toMatchObject({ entries: [], foldedUpTo: 8 })
      expect((await store.readOrigin(LOCAL_ORIGIN, 0, ALL))).toMatchObject({ entries: [], foldedUpTo: l4 })
      expect(await marks(LOCAL_ORIGIN, [l3, l4 - 1, l4])).toEqual({ [l3]: ['doc-a'], [l4 - 1]: ['doc-a'], [l4]: [] })
      expect((await store.readOrigin(AP, 0, ALL))).toMatchObject({ entries: [], foldedUpTo: 10 })
      // Folding loses no content: the snapshots hold every update.
      const content = contentOfUpdates([...(await Promise.all(['doc-a', 'doc-b', 'doc-c'].map(async d => updatesOf(await store.read(d))))).flat()])
      expect(content).toEqual(contentOfUpdates(updates.slice(0, next)))
    })

    it('shows entries and marks as they were until a running compaction commits', async () => {
      const gate = gatedPause()
      const store = await open({ pause: gate.pause })
      const { updates } = typedUpdates(MERGE_BATCH + 4)
      const before: Record<string, OriginEntry[]> = { [LOCAL_ORIGIN]: [], [US]: [] }
      for (const [i, update] of updates.slice(0, MERGE_BATCH + 2).entries()) {
        const remote = i % 2 === 1
        const seq = await store.append('doc', update, remote ? { region: US, seq: 100 + i } : undefined)
        before[remote ? US : LOCAL_ORIGIN]?.push({ docName: 'doc', originSeq: remote ? 100 + i : seq, update })
      }
      const compaction = store.compact('doc')
      await gate.firstCall
      const lateLocal = updates[MERGE_BATCH + 2] as Uint8Array
      const lateRemote = updates[MERGE_BATCH + 3] as Uint8Array
      let late: number
      try {
        for (const origin of [LOCAL_ORIGIN, US]) {
          expect(await store.readOrigin(origin, 0, ALL)).toMatchObject({ entries: before[origin], foldedUpTo: 0 })
          expect(await store.docsFoldedPast(origin, 0)).toEqual([])
        }
        late = await store.append('doc', lateLocal)
        await store.append('doc', lateRemote, { region: US, seq: 1000 })
      } finally {
        gate.release() // else a failed expectation leaves teardown waiting for the compaction
      }
      await compaction
      const lastLocal = (before[LOCAL_ORIGIN]?.at(-1) as OriginEntry).originSeq
      const lastUs = (before[US]?.at(-1) as OriginEntry).originSeq
      expect(await store.readOrigin(LOCAL_ORIGIN, 0, ALL)).toMatchObject({ entries: [{ docName: 'doc', originSeq: late, update: lateLocal }], foldedUpTo: lastLocal })
      expect(await store.readOrigin(US, 0, ALL)).toMatchObject({ entries: [{ docName: 'doc', originSeq: 1000, update: lateRemote }], foldedUpTo: lastUs })
      expect(await store.docsFoldedPast(US, lastUs - 1)).toEqual(['doc'])
      expect(await store.docsFoldedPast(US, lastUs)).toEqual([])
      expect(await store.docsFoldedPast(LOCAL_ORIGIN, lastLocal)).toEqual([])
    })

    it('counts the compactions that folded each origin\'s entries (fold generation)', async () => {
      const store = await open()
      const { updates } = typedUpdates(4)
      await store.append('doc-a', updates[0] as Uint8Array)
      await store.append('doc-b', updates[1] as Uint8Array, { region: US, seq: 9 })
      await store.compact('doc-b')
      // Only the origin whose entries were folded moves.
      expect((await store.readOrigin(US, 0, 10)).foldGeneration).toBe(1)
      expect((await store.readOrigin(LOCAL_ORIGIN, 0, 10)).foldGeneration).toBe(0)
      await store.compact('doc-a')
      expect((await store.readOrigin(LOCAL_ORIGIN, 0, 10)).foldGeneration).toBe(1)
      // A later fold of lower entries leaves foldedUpTo where it was, but not the generation.
      await store.append('doc-c', updates[2] as Uint8Array, { region: US, seq: 3 })
      await store.compact('doc-c')
      const read = await store.readOrigin(US, 0, 10)
      expect(read.foldedUpTo).toBe(9)
      expect(read.foldGeneration).toBe(2)
      // Compacting a document with an empty log folds nothing.
      await store.compact('doc-c')
      expect((await store.readOrigin(US, 0, 10)).foldGeneration).toBe(2)
    })

    it('keeps per-origin have marks that only ever rise', async () => {
      const store = await open()
      expect(await store.readHave()).toEqual({})
      await store.writeHave(US, 5)
      expect(await store.readHave()).toEqual({ [US]: 5 })
      await store.writeHave(US, 3)
      expect(await store.readHave()).toEqual({ [US]: 5 })
      await store.writeHave(AP, 2)
      await store.writeHave(US, 9)
      await store.writeHave(AP, 1)
      await store.writeHave('ünï-区域 🙂', 4)
      expect(await store.readHave()).toEqual({ [US]: 9, [AP]: 2, 'ünï-区域 🙂': 4 })
      await Promise.all([store.writeHave(AP, 11), store.writeHave(AP, 7), store.writeHave(AP, 3)])
      expect((await store.readHave())[AP]).toBe(11)
      // Have marks are the receiver's cursors: appends and compactions leave them alone.
      await store.append('doc', typedUpdates(1).updates[0] as Uint8Array, { region: US, seq: 40 })
      await store.compact('doc')
      expect(await store.readHave()).toEqual({ [US]: 9, [AP]: 11, 'ünï-区域 🙂': 4 })
    })

    it('lastSeq() is the highest local number given, replicated and compacted appends included', async () => {
      const store = await open()
      expect(await store.lastSeq()).toBe(0)
      const [u0, u1, u2] = typedUpdates(3).updates as [Uint8Array, Uint8Array, Uint8Array]
      expect(await store.lastSeq()).toBe(0)
      const a = await store.append('doc', u0)
      expect(await store.lastSeq()).toBe(a)
      const b = await store.append('doc', u1, { region: US, seq: 1000 })
      expect(await store.lastSeq()).toBe(b)
      await store.compact('doc')
      expect(await store.lastSeq()).toBe(b)
      const c = await store.append('other', u2)
      expect(await store.lastSeq()).toBe(c)
    })

    it('brings a peer at any cursor up to date from readOrigin plus docsFoldedPast (property)', async () => {
      const origins = [LOCAL_ORIGIN, US, AP] as const
      const docs = ['doc-0', 'doc-1', 'doc-2'] as const
      const op = fc.oneof(
        {
          weight: 6,
          arbitrary: fc.record({
            kind: fc.constant('append' as const),
            doc: fc.nat({ max: 2 }),
            origin: fc.nat({ max: 2 }),
            gap: fc.integer({ min: 1, max: 3 }),
            edit: fc.nat(),
            awaited: fc.boolean(),
          }),
        },
        { weight: 1, arbitrary: fc.record({ kind: fc.constant('compact' as const), doc: fc.nat({ max: 2 }), awaited: fc.boolean() }) },
      )
      let folded = 0
      await fc.assert(fc.asyncProperty(fc.array(op, { minLength: 1, maxLength: 30 }), async ops => {
        const { store, teardown } = await setup()
        try {
          // One editor per origin and document, so each origin's updates build on its own
          // earlier ones (a peer missing an early one holds the later ones as pending).
          const editors = new Map<string, Y.Doc>()
          const editorOf = (origin: number, docName: string): Y.Doc => {
            let doc = editors.get(`${origin}/${docName}`)
            if (doc === undefined) {
              doc = new Y.Doc()
              doc.clientID = origin + 1
              editors.set(`${origin}/${docName}`, doc)
            }
            return doc
          }
          const edit = (doc: Y.Doc, n: number): Uint8Array => {
            const made: Uint8Array[] = []
            const onUpdate = (update: Uint8Array) => made.push(update)
            doc.on('update', onUpdate)
            const text = doc.getText('t')
            if (n % 4 === 3 && text.length > 0) text.delete(n % text.length, 1)
            else if (n % 4 === 2) doc.getMap('m').set(`k${n % 3}`, n)
            else text.insert(n % (text.length + 1), String.fromCharCode(97 + (n % 26)))
            doc.off('update', onUpdate)
            expect(made).toHaveLength(1)
            return made[0] as Uint8Array
          }

          interface Appended {
            docName: string
            origin: string
            update: Uint8Array
            remoteSeq: number | undefined
            seq: Promise<number>
          }
          const appended: Appended[] = []
          const pending: Promise<unknown>[] = []
          const originSeq = new Map<string, number>()
          // Appends and compactions are issued in order; those not awaited overlap what follows
          // (with group commit, a compaction may take its cut while appends wait to be written).
          for (const o of ops) {
            const docName = docs[o.doc] as string
            let promise: Promise<unknown>
            if (o.kind === 'append') {
              const origin = origins[o.origin] as string
              const remoteSeq = origin === LOCAL_ORIGIN ? undefined : (originSeq.get(origin) ?? 0) + o.gap
              if (remoteSeq !== undefined) originSeq.set(origin, remoteSeq)
              const update = edit(editorOf(o.origin, docName), o.edit)
              const seq = store.append(
                docName,
                update,
                remoteSeq === undefined ? undefined : { region: origin, seq: remoteSeq },
              )
              appended.push({ docName, origin, update, remoteSeq, seq })
              promise = seq
            } else {
              promise = store.compact(docName)
            }
            if (o.awaited) await promise
            else pending.push(promise)
          }
          await Promise.all(pending)

          // The model: an entry was folded iff its local number left its document's log.
          const stored = new Map<string, StoredDoc>()
          for (const docName of docs) stored.set(docName, await store.read(docName))
          const entries = await Promise.all(appended.map(async a => {
            const seq = await a.seq
            const log = (stored.get(a.docName) as StoredDoc).log
            return { ...a, originSeq: a.remoteSeq ?? seq, folded: !log.some(e => e.seq === seq) }
          }))
          folded += entries.filter(e => e.folded).length

          for (const origin of origins) {
            const mine = entries.filter(e => e.origin === origin).sort((x, y) => x.originSeq - y.originSeq)
            const foldedUpTo = Math.max(0, ...mine.filter(e => e.folded).map(e => e.originSeq))
            const cursors = new Set([0, ...mine.flatMap(e => [e.originSeq - 1, e.originSeq])])
            for (const cursor of cursors) {
              const read = await store.readOrigin(origin, cursor, ALL)
              const past = await store.docsFoldedPast(origin, cursor)
              const above = mine.filter(e => e.originSeq > cursor)
              // Exactly: the unfolded entries above the cursor, and the documents holding folded ones.
              expect(read).toMatchObject({
                entries: above
                  .filter(e => !e.folded)
                  .map(e => ({ docName: e.docName, originSeq: e.originSeq, update: e.update })),
                foldedUpTo,
              })
              expect([...past].sort()).toEqual([...new Set(above.filter(e => e.folded).map(e => e.docName))].sort())

              // By content: a peer holding all of the origin up to the cursor, given the entries
              // and the full state of the listed documents, lacks nothing of the origin. Sound
              // because applying an update the peer lacks either adds structs (its state vector
              // grows; also when earlier ones were pending) or deletes something still visible
              // (the content changes): if neither changes, the peer already held it.
              for (const docName of new Set(above.map(e => e.docName))) {
                const peer = new Y.Doc()
                for (const e of mine) if (e.docName === docName && e.originSeq <= cursor) Y.applyUpdate(peer, e.update)
                for (const e of read.entries) if (e.docName === docName) Y.applyUpdate(peer, e.update)
                if (past.includes(docName)) {
                  for (const update of updatesOf(stored.get(docName) as StoredDoc)) Y.applyUpdate(peer, update)
                }
                const stateVector = Y.encodeStateVector(peer)
                const content = contentOfDoc(peer)
                for (const e of above) if (e.docName === docName) Y.applyUpdate(peer, e.update)
                expect({ docName, cursor, stateVector: Y.encodeStateVector(peer), content: contentOfDoc(peer) })
                  .toEqual({ docName, cursor, stateVector, content })
              }
            }
          }
        } finally {
          await teardown()
        }
      }), { numRuns: options.propertyRuns ?? 50 })
      // Without folded entries the property would only test readOrigin.
      expect(folded).toBeGreaterThan(0)
    })
  })

  describe('reading by document cursors (a node following its region)', () => {
    it('returns the asked documents\' entries above each cursor, any origin, by seq, at most `limit`', async () => {
      const store = await open()
      const { updates } = typedUpdates(6)
      type Six = [Uint8Array, Uint8Array, Uint8Array, Uint8Array, Uint8Array, Uint8Array]
      const [u0, u1, u2, u3, u4, u5] = updates as Six
      const a1 = await store.append('a', u0)
      const b1 = await store.append('b', u1, { region: US, seq: 7 })
      const a2 = await store.append('a', u2, { region: AP, seq: 3 })
      const c1 = await store.append('c', u3)
      const b2 = await store.append('b', u4)
      const a3 = await store.append('a', u5)
      const all = await store.readSince(new Map([['a', 0], ['b', b1], ['c', c1], ['unknown', 0]]), ALL)
      expect(all).toEqual({
        entries: [
          { docName: 'a', seq: a1, update: u0 },
          { docName: 'a', seq: a2, update: u2 },
          { docName: 'b', seq: b2, update: u4 },
          { docName: 'a', seq: a3, update: u5 },
        ],
        folded: [],
      })
      // A limit cuts by seq, so what each document gets is a prefix of what it has.
      const two = await store.readSince(new Map([['a', a1], ['b', 0]]), 2)
      expect(two.entries.map(e => e.seq)).toEqual([b1, a2])
      expect(await store.readSince(new Map(), ALL)).toEqual({ entries: [], folded: [] })
    })

    it('names a document whose snapshot folded entries above its cursor, and still returns later entries', async () => {
      const store = await open()
      const { updates, doc } = typedUpdates(5)
      const seqs: number[] = []
      for (const update of updates.slice(0, 3)) seqs.push(await store.append('doc', update))
      await store.compact('doc')
      for (const update of updates.slice(3)) seqs.push(await store.append('doc', update))
      const [s1, , s3, s4, s5] = seqs as [number, number, number, number, number]
      const behind = await store.readSince(new Map([['doc', s1]]), ALL)
      expect(behind.folded).toEqual(['doc'])
      expect(behind.entries.map(e => e.seq)).toEqual([s4, s5])
      // A reader that held everything up to the fold needs nothing whole.
      expect(await store.readSince(new Map([['doc', s3]]), ALL))
        .toMatchObject({ folded: [], entries: [{ seq: s4 }, { seq: s5 }] })
      expect(await store.readSince(new Map([['doc', s5]]), ALL)).toEqual({ entries: [], folded: [] })
      // What the reader is told to read whole, plus the entries, is the document.
      expect(contentOf(await store.read('doc'))).toEqual(contentOfDoc(doc))
    })
  })

  describe('erasure', () => {
    it('deletes the document\'s log, snapshot and entries by origin, and keeps the others', async () => {
      const store = await open()
      const { updates } = typedUpdates(12)
      const kept = typedUpdates(3, 2).updates
      for (const update of updates.slice(0, 8)) await store.append('secret', update)
      await store.compact('secret')
      for (const update of updates.slice(8)) await store.append('secret', update, { region: US, seq: 50 })
      for (const update of kept) await store.append('kept', update)
      const keptBefore = await store.read('kept')
      await store.erase({ docName: 'secret', at: 1, origin: AP })
      expect(await store.read('secret')).toEqual({ snapshot: null, snapshotSeq: 0, log: [] })
      expect(await store.listDocs()).toEqual(['kept'])
      expect((await store.readOrigin(LOCAL_ORIGIN, 0, ALL)).entries.map(e => e.docName)).toEqual(['kept', 'kept', 'kept'])
      expect((await store.readOrigin(US, 0, ALL)).entries).toEqual([])
      expect(await store.docsFoldedPast(LOCAL_ORIGIN, 0)).toEqual([])
      expect(await store.read('kept')).toEqual(keptBefore)
      expect(await store.readErased()).toEqual([{ docName: 'secret', at: 1, origin: AP }])
    })

    it('refuses later appends with ERR_DOC_ERASED and keeps the first tombstone', async () => {
      const store = await open()
      const { updates } = typedUpdates(2)
      await store.append('gone', updates[0] as Uint8Array)
      await store.erase({ docName: 'gone', at: 5, origin: US })
      await expect(store.append('gone', updates[1] as Uint8Array)).rejects.toMatchObject({ code: 'ERR_DOC_ERASED' })
      await expect(store.append('gone', updates[1] as Uint8Array, { region: AP, seq: 9 })).rejects.toBeInstanceOf(StoreError)
      await store.erase({ docName: 'gone', at: 7, origin: AP })
      expect(await store.readErased()).toEqual([{ docName: 'gone', at: 5, origin: US }])
      // A name never written can be erased too: it is reserved from then on.
      await store.erase({ docName: 'never-written', at: 8, origin: US })
      await expect(store.append('never-written', updates[0] as Uint8Array)).rejects.toMatchObject({ code: 'ERR_DOC_ERASED' })
      expect(await store.read('gone')).toEqual({ snapshot: null, snapshotSeq: 0, log: [] })
    })

    it('erases appends that were still waiting to be written, and what a running compaction merged', async () => {
      const store = await open()
      const { updates } = typedUpdates(MERGE_BATCH * 3)
      for (const update of updates.slice(0, -2)) await store.append('racing', update)
      // A compaction that yields between merge batches, and appends not yet committed.
      const compaction = store.compact('racing')
      const pending = updates.slice(-2).map(update => store.append('racing', update).then(() => 'stored', (err: StoreError) => err.code))
      await store.erase({ docName: 'racing', at: 1, origin: US })
      await compaction
      for (const outcome of await Promise.all(pending)) expect(['stored', 'ERR_DOC_ERASED']).toContain(outcome)
      expect(await store.read('racing')).toEqual({ snapshot: null, snapshotSeq: 0, log: [] })
      expect(await store.listDocs()).toEqual([])
    })
  })

  if (options.persistent === true) {
    const reopen = (): Promise<DocStore> => {
      if (fixture?.reopen === undefined) throw new Error('a persistent store fixture must provide reopen()')
      return fixture.reopen()
    }

    it('keeps every append, snapshot and name across a reopen', async () => {
      let store = await open()
      const { updates, doc } = typedUpdates(30)
      const other = typedUpdates(3, 2).updates
      for (const update of updates.slice(0, 20)) await store.append('eu/doc', update)
      await store.compact('eu/doc')
      for (const update of updates.slice(20)) await store.append('eu/doc', update)
      for (const update of other) await store.append('other', update)
      const before = { doc: await store.read('eu/doc'), other: await store.read('other') }
      store = await reopen()
      expect({ doc: await store.read('eu/doc'), other: await store.read('other') }).toEqual(before)
      const after = await store.read('eu/doc')
      expect(after.snapshotSeq).toBeGreaterThan(0)
      expect(after.log).toHaveLength(10)
      expect(contentOf(after)).toEqual(contentOfDoc(doc))
      expect((await store.listDocs()).sort()).toEqual(['eu/doc', 'other'])
    })

    it('never reuses a sequence number after a reopen, even one compacted away', async () => {
      let store = await open()
      const { updates } = typedUpdates(6)
      let last = 0
      for (const update of updates.slice(0, 3)) last = await store.append('doc', update)
      await store.compact('doc')
      store = await reopen()
      const next = await store.append('doc', updates[3] as Uint8Array)
      expect(next).toBeGreaterThan(last)
      expect((await store.append('another', updates[4] as Uint8Array))).toBeGreaterThan(next)
    })

    it('keeps origins, folded marks, have marks and lastSeq across a reopen', async () => {
      let store = await open()
      const { updates } = typedUpdates(9)
      const u = (i: number) => updates[i] as Uint8Array
      await store.append('doc-a', u(0))
      await store.append('doc-a', u(1), { region: US, seq: 6 })
      await store.append('doc-a', u(2), { region: AP, seq: 2 })
      await store.compact('doc-a')
      await store.append('doc-a', u(3), { region: US, seq: 9 })
      await store.append('doc-b', u(4))
      await store.append('doc-b', u(5), { region: AP, seq: 3 })
      await store.writeHave(US, 9)
      await store.writeHave(AP, 3)
      const state = async (s: DocStore) => ({
        // The fold generation counts since the store opened, so it is not part of what persists.
        reads: (await Promise.all([LOCAL_ORIGIN, US, AP].map(o => s.readOrigin(o, 0, ALL))))
          .map(({ entries, foldedUpTo }) => ({ entries, foldedUpTo })),
        past: await Promise.all([LOCAL_ORIGIN, US, AP].flatMap(o => [0, 1, 2, 5, 6].map(c => s.docsFoldedPast(o, c)))),
        have: await s.readHave(),
        lastSeq: await s.lastSeq(),
      })
      const before = await state(store)
      expect(before.reads.map(r => r.foldedUpTo)).toEqual([1, 6, 2])
      store = await reopen()
      expect(await state(store)).toEqual(before)
      // Marks read back from disk still never move back: doc-a's US mark stays 6 after folding a lower 4.
      await store.append('doc-a', u(6), { region: US, seq: 4 })
      await store.compact('doc-a')
      expect(await store.docsFoldedPast(US, 5)).toEqual(['doc-a'])
      expect((await store.readOrigin(US, 0, ALL)).foldedUpTo).toBe(9)
      await store.writeHave(US, 2)
      expect(await store.readHave()).toEqual({ [US]: 9, [AP]: 3 })
    })

    it('lastSeq() survives a reopen, even when every entry was compacted away', async () => {
      let store = await open()
      const { updates } = typedUpdates(3)
      await store.append('doc', updates[0] as Uint8Array)
      const last = await store.append('doc', updates[1] as Uint8Array, { region: US, seq: 1 })
      await store.compact('doc')
      store = await reopen()
      expect(await store.lastSeq()).toBe(last)
      expect(await store.append('doc', updates[2] as Uint8Array)).toBeGreaterThan(last)
    })

    it('keeps tombstones across a reopen: the erased document stays gone and refuses appends', async () => {
      let store = await open()
      const { updates } = typedUpdates(4)
      for (const update of updates) await store.append('gone', update)
      await store.erase({ docName: 'gone', at: 1_700_000_000_000, origin: US })
      store = await reopen()
      expect(await store.read('gone')).toEqual({ snapshot: null, snapshotSeq: 0, log: [] })
      expect(await store.readErased()).toEqual([{ docName: 'gone', at: 1_700_000_000_000, origin: US }])
      await expect(store.append('gone', updates[0] as Uint8Array)).rejects.toMatchObject({ code: 'ERR_DOC_ERASED' })
    })
  }

  it('loses nothing when compactions race with appends (property)', async () => {
    let overlapped = 0
    const edit = fc.record({
      writer: fc.nat({ max: 2 }),
      kind: fc.constantFrom('insert', 'delete', 'set'),
      at: fc.nat(),
      text: fc.string({ minLength: 1, maxLength: 3 }),
      value: fc.integer(),
    })
    await fc.assert(fc.asyncProperty(
      fc.array(edit, { minLength: 100, maxLength: 150 }),
      // Compactions start once the n-th append resolved; the first one always has more than
      // MERGE_BATCH updates to fold, so it yields at least once and appends land inside it.
      fc.uniqueArray(fc.integer({ min: MERGE_BATCH + 1, max: 100 }), { minLength: 1, maxLength: 3 }),
      fc.integer({ min: MERGE_BATCH + 1, max: 150 }),
      fc.scheduler(),
      async (edits, compactAt, autoThreshold, s) => {
        const writers = [0, 1, 2].map(w => {
          const doc = new Y.Doc()
          doc.clientID = w + 1
          const updates: Uint8Array[] = []
          doc.on('update', (update: Uint8Array) => updates.push(update))
          return { doc, updates }
        })
        for (const e of edits) {
          const { doc } = writers[e.writer] as (typeof writers)[number]
          const text = doc.getText('t')
          if (e.kind === 'set') doc.getMap('m').set(e.text, e.value)
          else if (e.kind === 'delete' && text.length > 0) text.delete(e.at % text.length, 1 + (e.at % 2))
          else text.insert(e.at % (text.length + 1), e.text)
        }
        const all = writers.flatMap(w => w.updates)
        const expected = contentOfUpdates([Y.mergeUpdates(all)])

        let pauses = 0
        const { store, teardown } = await setup({
          compaction: { updates: autoThreshold, bytes: 1 << 30 },
          // Released by the scheduler, then a real event-loop turn as in production, in which
          // a store that writes on a later turn (group commit) commits what was appended.
          pause: async () => {
            pauses++
            await s.schedule(Promise.resolve(), 'compaction yields')
            await yieldToEventLoop()
          },
        })
        try {
          const appended = new Map<number, Uint8Array>()
          const compactions: Promise<void>[] = []
          let inFlight = 0
          let resolved = 0
          const write = async (updates: Uint8Array[]) => {
            for (const update of updates) {
              await s.schedule(Promise.resolve(), 'append')
              const seq = await store.append('doc', update)
              appended.set(seq, update)
              if (inFlight > 0) overlapped++
              if (compactAt.includes(++resolved)) {
                inFlight++
                compactions.push(store.compact('doc').finally(() => inFlight--))
              }
            }
          }
          await s.waitFor(Promise.all(writers.map(w => write(w.updates))).then(() => Promise.all(compactions)))
          expect(appended.size).toBe(all.length)
          expect(pauses).toBeGreaterThan(0)

          const check = (stored: StoredDoc) => {
            const seqs = stored.log.map(e => e.seq)
            expectIncreasing(seqs)
            for (const entry of stored.log) {
              expect(entry.seq).toBeGreaterThan(stored.snapshotSeq)
              expect(entry.update).toEqual(appended.get(entry.seq))
            }
            const inLog = new Set(seqs)
            for (const seq of appended.keys()) expect(seq <= stored.snapshotSeq || inLog.has(seq)).toBe(true)
            expect(stored.log.length).toBe([...appended.keys()].filter(seq => seq > stored.snapshotSeq).length)
            expect(contentOf(stored)).toEqual(expected)
          }
          // An automatic compaction may still be running: the store must be whole at any moment.
          check(await store.read('doc'))
          await s.waitFor(store.compact('doc'))
          const final = await store.read('doc')
          check(final)
          expect(final).toMatchObject({ snapshotSeq: Math.max(...appended.keys()), log: [] })
        } finally {
          await s.waitFor(teardown())
        }
      },
    ), { numRuns: options.propertyRuns ?? 50 })
    // Without appends landing inside compactions the property above would prove little.
    expect(overlapped).toBeGreaterThan(0)
  })
})
