import { afterEach, describe, expect, it } from '@jest/globals'
import type { EventEmitter } from 'node:events'
import net from 'node:net'
import { performance } from 'node:perf_hooks'
import { WebSocket, WebSocketServer } from 'ws'
import { type Subscribe, nextEvent, on, waitUntil } from '@georelay/testkit'
import { WanSimulator, type WanSimulatorOptions } from '../src/wan-simulator.js'

/**
 * `on` for node:net objects: Node's typed EventEmitter signatures don't fit the structural
 * parameter type of the testkit's `on`, so subscribe directly.
 */
const onEvent = (emitter: EventEmitter, event: string): Subscribe => notify => {
  emitter.on(event, notify)
  return () => { emitter.off(event, notify) }
}

/** Everything a socket received, and whether it saw its FIN / its close. */
class Inbox {
  private chunks: Buffer[] = []
  length = 0
  ended = false
  closed = false

  constructor (readonly socket: net.Socket) {
    socket.on('data', (chunk: Buffer) => {
      this.chunks.push(chunk)
      this.length += chunk.length
    })
    socket.on('end', () => { this.ended = true })
    socket.on('close', () => { this.closed = true })
    socket.on('error', () => {})
  }

  bytes (): Buffer {
    return Buffer.concat(this.chunks)
  }

  text (): string {
    return this.bytes().toString()
  }

  /** Resolves once at least `bytes` arrived in total. */
  async received (bytes: number, what: string): Promise<string> {
    await waitUntil([onEvent(this.socket, 'data')], () => this.length >= bytes, { what, timeoutMs: 5_000 })
    return this.text()
  }

  async closing (what: string): Promise<void> {
    await waitUntil([onEvent(this.socket, 'close')], () => this.closed, { what, timeoutMs: 5_000 })
  }
}

// Everything a test opens, so that afterEach can close it even when the test failed half-way.
let sims: WanSimulator[] = []
let servers: net.Server[] = []
let sockets: net.Socket[] = []

afterEach(async () => {
  for (const socket of sockets) socket.destroy()
  await Promise.all(sims.map(sim => sim.close()))
  await Promise.all(servers.map(server => new Promise(resolve => server.close(resolve))))
  sims = []
  servers = []
  sockets = []
})

const simulator = (options: WanSimulatorOptions = {}): WanSimulator => {
  const sim = new WanSimulator(options)
  sims.push(sim)
  return sim
}

/** A TCP server on loopback that hands each accepted socket, already wrapped, to the test. */
const startServer = async (
  onInbox: (inbox: Inbox) => void = () => {},
  { allowHalfOpen = false } = {},
): Promise<{ port: number, inboxes: Inbox[], accepted: net.Server }> => {
  const inboxes: Inbox[] = []
  const accepted = net.createServer({ allowHalfOpen }, socket => {
    sockets.push(socket)
    const inbox = new Inbox(socket)
    inboxes.push(inbox)
    onInbox(inbox)
  })
  servers.push(accepted)
  await new Promise<void>(resolve => accepted.listen(0, '127.0.0.1', resolve))
  return { port: (accepted.address() as net.AddressInfo).port, inboxes, accepted }
}

const startEcho = async (): Promise<{ port: number, inboxes: Inbox[], accepted: net.Server }> =>
  startServer(inbox => inbox.socket.on('data', (chunk: Buffer) => inbox.socket.write(chunk)))

const connect = async (port: number): Promise<Inbox> => {
  const socket = net.connect({ host: '127.0.0.1', port })
  sockets.push(socket)
  const inbox = new Inbox(socket)
  await nextEvent(socket, 'connect', { what: `a connection to port ${port}` })
  return inbox
}

/** The server side of the n-th connection through a proxy (they connect asynchronously). */
const serverSide = async ({ inboxes, accepted }: { inboxes: Inbox[], accepted: net.Server }, n = 0): Promise<Inbox> =>
  waitUntil([onEvent(accepted, 'connection')], () => inboxes[n], { what: `server-side connection #${n}`, timeoutMs: 5_000 })

