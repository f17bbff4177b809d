/**
 * A fuzzer for a running relay: it opens sockets on each endpoint (`/<doc>`, `/v1/mux`,
 * `/v1/peer`) and sends them valid, damaged and random frames, text frames and oversize ones,
 * while a well-behaved client keeps writing. After each frame a probe the relay must answer
 * tells whether the socket took the frame or was closed, and with which code. At the end it
 * checks what must hold whatever was sent: the relay never crashed and still answers, no
 * write of the well-behaved client was lost, a document written before the run is unchanged,
 * no document appeared that only refused input could have made, and every stored document
 * can still be loaded by a client.
 *
 * Frames come from fast-check generators (fuzz-frames.ts) with a seed, so a run sends the
 * same frames again with the same seed (what the relay answers may interleave differently).
 */
import { EventEmitter } from 'node:events'
import fs from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import fc from 'fast-check'
import WebSocket from 'ws'
import * as Y from 'yjs'
import { CloseCode, type DocStore, docNameProblem, isReservedName, ProtocolError, type YMessage, decodeFrame, decodeMuxMessage, decodePeerMessage, encodeAwarenessEntries, encodeFrame, encodeMuxMessage, encodePeerMessage, mergeUpdates, readAwarenessUpdate, validateStateVector, validateUpdate } from '@georelay/core'
import { SqliteStore } from '@georelay/store-sqlite'
import { freePort } from '@georelay/cluster'
import { type Logger, Relay, parseRelayConfig } from '@georelay/relay'
import { hostile, muxFrame, peerFrame, yFrame } from './fuzz-frames.js'
import { on, waitUntil } from './wait-for.js'
import { connectProvider, destroyProvider, waitForText, waitSynced } from './y-websocket-client.js'

export type FuzzEndpoint = 'y-websocket' | 'mux' | 'peer'
export const FUZZ_ENDPOINTS: readonly FuzzEndpoint[] = ['y-websocket', 'mux', 'peer']

export interface FuzzRelayOptions {
  seed?: number
  /** Stop after this many seconds… */
  seconds?: number
  /**
   * …or once each endpoint got this many frames, whichever comes first (at least one must be
   * given). With `concurrency: 1` and no time limit, a seed sends exactly the same frames.
   */
  frames?: number
  /** The relay's limits.maxMessageBytes; oversize frames are a little over it. */
  maxMessageBytes?: number
  /** How many sockets fuzz each client endpoint at once (the peer endpoint takes one). */
  concurrency?: number
  /** Called about every `checkEveryFrames` frames with the figures so far. */
  onProgress?: (summary: FuzzSummary) => void
  /** The relay's own log; error lines are counted either way. */
  logger?: Logger
  /** How many frames go between two checks of the well-behaved client (default 200). */
  checkEveryFrames?: number
}

export interface EndpointStats {
  sockets: number
  frames: number
  /** Frames after which the socket stayed open (the relay took them, or refused one document). */
  accepted: number
  /** Socket closes by code. */
  closes: Record<string, number>
  /** `/v1/mux` only: per-document `error` messages by code (the socket stays open). */
  docErrors: Record<string, number>
  /** Closes or errors with a code this endpoint does not document for bad input. */
  wrongCodes: number
  /** Frames the project's own decoders and validators refuse, which the relay took anyway. */
  acceptedInvalid: number
  /** Frames the decoders and validators accept, on which the relay closed the socket with 4400. */
  refusedValid: number
  /** `/v1/mux` only: sockets on which a document that got no bad message was hurt. */
  otherDocsHurt: number
  probeTimeouts: number
  /** Up to a few frames (hex) behind each kind of failure, to replay. */
  samples: Record<string, string[]>
}

