/**
 * This relay's link to one peer region: it dials the peer, authenticates with the mesh
 * secret, and pushes every entry the peer should get (its own region's, and other origins'
 * while those cannot reach the peer themselves) after the peer's acknowledged marks. Up to
 * WINDOW batches travel unacknowledged; a dropped link resumes from the acknowledged marks.
 */
import WebSocket from 'ws'
import {
  type BatchEntry, CloseCode, type Marks, type OriginEntry, type PeerMessage, closeReason,
  decodePeerMessage, diffUpdate, encodePeerMessage, isEmptyUpdate, mergeUpdates,
} from '@georelay/core'
import type { Mesh } from './mesh.js'
import { checkPeerMessage } from './peer-message-checks.js'

/** Unacknowledged batches in flight per link. */
const WINDOW = 64
/** A batch holds at most this many log entries… */
const MAX_BATCH_ENTRIES = 256
/** …and about this many bytes of updates. */
const MAX_BATCH_BYTES = 512 * 1024
/** Documents per state-vector request during a catch-up. */
const SV_REQUEST_DOCS = 64
const BACKOFF_BASE_MS = 100
const BACKOFF_MAX_MS = 5000

/** Compression of peer links: small frames (acks, pings) stay raw, batches are deflated. */
export const PEER_DEFLATE = { threshold: 64, serverNoContextTakeover: false, clientNoContextTakeover: false } as const

export type LinkStatus = 'down' | 'connecting' | 'up'

/**
 * Why a link is down, as a kind: what /v1/regions shows (the words, which may hold addresses,
 * go to the log only).
 */
export type LinkErrorKind =
  | 'refused-secret' | 'refused-region' | 'refused' | 'unreachable' | 'timeout' | 'protocol' | 'wrong-region' | 'replication' | 'closed'

const kindOfSocketError = (err: Error & { code?: string }): LinkErrorKind =>
  err.code === 'ECONNREFUSED' || err.code === 'ENOTFOUND' || err.code === 'EHOSTUNREACH' || err.code === 'ENETUNREACH' || err.code === 'EAI_AGAIN'
    ? 'unreachable'
    : /timed? ?out/i.test(err.message) ? 'timeout' : 'closed'

/** Groups a read's entries by document and merges each group into one update. */
export const mergeByDoc = (entries: readonly OriginEntry[], origin: string): BatchEntry[] => {
  const groups = new Map<string, OriginEntry[]>()
  for (const entry of entries) {
    const group = groups.get(entry.docName)
    if (group === undefined) groups.set(entry.docName, [entry])
    else group.push(entry)
  }
  // Ascending by their highest number: the receiver's duplicate check relies on it.
  return [...groups].map(([docName, group]) => ({
    docName,
    origin,
    originSeq: (group[group.length - 1] as OriginEntry).originSeq,
    update: mergeUpdates(group.map(e => e.update)),
  })).sort((a, b) => a.originSeq - b.originSeq)
}

const takeBatch = (entries: readonly OriginEntry[]): OriginEntry[] => {
  let bytes = 0
  let n = 0
  while (n < entries.length && (n === 0 || bytes + (entries[n] as OriginEntry).update.length <= MAX_BATCH_BYTES)) {
    bytes += (entries[n] as OriginEntry).update.length
    n++
  }
  return entries.slice(0, n)
}

export class PeerLink {
  status: LinkStatus = 'down'
  /** The peer's durable marks, from its welcome and acks. */
  peerHave: Marks = {}
  lastError: string | undefined
  /** The kind of `lastError`. */
  lastErrorKind: LinkErrorKind | undefined
  private ws: WebSocket | null = null
  /** The HTTP status of a refused upgrade, until the close that follows it. */
  private refusedWith: number | null = null
  /** This side closed the link (a drop): its close code is ours, not a refusal. */
  private droppedByUs = false
  private readonly sent = new Map<string, number>()
  /** Per origin: the fold generation and mark the last catch-up covered. */
  private readonly covered = new Map<string, { generation: number, upTo: number }>()
  private inFlight = 0
  private pumping = false
  private pumpAgain = false
  private pumpTimer: NodeJS.Timeout | null = null
  private reconnectTimer: NodeJS.Timeout | null = null
  private heartbeat: NodeJS.Timeout | null = null
  private attempts = 0
  private lastHeard = 0
  private pingSentAt = 0
  /** Round trip of the last answered ping. */
  rttMs: number | null = null
  /** The handshake is done once both the welcome and the peer's policy arrived. */
  private welcomed = false
  private gotPolicy = false
  private svWaiters: { resolve: (docs: { docName: string, stateVector: Uint8Array }[]) => void, reject: (err: Error) => void }[] = []
  private closed = false

