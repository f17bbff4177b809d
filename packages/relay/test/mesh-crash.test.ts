import { afterEach, describe, expect, it } from '@jest/globals'
import type { WebsocketProvider } from 'y-websocket'
import {
  TestCluster, compareReplicas, connectProvider, destroyProvider, on, setFullCheck, waitSynced, waitUntil,
} from '@georelay/testkit'

const delayMs = (): number => 30

describe('a relay killed with -9 during traffic', () => {
  let cluster: TestCluster
  const providers: WebsocketProvider[] = []
  const timers: NodeJS.Timeout[] = []
  const connect = (region: string): WebsocketProvider => {
    const provider = connectProvider(cluster.url(region), 'crash/doc')
    providers.push(provider)
    return provider
  }
  /** Load generation, not synchronisation: a writer pushing unique elements every few ms. */
  const write = (provider: WebsocketProvider, prefix: string, written: string[]): void => {
    let n = 0
    timers.push(setInterval(() => {
      const element = `${prefix}-${n++}`
      provider.doc.getArray<string>('set').push([element])
      written.push(element)
    }, 4))
  }
  const stopWriting = (): void => { for (const timer of timers.splice(0)) clearInterval(timer) }

  afterEach(async () => {
    stopWriting()
    for (const provider of providers.splice(0)) destroyProvider(provider)
    await cluster?.close()
  })

  it('catches up from its peers after restart, and they keep everything it had acknowledged', async () => {
    cluster = await TestCluster.start({ regions: ['a', 'b', 'c'], delayMs, mode: 'process' })
    const [a1, b1, c1] = [connect('a'), connect('b'), connect('c')] as [WebsocketProvider, WebsocketProvider, WebsocketProvider]
    await Promise.all([a1, b1, c1].map(p => waitSynced(p)))
    const fromA: string[] = []
    const fromB: string[] = []
    const fromC: string[] = []
    write(a1, 'a', fromA)
    write(b1, 'b', fromB)
    write(c1, 'c', fromC)
    // Let traffic flow until a has seen a good part of b's writes.
    await waitUntil([on(a1.doc, 'update')], () => a1.doc.getArray<string>('set').toArray().filter(e => e.startsWith('b-')).length >= 50, { what: 'a to see 50 of b\'s writes' })
    // b's writer goes away with the relay, so only what b's relay had made durable can survive.
    destroyProvider(b1)
    providers.splice(providers.indexOf(b1), 1)
    await cluster.killRegion('b')
    const acknowledgedFromB = a1.doc.getArray<string>('set').toArray().filter(e => e.startsWith('b-'))
    // a and c keep writing while b is down.
    const cSeenAtKill = a1.doc.getArray<string>('set').toArray().filter(e => e.startsWith('c-')).length
    await waitUntil([on(a1.doc, 'update')], () => a1.doc.getArray<string>('set').toArray().filter(e => e.startsWith('c-')).length >= cSeenAtKill + 100, { what: 'more traffic while b is down' })
    await cluster.startRegion('b')
    const b2 = connect('b')
    await waitSynced(b2)
    stopWriting()
    const acknowledged = [...fromA, ...fromC, ...acknowledgedFromB]
    const holdsAll = (p: WebsocketProvider) => (): boolean => {
      const have = new Set(p.doc.getArray<string>('set').toArray())
      return acknowledged.every(e => have.has(e))
    }
    await Promise.all([a1, b2, c1].map(p => waitUntil([on(p.doc, 'update')], holdsAll(p), { what: 'every replica to hold every acknowledged element', timeoutMs: 20_000 })))
    const report = setFullCheck(
      acknowledged,
      { a: a1.doc, b: b2.doc, c: c1.doc },
      { written: [...fromA, ...fromB, ...fromC] },
    )
    expect(report).toMatchObject({ ok: true, lost: {}, duplicated: {}, unexpected: {} })
    expect(acknowledgedFromB.length).toBeGreaterThanOrEqual(50)
    // b's writes that no other region had seen may or may not have been durable; either way
    // every replica agrees on them.
    await Promise.all([a1, c1].map(p => waitUntil([on(p.doc, 'update')], () => compareReplicas({ x: p.doc, b: b2.doc }).identical, { what: 'replicas to agree' })))
  }, 60_000)
})