export interface FuzzSummary {
  seed: number
  seconds: number
  framesTried: number
  endpoints: Record<FuzzEndpoint, EndpointStats>
  /** Uncaught exceptions and unhandled rejections during the run. */
  crashes: number
  crashSamples: string[]
  /**
   * The relay's error log lines by message. Not failures by themselves (garbage namespace
   * rules from a peer are logged as errors, for the operator); internal errors also show as
   * 1011 closes, which are wrong codes.
   */
  errorLogs: Record<string, number>
  /** `/healthz` checks, and those not answered 200. */
  healthChecks: number
  healthFailures: number
  /**
   * Writes of the well-behaved client during the run, those another client did not see in time,
   * and those missing at the end.
   */
  liveWrites: number
  syncFailures: number
  lost: number
  /** 1 when the document written before the run reads differently after it. */
  stateChanged: number
  /** Stored documents that no accepted frame could have written. */
  unexpectedDocs: string[]
  /** Stored documents whose updates no longer merge and apply. */
  unreadableDocs: string[]
}

/** Codes each endpoint may close a socket with on bad input (docs/protocol.md, close codes). */
const EXPECTED_CLOSES: Record<FuzzEndpoint, number[]> = {
  'y-websocket': [CloseCode.MalformedMessage, CloseCode.MessageTooLarge],
  mux: [CloseCode.MalformedMessage, CloseCode.MessageTooLarge],
  peer: [CloseCode.MalformedMessage, CloseCode.MessageTooLarge],
}
/**
 * `/v1/mux` per-document errors (mux-messages.ts): a bad message, a document the token does
 * not allow or a read-only write, a document over its size limit, too many documents, and a
 * document the fuzzing peer erased (its `erase` messages are fuzzed too).
 */
const EXPECTED_DOC_ERRORS: number[] = [
  CloseCode.MalformedMessage, CloseCode.Forbidden, CloseCode.MessageTooLarge, CloseCode.RateLimited, CloseCode.Gone,
]

const MESH_SECRET = 'fuzz-mesh-secret-of-at-least-32-bytes'
const PEER_REGION = 'fuzz-peer'
const PROBE_TIMEOUT_MS = 10_000
const MAX_SAMPLES = 3
/** A document id on every mux socket that fuzz frames (ids 0–3, or huge) leave alone. */
const ANCHOR_DOC_ID = 1_000_003

type Send =
  | { kind: 'binary', bytes: Uint8Array }
  | { kind: 'text', text: string }
  /** A text frame whose bytes are not UTF-8. */
  | { kind: 'text-bytes', bytes: Uint8Array }
  | { kind: 'oversize', extra: number }

/**
 * `unauthenticated`: a mux `auth` with a token this relay cannot accept (it has no key), which
 * must close with 4401.
 */
type Verdict = 'valid' | 'invalid' | 'unauthenticated'

const hex = (bytes: Uint8Array): string => Buffer.from(bytes).toString('hex')

const invalidUtf8 = fc.tuple(
  fc.uint8Array({ maxLength: 8 }),
  fc.constantFrom([0xff], [0xc3, 0x28], [0xed, 0xa0, 0x80], [0xf8, 0x88, 0x80, 0x80, 0x80]),
).map(([prefix, bad]) => Uint8Array.from([...prefix, ...bad]))

const sendsOf = (frames: fc.Arbitrary<Uint8Array>): fc.Arbitrary<Send[]> => fc.array(fc.oneof(
  { weight: 30, arbitrary: hostile(frames, { validWeight: 4 }).map((bytes): Send => ({ kind: 'binary', bytes })) },
  { weight: 1, arbitrary: fc.string({ unit: 'binary', maxLength: 16 }).map((text): Send => ({ kind: 'text', text })) },
  { weight: 1, arbitrary: fc.nat({ max: 1024 }).map((extra): Send => ({ kind: 'oversize', extra })) },
  { weight: 1, arbitrary: invalidUtf8.map((bytes): Send => ({ kind: 'text-bytes', bytes })) },
), { minLength: 1, maxLength: 6 })

/** Validates every payload of a y-websocket frame, as the relay must before taking any of it. */
const judgeYMessages = (messages: YMessage[]): Verdict => {
  for (const m of messages) {
    if (m.type === 'sync-step1') validateStateVector(m.stateVector)
    else if (m.type === 'sync-step2' || m.type === 'sync-update') validateUpdate(m.update)
    else if (m.type === 'awareness') readAwarenessUpdate(m.update)
    else if (m.type === 'auth-denied') return 'invalid'
  }
  return 'valid'
}