  constructor (private readonly mesh: Mesh, readonly region: string, readonly url: string) {}

  start (): void {
    this.connect()
  }

  /** When the peer was last heard on this link. */
  get lastHeardAt (): number {
    return this.lastHeard
  }

  send (message: PeerMessage): boolean {
    if (this.ws === null || this.ws.readyState !== WebSocket.OPEN) return false
    const frame = encodePeerMessage(message)
    this.ws.send(frame)
    this.mesh.metrics.peerBytesOut.inc({ peer: this.region }, frame.length)
    return true
  }

  /**
   * Wakes the pump: at once while nothing is in flight (a lone keystroke should not wait),
   * after the batching window behind unacknowledged batches (fast typing merges while it waits).
   */
  schedulePump (delayMs = this.inFlight === 0 ? 0 : this.mesh.timing.batchWindowMs): void {
    if (this.status !== 'up' || this.pumpTimer !== null) return
    this.pumpTimer = setTimeout(() => {
      this.pumpTimer = null
      this.pump().catch(err => this.drop(`replication failed: ${(err as Error).message}`, 1011, 'replication'))
    }, delayMs)
  }

  close (): void {
    this.closed = true
    if (this.reconnectTimer !== null) clearTimeout(this.reconnectTimer)
    if (this.pumpTimer !== null) clearTimeout(this.pumpTimer)
    this.ws?.close(CloseCode.GoingAway, 'relay shutting down')
    this.ws?.terminate()
  }

  private connect (): void {
    this.status = 'connecting'
    const ws = new WebSocket(`${this.url.replace(/\/$/, '')}/v1/peer`, {
      headers: { authorization: `Bearer ${this.mesh.meshSecret}`, 'x-georelay-region': this.mesh.region },
      perMessageDeflate: this.mesh.timing.compress === false ? false : PEER_DEFLATE,
      handshakeTimeout: this.mesh.timing.linkTimeoutMs,
      maxPayload: this.mesh.maxPayload,
    })
    // A relay refuses a link before the upgrade (401 wrong secret, 403 not a peer there).
    ws.on('unexpected-response', (_req, res) => {
      this.refusedWith = res.statusCode ?? 0
      res.resume()
      ws.terminate()
    })
    this.ws = ws
    this.lastHeard = Date.now()
    ws.on('message', (data: Buffer, isBinary: boolean) => {
      this.lastHeard = Date.now()
      this.mesh.metrics.peerBytesIn.inc({ peer: this.region }, data.length)
      let message: PeerMessage
      try {
        if (!isBinary) throw new Error('a text frame, which is not part of the peer protocol')
        message = decodePeerMessage(new Uint8Array(data.buffer, data.byteOffset, data.byteLength))
        checkPeerMessage(message)
      } catch (err) {
        return this.drop(`malformed message from the peer: ${(err as Error).message}`, CloseCode.MalformedMessage, 'protocol')
      }
      this.handle(message)
    })
    ws.on('pong', () => {
      this.lastHeard = Date.now()
      if (this.pingSentAt !== 0) this.rttMs = this.lastHeard - this.pingSentAt
      this.pingSentAt = 0
    })
    ws.on('open', () => {
      this.send({ type: 'policy', rules: this.mesh.placement.canonical })
      this.heartbeat = setInterval(() => {
        if (Date.now() - this.lastHeard > this.mesh.timing.linkTimeoutMs) return this.drop('the peer went silent past the link timeout', 1011, 'timeout')
        this.pingSentAt = Date.now()
        ws.ping()
      }, this.mesh.timing.heartbeatMs)
    })
    ws.on('close', (code, reason) => this.onClose(ws, code, reason.toString()))
    ws.on('error', err => {
      this.lastError = err.message
      this.lastErrorKind = kindOfSocketError(err)
    })
  }

