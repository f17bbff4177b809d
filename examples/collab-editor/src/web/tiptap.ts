/**
 * The rich-text page: Tiptap over an unchanged `@hocuspocus/provider`, talking to the relay's
 * `/v1/hocuspocus` endpoint as it would to a Hocuspocus server. `?region=NAME` picks the one
 * region the provider connects to (default: the cluster's first), `?doc=` the document (default
 * demo/rich), `?name=` the name at the caret.
 */
import * as Y from 'yjs'
import { HocuspocusProvider } from '@hocuspocus/provider'
import type { ClusterSnapshot } from '../shared/cluster-snapshot.js'
import { byId, el, fill } from './element.js'
import { identityFor } from './identity.js'
import { carryParams } from './nav.js'
import { type RichStatus, socketOf, watchProvider } from './provider-status.js'
import { RegionPanel } from './region-panel.js'
import { mountRichEditor } from './rich-editor.js'

/** What the page exposes for its end-to-end test and for curious people in the console. */
export interface TiptapHandle {
  /** The region the provider is pinned to (it connects nowhere else). */
  region(): string
  /** The editor's plain text. */
  text(): string
  /** The provider's first sync with the relay is done (and the socket has not closed since). */
  synced(): boolean
  /** Local changes the relay has not yet confirmed durable. */
  unsynced(): number
  /** The socket: connecting, connected or disconnected. */
  socket(): string
  /** The status line's word: connecting, syncing, saving, saved, offline or refused. */
  status(): RichStatus
}

const DEFAULT_DOC = 'demo/rich'

const start = async (): Promise<void> => {
  const params = new URLSearchParams(location.search)
  const identity = identityFor(params.get('name'))
  const docName = params.get('doc') || DEFAULT_DOC
  const you = byId('you')
  carryParams(byId('other-page'))
  const problems = byId('problems')
  const report = (message: string): void => { fill(problems, message) }

  const cluster = await (await fetch('/api/cluster')).json() as ClusterSnapshot
  const first = cluster.regions[0]
  if (first === undefined) throw new Error('the cluster has no regions')
  const requested = params.get('region')
  const pinned = cluster.regions.find(r => r.name === requested) ?? first
  if (requested !== null && pinned.name !== requested) {
    report(`There is no region "${requested}" here (there are ${cluster.regions.map(r => r.name).join(', ')}); using ${pinned.name}.`)
  }

  const doc = new Y.Doc()
  const provider = new HocuspocusProvider({ url: `${pinned.url}/v1/hocuspocus`, name: docName, document: doc })
  fill(byId('doc-name'), docName)
  const connected = (): string | null => socketOf(provider) === 'connected' ? pinned.name : null
  const panel = new RegionPanel(byId('regions'), byId('links'), { current: connected, pinned: pinned.name, onError: report })
  const drawYou = (): void => {
    const region = connected()
    you.dataset.region = region ?? ''
    fill(you,
      'You are ', el('strong', { style: `color: ${identity.color}` }, identity.name), ', ',
      region === null
        ? el('span', {}, el('strong', { class: 'offline' }, 'not connected'), ` (waiting for ${pinned.name}: this page does not fail over)`)
        : el('span', {}, 'connected to ', el('strong', { 'data-testid': 'my-region' }, region), ' (pinned)'),
    )
  }
  const status = watchProvider(provider, pinned.name, byId('status'), () => {
    drawYou()
    panel.render()
  })
  const editor = mountRichEditor({ element: byId('editor'), doc, provider, identity })

  const events = new EventSource('/api/events')
  events.onmessage = event => {
    panel.render(JSON.parse(event.data as string) as ClusterSnapshot)
    if (problems.textContent?.startsWith('The demo server')) report('')
  }
  events.onerror = () => report('The demo server does not answer (stopped?); the editor keeps working while its relay does.')

  const handle: TiptapHandle = {
    region: () => pinned.name,
    text: () => editor.getText(),
    synced: () => provider.synced,
    unsynced: () => provider.unsyncedChanges,
    socket: status.socket,
    status: status.status,
  }
  ;(globalThis as unknown as { georelayTiptap: TiptapHandle }).georelayTiptap = handle
  drawYou()
}

start().catch((err: Error) => {
  const problems = document.getElementById('problems')
  if (problems !== null) problems.textContent = `The demo could not start: ${err.message}`
})