const refused = (judge: () => Verdict): Verdict => {
  try {
    return judge()
  } catch (err) {
    if (err instanceof ProtocolError) return 'invalid'
    throw err
  }
}

/** What one endpoint needs: where to connect, how to probe, and what the decoders think of a frame. */
interface EndpointDriver {
  readonly endpoint: FuzzEndpoint
  readonly path: string
  readonly headers: Record<string, string>
  scripts: fc.Arbitrary<Send[]>
  /** The relay's verdict as the project's decoders and validators give it. */
  judge(send: Send): Verdict
  /** Document names an accepted frame may have written to. */
  docsOf(send: Send, socketDoc: string): string[]
  probe(n: number, socketId: number): { frame: Uint8Array, answers: (frame: Uint8Array) => boolean }
}

const yWebsocketDriver = (): EndpointDriver => ({
  endpoint: 'y-websocket',
  path: '',
  headers: {},
  scripts: sendsOf(yFrame),
  judge: send => send.kind === 'binary' ? refused(() => judgeYMessages(decodeFrame(send.bytes))) : 'invalid',
  docsOf: (_send, socketDoc) => [socketDoc],
  // An awareness state only this probe sets, then a query: the relay's answer lists it.
  probe: (n, socketId) => {
    const clientID = 3_000_000_000 + socketId
    return {
      frame: encodeFrame({ type: 'awareness', update: encodeAwarenessEntries([{ clientID, clock: n, state: { probe: n } }]) }, { type: 'query-awareness' }),
      answers: frame => {
        try {
          return decodeFrame(frame).some(m => m.type === 'awareness' && readAwarenessUpdate(m.update).some(e => e.clientID === clientID && e.clock === n))
        } catch { return false }
      },
    }
  },
})

const muxDriver = (): EndpointDriver => ({
  endpoint: 'mux',
  path: 'v1/mux',
  headers: {},
  scripts: sendsOf(muxFrame),
  judge: send => {
    if (send.kind !== 'binary') return 'invalid'
    // Only a frame that is not a mux message closes the socket; a bad document payload is a
    // per-document error. Relay-to-client messages without a document close it too.
    return refused(() => {
      const m = decodeMuxMessage(send.bytes)
      if (m.type === 'auth') return m.token === '' ? 'valid' : 'unauthenticated' // an empty token means anonymous
      return m.type === 'welcome' || m.type === 'pong' ? 'invalid' : 'valid'
    })
  },
  docsOf: send => {
    if (send.kind !== 'binary') return []
    try {
      const m = decodeMuxMessage(send.bytes)
      return m.type === 'open' ? [m.docName] : []
    } catch { return [] }
  },
  probe: n => {
    const nonce = 2 ** 50 + n
    return {
      frame: encodeMuxMessage({ type: 'ping', nonce }),
      answers: frame => {
        try {
          const m = decodeMuxMessage(frame)
          return m.type === 'pong' && m.nonce === nonce
        } catch { return false }
      },
    }
  },
})

