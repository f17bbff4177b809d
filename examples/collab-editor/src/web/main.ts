/**
 * The demo page. `?region=NAME` pins the tab's region (a user who lives there: the SDK's
 * `preferRegion`, with the other regions for failover); `?name=` sets the name shown at the
 * cursor; `?doc=` (repeatable) names the documents to edit.
 */
import { GeoClient, probeRtt } from '@georelay/client'
import type { ClusterSnapshot } from '../shared/cluster-snapshot.js'
import { type DocView, mountDocView } from './doc-view.js'
import { byId, el, fill } from './element.js'
import { identityFor } from './identity.js'
import { carryParams } from './nav.js'
import { RegionPanel } from './region-panel.js'

/** What the page exposes for its end-to-end test and for curious people in the console. */
export interface DemoHandle {
  region(): string | null
  text(doc?: string): string
  status(doc?: string): string
}

const RTT_EVERY_MS = 2000

const start = async (): Promise<void> => {
  const params = new URLSearchParams(location.search)
  const identity = identityFor(params.get('name'))
  const docNames = params.getAll('doc').filter(Boolean)
  if (docNames.length === 0) docNames.push('demo/notes')
  const you = byId('you')
  carryParams(byId('other-page'))
  const problems = byId('problems')
  const report = (message: string): void => { fill(problems, message) }

  const cluster = await (await fetch('/api/cluster')).json() as ClusterSnapshot
  const requested = params.get('region')
  const pinned = requested !== null && cluster.regions.some(r => r.name === requested) ? requested : null
  if (requested !== null && pinned === null) report(`There is no region "${requested}" here (there are ${cluster.regions.map(r => r.name).join(', ')}); using the nearest.`)

  const client = new GeoClient({
    regions: cluster.regions.map(r => ({ name: r.name, url: r.url })),
    ...(pinned === null ? {} : { preferRegion: pinned }),
    // Quicker than the defaults, so that a cut or a revived region shows within seconds.
    heartbeatMs: 500,
    heartbeatTimeoutMs: 1500,
    probeIntervalMs: 3000,
    failoverJitterMs: 50,
  })
  let rtt: number | null = null
  let lastChange = ''
  const docs = new Map<string, DocView>()
  // client.region keeps naming the last region while the client looks for another.
  const currentRegion = (): string | null => [...docs.values()].some(view => view.session.status !== 'offline') ? client.region : null
  const panel = new RegionPanel(byId('regions'), byId('links'), { current: currentRegion, pinned, onError: report })
  const delayBetween = (a: string, b: string): number | null =>
    panel.snapshot?.links.find(l => (l.a === a && l.b === b) || (l.a === b && l.b === a))?.delayMs ?? null

  const drawYou = (): void => {
    const region = currentRegion()
    you.dataset.region = region ?? ''
    fill(you,
      'You are ', el('strong', { style: `color: ${identity.color}` }, identity.name), ', ',
      region === null
        ? el('strong', { class: 'offline' }, 'not connected')
        : el('span', {}, 'connected to ', el('strong', { 'data-testid': 'my-region' }, region), pinned === null ? ' (the nearest)' : region === pinned ? ' (pinned)' : ` (pinned to ${pinned}, which is unavailable)`),
      region !== null && rtt !== null ? ` · round trip ${rtt.toFixed(1)} ms` : '',
      lastChange === '' ? '' : el('span', { class: 'change' }, ` · ${lastChange}`),
    )
  }

  const section = byId('docs')
  for (const name of docNames) {
    const view = mountDocView({ client, name, identity, parent: section, delayBetween })
    view.session.on('status', () => {
      drawYou()
      panel.render()
    })
    docs.set(name, view)
  }

  client.on('region', ({ region, previous, reason }) => {
    lastChange = reason === 'initial' ? '' : `${reason} from ${previous ?? 'nowhere'}`
    rtt = null
    for (const view of docs.values()) view.setRegion(region)
    drawYou()
    panel.render()
  })
  client.on('offline', () => drawYou())
  setInterval(() => {
    const url = cluster.regions.find(r => r.name === client.region)?.url
    if (url === undefined) return
    probeRtt(url, { fetch: (u, init) => fetch(u, init), samples: 1, timeoutMs: 1000 }).then(ms => {
      rtt = ms
      drawYou()
    }, () => {})
  }, RTT_EVERY_MS)

  const events = new EventSource('/api/events')
  events.onmessage = event => {
    panel.render(JSON.parse(event.data as string) as ClusterSnapshot)
    for (const view of docs.values()) view.refresh()
    if (problems.textContent?.startsWith('The demo server')) report('')
  }
  events.onerror = () => report('The demo server does not answer (stopped?); the editors keep working while a relay does.')

  const view = (doc?: string): DocView => {
    const found = docs.get(doc ?? (docNames[0] as string))
    if (found === undefined) throw new Error(`no document ${doc ?? ''} on this page`)
    return found
  }
  const handle: DemoHandle = {
    region: () => client.region,
    text: doc => view(doc).doc.getText('t').toString(),
    status: doc => view(doc).session.status,
  }
  ;(globalThis as unknown as { georelayDemo: DemoHandle }).georelayDemo = handle
  drawYou()
}

start().catch((err: Error) => {
  const problems = document.getElementById('problems')
  if (problems !== null) problems.textContent = `The demo could not start: ${err.message}`
})