  private handle (message: PeerMessage): void {
    switch (message.type) {
      case 'welcome':
        if (message.region !== this.region) return this.drop(`expected region ${this.region} but ${message.region} answered`, CloseCode.Forbidden, 'wrong-region')
        this.peerHave = { ...message.have }
        this.welcomed = true
        return this.handshakeDone()
      case 'policy':
        this.mesh.placement.setPeerRules(this.region, message.rules)
        this.gotPolicy = true
        return this.handshakeDone()
      case 'ack':
        for (const [origin, seq] of Object.entries(message.have)) if (seq > (this.peerHave[origin] ?? 0)) this.peerHave[origin] = seq
        this.inFlight = Math.max(0, this.inFlight - 1)
        this.mesh.acknowledged(this.region)
        return this.schedulePump(0)
      case 'sv-reply':
        return this.svWaiters.shift()?.resolve(message.docs)
      case 'link-state':
      case 'awareness':
        return this.mesh.handleControl(message, this.region)
      default:
        return this.drop(`unexpected ${message.type} on an outbound link`, CloseCode.MalformedMessage, 'protocol')
    }
  }

  /** Nothing is streamed before the peer's rules are known: they decide what may go there. */
  private handshakeDone (): void {
    if (!this.welcomed || !this.gotPolicy || this.status === 'up') return
    this.status = 'up'
    this.attempts = 0
    this.lastError = undefined
    this.lastErrorKind = undefined
    this.mesh.linkChanged(this.region)
    this.schedulePump(0)
    this.reconcileRestricted().catch(err => this.drop(`reconciling restricted documents failed: ${(err as Error).message}`, 1011, 'replication'))
  }

  /**
   * Documents restricted to some regions cannot travel through the others, so while this
   * link was down a relay forwarding our entries to the peer claimed marks past entries it
   * never had. Bring such documents up to date by state vector each time the link comes up.
   */
  private async reconcileRestricted (): Promise<void> {
    const { placement, log } = this.mesh
    if (!placement.rules.some(rule => rule.regions !== undefined)) return
    const restricted = (await log.store.listDocs()).filter(docName =>
      placement.resolve(docName).regions.length < placement.regions.length && placement.mayReceive(docName, this.region))
    if (restricted.length > 0 && this.status === 'up') await this.sendMissing(restricted)
  }

  private drop (reason: string, code = 1011, kind: LinkErrorKind = 'closed'): void {
    this.lastError = reason
    this.lastErrorKind = kind
    this.droppedByUs = true
    this.mesh.logger.log('warn', 'peer link dropped', { peer: this.region, reason })
    this.ws?.close(code, closeReason(reason))
    this.ws?.terminate()
  }

  private onClose (ws: WebSocket, code: number, reason: string): void {
    if (this.ws !== ws) return
    this.ws = null
    if (this.heartbeat !== null) clearInterval(this.heartbeat)
    this.heartbeat = null
    const wasUp = this.status === 'up'
    this.status = 'down'
    this.welcomed = false
    this.gotPolicy = false
    this.pingSentAt = 0
    this.inFlight = 0
    this.sent.clear()
    this.covered.clear()
    for (const waiter of this.svWaiters.splice(0)) waiter.reject(new Error('link closed'))
    // A peer refuses before the upgrade; one of an older version closed with 4401/4403 after it.
    const closedWith = this.droppedByUs ? null : code === CloseCode.Unauthenticated ? 401 : code === CloseCode.Forbidden ? 403 : null
    const refused = this.refusedWith ?? closedWith
    this.refusedWith = null
    this.droppedByUs = false
    if (refused !== null) {
      this.lastErrorKind = refused === 401 ? 'refused-secret' : refused === 403 ? 'refused-region' : 'refused'
      this.lastError = `refused by ${this.region} (${refused}${reason === '' ? '' : `: ${reason}`})`
      this.mesh.refusalLog.log('error', 'peer refused the link; check meshSecret and peers on both sides', { peer: this.region, status: refused, kind: this.lastErrorKind })
    }
    if (wasUp) this.mesh.linkChanged(this.region)
    if (this.closed) return
    // Full jitter, so relays that lost each other do not all come back in one wave.
    const ceiling = Math.min(BACKOFF_MAX_MS, BACKOFF_BASE_MS * 2 ** this.attempts++)
    this.reconnectTimer = setTimeout(() => {
      this.reconnectTimer = null
      if (!this.closed) this.connect()
    }, Math.random() * ceiling)
  }