const peerDriver = (): EndpointDriver => {
  const judgeBytes = (bytes: Uint8Array): Verdict => refused(() => {
    const m = decodePeerMessage(bytes)
    if (m.type === 'welcome' || m.type === 'ack' || m.type === 'sv-reply') return 'invalid' // not sent to an acceptor
    // The acceptor checks contents as strictly as a client's: every update must validate, and
    // no region may be empty (the store's name for its own writes).
    const updates = m.type === 'batch' ? m.entries.map(e => e.update)
      : m.type === 'catch-up' || m.type === 'pulled' || m.type === 'forward' ? [m.update] : []
    for (const update of updates) validateUpdate(update)
    if (m.type === 'pull') validateStateVector(m.stateVector)
    if (m.type === 'awareness') readAwarenessUpdate(m.update)
    const regions = m.type === 'batch' ? [...m.entries.map(e => e.origin), ...Object.keys(m.upTo)]
      : m.type === 'awareness' ? [m.origin]
        : m.type === 'link-state' ? [m.region, ...Object.keys(m.have)]
          : m.type === 'erase' ? m.tombstones.map(t => t.origin) : []
    // Document names from a peer follow the clients' rule.
    const names = m.type === 'batch' ? m.entries.map(e => e.docName)
      : m.type === 'catch-up' || m.type === 'awareness' || m.type === 'pull' || m.type === 'pulled' || m.type === 'forward' ? [m.docName]
        : m.type === 'sv-request' || m.type === 'erased' ? m.docNames
          : m.type === 'erase' ? m.tombstones.map(t => t.docName) : []
    if (names.some(name => docNameProblem(name) !== null || isReservedName(name))) return 'invalid'
    return regions.includes('') ? 'invalid' : 'valid'
  })
  return {
    endpoint: 'peer',
    path: 'v1/peer',
    headers: { authorization: `Bearer ${MESH_SECRET}`, 'x-georelay-region': PEER_REGION },
    // The peer endpoint takes messages of up to 64 MiB: too big to send often.
    scripts: sendsOf(peerFrame).map(sends => sends.filter(s => s.kind !== 'oversize')).filter(sends => sends.length > 0),
    judge: send => send.kind === 'binary' ? judgeBytes(send.bytes) : 'invalid',
    docsOf: send => {
      if (send.kind !== 'binary') return []
      try {
        const m = decodePeerMessage(send.bytes)
        return m.type === 'batch' ? m.entries.map(e => e.docName) : m.type === 'catch-up' ? [m.docName] : []
      } catch { return [] }
    },
    probe: n => {
      const name = `fuzz-probe/${n}`
      return {
        frame: encodePeerMessage({ type: 'sv-request', docNames: [name] }),
        answers: frame => {
          try {
            const m = decodePeerMessage(frame)
            return m.type === 'sv-reply' && m.docs[0]?.docName === name
          } catch { return false }
        },
      }
    },
  }
}

type ProbeResult = { kind: 'answered' } | { kind: 'closed', code: number, reason: string } | { kind: 'timeout' }

/** A client socket that remembers how it closed and lets a caller wait for a matching frame. */
class FuzzSocket {
  readonly ws: WebSocket
  closed: { code: number, reason: string } | null = null
  private readonly events = new EventEmitter()

  constructor (url: string, headers: Record<string, string>, onFrame: (frame: Uint8Array) => void) {
    this.ws = new WebSocket(url, { headers, perMessageDeflate: false })
    this.ws.on('message', (data: Buffer) => {
      const frame = new Uint8Array(data.buffer, data.byteOffset, data.byteLength)
      onFrame(frame)
      this.events.emit('frame', frame)
    })
    this.ws.on('close', (code: number, reason: Buffer) => {
      this.closed = { code, reason: reason.toString() }
      this.events.emit('closed')
    })
    this.ws.on('error', () => { /* the close that follows says what happened */ })
  }

  async opened (): Promise<boolean> {
    await waitUntil([on(this.ws, 'open'), on(this.events, 'closed')], () => this.ws.readyState !== WebSocket.CONNECTING, { what: 'a fuzz socket to open', timeoutMs: PROBE_TIMEOUT_MS })
    return this.ws.readyState === WebSocket.OPEN
  }

  send (send: Send, maxMessageBytes: number): void {
    if (send.kind === 'binary') this.ws.send(send.bytes)
    else if (send.kind === 'text') this.ws.send(send.text)
    else if (send.kind === 'text-bytes') this.ws.send(send.bytes, { binary: false })
    else this.ws.send(new Uint8Array(maxMessageBytes + 1 + send.extra))
  }

  /** Sends `frame` and waits for a frame that `answers` it, or the close. */
  probe (frame: Uint8Array, answers: (frame: Uint8Array) => boolean): Promise<ProbeResult> {
    return new Promise(resolve => {
      const finish = (result: ProbeResult): void => {
        clearTimeout(timer)
        this.events.off('frame', onFrame)
        this.events.off('closed', onClosed)
        resolve(result)
      }
      const onFrame = (f: Uint8Array): void => { if (answers(f)) finish({ kind: 'answered' }) }
      const onClosed = (): void => finish({ kind: 'closed', ...(this.closed as { code: number, reason: string }) })
      const timer = setTimeout(() => finish({ kind: 'timeout' }), PROBE_TIMEOUT_MS)
      this.events.on('frame', onFrame)
      this.events.on('closed', onClosed)
      if (this.closed !== null) return onClosed()
      this.ws.send(frame)
    })
  }

