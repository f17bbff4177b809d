import { EventEmitter } from 'node:events'
import { describe, expect, it } from '@jest/globals'
import * as Y from 'yjs'
import { MemoryStore, decodeFrame } from '@georelay/core'
import { DocRegistry, DocSession, type SessionPlacement } from '../src/docs/index.js'
import { createRelayMetrics, silentLogger } from '../src/observability/index.js'
import type { Route } from '../src/placement/index.js'
import { ReplicationLog } from '../src/replication/index.js'

const edit = (doc: Y.Doc, text: string): Uint8Array => {
  const before = Y.encodeStateVector(doc)
  doc.getText('t').insert(doc.getText('t').length, text)
  return Y.encodeStateAsUpdate(doc, before)
}

const setup = async () => {
  const store = new MemoryStore()
  const log = await ReplicationLog.open('here', store)
  const registry = new DocRegistry({ log, metrics: createRelayMetrics('here'), logger: silentLogger, idleMs: 60_000 })
  return { store, log, registry }
}

/** A placement whose route the test switches, telling sessions as the real one does. */
const switchable = (initial: Route) => {
  let route = initial
  const roles = new EventEmitter()
  const placement: SessionPlacement = {
    route: () => route,
    urlOf: () => 'ws://elsewhere',
    onRoles: (_doc, listener) => { roles.on('roles', listener); return () => roles.off('roles', listener) },
  }
  return { placement, set (next: Route) { route = next; roles.emit('roles') } }
}

const transport = () => {
  const frames: Uint8Array[] = []
  const failures: unknown[] = []
  return {
    frames,
    failures,
    t: {
      send: (f: Uint8Array) => frames.push(f),
      fail: (e: unknown) => failures.push(e),
      redirect: () => {},
      refuseWrite: () => {},
      charge: () => {},
    },
  }
}

/** Resolves once `done()` holds, asking again on each turn of the event loop. */
const settles = (done: () => boolean): Promise<void> =>
  new Promise<void>(resolve => { const check = () => done() ? resolve() : setImmediate(check); check() })

describe('DocSession with an active-passive writer out of reach', () => {
  it('serves reads, holds writes unacknowledged, and stores them in order once this region may write', async () => {
    const { store, registry } = await setup()
    const { placement, set } = switchable({ kind: 'hold', region: 'primary' })
    const { frames, t } = transport()
    const session = new DocSession('billing/1', { registry, transport: t, placement })
    const doc = new Y.Doc()
    const acked: number[] = []
    session.write(edit(doc, 'a'), seq => acked.push(seq))
    session.write(edit(doc, 'b'), seq => acked.push(seq))
    // Reads go on: the session synced (the relay's step 1 went out).
    await settles(() => frames.length > 0)
    expect(decodeFrame(frames[0] as Uint8Array)[0]?.type).toBe('sync-step1')
    expect(acked).toEqual([])
    expect((await store.read('billing/1')).log).toEqual([])
    set({ kind: 'here' }) // this region became the writer
    await settles(() => acked.length === 2)
    expect(acked[0]).toBeLessThan(acked[1] as number)
    const replica = new Y.Doc()
    for (const entry of (await store.read('billing/1')).log) Y.applyUpdate(replica, entry.update)
    expect(replica.getText('t').toString()).toBe('ab')
    session.close()
  })

  it('refuses with 1013 once more than 16 MiB wait for a writer', async () => {
    const { registry } = await setup()
    const { placement } = switchable({ kind: 'hold', region: 'primary' })
    const { failures, t } = transport()
    const session = new DocSession('billing/2', { registry, transport: t, placement })
    const chunk = new Uint8Array(1024 * 1024)
    for (let i = 0; i < 17; i++) session.write(chunk, () => {})
    await settles(() => failures.length > 0)
    expect(failures[0]).toMatchObject({ code: 'ERR_NO_WRITER', closeCode: 1013 })
    session.close()
  })
})
