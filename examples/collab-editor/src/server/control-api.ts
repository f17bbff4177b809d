/**
 * The demo's control API, on the page's own origin:
 *   GET  /api/cluster                    the cluster now (ClusterSnapshot)
 *   GET  /api/events                     the same, pushed as server-sent events while it changes
 *   POST /api/regions/REGION/kill|revive stop / start that region's relay (same port, same data)
 *   POST /api/links/A/B/cut|heal         cut / heal both directions of the simulated link A-B
 * A POST answers with the snapshot after the change.
 */
import type { IncomingMessage, ServerResponse } from 'node:http'
import type { LocalCluster } from '@georelay/cluster'
import type { ApiError, ClusterSnapshot } from '../shared/cluster-snapshot.js'
import { snapshotOf } from './snapshot.js'

/** How often subscribers of /api/events get the cluster's state (lag changes all the time). */
const PUSH_INTERVAL_MS = 500

type Action = (cluster: LocalCluster) => Promise<unknown> | void

const routeOf = (method: string, path: string): Action | 'not-found' | 'wrong-method' => {
  const region = /^\/api\/regions\/([a-z0-9-]+)\/(kill|revive)$/.exec(path)
  const link = /^\/api\/links\/([a-z0-9-]+)\/([a-z0-9-]+)\/(cut|heal)$/.exec(path)
  if (region === null && link === null) return 'not-found'
  if (method !== 'POST') return 'wrong-method'
  if (region !== null) {
    const name = region[1] as string
    return region[2] === 'kill' ? c => c.stopRegion(name) : c => c.startRegion(name)
  }
  const [a, b] = [link?.[1] as string, link?.[2] as string]
  return link?.[3] === 'cut' ? c => c.cut(a, b) : c => c.heal(a, b)
}

const json = (res: ServerResponse, status: number, body: ClusterSnapshot | ApiError): void => {
  res.writeHead(status, { 'content-type': 'application/json; charset=utf-8', 'cache-control': 'no-store' }).end(JSON.stringify(body))
}

export class ControlApi {
  private readonly subscribers = new Set<ServerResponse>()
  private timer: NodeJS.Timeout | null = null

  constructor (private readonly cluster: LocalCluster) {}

  /** Handles the request if it is the API's; false if it is not under /api/. */
  handle (req: IncomingMessage, res: ServerResponse, path: string): boolean {
    if (!path.startsWith('/api/')) return false
    const method = req.method ?? 'GET'
    if (path === '/api/cluster' || path === '/api/events') {
      if (method !== 'GET') {
        json(res, 405, { error: `${path} is read-only (GET)` })
      } else if (path === '/api/cluster') {
        json(res, 200, snapshotOf(this.cluster))
      } else {
        this.subscribe(res)
      }
      return true
    }
    const route = routeOf(method, path)
    if (route === 'not-found') {
      json(res, 404, { error: `no endpoint at ${path}: try POST /api/regions/REGION/kill|revive or /api/links/A/B/cut|heal` })
      return true
    }
    if (route === 'wrong-method') {
      json(res, 405, { error: `${path} changes the cluster: use POST` })
      return true
    }
    // A page on another site must not be able to drive this cluster through the browser.
    const origin = req.headers.origin
    if (origin !== undefined && origin !== `http://${req.headers.host ?? ''}`) {
      json(res, 403, { error: `requests from ${origin} may not drive this cluster` })
      return true
    }
    Promise.resolve()
      .then(() => route(this.cluster))
      .then(() => {
        json(res, 200, snapshotOf(this.cluster))
        this.push()
      }, (err: Error) => json(res, /no region/.test(err.message) ? 404 : 500, { error: err.message }))
    return true
  }

  /** Ends every event stream (the server is stopping). */
  close (): void {
    if (this.timer !== null) clearInterval(this.timer)
    this.timer = null
    for (const res of this.subscribers) res.end()
    this.subscribers.clear()
  }

  private subscribe (res: ServerResponse): void {
    res.writeHead(200, { 'content-type': 'text/event-stream', 'cache-control': 'no-store', connection: 'keep-alive' })
    this.subscribers.add(res)
    res.on('close', () => {
      this.subscribers.delete(res)
      if (this.subscribers.size === 0 && this.timer !== null) {
        clearInterval(this.timer)
        this.timer = null
      }
    })
    this.timer ??= setInterval(() => this.push(), PUSH_INTERVAL_MS)
    this.send(res, JSON.stringify(snapshotOf(this.cluster)))
  }

  private push (): void {
    if (this.subscribers.size === 0) return
    const data = JSON.stringify(snapshotOf(this.cluster))
    for (const res of this.subscribers) this.send(res, data)
  }

  private send (res: ServerResponse, data: string): void {
    res.write(`data: ${data}\n\n`)
  }
}