  async close (): Promise<void> {
    if (this.closed !== null) return
    this.ws.close(1000)
    await waitUntil([on(this.events, 'closed')], () => this.closed !== null, { what: 'a fuzz socket to close', timeoutMs: PROBE_TIMEOUT_MS }).catch(() => this.ws.terminate())
  }
}

const emptyStats = (): EndpointStats => ({
  sockets: 0, frames: 0, accepted: 0, closes: {}, docErrors: {}, wrongCodes: 0, acceptedInvalid: 0, refusedValid: 0,
  otherDocsHurt: 0, probeTimeouts: 0, samples: {},
})

const count = (counts: Record<string, number>, key: string | number): void => { counts[key] = (counts[key] ?? 0) + 1 }

const sample = (stats: EndpointStats, what: string, send: Send): void => {
  const list = (stats.samples[what] ??= [])
  if (list.length < MAX_SAMPLES) list.push(send.kind === 'binary' || send.kind === 'text-bytes' ? `${send.kind} ${hex(send.bytes)}` : send.kind === 'text' ? `text ${JSON.stringify(send.text)}` : `oversize +${send.extra}`)
}

/** A document's content as a client sees it, and its state vector, from its stored updates. */
const storedView = async (store: DocStore, name: string): Promise<{ stateVector: string, content: string }> => {
  const { snapshot, log } = await store.read(name)
  const state = mergeUpdates([...(snapshot === null ? [] : [snapshot]), ...log.map(e => e.update)])
  const doc = new Y.Doc()
  Y.applyUpdate(doc, state)
  const view = { stateVector: hex(Y.encodeStateVector(doc)), content: JSON.stringify(doc.toJSON()) }
  doc.destroy()
  return view
}

const KNOWN_CONTENT = 'written before the fuzzing; no fuzz frame may change it'

