/**
 * LogFollower against a real MemoryStore standing in for the region's shared store: what a
 * node hands its loaded documents from its siblings' appends, by hint or by reading the log,
 * and that nothing arrives twice or goes missing whatever the hints do.
 */
import { describe, expect, it } from '@jest/globals'
import * as Y from 'yjs'
import { MemoryStore } from '@georelay/core'
import { silentLogger } from '@georelay/relay'
import { createRelayMetrics } from '../src/observability/index.js'
import { LogFollower } from '../src/region/index.js'

const edit = (doc: Y.Doc, text: string): Uint8Array => {
  const before = Y.encodeStateVector(doc)
  doc.getText('t').insert(doc.getText('t').length, text)
  return Y.encodeStateAsUpdate(doc, before)
}

/** A follower of `docs` over a store, with the loaded documents as Y.Docs and a count of what each took. */
const setup = (options: { readLimit?: number } = {}) => {
  const store = new MemoryStore()
  const loaded = new Map<string, Y.Doc>()
  const applied: string[] = []
  const metrics = createRelayMetrics('test')
  const follower = new LogFollower({
    store,
    metrics,
    logger: silentLogger,
    ...options,
    docs: {
      apply: (docName, update) => {
        applied.push(docName)
        const doc = loaded.get(docName)
        if (doc !== undefined) Y.applyUpdate(doc, update)
      },
      stateVector: async docName => {
        const doc = loaded.get(docName)
        return doc === undefined ? null : Y.encodeStateVector(doc)
      },
    },
  })
  const load = async (docName: string): Promise<Y.Doc> => {
    const stored = await store.read(docName)
    const doc = new Y.Doc()
    if (stored.snapshot !== null) Y.applyUpdate(doc, stored.snapshot)
    for (const entry of stored.log) Y.applyUpdate(doc, entry.update)
    loaded.set(docName, doc)
    follower.track(docName, Math.max(stored.snapshotSeq, stored.log[stored.log.length - 1]?.seq ?? 0))
    return doc
  }
  const counted = async (path: 'hint' | 'log'): Promise<number> =>
    (await metrics.siblingUpdates.get()).values.find(v => v.labels.path === path)?.value ?? 0
  return { store, follower, load, applied, counted }
}