  private async pump (): Promise<void> {
    if (this.pumping) {
      this.pumpAgain = true
      return
    }
    this.pumping = true
    try {
      do {
        this.pumpAgain = false
        for (const origin of this.mesh.originsFor(this.region)) await this.pumpOrigin(origin)
      } while (this.pumpAgain && this.status === 'up')
    } finally {
      this.pumping = false
    }
  }

  private async pumpOrigin (origin: string): Promise<void> {
    while (this.status === 'up' && this.inFlight < WINDOW) {
      const position = Math.max(this.sent.get(origin) ?? 0, this.peerHave[origin] ?? 0)
      const read = await this.mesh.log.read(origin, position, MAX_BATCH_ENTRIES)
      if (this.status !== 'up') return
      const covered = this.covered.get(origin)
      if (read.foldedUpTo > position && covered?.generation !== read.foldGeneration) {
        // Compaction folded entries the peer may lack: bring those documents up to date by
        // state vector, then stream what is still in the log.
        await this.catchUp(origin, position)
        this.covered.set(origin, { generation: read.foldGeneration, upTo: read.foldedUpTo })
      }
      const taken = takeBatch(read.entries)
      const last = taken[taken.length - 1]
      // Entries of documents the peer may not hold stay here; the claim below still covers
      // them, since the peer must never have them.
      const allowed = taken.filter(entry => this.mesh.placement.mayReceive(entry.docName, this.region))
      if (last === undefined) {
        // Everything of this origin past the peer's mark was folded and caught up: say so,
        // so the peer's mark moves past the folded entries.
        const folded = this.covered.get(origin)?.upTo ?? 0
        if (folded > position && this.send({ type: 'batch', entries: [], upTo: { [origin]: folded } })) {
          this.sent.set(origin, folded)
          this.inFlight++
        }
        return
      }
      const entries = mergeByDoc(allowed, origin)
      if (!this.send({ type: 'batch', entries, upTo: { [origin]: last.originSeq } })) return
      this.sent.set(origin, last.originSeq)
      this.inFlight++
      this.mesh.metrics.peerUpdatesOut.inc({ peer: this.region }, allowed.length)
    }
  }

  private requestStateVectors (docNames: string[]): Promise<{ docName: string, stateVector: Uint8Array }[]> {
    return new Promise((resolve, reject) => {
      this.svWaiters.push({ resolve, reject })
      if (!this.send({ type: 'sv-request', docNames })) reject(new Error('link closed'))
    })
  }

  private async catchUp (origin: string, after: number): Promise<void> {
    const docNames = (await this.mesh.log.docsFoldedPast(origin, after)).filter(docName => this.mesh.placement.mayReceive(docName, this.region))
    this.mesh.logger.log('info', 'peer is behind compaction; catching up by state vector', { peer: this.region, origin, after, docs: docNames.length })
    await this.sendMissing(docNames)
  }

  /** Asks the peer's state vectors of these documents and sends what it lacks. */
  private async sendMissing (docNames: string[]): Promise<void> {
    for (let i = 0; i < docNames.length; i += SV_REQUEST_DOCS) {
      const asked = docNames.slice(i, i + SV_REQUEST_DOCS)
      const replies = await this.requestStateVectors(asked)
      for (const { docName, stateVector } of replies) {
        // Only what was asked: a reply naming another document must not make us send it.
        if (!asked.includes(docName)) continue
        const missing = diffUpdate(await this.mesh.registry.stateOf(docName), stateVector)
        if (!isEmptyUpdate(missing)) this.send({ type: 'catch-up', docName, update: missing })
      }
      this.mesh.metrics.catchUps.inc({ peer: this.region })
    }
  }
}