/** Runs the fuzzer against a fresh relay with a SQLite store in a temporary directory. */
export const fuzzRelay = async (options: FuzzRelayOptions): Promise<FuzzSummary> => {
  const { seed = 1, seconds, frames, maxMessageBytes = 64 * 1024, concurrency = 2, checkEveryFrames = 200 } = options
  if (seconds === undefined && frames === undefined) throw new Error('fuzzRelay needs a budget: seconds or frames')
  const started = Date.now()
  const deadline = seconds === undefined ? Infinity : started + seconds * 1000
  const frameBudget = frames ?? Infinity

  const summary: FuzzSummary = {
    seed, seconds: 0, framesTried: 0,
    endpoints: { 'y-websocket': emptyStats(), mux: emptyStats(), peer: emptyStats() },
    crashes: 0, crashSamples: [], errorLogs: {}, healthChecks: 0, healthFailures: 0, liveWrites: 0, syncFailures: 0,
    lost: 0, stateChanged: 0, unexpectedDocs: [], unreadableDocs: [],
  }
  const crash = (what: string): void => {
    summary.crashes++
    if (summary.crashSamples.length < MAX_SAMPLES) summary.crashSamples.push(what)
  }
  const onUncaught = (err: unknown): void => crash(`uncaught: ${String((err as Error)?.stack ?? err)}`)

  const dataDir = fs.mkdtempSync(path.join(os.tmpdir(), 'georelay-fuzz-'))
  const store = new SqliteStore(dataDir)
  const logger: Logger = {
    log (level, message, fields) {
      if (level === 'error') count(summary.errorLogs, fields?.code === undefined ? message : `${message} (${String(fields.code)})`)
      options.logger?.log(level, message, fields)
    },
  }
  const relay = await Relay.start({
    config: parseRelayConfig({
      region: 'fuzz',
      store: 'sqlite',
      dataDir,
      listen: { host: '127.0.0.1', port: 0 },
      // A configured peer that never answers: the peer endpoint only accepts configured regions.
      peers: [{ region: PEER_REGION, url: `ws://127.0.0.1:${await freePort()}` }],
      meshSecret: MESH_SECRET,
      auth: { anonymous: 'rw' },
      // Every probe announces a presence id of its own; random awareness frames must not use up
      // the socket's share of ids first (presence bounds are tested in the relay's abuse tests).
      limits: { maxMessageBytes, presence: { perClient: 10_000, perDocument: 100_000, stateBytes: 16 * 1024 } },
    }),
    store,
    logger,
  })
  const httpUrl = relay.url.replace('ws:', 'http:')
  const tag = `${seed}-${Date.now().toString(36)}`
  const knownDoc = `known/${tag}`
  const liveDoc = `live/${tag}`
  const allowedDocs = new Set<string>([knownDoc, liveDoc])
  const progress = new EventEmitter()
  let stopping = false
  const budgetLeft = (endpoint?: FuzzEndpoint): boolean =>
    !stopping && Date.now() < deadline && (endpoint === undefined
      ? FUZZ_ENDPOINTS.some(e => summary.endpoints[e].frames < frameBudget)
      : summary.endpoints[endpoint].frames < frameBudget)

  process.on('uncaughtException', onUncaught)
  process.on('unhandledRejection', onUncaught)
  try {
    // The known document: written by a well-behaved client before any fuzz frame, never again.
    const writer = connectProvider(relay.url, knownDoc)
    const witness = connectProvider(relay.url, knownDoc)
    await Promise.all([waitSynced(writer), waitSynced(witness)])
    writer.doc.getText('t').insert(0, KNOWN_CONTENT)
    writer.doc.getMap('m').set('seed', seed)
    await waitUntil([on(witness.doc, 'update')], () => witness.doc.getMap('m').get('seed') === seed && witness.doc.getText('t').toString() === KNOWN_CONTENT, { what: 'the known document to reach a second client' })
    destroyProvider(writer)
    destroyProvider(witness)
    const knownBefore = await storedView(store, knownDoc)

    // The live document: a well-behaved writer and reader that go on through the fuzzing.
    const liveWriter = connectProvider(relay.url, liveDoc)
    const liveReader = connectProvider(relay.url, liveDoc)
    await Promise.all([waitSynced(liveWriter), waitSynced(liveReader)])
    const markers: string[] = []

    const check = async (): Promise<void> => {
      summary.healthChecks++
      const health = await fetch(`${httpUrl}/healthz`).then(r => r.status, () => 0)
      if (health !== 200) summary.healthFailures++
      const marker = `m${markers.length};`
      markers.push(marker)
      summary.liveWrites++
      liveWriter.doc.getText('t').insert(liveWriter.doc.getText('t').length, marker)
      await waitForText(liveReader.doc, text => text.includes(marker), `the reader to see ${marker}`).catch(() => { summary.syncFailures++ })
      options.onProgress?.(snapshot())
    }

    const snapshot = (): FuzzSummary => ({ ...summary, seconds: (Date.now() - started) / 1000 })

    const monitor = async (): Promise<void> => {
      await check()
      while (budgetLeft()) {
        const next = summary.framesTried + checkEveryFrames
        await waitUntil([on(progress, 'frame')], () => summary.framesTried >= next || !budgetLeft(), { what: 'more fuzz frames', timeoutMs: 60_000 }).catch(() => {})
        await check()
      }
    }

    let socketIds = 0
    let probes = 0

    const fuzzSocket = async (driver: EndpointDriver, sends: Send[]): Promise<void> => {
      const stats = summary.endpoints[driver.endpoint]
      const socketId = ++socketIds
      const socketDoc = `fuzz/socket-${socketId}`
      let anchorHurt = false
      let anchorSynced = false
      const socket = new FuzzSocket(`${relay.url}/${driver.path === '' ? encodeURIComponent(socketDoc) : driver.path}`, driver.headers, frame => {
        if (driver.endpoint !== 'mux') return
        try {
          const m = decodeMuxMessage(frame)
          if (m.type === 'error') {
            count(stats.docErrors, m.code)
            if (!EXPECTED_DOC_ERRORS.includes(m.code)) stats.wrongCodes++
            if (m.docId === ANCHOR_DOC_ID) anchorHurt = true
          } else if (m.type === 'sync' && m.docId === ANCHOR_DOC_ID) anchorSynced = true
        } catch { /* the relay's own frames always decode; the mux tests check that */ }
      })
      stats.sockets++
      if (!(await socket.opened())) {
        count(stats.closes, socket.closed?.code ?? 'no-open')
        stats.wrongCodes++
        return
      }
      // A document that gets no bad message: it must outlive every other document's errors.
      if (driver.endpoint === 'mux') socket.ws.send(encodeMuxMessage({ type: 'open', docId: ANCHOR_DOC_ID, docName: 'fuzz/anchor', ack: 'local' }))
      // A real dialer's first message: until a peer's rules are known, nothing of a document goes to it.
      if (driver.endpoint === 'peer') socket.ws.send(encodePeerMessage({ type: 'policy', rules: '[]' }))
      for (const send of sends) {
        if (!budgetLeft(driver.endpoint)) break
        const verdict = driver.judge(send)
        socket.send(send, maxMessageBytes)
        stats.frames++
        summary.framesTried++
        progress.emit('frame')
        const { frame, answers } = driver.probe(++probes, socketId)
        const result = await socket.probe(frame, answers)
        if (result.kind === 'answered') {
          stats.accepted++
          for (const doc of driver.docsOf(send, socketDoc)) allowedDocs.add(doc)
          if (verdict !== 'valid') {
            stats.acceptedInvalid++
            sample(stats, 'acceptedInvalid', send)
          }
          continue
        }
        if (result.kind === 'timeout') {
          stats.probeTimeouts++
          sample(stats, 'probeTimeout', send)
          socket.ws.terminate()
          return
        }
        count(stats.closes, result.code)
        const expected = verdict === 'unauthenticated' ? [CloseCode.Unauthenticated as number] : EXPECTED_CLOSES[driver.endpoint]
        if (!expected.includes(result.code)) {
          stats.wrongCodes++
          sample(stats, `close ${result.code}`, send)
        } else if (verdict === 'valid' && result.code === CloseCode.MalformedMessage) {
          stats.refusedValid++
          sample(stats, 'refusedValid', send)
        }
        return
      }
      if (driver.endpoint === 'mux' && socket.closed === null) {
        socket.ws.send(encodeMuxMessage({ type: 'sync', docId: ANCHOR_DOC_ID, payload: encodeFrame({ type: 'sync-step1', stateVector: new Uint8Array([0]) }) }))
        const { frame, answers } = driver.probe(++probes, socketId)
        const result = await socket.probe(frame, answers)
        if (result.kind !== 'answered' || anchorHurt || !anchorSynced) stats.otherDocsHurt++
      }
      await socket.close()
    }

    const worker = async (driver: EndpointDriver, index: number): Promise<void> => {
      for (let chunk = 0; budgetLeft(driver.endpoint); chunk++) {
        // Each worker draws its own reproducible stream of scripts from the seed.
        const scriptSeed = seed * 7919 + FUZZ_ENDPOINTS.indexOf(driver.endpoint) * 104_729 + index * 1_299_709 + chunk
        const scripts = fc.sample(driver.scripts, { seed: scriptSeed | 0, numRuns: 20 })
        for (const sends of scripts) {
          if (!budgetLeft(driver.endpoint)) return
          await fuzzSocket(driver, sends)
        }
      }
    }

    const workers = [
      ...Array.from({ length: concurrency }, (_, i) => worker(yWebsocketDriver(), i)),
      ...Array.from({ length: concurrency }, (_, i) => worker(muxDriver(), i)),
      // One at a time: a new link from a region replaces the previous one.
      worker(peerDriver(), 0),
    ]
    const monitoring = monitor()
    try {
      await Promise.all(workers)
    } finally {
      stopping = true
      progress.emit('frame')
      await monitoring
    }

    // What must hold after the run.
    const fresh = connectProvider(relay.url, liveDoc)
    await waitSynced(fresh).catch(() => { summary.syncFailures++ })
    const seen = fresh.doc.getText('t').toString()
    summary.lost = markers.filter(m => !seen.includes(m) || !liveReader.doc.getText('t').toString().includes(m)).length
    destroyProvider(fresh)
    destroyProvider(liveWriter)
    destroyProvider(liveReader)

    const knownClient = connectProvider(relay.url, knownDoc)
    const knownSynced = await waitSynced(knownClient).then(() => true, () => false)
    const knownAfter = await storedView(store, knownDoc)
    if (!knownSynced || knownAfter.stateVector !== knownBefore.stateVector || knownAfter.content !== knownBefore.content
      || knownClient.doc.getText('t').toString() !== KNOWN_CONTENT || knownClient.doc.getMap('m').get('seed') !== seed) summary.stateChanged = 1
    destroyProvider(knownClient)

    const healthy = await fetch(`${httpUrl}/healthz`).then(r => r.status, () => 0)
    summary.healthChecks++
    if (healthy !== 200) summary.healthFailures++

    for (const name of await store.listDocs()) {
      if (!allowedDocs.has(name)) summary.unexpectedDocs.push(name)
      try {
        await storedView(store, name)
      } catch (err) {
        summary.unreadableDocs.push(name)
        // What is stored, to turn into a regression test.
        const { snapshot, log } = await store.read(name)
        options.logger?.log('error', 'unreadable document', {
          doc: name, error: (err as Error).message, snapshot: snapshot === null ? '' : hex(snapshot), log: log.map(e => hex(e.update)).join(','),
        })
        if (process.env.GEORELAY_FUZZ_DUMP !== undefined) {
          fs.writeFileSync(process.env.GEORELAY_FUZZ_DUMP, JSON.stringify({ doc: name, error: (err as Error).message, snapshot: snapshot === null ? null : hex(snapshot), log: log.map(e => hex(e.update)) }) + '\n', { flag: 'a' })
        }
      }
    }
  } finally {
    stopping = true
    await relay.close()
    fs.rmSync(dataDir, { recursive: true, force: true })
    process.off('uncaughtException', onUncaught)
    process.off('unhandledRejection', onUncaught)
  }
  summary.seconds = (Date.now() - started) / 1000
  return summary
}

