/**
 * HTTP on the relay's port (docs/protocol.md, HTTP): liveness, readiness, Prometheus metrics and the
 * region list that SDKs use for discovery.
 *
 * `/v1/regions` is open to anyone who can reach the port, so by default it shows only what
 * discovery needs — regions, their public URLs, whether they are up. The operators' view (each
 * peer link's state, lag, the kind of error that keeps it down, the namespace rules) is
 * `http.regions: "full"`, or any request bearing `http.adminToken`. Internal addresses and
 * error texts never appear; they are in the relay's log.
 */
import crypto from 'node:crypto'
import type { IncomingMessage, ServerResponse } from 'node:http'
import type { Registry } from 'prom-client'
import type { LinkErrorKind, PeerInfo } from '../mesh/index.js'
import { corsHeaders } from './cors.js'
import { DOCS_PATH } from './doc-api.js'

export interface RegionInfo {
  region: string
  publicUrl: string
  /**
   * Every region; this relay's own lists its live nodes when it is one of several, and which of
   * them holds the mesh lease (dials the peers) when the region has peers.
   */
  regions: {
    name: string
    url: string
    self: boolean
    state: 'up' | 'down'
    /** Why this relay's link to it is down (its `peers[].error`), when it knows. */
    error?: LinkErrorKind
    /** Its namespace rules differ from this relay's. */
    policy?: 'mismatch'
    nodes?: { name: string, url: string }[]
    meshNode?: string
  }[]
  peers: PeerInfo[]
  /** This relay's namespace rules: their digest (peers compare theirs), and each active-passive namespace's writer. */
  policy: {
    digest: string
    namespaces: {
      match: string
      mode: string
      /** The regions the rule allows (every region when it names none). */
      regions: string[]
      ack?: string
      primary?: string | undefined
      standby?: string[]
      writer?: string | null
    }[]
  }
}

export interface HttpOptions {
  regions: 'discovery' | 'full' | 'off'
  allowOrigins: string[]
  adminToken?: string | undefined
}

export interface HttpContext {
  /** The document API (/v1/docs/…), which has methods of its own. */
  docs(req: IncomingMessage, res: ServerResponse): Promise<void>
  /** Null when ready, otherwise the reason it is not. */
  ready(): string | null
  registry: Registry
  regions(): RegionInfo
  http: HttpOptions
}

const digest = (text: string): Buffer => crypto.createHash('sha256').update(text).digest()

const isAdmin = (req: IncomingMessage, token: string | undefined): boolean => {
  if (token === undefined) return false
  const offered = /^Bearer (.+)$/.exec(String(req.headers.authorization ?? ''))?.[1] ?? ''
  return crypto.timingSafeEqual(digest(offered), digest(token))
}

export const handleHttp = async (ctx: HttpContext, req: IncomingMessage, res: ServerResponse): Promise<void> => {
  const send = (status: number, type: string, body: string): void => {
    res.writeHead(status, { 'content-type': type, 'cache-control': 'no-store', ...corsHeaders(req, ctx.http.allowOrigins) })
    res.end(body)
  }
  const json = (status: number, value: unknown): void => send(status, 'application/json; charset=utf-8', JSON.stringify(value, null, 2) + '\n')
  const path = (req.url ?? '/').split('?')[0] ?? '/'
  if (path.startsWith(DOCS_PATH)) return ctx.docs(req, res)
  if (req.method !== 'GET' && req.method !== 'HEAD') {
    res.setHeader('allow', 'GET, HEAD')
    return json(405, { error: `${req.method} is not allowed; the relay's HTTP endpoints are read-only (GET)` })
  }
  switch (path) {
    case '/healthz':
      return send(200, 'text/plain; charset=utf-8', 'ok\n')
    case '/readyz': {
      const notReady = ctx.ready()
      return notReady === null
        ? send(200, 'text/plain; charset=utf-8', 'ready\n')
        : send(503, 'text/plain; charset=utf-8', `not ready: ${notReady}\n`)
    }
    case '/metrics':
      return send(200, ctx.registry.contentType, await ctx.registry.metrics())
    case '/v1/regions': {
      const view = isAdmin(req, ctx.http.adminToken) ? 'full' : ctx.http.regions
      if (view === 'off') return json(404, { error: 'this relay does not publish /v1/regions (http.regions is "off")' })
      const info = ctx.regions()
      return json(200, view === 'full' ? info : { region: info.region, publicUrl: info.publicUrl, regions: info.regions })
    }
    default:
      return json(404, {
        error: `no endpoint at ${path}: documents are WebSocket URLs (ws://HOST:PORT/<document>); HTTP serves /healthz, /readyz, /metrics, /v1/regions and /v1/docs/<document>`,
      })
  }
}
