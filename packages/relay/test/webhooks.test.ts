/**
 * Webhooks against a real receiver on loopback: one signed event per burst of writes, fired by
 * the region that took the writes; a receiver that is down for a while loses nothing and gets
 * each document's bursts coalesced; erasures are told too.
 */
import crypto from 'node:crypto'
import { EventEmitter } from 'node:events'
import http from 'node:http'
import type { AddressInfo } from 'node:net'
import { afterEach, describe, expect, it } from '@jest/globals'
import type { WebsocketProvider } from 'y-websocket'
import { TestCluster, connectProvider, destroyProvider, every, on, waitSynced, waitUntil } from '@georelay/testkit'

const SECRET = 'a-webhook-secret-of-at-least-32-bytes!'

interface Delivery {
  event: string
  doc: string
  region: string
  seq: number
  at: number
  status: number
  signature: string
  body: string
}

/** A webhook receiver that answers 204, or 503 while `down`. */
class Receiver extends EventEmitter {
  readonly deliveries: Delivery[] = []
  down = false
  private readonly server = http.createServer((req, res) => {
    const chunks: Buffer[] = []
    req.on('data', chunk => chunks.push(chunk as Buffer))
    req.on('end', () => {
      const body = Buffer.concat(chunks).toString()
      const status = this.down ? 503 : 204
      this.deliveries.push({ ...JSON.parse(body) as Omit<Delivery, 'status' | 'signature' | 'body'>, status, signature: String(req.headers['x-georelay-signature']), body })
      res.writeHead(status).end()
      this.emit('delivery')
    })
  })

  async start (): Promise<string> {
    await new Promise<void>(resolve => this.server.listen(0, '127.0.0.1', resolve))
    return `http://127.0.0.1:${(this.server.address() as AddressInfo).port}/hooks`
  }

  accepted (doc: string, event = 'change'): Delivery[] {
    return this.deliveries.filter(d => d.doc === doc && d.event === event && d.status === 204)
  }

  close (): Promise<void> {
    return new Promise(resolve => this.server.close(() => resolve()))
  }
}

const lastSeq = async (cluster: TestCluster, region: string, doc: string): Promise<number> => {
  const { log, snapshotSeq } = await cluster.store(region).read(doc)
  return Math.max(snapshotSeq, ...log.map(e => e.seq))
}