/** The summary in a few lines of text, for the fuzz command. */
export const formatFuzzSummary = (s: FuzzSummary): string => {
  const lines = [`seed ${s.seed}, ${s.seconds.toFixed(1)} s, ${s.framesTried} frames tried`]
  for (const endpoint of FUZZ_ENDPOINTS) {
    const e = s.endpoints[endpoint]
    const codes = (counts: Record<string, number>): string => Object.entries(counts).map(([code, n]) => `${code}×${n}`).join(' ') || 'none'
    lines.push(`  ${endpoint.padEnd(11)} ${e.frames} frames on ${e.sockets} sockets; accepted ${e.accepted}; closes ${codes(e.closes)}` +
      (endpoint === 'mux' ? `; document errors ${codes(e.docErrors)}; other documents hurt ${e.otherDocsHurt}` : '') +
      `; wrong codes ${e.wrongCodes}; accepted invalid ${e.acceptedInvalid}; refused valid ${e.refusedValid}; probe timeouts ${e.probeTimeouts}`)
    for (const [what, frames] of Object.entries(e.samples)) lines.push(`    ${what}: ${frames.join(' | ')}`)
  }
  lines.push(`  crashes ${s.crashes}; health checks ${s.healthChecks} (failed ${s.healthFailures}); live writes ${s.liveWrites} (late ${s.syncFailures}, lost ${s.lost}); ` +
    `state changed ${s.stateChanged}; unexpected documents ${s.unexpectedDocs.length}; unreadable documents ${s.unreadableDocs.length}`)
  for (const crash of s.crashSamples) lines.push(`    crash: ${crash}`)
  for (const [message, n] of Object.entries(s.errorLogs)) lines.push(`    relay error log ×${n}: ${message}`)
  if (s.unexpectedDocs.length > 0) lines.push(`    unexpected: ${s.unexpectedDocs.slice(0, 5).map(d => JSON.stringify(d)).join(', ')}`)
  if (s.unreadableDocs.length > 0) lines.push(`    unreadable: ${s.unreadableDocs.slice(0, 5).map(d => JSON.stringify(d)).join(', ')}`)
  return lines.join('\n')
}
