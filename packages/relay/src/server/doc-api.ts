/**
 * The HTTP document API on the relay's port (docs/protocol.md, HTTP document API), for servers
 * that read and write documents without a WebSocket: search indexing, rendering, imports, agents.
 *
 *   GET    /v1/docs/{name}[?sv=<base64url state vector>]  the state as one Yjs update (or the diff)
 *   POST   /v1/docs/{name}[?ack=local|majority|all]       a Yjs update: stored, replicated, acknowledged
 *   DELETE /v1/docs/{name}                                 erased in every region (mesh/erasure.ts)
 *
 * The name is the rest of the path, percent-decoded, as on the y-websocket endpoint. Requests
 * carry `Authorization: Bearer <JWT>` with the same grants as the sockets (anonymous access as
 * configured); a document of other regions is answered 307 with the nearest allowed region's
 * URL. A write is validated as a client's is, and the relay answers once it is durable at the
 * asked level. Every refusal is JSON `{ "error": CODE, "message": words }`, and nothing of a
 * refused write is stored. An erased document answers 410 with its erasure's progress; DELETE
 * answers 202 with it until every region that may hold the document confirmed, then 200.
 */
import type { IncomingMessage, ServerResponse } from 'node:http'
import {
  type AckLevel, ACK_LEVELS, ProtocolError, StoreError, diffUpdate, docNameProblem, isEmptyUpdate, isReservedName,
  stateVectorOf, validateStateVector, validateUpdate,
} from '@georelay/core'
import { AuthError, type Authenticator, type Grants } from '../auth/index.js'
import type { RelayConfig } from '../config/index.js'
import { type DocRegistry, RelayRefusal } from '../docs/index.js'
import { RequestLimiter, costOfBytes } from '../limits/index.js'
import type { Erasure, ErasureStatus } from '../mesh/index.js'
import type { Logger, RelayMetrics } from '../observability/index.js'
import type { Placement } from '../placement/index.js'
import type { WriteAcks } from '../replication/index.js'
import { corsHeaders } from './cors.js'
import { decodePathName } from './doc-path.js'

export const DOCS_PATH = '/v1/docs/'

/** How long a write may wait for `majority` or `all` unless `?timeoutMs=` says otherwise. */
const DEFAULT_ACK_TIMEOUT_MS = 10_000
const MAX_ACK_TIMEOUT_MS = 60_000

export interface DocApiContext {
  config: RelayConfig
  authenticator: Authenticator
  placement: Placement
  /** A region's public ws:// URL. */
  urlOf(region: string): string
  documents: DocRegistry
  acks: WriteAcks
  erasure: Erasure
  metrics: RelayMetrics
  logger: Logger
}

/** A refusal: its status, a stable code, words, and headers to add (Location, Retry-After). */
export class DocApiError extends Error {
  constructor (
    readonly status: number,
    readonly code: string,
    message: string,
    readonly headers: Record<string, string> = {},
    /** More fields of the JSON answer. */
    readonly details: Record<string, unknown> = {},
  ) {
    super(message)
  }
}

const base64url = (bytes: Uint8Array): string => Buffer.from(bytes).toString('base64url')

