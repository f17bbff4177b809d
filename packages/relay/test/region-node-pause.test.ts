/**
 * A node of a region paused with SIGSTOP (a long GC, a frozen VM) and resumed: relay processes
 * on one real PostgreSQL schema and one real redis-server. Nothing written on either side is
 * lost, and both nodes' clients end with the same document.
 */
import { afterEach, describe, expect, it } from '@jest/globals'
import * as Y from 'yjs'
import type { WebsocketProvider } from 'y-websocket'
import {
  type RelayProcess, connectProvider, destroyProvider, on, startRedis, startRegionNodeProcess, testSchema,
  waitSynced, waitUntil,
} from '@georelay/testkit'

const items = (doc: Y.Doc): string[] => doc.getArray<string>('set').toArray()
const holdsAll = (doc: Y.Doc, expected: string[]): boolean => {
  const seen = items(doc)
  return expected.every(name => seen.filter(s => s === name).length === 1) && seen.length === expected.length
}

describe('a node of a region paused with SIGSTOP', () => {
  const cleanup: (() => unknown)[] = []
  afterEach(async () => {
    for (const step of cleanup.splice(0).reverse()) await step()
  })

  it('catches up after SIGCONT with everything written meanwhile, and its own queued writes reach the other node', async () => {
    const schema = await testSchema('paused')
    cleanup.push(() => schema.drop())
    const redis = await startRedis()
    cleanup.push(() => redis.destroy())
    const node = async (name: string): Promise<RelayProcess> => {
      const relay = await startRegionNodeProcess({ region: 'eu-west', node: name, postgres: schema, redisUrl: redis.url })
      cleanup.push(async () => {
        if (relay.child.signalCode === null && relay.child.exitCode === null) relay.child.kill('SIGCONT')
        await relay.stop()
      })
      return relay
    }
    const a1 = await node('a1')
    const a2 = await node('a2')
    const provider = async (relay: RelayProcess): Promise<WebsocketProvider> => {
      const p = connectProvider(relay.url, 'nodes/paused')
      cleanup.push(() => destroyProvider(p))
      await waitSynced(p)
      return p
    }
    const [on1, on2] = [await provider(a1), await provider(a2)]
    const expected: string[] = []
    const write = (p: WebsocketProvider, name: string): void => {
      p.doc.getArray<string>('set').push([name])
      expected.push(name)
    }
    write(on1, 'before')
    await waitUntil([on(on2.doc, 'update')], () => holdsAll(on2.doc, expected), { what: 'the first write at a2\'s client' })

    expect(a2.child.kill('SIGSTOP')).toBe(true)
    for (let i = 0; i < 20; i++) write(on1, `a1-while-paused-${i}`)
    // Written at a2's client while a2 is frozen: its socket holds them until a2 runs again.
    for (let i = 0; i < 5; i++) write(on2, `a2-while-paused-${i}`)
    // a1 has its own writes durably before a2 comes back: a fresh reader on a1 sees them.
    const witness = await provider(a1)
    await waitUntil([on(witness.doc, 'update')], () => expected.filter(n => n.startsWith('a1-') || n === 'before').every(n => items(witness.doc).includes(n)),
      { what: 'a1 to hold its writes while a2 is paused' })
    expect(items(witness.doc).some(n => n.startsWith('a2-'))).toBe(false)

    expect(a2.child.kill('SIGCONT')).toBe(true)
    await waitUntil([on(on1.doc, 'update'), on(on2.doc, 'update')], () => holdsAll(on1.doc, expected) && holdsAll(on2.doc, expected),
      { what: 'both nodes\' clients to hold every write exactly once', timeoutMs: 15_000 })
    // And the shared store has it all: a late reader on either node loads the same.
    const late = await provider(a1)
    expect(items(late.doc).sort()).toEqual([...expected].sort())
  })
})
