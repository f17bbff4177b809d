import fs from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import { afterEach, beforeEach, describe, expect, it } from '@jest/globals'
import { WalSync } from '../src/wal-sync.js'

describe('WalSync', () => {
  let dir: string
  let wal: string
  const held: { fd: number, done: (err?: Error) => void }[] = []
  const gated = (fd: number): Promise<void> => new Promise((resolve, reject) => {
    held.push({ fd, done: err => err === undefined ? resolve() : reject(err) })
  })
  const order: string[] = []
  const track = (name: string, p: Promise<void>): Promise<void> =>
    p.then(() => { order.push(name) }, () => { order.push(`${name} failed`) })

  beforeEach(() => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'georelay-walsync-'))
    wal = path.join(dir, 'x.sqlite-wal')
    fs.writeFileSync(wal, 'frames')
    held.length = 0
    order.length = 0
  })
  afterEach(() => fs.rmSync(dir, { recursive: true, force: true }))

  it('coalesces every call made during a sync into the one sync after it', async () => {
    const sync = new WalSync(wal, gated)
    const a = track('a', sync.durable())
    // b and c come while a's sync runs: it started before their commits, so it does not cover them.
    const b = track('b', sync.durable())
    const c = track('c', sync.durable())
    expect(held.length).toBe(1)
    held.shift()?.done()
    await a
    expect(order).toEqual(['a'])
    // The next sync started when the first ended, once for both.
    await new Promise(setImmediate)
    expect(held.length).toBe(1)
    held.shift()?.done()
    await Promise.all([b, c])
    expect(order).toEqual(['a', 'b', 'c'])
    expect(sync.syncs).toBe(2)
    sync.close()
  })

  it('fails only the callers a failed sync covered; the next call syncs again', async () => {
    const sync = new WalSync(wal, gated)
    const a = track('a', sync.durable())
    const b = track('b', sync.durable())
    held.shift()?.done(new Error('EIO'))
    await a
    await new Promise(setImmediate)
    held.shift()?.done()
    await b
    expect(order).toEqual(['a failed', 'b'])
    sync.close()
  })

  it('syncs the WAL file itself, for real', async () => {
    const sync = new WalSync(wal)
    await sync.durable()
    await sync.durable()
    expect(sync.syncs).toBe(2)
    sync.close()
  })
})
