import { EventEmitter } from 'node:events'
import type { Duplex } from 'node:stream'
import { describe, expect, it } from '@jest/globals'
import type { WebSocket } from 'ws'
import { ReceiveBudget, SMALL_BYTES } from '../src/limits/receive-budget.js'

/** Just what the budget uses of a ws socket and its stream: events, pause and resume. */
class FakeSocket extends EventEmitter {
  readonly OPEN = 1
  readyState = 1
  paused = false
  readonly stream = new EventEmitter()
  pause (): void { this.paused = true }
  resume (): void { this.paused = false }
  close (): void {}
  terminate (): void {}
  /** `bytes` arrive on the stream. */
  data (bytes: number): void { this.stream.emit('data', Buffer.alloc(bytes)) }
  /** A whole message came in. */
  done (): void { this.emit('message', Buffer.alloc(0), true) }
}

const tracked = (budget: ReceiveBudget): FakeSocket => {
  const socket = new FakeSocket()
  budget.track(socket as unknown as WebSocket, socket.stream as unknown as Duplex)
  return socket
}

describe('ReceiveBudget', () => {
  it('never holds back small messages', () => {
    const budget = new ReceiveBudget(1024)
    const sockets = [tracked(budget), tracked(budget), tracked(budget)]
    for (const s of sockets) s.data(SMALL_BYTES)
    expect(sockets.map(s => s.paused)).toEqual([false, false, false])
    expect(budget.stats).toEqual({ drawn: 0, waiting: 0 })
  })

  it('stops reading sockets that draw past the pool, oldest first through, and wakes them as messages complete', () => {
    const MiB = 1024 * 1024
    const budget = new ReceiveBudget(2 * MiB)
    const [a, b, c] = [tracked(budget), tracked(budget), tracked(budget)] as [FakeSocket, FakeSocket, FakeSocket]
    a.data(SMALL_BYTES + MiB)
    b.data(SMALL_BYTES + MiB)
    expect(budget.stats.drawn).toBe(2 * MiB)
    c.data(SMALL_BYTES + 1)
    // The pool is spent: c waits; a (the first large message) always goes on.
    expect([a.paused, b.paused, c.paused]).toEqual([false, false, true])
    a.data(MiB)
    expect(a.paused).toBe(false)
    b.data(1)
    expect(b.paused).toBe(true)
    expect(budget.stats.waiting).toBe(2)
    a.done()
    // a's 2 MiB went back: b and c read on.
    expect([b.paused, c.paused]).toEqual([false, false])
    expect(budget.stats).toEqual({ drawn: MiB + 1 + 1, waiting: 0 })
    b.done()
    c.emit('close')
    expect(budget.stats).toEqual({ drawn: 0, waiting: 0 })
  })

  it('a waiting socket that becomes the oldest large message is read again, so the pool cannot deadlock', () => {
    const budget = new ReceiveBudget(1024 * 1024)
    const [a, b] = [tracked(budget), tracked(budget)] as [FakeSocket, FakeSocket]
    a.data(SMALL_BYTES + 1024 * 1024)
    b.data(SMALL_BYTES + 10)
    expect(b.paused).toBe(true)
    a.emit('close')
    expect(b.paused).toBe(false)
  })
})