const numbered = (count: number, from = 0): string[] => Array.from({ length: count }, (_, i) => `<${from + i}>`)

/** One write per event-loop turn, so that the proxy reads (and schedules) most of them as separate chunks. */
const writeSpread = async (socket: net.Socket, parts: string[]): Promise<void> => {
  for (const part of parts) {
    socket.write(part)
    await new Promise(resolve => setImmediate(resolve))
  }
}

const heldBytes = async (sim: WanSimulator, from: string, to: string, bytes: number): Promise<void> => {
  await waitUntil([on(sim, 'send')], () => sim.stats(from, to).bytesHeld >= bytes, { what: `${bytes} bytes held ${from} → ${to}`, timeoutMs: 5_000 })
}

describe('WanSimulator', () => {
  it('delays each direction: an echo round trip takes at least both one-way delays', async () => {
    const sim = simulator({ defaultDelayMs: 40 })
    const target = await startEcho()
    const { port } = target
    const link = await sim.link('eu', 'us', { port })
    expect(link.url).toBe(`ws://127.0.0.1:${link.port}`)
    const client = await connect(link.port)

    let start = performance.now()
    client.socket.write('hello')
    const server = await serverSide(target)
    await server.received(5, 'hello at the server')
    const oneWay = performance.now() - start
    await client.received(5, 'the echo')
    expect(performance.now() - start).toBeGreaterThanOrEqual(80)
    expect(oneWay).toBeGreaterThanOrEqual(40)

    // Asymmetric: eu → us 70 ms, us → eu still 40 ms.
    sim.setConditions('eu', 'us', { delayMs: 70 }, { oneWay: true })
    expect(sim.conditions('eu', 'us').delayMs).toBe(70)
    expect(sim.conditions('us', 'eu').delayMs).toBe(40)
    start = performance.now()
    client.socket.write('again')
    await client.received(10, 'the second echo')
    expect(performance.now() - start).toBeGreaterThanOrEqual(110)
    expect(client.text()).toBe('helloagain')
  })

  it('keeps 1000 chunks in order and byte-exact under jitter, also when the delay drops mid-stream', async () => {
    const sim = simulator({ seed: 7 })
    sim.setConditions('eu', 'us', { delayMs: 5, jitterMs: 40 })
    const { port } = await startEcho()
    const client = await connect((await sim.link('eu', 'us', { port })).port)

    const parts = numbered(1000)
    await writeSpread(client.socket, parts.slice(0, 500))
    // Later bytes with a shorter delay still queue behind earlier ones, as in one TCP stream.
    sim.setConditions('eu', 'us', { delayMs: 0, jitterMs: 0 })
    await writeSpread(client.socket, parts.slice(500))
    const expected = parts.join('')
    expect(await client.received(expected.length, 'all 1000 chunks echoed')).toBe(expected)
    expect(sim.stats('eu', 'us')).toMatchObject({ bytesSent: expected.length, bytesDelivered: expected.length, bytesInFlight: 0 })
    // The jitter was really exercised chunk by chunk, not on one big coalesced read.
    expect(sim.stats('eu', 'us').chunksDelivered).toBeGreaterThan(100)
  })

  it('serves many concurrent connections through one proxy', async () => {
    const sim = simulator({ defaultDelayMs: 10 })
    sim.setConditions('eu', 'us', { jitterMs: 10 })
    const { port } = await startEcho()
    const link = await sim.link('eu', 'us', { port })
    const clients = await Promise.all(Array.from({ length: 40 }, async () => connect(link.port)))
    await waitUntil([on(sim, 'connection')], () => sim.openConnections === 40, { what: '40 proxied connections' })
    const messages = clients.map((_, i) => numbered(50, i * 1000).join(''))
    await Promise.all(clients.map(async (client, i) => {
      const message = messages[i] as string
      client.socket.write(message)
      expect(await client.received(message.length, `echo on connection ${i}`)).toBe(message)
    }))
  })

  it('a one-way cut holds a → b on both links of the pair while b → a still flows', async () => {
    const sim = simulator({ defaultDelayMs: 5 })
    const inEu = await startServer()
    const inUs = await startServer()
    // Connections opened by eu towards us, and by us towards eu: eu → us is forward on the first,
    // reverse on the second.
    const euClient = await connect((await sim.link('eu', 'us', { port: inUs.port })).port)
    const usClient = await connect((await sim.link('us', 'eu', { port: inEu.port })).port)
    const usServer = await serverSide(inUs)
    const euServer = await serverSide(inEu)

    sim.cut('eu', 'us', { oneWay: true })
    expect(sim.stats('eu', 'us').cut).toBe(true)
    expect(sim.stats('us', 'eu').cut).toBe(false)
    euClient.socket.write('eu-forward')
    euServer.socket.write('eu-reverse')
    await heldBytes(sim, 'eu', 'us', 'eu-forward'.length + 'eu-reverse'.length)

    usServer.socket.write('us-reverse')
    usClient.socket.write('us-forward')
    expect(await euClient.received(10, 'us → eu on the eu-opened link')).toBe('us-reverse')
    expect(await euServer.received(10, 'us → eu on the us-opened link')).toBe('us-forward')
    // A round trip in the open direction has passed since the held bytes were sent: none got through.
    expect(usServer.length).toBe(0)
    expect(usClient.length).toBe(0)
    expect(sim.stats('eu', 'us')).toMatchObject({ bytesHeld: 20, bytesDelivered: 0 })

    sim.heal('eu', 'us', { oneWay: true })
    expect(await usServer.received(10, 'held eu → us bytes after heal')).toBe('eu-forward')
    expect(await usClient.received(10, 'held eu → us reverse bytes after heal')).toBe('eu-reverse')
  })

  it('heal releases held bytes in order, ahead of newer ones, after the link delay', async () => {
    const sim = simulator({ defaultDelayMs: 30 })
    const target = await startServer()
    const { port } = target
    const client = await connect((await sim.link('eu', 'us', { port })).port)
    const server = await serverSide(target)

    sim.cut('eu', 'us')
    const held = numbered(200)
    await writeSpread(client.socket, held)
    await heldBytes(sim, 'eu', 'us', held.join('').length)
    expect(server.length).toBe(0)

    const healedAt = performance.now()
    sim.heal('eu', 'us')
    client.socket.write('<after>')
    const expected = held.join('') + '<after>'
    expect(await server.received(expected.length, 'held bytes then the new ones')).toBe(expected)
    expect(performance.now() - healedAt).toBeGreaterThanOrEqual(30)
    expect(sim.stats('eu', 'us')).toMatchObject({ bytesHeld: 0, bytesInFlight: 0, bytesDelivered: expected.length })
  })

  it('a cut both ways holds both directions, even on connections opened during the cut', async () => {
    const sim = simulator()
    const target = await startServer()
    const { port } = target
    const link = await sim.link('eu', 'us', { port })
    sim.cut('eu', 'us')
    // Like a partition, not a refusal: TCP still connects, bytes don't pass.
    const client = await connect(link.port)
    const server = await serverSide(target)
    client.socket.write('ping')
    server.socket.write('pong')
    await heldBytes(sim, 'eu', 'us', 4)
    await heldBytes(sim, 'us', 'eu', 4)
    expect(client.length + server.length).toBe(0)

    sim.heal('eu', 'us')
    expect(await server.received(4, 'ping after heal')).toBe('ping')
    expect(await client.received(4, 'pong after heal')).toBe('pong')
  })

  it('partition(region) cuts all its links, including ones made later; healAll undoes it', async () => {
    const sim = simulator({ defaultDelayMs: 2 })
    const { port } = await startEcho()
    const euUs = await connect((await sim.link('eu', 'us', { port })).port)
    const apEu = await connect((await sim.link('ap', 'eu', { port })).port)
    const usAp = await connect((await sim.link('us', 'ap', { port })).port)

    sim.partition('eu')
    const euAp = await connect((await sim.link('eu', 'ap', { port })).port)
    for (const inbox of [euUs, apEu, usAp, euAp]) inbox.socket.write('x')
    // us ↔ ap is untouched: its echo comes back while everything through eu is held.
    expect(await usAp.received(1, 'echo between us and ap')).toBe('x')
    await heldBytes(sim, 'eu', 'us', 1)
    await heldBytes(sim, 'ap', 'eu', 1)
    await heldBytes(sim, 'eu', 'ap', 1)
    expect(euUs.length + apEu.length + euAp.length).toBe(0)
    expect(sim.stats().filter(s => s.cut).map(s => `${s.from}>${s.to}`).sort()).toEqual(['ap>eu', 'eu>ap', 'eu>us', 'us>eu'])

    sim.healAll()
    for (const inbox of [euUs, apEu, euAp]) expect(await inbox.received(1, 'echo after healAll')).toBe('x')
    expect(sim.stats().some(s => s.cut)).toBe(false)
  })

  it('healRegion heals one partitioned region but not a pair with another partitioned one', () => {
    const sim = simulator()
    sim.partition('eu')
    sim.partition('us')
    sim.cut('ap', 'sa')
    sim.healRegion('eu')
    expect(sim.stats('eu', 'ap').cut).toBe(false)
    expect(sim.stats('eu', 'us').cut).toBe(true)
    expect(sim.stats('ap', 'us').cut).toBe(true)
    expect(sim.stats('ap', 'sa').cut).toBe(true)
  })

  it('loss stalls chunks but never drops or reorders a byte', async () => {
    const sim = simulator({ seed: 42 })
    sim.setConditions('eu', 'us', { delayMs: 1, loss: { probability: 0.2, stallMs: 25 } }, { oneWay: true })
    const { port } = await startEcho()
    const client = await connect((await sim.link('eu', 'us', { port })).port)
    const parts = numbered(300)
    await writeSpread(client.socket, parts)
    const expected = parts.join('')
    expect(await client.received(expected.length, 'every byte echoed despite loss')).toBe(expected)
    const stats = sim.stats('eu', 'us')
    expect(stats.chunksStalled).toBeGreaterThan(0)
    expect(stats).toMatchObject({ bytesDelivered: expected.length, bytesDropped: 0 })
    // The reverse direction has its own conditions: no loss there.
    expect(sim.stats('us', 'eu').chunksStalled).toBe(0)

    sim.setConditions('eu', 'us', { loss: undefined })
    expect(sim.conditions('eu', 'us')).toEqual({ delayMs: 1, loss: undefined })
  })

  it('a half-close crosses the link after the pending bytes, and the other direction keeps flowing', async () => {
    const sim = simulator({ defaultDelayMs: 20 })
    const target = await startServer(() => {}, { allowHalfOpen: true })
    const { port } = target
    const client = await connect((await sim.link('eu', 'us', { port })).port)
    const server = await serverSide(target)

    const start = performance.now()
    client.socket.end('last words')
    await waitUntil([onEvent(server.socket, 'end')], () => server.ended, { what: 'the FIN at the server' })
    expect(performance.now() - start).toBeGreaterThanOrEqual(20)
    expect(server.text()).toBe('last words')

    server.socket.end('bye')
    await client.closing('the client to close after the reply and the FIN')
    expect(client.text()).toBe('bye')
    await server.closing('the server side to close')
    await waitUntil([on(sim, 'disconnect')], () => sim.openConnections === 0, { what: 'the proxied connection to go' })
  })

  it('a socket destroyed on either side closes the other, after its pending bytes', async () => {
    const sim = simulator({ defaultDelayMs: 20 })
    const target = await startServer()
    const { port } = target
    const link = await sim.link('eu', 'us', { port })

    const client = await connect(link.port)
    const server = await serverSide(target, 0)
    client.socket.write('flushed first')
    client.socket.destroy()
    await server.closing('the server side to close after the client was destroyed')
    expect(server.text()).toBe('flushed first')

    const client2 = await connect(link.port)
    const server2 = await serverSide(target, 1)
    server2.socket.write('from the server')
    server2.socket.destroy()
    await client2.closing('the client to close after the server was destroyed')
    expect(client2.text()).toBe('from the server')
    await waitUntil([on(sim, 'disconnect')], () => sim.openConnections === 0, { what: 'both proxied connections to go' })
  })

  it('a refused target closes the client without disturbing the process', async () => {
    const sim = simulator({ defaultDelayMs: 5 })
    const { port, accepted } = await startServer()
    await new Promise(resolve => accepted.close(resolve))
    const client = await connect((await sim.link('eu', 'us', { port })).port)
    client.socket.write('anyone?')
    await client.closing('the client to be closed after ECONNREFUSED')
    expect(sim.stats('eu', 'us').bytesDropped).toBe(7)
  })

  it('a target given as a function is looked up at each connection: none yet resets, a new port is followed', async () => {
    const sim = simulator()
    let target: { port: number } | undefined
    const link = await sim.link('eu', 'us', () => target)
    await (await connect(link.port)).closing('the client to be reset while the link leads nowhere')
    for (const text of ['first', 'second']) {
      const server = await startEcho()
      target = { port: server.port }
      const client = await connect(link.port)
      client.socket.write(text)
      expect(await client.received(text.length, `the echo of ${text}`)).toBe(text)
    }
  })
  it('stats count bytes and chunks per direction; capture holds what crossed, or was held', async () => {
    const sim = simulator({ capture: true })
    const { port } = await startEcho()
    const euUs = await connect((await sim.link('eu', 'us', { port })).port)
    const usEu = await connect((await sim.link('us', 'eu', { port })).port)

    euUs.socket.write('secret-eu')
    usEu.socket.write('us-data')
    await euUs.received(9, 'echo on eu → us')
    await usEu.received(7, 'echo on us → eu')
    sim.cut('eu', 'us', { oneWay: true })
    euUs.socket.write('+held')
    await heldBytes(sim, 'eu', 'us', 5)

    // eu → us: the eu client's bytes and the echo of the us client's bytes.
    expect(sim.stats('eu', 'us')).toMatchObject({ bytesSent: 9 + 7 + 5, bytesDelivered: 9 + 7, bytesHeld: 5, bytesInFlight: 0 })
    expect(sim.stats('us', 'eu')).toMatchObject({ bytesSent: 9 + 7, bytesDelivered: 9 + 7, bytesHeld: 0 })
    expect(sim.stats('eu', 'us').chunksDelivered).toBeGreaterThanOrEqual(2)
    const euToUs = sim.capture('eu', 'us').toString()
    expect(euToUs).toContain('secret-eu')
    expect(euToUs).toContain('us-data')
    expect(euToUs).toContain('+held')
    expect(sim.capture('us', 'eu').toString()).not.toContain('+held')
    expect(sim.capture('ap', 'eu').length).toBe(0)
    expect(() => simulator().capture('eu', 'us')).toThrow(/capture/)
  })

  it('during a long cut, stops reading from the sender instead of holding without bound', async () => {
    const maxPendingBytes = 256 * 1024
    const sim = simulator({ maxPendingBytes })
    const inUs = await startServer()
    const inEu = await startServer()
    const bulk = await connect((await sim.link('eu', 'us', { port: inUs.port })).port)
    const probe = await connect((await sim.link('us', 'eu', { port: inEu.port })).port)
    const probeServer = await serverSide(inEu)
    let maxHeld = 0
    sim.on('send', () => { maxHeld = Math.max(maxHeld, sim.stats('eu', 'us').bytesHeld) })

    sim.cut('eu', 'us', { oneWay: true })
    const payload = Buffer.alloc(32 * 1024 * 1024, 'georelay')
    let written = false
    bulk.socket.write(payload, () => { written = true })
    await heldBytes(sim, 'eu', 'us', maxPendingBytes)
    // Give the proxy many event-loop turns in which it could read more, were it not paused.
    for (let i = 1; i <= 10; i++) {
      probe.socket.write('p')
      await probeServer.received(i, `probe ${i} over us → eu`)
    }
    // Whether the sender's write is blocked too depends on how far the kernel grew the socket
    // buffers; what the proxy has taken in does not.
    expect(sim.stats('eu', 'us').bytesSent).toBeLessThan(payload.length)
    // A socket read is at most 64 KiB, and the proxy pauses as soon as it crosses the limit.
    expect(maxHeld).toBeGreaterThanOrEqual(maxPendingBytes)
    expect(maxHeld).toBeLessThanOrEqual(maxPendingBytes + 64 * 1024)

    sim.heal('eu', 'us')
    const server = await serverSide(inUs)
    await server.received(payload.length, 'the whole payload after heal')
    expect(server.bytes().equals(payload)).toBe(true)
    await waitUntil([onEvent(bulk.socket, 'drain')], () => written, { what: 'the sender to get its write through' })
  })

  it('rejects nonsense conditions', () => {
    const sim = simulator()
    expect(() => sim.setConditions('eu', 'us', { delayMs: -1 })).toThrow(RangeError)
    expect(() => sim.setConditions('eu', 'us', { loss: { probability: 2, stallMs: 1 } })).toThrow(RangeError)
    expect(() => new WanSimulator({ defaultDelayMs: Number.NaN })).toThrow(RangeError)
  })

  it('close() closes every proxy and connection, held and delayed bytes included', async () => {
    const sim = simulator({ defaultDelayMs: 10_000 })
    const target = await startServer()
    const { port, inboxes } = target
    const link = await sim.link('eu', 'us', { port })
    const delayed = await connect(link.port)
    const held = await connect(link.port)
    await serverSide(target, 1)
    delayed.socket.write('in flight')
    sim.cut('us', 'eu')
    const server = inboxes[1] as Inbox
    server.socket.write('held')
    await heldBytes(sim, 'us', 'eu', 4)

    await sim.close()
    expect(sim.openConnections).toBe(0)
    await Promise.all([delayed.closing('the delayed client'), held.closing('the held client'), ...inboxes.map(async inbox => inbox.closing('a server side'))])
    await expect(sim.link('eu', 'us', { port })).rejects.toThrow(/closed/)
    const late = net.connect({ host: '127.0.0.1', port: link.port })
    sockets.push(late)
    const [error] = await nextEvent<[NodeJS.ErrnoException]>(late, 'error', { what: 'the proxy port to refuse connections' })
    expect(error.code).toBe('ECONNREFUSED')
  })

  it('carries real WebSockets: messages arrive delayed and in order', async () => {
    const sim = simulator({ seed: 3 })
    sim.setConditions('eu', 'us', { delayMs: 30, jitterMs: 20 })
    const wss = new WebSocketServer({ host: '127.0.0.1', port: 0 })
    await nextEvent(wss, 'listening', { what: 'the WebSocketServer' })
    const received: { text: string, at: number }[] = []
    wss.on('connection', ws => ws.on('message', data => {
      received.push({ text: String(data), at: performance.now() })
      ws.send(`ack ${String(data)}`)
    }))
    try {
      const link = await sim.link('eu', 'us', { port: (wss.address() as net.AddressInfo).port })
      const ws = new WebSocket(link.url)
      const acks: string[] = []
      ws.on('message', data => acks.push(String(data)))
      await nextEvent(ws, 'open', { what: 'the WebSocket through the proxy' })

      const sentAt = performance.now()
      const messages = numbered(100)
      for (const message of messages) ws.send(message)
      await waitUntil([on(ws, 'message')], () => acks.length === messages.length, { what: 'every ack' })
      expect(received.map(r => r.text)).toEqual(messages)
      expect(acks).toEqual(messages.map(m => `ack ${m}`))
      expect((received[0]?.at ?? 0) - sentAt).toBeGreaterThanOrEqual(30)

      ws.close()
      await nextEvent(ws, 'close', { what: 'the WebSocket close handshake through the proxy' })
    } finally {
      for (const client of wss.clients) client.terminate()
      await new Promise(resolve => wss.close(resolve))
    }
  })
})
