/**
 * What every DocStore must do, as a jest suite: call `describeDocStore` from a store's test file
 * with a setup that opens a fresh, empty store with the given options.
 */
import { afterEach, describe, expect, it } from '@jest/globals'
import fc from 'fast-check'
import * as Y from 'yjs'
import { MERGE_BATCH, StoreError, yieldToEventLoop, type DocStore, type StoredDoc, type StoreOptions } from '@georelay/core'

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
  /** Runs of the compaction race property. */
  propertyRuns?: number
}

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
    await store.close()
  })

  it('close() finishes the appends it was called after', async () => {
    const store = await open()
    const { updates } = typedUpdates(5)
    const pending = updates.map(update => store.append('doc', update))
    await store.close()
    expectIncreasing(await Promise.all(pending))
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
