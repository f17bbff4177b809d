/**
 * What every OfflineStore must do. The checks are plain async functions with their own asserts,
 * not jest tests, because the same checks also run inside a browser page for IndexedDB (where
 * `@jest/globals` cannot be imported). In jest: `for (const check of checksFor(persistent))
 * it(check.name, () => runCheck(check, setup))`, each check on a fresh fixture.
 */
import type { OfflineStore, PendingWrite } from '../src/offline-store.js'

export interface OfflineStoreFixture {
  /** The store keeps its data across close and open. */
  readonly persistent: boolean
  /** Opens a store; for persistent stores, on the same data every time. */
  open(): Promise<OfflineStore>
  /** Closes every store it opened and deletes the data. */
  teardown(): Promise<void>
}

export interface OfflineStoreCheck {
  readonly name: string
  readonly persistentOnly?: boolean
  run(fixture: OfflineStoreFixture): Promise<void>
}

/** A fixture that closes whatever it opened before deleting the data. */
export const trackingFixture = (
  persistent: boolean,
  open: () => Promise<OfflineStore>,
  destroy: () => Promise<void>,
): OfflineStoreFixture => {
  const opened: OfflineStore[] = []
  return {
    persistent,
    open: async () => {
      const store = await open()
      opened.push(store)
      return store
    },
    teardown: async () => {
      await Promise.all(opened.map(store => store.close()))
      await destroy()
    },
  }
}

export class CheckFailed extends Error {
  override name = 'CheckFailed'
}

const hex = (bytes: Uint8Array): string => {
  const shown = Array.from(bytes.subarray(0, 16), b => b.toString(16).padStart(2, '0')).join('')
  return `${bytes.length}B:${shown}${bytes.length > 16 ? '…' : ''}`
}

const render = (writes: readonly PendingWrite[]): string => `[${writes.map(w => `${w.writeId}=${hex(w.update)}`).join(', ')}]`

const sameBytes = (a: Uint8Array, b: Uint8Array): boolean =>
  a.length === b.length && a.every((byte, i) => byte === b[i])

const assert = (condition: boolean, message: string): void => {
  if (!condition) throw new CheckFailed(message)
}

/** Exact write ids, exact order, exact bytes, and real Uint8Arrays. */
export const assertWrites = (
  actual: readonly PendingWrite[],
  expected: readonly PendingWrite[],
  what: string,
): void => {
  const ok = actual.length === expected.length && actual.every((write, i) => {
    const want = expected[i] as PendingWrite
    return write.update instanceof Uint8Array && write.writeId === want.writeId && sameBytes(write.update, want.update)
  })
  assert(ok, `${what}: expected ${render(expected)}, loaded ${render(actual)}`)
}

const assertRejects = async (attempt: () => Promise<unknown>, pattern: RegExp, what: string): Promise<void> => {
  let error: unknown
  try {
    await attempt()
  } catch (err) {
    error = err
  }
  assert(error !== undefined, `${what}: expected a rejection, it resolved`)
  const message = error instanceof Error ? error.message : String(error)
  assert(pattern.test(message), `${what}: expected an error matching ${String(pattern)}, got: ${message}`)
}

/** Deterministic bytes, different for every (seed, index). */
export const bytesFor = (seed: number, length: number): Uint8Array => {
  const bytes = new Uint8Array(length)
  let x = (seed * 2654435761) >>> 0 || 1
  for (let i = 0; i < length; i++) {
    x ^= x << 13; x >>>= 0
    x ^= x >>> 17
    x ^= x << 5; x >>>= 0
    bytes[i] = x & 0xff
  }
  return bytes
}

export const write = (writeId: number, length = 8 + (writeId % 5) * 3, seed = writeId): PendingWrite =>
  ({ writeId, update: bytesFor(seed, length) })

const putAll = async (store: OfflineStore, docName: string, writes: readonly PendingWrite[]): Promise<void> => {
  for (const w of writes) await store.put(docName, w)
}

/** A Uint8Array whose slice returns a view, as Node's Buffer does: a store must still copy. */
class ViewSlicing extends Uint8Array {
  override slice (start?: number, end?: number): Uint8Array<ArrayBuffer> { return this.subarray(start, end) }
}