const httpBase = (wsUrl: string): string => wsUrl.replace(/^ws(s?):\/\//, 'http$1://').replace(/\/+$/, '')

interface Target {
  name: string
  query: URLSearchParams
  /** The path and query as the client sent them, for a redirect's Location. */
  raw: string
}

const parseTarget = (url: string): Target => {
  const at = url.indexOf('?')
  const path = at === -1 ? url : url.slice(0, at)
  const name = decodePathName(path.slice(DOCS_PATH.length))
  if (name === null) throw new DocApiError(400, 'ERR_BAD_NAME', 'the document name is not valid percent-encoding: an escape (%XX) does not decode to UTF-8')
  if (name === '') throw new DocApiError(400, 'ERR_BAD_NAME', 'no document name: use /v1/docs/<document name>')
  const problem = docNameProblem(name) ?? (isReservedName(name) ? `"${name}" is a reserved name` : null)
  if (problem !== null) throw new DocApiError(400, 'ERR_BAD_NAME', problem)
  return { name, query: new URLSearchParams(at === -1 ? '' : url.slice(at + 1)), raw: url }
}

const bearerOf = (req: IncomingMessage): string | null => {
  const header = req.headers.authorization
  if (header === undefined) return null
  const match = /^Bearer\s+(\S+)\s*$/i.exec(header)
  if (match === null) throw new DocApiError(401, 'ERR_TOKEN_MALFORMED', 'the Authorization header must be "Bearer <JWT>"')
  return match[1] as string
}

const ackLevelOf = (query: URLSearchParams): AckLevel => {
  const level = query.get('ack') ?? 'local'
  if (!(ACK_LEVELS as readonly string[]).includes(level)) throw new DocApiError(400, 'ERR_BAD_ACK', `ack must be one of ${ACK_LEVELS.join(', ')}, not "${level}"`)
  return level as AckLevel
}

const timeoutOf = (query: URLSearchParams): number => {
  const raw = query.get('timeoutMs')
  if (raw === null) return DEFAULT_ACK_TIMEOUT_MS
  const ms = Number(raw)
  if (!Number.isInteger(ms) || ms < 1 || ms > MAX_ACK_TIMEOUT_MS) throw new DocApiError(400, 'ERR_BAD_TIMEOUT', `timeoutMs must be a whole number of ms from 1 to ${MAX_ACK_TIMEOUT_MS}`)
  return ms
}

const stateVectorParam = (query: URLSearchParams): Uint8Array | null => {
  const raw = query.get('sv')
  if (raw === null) return null
  if (!/^[A-Za-z0-9_-]*$/.test(raw)) throw new DocApiError(400, 'ERR_BAD_STATE_VECTOR', 'sv must be a base64url state vector (A–Z, a–z, 0–9, - and _)')
  const sv = new Uint8Array(Buffer.from(raw, 'base64url'))
  try {
    validateStateVector(sv)
  } catch (err) {
    throw new DocApiError(400, 'ERR_BAD_STATE_VECTOR', `sv is not a Yjs state vector: ${(err as Error).message}`)
  }
  return sv
}

export class DocApi {
  private readonly limiter: RequestLimiter

  constructor (private readonly ctx: DocApiContext) {
    this.limiter = new RequestLimiter(ctx.config.limits.messagesPerSecond)
  }

  /** Answers a request under /v1/docs/. */
  async handle (req: IncomingMessage, res: ServerResponse): Promise<void> {
    const address = req.socket.remoteAddress ?? 'unknown'
    let status = 500
    try {
      status = await this.serve(req, res, address)
    } catch (err) {
      const refusal = this.refusalOf(err)
      status = refusal.status
      this.ctx.metrics.rejected.inc({ code: refusal.code })
      const body = { error: refusal.code, message: refusal.message, ...refusal.details }
      this.sendJson(req, res, refusal.status, body, refusal.headers)
      // A body the relay did not read is not read later: the connection goes with the answer.
      if (!req.complete) res.once('finish', () => req.destroy())
    } finally {
      this.ctx.metrics.docApiRequests.inc({ method: req.method ?? 'unknown', status: String(status) })
    }
  }

  private async serve (req: IncomingMessage, res: ServerResponse, address: string): Promise<number> {
    const method = req.method ?? 'GET'
    if (method === 'OPTIONS') return this.preflight(req, res)
    if (!['GET', 'HEAD', 'POST', 'DELETE'].includes(method)) {
      throw new DocApiError(405, 'ERR_METHOD', `${method} is not a method of /v1/docs: GET reads a document, POST writes an update, DELETE erases it`, { allow: 'GET, HEAD, POST, DELETE' })
    }
    const wait = this.limiter.waitMs(address)
    if (wait > 0) {
      throw new DocApiError(429, 'ERR_RATE_LIMITED', `rate limited: over ${this.ctx.config.limits.messagesPerSecond.rate} units/s from your address (limits.messagesPerSecond); retry after the Retry-After seconds`, { 'retry-after': String(Math.ceil(wait / 1000)) })
    }
    const target = parseTarget(req.url ?? DOCS_PATH)
    const grants = await this.grantsOf(req)
    const access = grants.access(target.name)
    if (access === 'none') throw new DocApiError(403, 'ERR_FORBIDDEN', `this token does not allow "${target.name}"`)
    const writing = method === 'POST' || method === 'DELETE'
    if (writing && access === 'ro') throw new DocApiError(403, 'ERR_READ_ONLY', `read-only: this token may read "${target.name}" but not ${method === 'DELETE' ? 'delete' : 'write'} it`)
    this.route(target, method === 'POST')
    if (method === 'DELETE') return this.erase(req, res, target)
    const erased = this.ctx.erasure.status(target.name)
    if (erased !== null) throw this.gone(target.name, erased)
    return writing ? this.write(req, res, target, address) : this.read(req, res, target, address)
  }

  private gone (name: string, status: ErasureStatus): DocApiError {
    return new DocApiError(410, 'ERR_DELETED', `"${name}" was deleted (${new Date(status.at).toISOString()}, asked in ${status.origin}): it takes no more reads or writes`, {}, { erasure: status })
  }

  /** Erases the document everywhere; 202 until every region that may hold it confirmed, then 200. */
  private async erase (req: IncomingMessage, res: ServerResponse, target: Target): Promise<number> {
    const status = await this.ctx.erasure.erase(target.name)
    const code = status.complete ? 200 : 202
    this.sendJson(req, res, code, { deleted: target.name, ...status })
    return code
  }

  private async grantsOf (req: IncomingMessage): Promise<Grants> {
    try {
      return await this.ctx.authenticator.verify(bearerOf(req))
    } catch (err) {
      if (err instanceof AuthError) {
        const message = err.code === 'ERR_TOKEN_MISSING' ? 'a token is required: send Authorization: Bearer <JWT>' : err.message
        throw new DocApiError(401, err.code, message, { 'www-authenticate': 'Bearer' })
      }
      throw err
    }
  }

  /** Residency and active-passive writers: a redirect, or a wait, before any work. */
  private route (target: Target, writing: boolean): void {
    const route = this.ctx.placement.route(target.name)
    // A readable standby serves reads; an HTTP write is simply sent to the writer.
    if (route.kind === 'elsewhere' || (route.kind === 'read-here' && writing)) {
      const url = this.ctx.urlOf(route.region)
      throw new DocApiError(307, 'ERR_MOVED', `"${target.name}" lives in ${route.region}: send the request to ${httpBase(url)}`, {
        location: `${httpBase(url)}${target.raw}`,
        'x-georelay-region': route.region,
      })
    }
    if (route.kind === 'hold' && writing) {
      throw new DocApiError(503, 'ERR_NO_WRITER', `"${target.name}" is written only by ${route.region}, which this region cannot reach now; retry later`, { 'retry-after': '1' })
    }
  }

  private async read (req: IncomingMessage, res: ServerResponse, target: Target, address: string): Promise<number> {
    const sv = stateVectorParam(target.query)
    const state = await this.ctx.documents.stateOf(target.name)
    this.limiter.charge(address, 1 + costOfBytes(state.length))
    if (isEmptyUpdate(state)) throw new DocApiError(404, 'ERR_NOT_FOUND', `this region holds nothing of "${target.name}"`)
    const body = sv === null ? state : diffUpdate(state, sv)
    res.writeHead(200, {
      'content-type': 'application/octet-stream',
      'content-length': String(body.length),
      'cache-control': 'no-store',
      'x-georelay-region': this.ctx.config.region,
      // What to send as ?sv= next time, to get only what changed since.
      'x-georelay-state-vector': base64url(stateVectorOf(state)),
      ...this.cors(req),
    })
    res.end(req.method === 'HEAD' ? undefined : body)
    return 200
  }

  private async write (req: IncomingMessage, res: ServerResponse, target: Target, address: string): Promise<number> {
    const level = ackLevelOf(target.query)
    const timeoutMs = timeoutOf(target.query)
    const update = await this.body(req)
    this.limiter.charge(address, 1 + costOfBytes(update.length))
    try {
      validateUpdate(update)
    } catch (err) {
      throw new DocApiError(400, 'ERR_INVALID_UPDATE', `the body is not a Yjs update: ${(err as Error).message}`)
    }
    const { documents } = this.ctx
    const doc = await documents.acquire(target.name)
    let seq: number
    try {
      seq = await doc.write(update, null)
    } finally {
      documents.release(target.name)
    }
    if (level !== 'local') await this.durable(target.name, seq, level, timeoutMs)
    this.sendJson(req, res, 200, { seq, ack: level, region: this.ctx.config.region })
    return 200
  }

  /** Waits until the write is durable at `level`, or refuses with 504 saying where it is. */
  private durable (name: string, seq: number, level: AckLevel, timeoutMs: number): Promise<void> {
    const owner = {}
    return new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => {
        this.ctx.acks.cancel(owner)
        reject(new DocApiError(504, 'ERR_ACK_TIMEOUT', `the update is durable here (seq ${seq}) and replicates, but was not durable at "${level}" within ${timeoutMs} ms; regions counted: ${this.ctx.placement.allowedRegions(name).join(', ')}`))
      }, timeoutMs)
      this.ctx.acks.whenDurable(seq, level, owner, () => {
        clearTimeout(timer)
        resolve()
      }, this.ctx.placement.allowedRegions(name))
    })
  }

  /** The request's body, refused past limits.maxMessageBytes without reading the rest. */
  private body (req: IncomingMessage): Promise<Uint8Array> {
    const max = this.ctx.config.limits.maxMessageBytes
    const tooLarge = (): DocApiError => new DocApiError(413, 'ERR_TOO_LARGE', `the update is larger than ${max} bytes (limits.maxMessageBytes)`)
    const declared = Number(req.headers['content-length'] ?? NaN)
    if (declared > max) return Promise.reject(tooLarge())
    return new Promise((resolve, reject) => {
      const chunks: Buffer[] = []
      let length = 0
      const onData = (chunk: Buffer): void => {
        length += chunk.length
        if (length > max) {
          req.off('data', onData)
          req.pause()
          return reject(tooLarge())
        }
        chunks.push(chunk)
      }
      req.on('data', onData)
      req.once('end', () => {
        if (length > max) return
        const body = Buffer.concat(chunks, length)
        // Its own buffer: Yjs readers do not stop at a view's end.
        resolve(new Uint8Array(body.buffer.slice(body.byteOffset, body.byteOffset + body.length)))
      })
      req.once('error', reject)
    })
  }

  private preflight (req: IncomingMessage, res: ServerResponse): number {
    res.writeHead(204, {
      ...this.cors(req),
      'access-control-allow-methods': 'GET, HEAD, POST, DELETE',
      'access-control-allow-headers': 'authorization, content-type',
      'access-control-max-age': '600',
    })
    res.end()
    return 204
  }

  private cors (req: IncomingMessage): Record<string, string> {
    return { ...corsHeaders(req, this.ctx.config.http.allowOrigins), 'access-control-expose-headers': 'x-georelay-state-vector, x-georelay-region, location' }
  }

  private refusalOf (err: unknown): DocApiError {
    if (err instanceof DocApiError) return err
    if (err instanceof RelayRefusal && err.code === 'ERR_DOC_TOO_LARGE') return new DocApiError(413, err.code, err.message)
    // Erased while the request ran.
    if ((err instanceof RelayRefusal && err.code === 'ERR_DELETED') || (err instanceof StoreError && err.code === 'ERR_DOC_ERASED')) {
      return new DocApiError(410, 'ERR_DELETED', err.message)
    }
    if (err instanceof ProtocolError) return new DocApiError(400, err.code, err.message)
    if (err instanceof StoreError) {
      this.ctx.logger.log('error', 'a document API write was not stored', { code: err.code, error: err.message })
      return new DocApiError(503, err.code, `the relay could not store the update (${err.code}); nothing was stored, retry later`, { 'retry-after': '1' })
    }
    this.ctx.logger.log('error', 'document API request failed', { error: String((err as Error)?.stack ?? err) })
    return new DocApiError(500, 'ERR_INTERNAL', 'internal relay error; nothing was stored, retry later')
  }

  private sendJson (
    req: IncomingMessage, res: ServerResponse, status: number, value: unknown, headers: Record<string, string> = {},
  ): void {
    if (res.headersSent) return void res.end()
    res.writeHead(status, { 'content-type': 'application/json; charset=utf-8', 'cache-control': 'no-store', ...this.cors(req), ...headers })
    res.end(JSON.stringify(value) + '\n')
  }
}
