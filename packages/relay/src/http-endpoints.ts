/**
 * HTTP on the relay's port (DESIGN 4.4): liveness, readiness, Prometheus metrics and the
 * region list that SDKs use for discovery.
 */
import type { IncomingMessage, ServerResponse } from 'node:http'
import type { Registry } from 'prom-client'
import type { PeerInfo } from './mesh.js'

export interface RegionInfo {
  region: string
  publicUrl: string
  regions: { name: string, url: string, self: boolean, state: 'up' | 'down' }[]
  peers: PeerInfo[]
  /** This relay's namespace rules: their digest (peers compare theirs), and each active-passive namespace's writer. */
  policy: { digest: string, namespaces: { match: string, mode: string, writer?: string | null }[] }
}

export interface HttpContext {
  ready(): boolean
  registry: Registry
  regions(): RegionInfo
}

const send = (res: ServerResponse, status: number, type: string, body: string): void => {
  // Browsers running the SDK probe every region's /healthz and read /v1/regions cross-origin.
  res.writeHead(status, { 'content-type': type, 'cache-control': 'no-store', 'access-control-allow-origin': '*' })
  res.end(body)
}

const json = (res: ServerResponse, status: number, value: unknown): void =>
  send(res, status, 'application/json; charset=utf-8', JSON.stringify(value, null, 2) + '\n')

export const handleHttp = async (ctx: HttpContext, req: IncomingMessage, res: ServerResponse): Promise<void> => {
  const path = (req.url ?? '/').split('?')[0]
  if (req.method !== 'GET' && req.method !== 'HEAD') {
    res.setHeader('allow', 'GET, HEAD')
    return json(res, 405, { error: `${req.method} is not allowed; the relay's HTTP endpoints are read-only (GET)` })
  }
  switch (path) {
    case '/healthz':
      return send(res, 200, 'text/plain; charset=utf-8', 'ok\n')
    case '/readyz':
      return ctx.ready()
        ? send(res, 200, 'text/plain; charset=utf-8', 'ready\n')
        : send(res, 503, 'text/plain; charset=utf-8', 'not ready: the relay is starting or draining\n')
    case '/metrics':
      return send(res, 200, ctx.registry.contentType, await ctx.registry.metrics())
    case '/v1/regions':
      return json(res, 200, ctx.regions())
    default:
      return json(res, 404, {
        error: `no endpoint at ${path}: documents are WebSocket URLs (ws://HOST:PORT/<document>); HTTP serves /healthz, /readyz, /metrics and /v1/regions`,
      })
  }
}