describe('LogFollower', () => {
  it('takes a sibling\'s update from its hint once, and not again when reading the log past it', async () => {
    const { store, follower, load, applied, counted } = setup()
    const doc = await load('d')
    const sibling = new Y.Doc()
    const update = edit(sibling, 'hi')
    const seq = await store.append('d', update)
    expect(follower.hinted('d', seq, update)).toBe(true)
    expect(follower.hinted('d', seq, update)).toBe(false) // a hint delivered twice
    await follower.catchUp('poll')
    expect(doc.getText('t').toString()).toBe('hi')
    expect(applied).toEqual(['d'])
    expect(await counted('hint')).toBe(1)
    expect(await counted('log')).toBe(0)
  })

  it('never hands a document this node\'s own appends', async () => {
    const { store, follower, load, applied } = setup()
    await load('d')
    const seq = await store.append('d', edit(new Y.Doc(), 'mine'))
    follower.stored('d', seq)
    expect(follower.hinted('d', seq, null)).toBe(false) // its own hint, back from Redis
    await follower.catchUp('poll')
    expect(applied).toEqual([])
  })

  it('finds on the next poll what a lost hint would have brought, in order, among own and hinted entries', async () => {
    const { store, follower, load, counted } = setup()
    const doc = await load('d')
    const sibling = new Y.Doc()
    const lost = edit(sibling, 'a')
    const hinted = edit(sibling, 'b')
    const lostSeq = await store.append('d', lost)
    const hintedSeq = await store.append('d', hinted)
    // Only the later hint arrives: Yjs holds it as pending until the lost one is there.
    follower.hinted('d', hintedSeq, hinted)
    expect(doc.getText('t').toString()).toBe('')
    expect(lostSeq).toBeLessThan(hintedSeq)
    await follower.catchUp('poll')
    expect(doc.getText('t').toString()).toBe('ab')
    expect(await counted('log')).toBe(1)
  })

  it('reads the log when a hint came without its update (too large for Redis)', async () => {
    const { store, follower, load, counted } = setup()
    const doc = await load('d')
    const seq = await store.append('d', edit(new Y.Doc(), 'large'))
    expect(follower.hinted('d', seq, null)).toBe(false)
    await follower.settled()
    expect(doc.getText('t').toString()).toBe('large')
    expect(await counted('log')).toBe(1)
  })

  it('ignores documents it does not follow, and forgets one untracked', async () => {
    const { store, follower, load, applied } = setup()
    await load('d')
    follower.untrack('d')
    const seq = await store.append('d', edit(new Y.Doc(), 'x'))
    expect(follower.hinted('d', seq, null)).toBe(false)
    expect(follower.hinted('other', seq, new Uint8Array([0, 0]))).toBe(false)
    await follower.catchUp('poll')
    expect(applied).toEqual([])
  })

  it('brings a document up from its whole state when compaction folded entries it had not read', async () => {
    const { store, follower, load, counted } = setup()
    const doc = await load('d')
    const sibling = new Y.Doc()
    for (const text of ['one ', 'two ', 'three']) await store.append('d', edit(sibling, text))
    await store.compact('d')
    await follower.catchUp('poll')
    expect(doc.getText('t').toString()).toBe('one two three')
    expect(await counted('log')).toBe(1) // one diff, not three entries
    // Its cursor moved past the fold: a second poll brings nothing.
    await follower.catchUp('poll')
    expect(await counted('log')).toBe(1)
  })

  it('reads on in limit-sized pieces until it has everything', async () => {
    const { store, follower, load } = setup({ readLimit: 3 })
    const a = await load('a')
    const b = await load('b')
    const editors = { a: new Y.Doc(), b: new Y.Doc() }
    for (let i = 0; i < 10; i++) {
      await store.append('a', edit(editors.a, String(i % 10)))
      await store.append('b', edit(editors.b, String(i % 10)))
    }
    await follower.catchUp('redis')
    await follower.settled()
    expect(a.getText('t').toString()).toBe('0123456789')
    expect(b.getText('t').toString()).toBe('0123456789')
  })

  it('keeps a compacted document it could not read behind, without holding up the others', async () => {
    const { store, follower, load } = setup()
    const [folded, other] = [await load('folded'), await load('other')]
    const [a, b] = [new Y.Doc(), new Y.Doc()]
    for (const text of ['x', 'y']) await store.append('folded', edit(a, text))
    await store.compact('folded')
    await store.append('folded', edit(a, 'z'))
    await store.append('other', edit(b, 'fine'))
    const read = store.read.bind(store)
    store.read = () => Promise.reject(new Error('statement timeout'))
    await follower.catchUp('poll')
    // The entry after the fold must not move its cursor past the folded ones.
    expect(folded.getText('t').toString()).toBe('')
    expect(other.getText('t').toString()).toBe('fine')
    store.read = read
    await follower.catchUp('poll')
    expect(folded.getText('t').toString()).toBe('xyz')
  })

  it('keeps documents behind while the store fails and catches up once it answers', async () => {
    const { store, follower, load } = setup()
    const doc = await load('d')
    const seq = await store.append('d', edit(new Y.Doc(), 'late'))
    const readSince = store.readSince.bind(store)
    store.readSince = () => Promise.reject(new Error('the database does not answer'))
    follower.hinted('d', seq, null)
    await follower.settled()
    expect(doc.getText('t').toString()).toBe('')
    store.readSince = readSince
    await follower.catchUp('poll')
    expect(doc.getText('t').toString()).toBe('late')
  })
})