describe('webhooks', () => {
  let cluster: TestCluster
  let receiver: Receiver
  const providers: WebsocketProvider[] = []

  const start = async (debounceMs: number, maxWaitMs: number): Promise<void> => {
    receiver = new Receiver()
    const url = await receiver.start()
    cluster = await TestCluster.start({
      regions: ['eu-west', 'us-east'],
      delayMs: () => 10,
      config: { webhooks: [{ url, secret: SECRET, debounceMs, maxWaitMs }] },
    })
  }
  const writer = async (doc: string): Promise<WebsocketProvider> => {
    const provider = connectProvider(cluster.url('eu-west'), doc)
    providers.push(provider)
    await waitSynced(provider)
    return provider
  }

  afterEach(async () => {
    for (const provider of providers.splice(0)) destroyProvider(provider)
    await cluster?.close()
    await receiver?.close()
  })

  it('fires one signed event per burst, from the region that took the writes, and a long burst by maxWaitMs', async () => {
    await start(150, 600)
    const a = await writer('hooks/a')
    for (let i = 0; i < 10; i++) a.doc.getText('t').insert(0, `${i}`)
    await waitUntil([on(receiver, 'delivery')], () => receiver.accepted('hooks/a').length > 0, { what: 'the burst\'s event' })
    // A later burst elsewhere: by the time its event came, a second one for hooks/a would have too.
    const marker = await writer('hooks/marker')
    marker.doc.getText('t').insert(0, 'x')
    await waitUntil([on(receiver, 'delivery')], () => receiver.accepted('hooks/marker').length > 0, { what: 'the marker\'s event' })
    const [event] = receiver.accepted('hooks/a')
    expect(receiver.accepted('hooks/a')).toHaveLength(1)
    expect(event).toMatchObject({ event: 'change', doc: 'hooks/a', region: 'eu-west', seq: await lastSeq(cluster, 'eu-west', 'hooks/a') })
    // us-east holds the replicated writes, and tells nobody of them.
    expect(receiver.deliveries.filter(d => d.region === 'us-east')).toEqual([])
    const expected = `sha256=${crypto.createHmac('sha256', SECRET).update(event?.body ?? '').digest('hex')}`
    expect(event?.signature).toBe(expected)

    // Writes every 50 ms for longer than maxWaitMs: an event arrives while they still go on.
    const long = await writer('hooks/long')
    let writing = true
    let n = 0
    const typing = setInterval(() => { long.doc.getText('t').insert(0, `${n++}`) }, 50)
    try {
      await waitUntil([on(receiver, 'delivery')], () => receiver.accepted('hooks/long').length > 0, { what: 'an event within maxWaitMs' })
      expect(writing).toBe(true)
    } finally {
      clearInterval(typing)
      writing = false
    }
    const final = await lastSeq(cluster, 'eu-west', 'hooks/long')
    await waitUntil([on(receiver, 'delivery')], () => receiver.accepted('hooks/long').some(d => d.seq === final), { what: 'the event of the burst\'s end' })
  })

  it('retries while the receiver is down, coalesces each document\'s bursts, loses none, and tells of erasures', async () => {
    await start(100, 1000)
    receiver.down = true
    const d1 = await writer('hooks/d1')
    const d2 = await writer('hooks/d2')
    d1.doc.getText('t').insert(0, 'first burst ')
    d2.doc.getText('t').insert(0, 'only burst ')
    await waitUntil([on(receiver, 'delivery')], () => receiver.deliveries.filter(d => d.doc === 'hooks/d1').length >= 2, { what: 'a retry of d1\'s event' })
    // A second burst of d1 while its first event waits: one event will tell of both.
    d1.doc.getText('t').insert(0, 'second burst ')
    const metricsOf = async (): Promise<string> => (await fetch(`${cluster.url('eu-west').replace(/^ws/, 'http')}/metrics`)).text()
    const coalesced = /georelay_webhook_coalesced_total\{webhook="0",region="eu-west"\} [1-9]/
    await waitUntil([every(50)], async () => coalesced.test(await metricsOf()), { what: 'd1\'s newer event to replace the older' })
    const d1Seq = await lastSeq(cluster, 'eu-west', 'hooks/d1')
    receiver.down = false
    await waitUntil([on(receiver, 'delivery')], () => receiver.accepted('hooks/d1').length > 0 && receiver.accepted('hooks/d2').length > 0, { what: 'both documents\' events once the receiver is back', timeoutMs: 40_000 })
    expect(receiver.accepted('hooks/d1').map(d => d.seq)).toEqual([d1Seq])
    expect(receiver.accepted('hooks/d2').map(d => d.seq)).toEqual([await lastSeq(cluster, 'eu-west', 'hooks/d2')])
    const metrics = await metricsOf()
    expect(metrics).toMatch(/georelay_webhook_deliveries_total\{webhook="0",result="failed",region="eu-west"\} [1-9]/)

    const res = await fetch(`${cluster.url('eu-west').replace(/^ws/, 'http')}/v1/docs/hooks%2Fd2`, { method: 'DELETE' })
    expect([200, 202]).toContain(res.status)
    await waitUntil([on(receiver, 'delivery')], () => receiver.accepted('hooks/d2', 'delete').length > 0, { what: 'the delete event' })
    expect(receiver.accepted('hooks/d2', 'delete')).toEqual([expect.objectContaining({ region: 'eu-west', seq: 0 })])
  }, 60_000)
})
