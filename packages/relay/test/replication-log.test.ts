import { describe, expect, it } from '@jest/globals'
import { MemoryStore, type Origin, StoreError } from '@georelay/core'
import { ReplicationLog } from '../src/replication/index.js'

const update = new Uint8Array([0, 0])

/** A store whose replicated appends fail while `failing` is set. */
class FailingStore extends MemoryStore {
  failing = false
  override append (docName: string, data: Uint8Array, origin?: Origin): Promise<number> {
    if (origin !== undefined && this.failing) return Promise.reject(new StoreError('ERR_STORE_IO', 'disk error'))
    return super.append(docName, data, origin)
  }
}

describe('ReplicationLog', () => {
  it('skips entries of an origin it already holds, by the origin\'s numbers', async () => {
    const log = await ReplicationLog.open('a', new MemoryStore())
    expect(log.appendReplicated('d', update, 'b', 1)).not.toBeNull()
    expect(log.appendReplicated('d', update, 'b', 1)).toBeNull()
    expect(log.appendReplicated('d', update, 'a', 7)).toBeNull() // its own entries come back: never stored twice
    await log.recordHave('b', 5)
    expect(log.appendReplicated('d', update, 'b', 4)).toBeNull()
    expect(log.marks()).toEqual({ b: 5, a: 0 })
  })

  it('after a failed append of an origin takes nothing more of it until its link starts over, so no hole is left behind the marks', async () => {
    const store = new FailingStore()
    const log = await ReplicationLog.open('a', store)
    await log.appendReplicated('d', update, 'b', 1)
    await log.recordHave('b', 1)
    store.failing = true
    await expect(log.appendReplicated('d', update, 'b', 2)).rejects.toThrow(/disk error/)
    store.failing = false
    // Entry 3 arriving behind the failed 2 must not be stored, nor may the mark pass 2.
    await expect(log.appendReplicated('d', update, 'b', 3)).rejects.toThrow(/an earlier append of b's entries failed/)
    await log.recordHave('b', 3)
    expect(log.marks().b).toBe(1)
    log.startOver()
    await expect(log.appendReplicated('d', update, 'b', 2)).resolves.toBeGreaterThan(0)
    await log.recordHave('b', 2)
    expect(log.marks().b).toBe(2)
  })

  it('counts and dates local writes a peer has not acknowledged, and remembers the last local number across a restart', async () => {
    const store = new MemoryStore()
    const log = await ReplicationLog.open('a', store)
    const first = await log.appendLocal('d', update)
    const second = await log.appendLocal('d', update)
    expect(log.pendingCount(first)).toBe(1)
    expect(log.pendingSince(second)).toBeUndefined()
    expect((await ReplicationLog.open('a', store)).lastLocalSeq).toBe(second)
  })
})