export const offlineStoreChecks: readonly OfflineStoreCheck[] = [
  {
    name: 'loads nothing for a document never written',
    run: async fixture => {
      const store = await fixture.open()
      assertWrites(await store.load('never'), [], 'fresh store')
      await store.remove('never', 10)
      assertWrites(await store.load('never'), [], 'after removing from an unknown document')
    },
  },
  {
    name: 'loads writes by increasing write id, whatever order the puts ran in',
    run: async fixture => {
      const store = await fixture.open()
      await Promise.all([3, 1, 2].map(id => store.put('doc', write(id))))
      await store.put('doc', write(10))
      await store.put('doc', write(7))
      // Ids past 2^32 and up to 2^53 - 1 must keep their order too.
      await store.put('doc', write(2 ** 40))
      await store.put('doc', write(Number.MAX_SAFE_INTEGER))
      await store.put('doc', write(0))
      assertWrites(await store.load('doc'), [0, 1, 2, 3, 7, 10, 2 ** 40, Number.MAX_SAFE_INTEGER].map(id => write(id)), 'load')
    },
  },
  {
    name: 'keeps the bytes exactly: empty, every byte value, large',
    run: async fixture => {
      const store = await fixture.open()
      const every = Uint8Array.from({ length: 512 }, (_, i) => i % 256)
      const large = bytesFor(99, 300_000)
      const writes = [
        { writeId: 1, update: new Uint8Array(0) },
        { writeId: 2, update: every },
        { writeId: 3, update: large },
      ]
      await putAll(store, 'bytes', writes)
      assertWrites(await store.load('bytes'), writes, 'load')
    },
  },
  {
    name: 'copies the bytes of a put and of a load',
    run: async fixture => {
      const store = await fixture.open()
      // A view into the middle of a larger buffer: only the viewed bytes are the update.
      const backing = bytesFor(5, 64)
      const view = backing.subarray(8, 24)
      const expectedView = new Uint8Array(view)
      // Changed right after the call, before the put resolves.
      const reused = bytesFor(6, 16)
      const expectedReused = new Uint8Array(reused)
      const viewSlicing = new ViewSlicing(bytesFor(7, 16))
      const expectedViewSlicing = new Uint8Array(viewSlicing)
      const puts = [
        store.put('copy', { writeId: 1, update: view }),
        store.put('copy', { writeId: 2, update: reused }),
        store.put('copy', { writeId: 3, update: viewSlicing }),
      ]
      backing.fill(0xee)
      reused.fill(0xee)
      viewSlicing.fill(0xee)
      await Promise.all(puts)
      const expected = [
        { writeId: 1, update: expectedView },
        { writeId: 2, update: expectedReused },
        { writeId: 3, update: expectedViewSlicing },
      ]
      const loaded = await store.load('copy')
      assertWrites(loaded, expected, 'load after the caller changed its buffers')
      for (const w of loaded) w.update.fill(0xdd)
      assertWrites(await store.load('copy'), expected, 'load after the caller changed what it loaded')
    },
  },
  {
    name: 'keeps documents apart, including names that prefix one another',
    run: async fixture => {
      const store = await fixture.open()
      const names = ['a', 'ab', 'a/b', '', 'notes/☃ 42', 'x'.repeat(2000)]
      for (const [i, name] of names.entries()) await putAll(store, name, [write(1, 8, 100 + i), write(2, 8, 200 + i)])
      await store.remove('a', 2)
      assertWrites(await store.load('a'), [], "'a' after its remove")
      for (const [i, name] of names.entries()) {
        if (name === 'a') continue
        assertWrites(await store.load(name), [write(1, 8, 100 + i), write(2, 8, 200 + i)], `'${name.slice(0, 20)}'`)
      }
    },
  },
  {
    name: 'removes every write up to an id, and only those',
    run: async fixture => {
      const store = await fixture.open()
      const writes = [1, 2, 3, 4, 5, 6].map(id => write(id))
      await putAll(store, 'doc', writes)
      await store.remove('doc', 0)
      assertWrites(await store.load('doc'), writes, 'after remove(0)')
      await store.remove('doc', 3)
      assertWrites(await store.load('doc'), writes.slice(3), 'after remove(3)')
      await store.remove('doc', 3)
      assertWrites(await store.load('doc'), writes.slice(3), 'after remove(3) again')
      await store.remove('doc', 4.5)
      assertWrites(await store.load('doc'), writes.slice(4), 'after remove(4.5)')
      await store.remove('doc', Number.POSITIVE_INFINITY)
      assertWrites(await store.load('doc'), [], 'after remove(Infinity)')
    },
  },
  {
    name: 'takes more puts after a remove',
    run: async fixture => {
      const store = await fixture.open()
      await putAll(store, 'doc', [write(1), write(2), write(3)])
      await store.remove('doc', 3)
      await putAll(store, 'doc', [write(4), write(5)])
      assertWrites(await store.load('doc'), [write(4), write(5)], 'after remove(3) and two puts')
      await store.remove('doc', 4)
      assertWrites(await store.load('doc'), [write(5)], 'after remove(4)')
    },
  },
  {
    name: 'a write id put again replaces the earlier bytes',
    run: async fixture => {
      const store = await fixture.open()
      await putAll(store, 'doc', [write(1), write(2, 10, 20), write(3)])
      await store.put('doc', write(2, 30, 21))
      assertWrites(await store.load('doc'), [write(1), write(2, 30, 21), write(3)], 'load')
    },
  },
  {
    name: 'a load sees every put and remove called before it, even unawaited',
    run: async fixture => {
      const store = await fixture.open()
      const model = new Map<number, PendingWrite>()
      const calls: Promise<void>[] = []
      for (let id = 1; id <= 120; id++) {
        calls.push(store.put('burst', write(id)))
        model.set(id, write(id))
        if (id % 25 === 0) {
          calls.push(store.remove('burst', id - 10))
          for (const key of model.keys()) if (key <= id - 10) model.delete(key)
        }
      }
      const loaded = await store.load('burst')
      await Promise.all(calls)
      assertWrites(loaded, [...model.values()], 'load issued right after the calls')
    },
  },
  {
    name: 'rejects a bad write id or update, and keeps working',
    run: async fixture => {
      const store = await fixture.open()
      for (const writeId of [Number.NaN, -1, 1.5, Number.POSITIVE_INFINITY]) {
        await assertRejects(() => store.put('doc', { writeId, update: new Uint8Array(1) }), /writeId/, `put with writeId ${writeId}`)
      }
      await assertRejects(() => store.put('doc', { writeId: 1, update: 'text' as unknown as Uint8Array }), /Uint8Array/, 'put of a string')
      await assertRejects(() => store.remove('doc', Number.NaN), /upToWriteId/, 'remove up to NaN')
      await store.put('doc', write(1))
      assertWrites(await store.load('doc'), [write(1)], 'load after the rejections')
    },
  },
  {
    name: 'close waits for the puts before it, then every call rejects',
    run: async fixture => {
      const store = await fixture.open()
      const puts = [store.put('doc', write(1)), store.put('doc', write(2))]
      await store.close()
      await Promise.all(puts)
      await assertRejects(() => store.put('doc', write(3)), /closed/, 'put after close')
      await assertRejects(() => store.load('doc'), /closed/, 'load after close')
      await assertRejects(() => store.remove('doc', 1), /closed/, 'remove after close')
      await store.close()
      if (!fixture.persistent) return
      const reopened = await fixture.open()
      assertWrites(await reopened.load('doc'), [write(1), write(2)], 'after reopening')
    },
  },
  {
    name: 'keeps writes and removes across close and reopen',
    persistentOnly: true,
    run: async fixture => {
      let store = await fixture.open()
      await putAll(store, 'a', [1, 2, 3, 4].map(id => write(id)))
      await putAll(store, 'b', [1, 2].map(id => write(id, 40, 50 + id)))
      await store.remove('a', 2)
      await store.put('a', write(3, 12, 77))
      await store.close()

      store = await fixture.open()
      assertWrites(await store.load('a'), [write(3, 12, 77), write(4)], "'a' after the first reopen")
      assertWrites(await store.load('b'), [write(1, 40, 51), write(2, 40, 52)], "'b' after the first reopen")
      await store.remove('b', 1)
      await store.put('a', write(5))
      await store.close()

      store = await fixture.open()
      assertWrites(await store.load('a'), [write(3, 12, 77), write(4), write(5)], "'a' after the second reopen")
      assertWrites(await store.load('b'), [write(2, 40, 52)], "'b' after the second reopen")
      await store.remove('a', Number.POSITIVE_INFINITY)
      await store.close()

      store = await fixture.open()
      assertWrites(await store.load('a'), [], "'a' after removing everything and reopening")
    },
  },
]

/** The checks that apply to a store (the persistence ones only to persistent stores). */
export const checksFor = (persistent: boolean): readonly OfflineStoreCheck[] =>
  offlineStoreChecks.filter(check => persistent || check.persistentOnly !== true)

/** Runs one check on a fresh fixture and tears it down whatever happens. */
export const runCheck = async (check: OfflineStoreCheck, setup: () => Promise<OfflineStoreFixture>): Promise<void> => {
  const fixture = await setup()
  try {
    await check.run(fixture)
  } finally {
    await fixture.teardown()
  }
}
