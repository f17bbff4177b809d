/**
 * One document on the page: a CodeMirror 6 editor bound to the document's Y.Text through
 * y-codemirror.next (remote cursors and selections come from the session's awareness), a status
 * line (synced, pending with the count, offline, and the acknowledgement level the newest write
 * reached), and who else is in the document from which region.
 */
import * as Y from 'yjs'
import { basicSetup } from 'codemirror'
import { EditorView } from '@codemirror/view'
import { EditorState } from '@codemirror/state'
import { yCollab } from 'y-codemirror.next'
import type { AckLevel, GeoClient, GeoSession } from '@georelay/client'
import { el, fill } from './element.js'
import type { Identity } from './identity.js'

/** The shared text's name: the README's examples and the node quickstart use the same one. */
export const TEXT_NAME = 't'

const LEVELS: AckLevel[] = ['local', 'majority', 'all']

/** What a person in the document announces through awareness. */
export interface Presence extends Identity {
  region: string | null
}

export interface DocView {
  readonly doc: Y.Doc
  readonly session: GeoSession
  /** The acknowledgement level the newest acknowledged write reached ('none' before any). */
  reached(): AckLevel | 'none'
  /** Announces this tab's region to the others (after a failover, say). */
  setRegion(region: string | null): void
  /** Draws the people line again (the delays between regions changed). */
  refresh(): void
}

export interface DocViewOptions {
  client: GeoClient
  name: string
  identity: Identity
  parent: HTMLElement
  /** One-way delay between two regions, for "60 ms from you". */
  delayBetween: (a: string, b: string) => number | null
}

export const mountDocView = ({ client, name, identity, parent, delayBetween }: DocViewOptions): DocView => {
  const doc = new Y.Doc()
  // 'all' so that the relay reports every level as it is reached: local, majority, all.
  const session = client.open(name, doc, { ack: 'all' })
  const ytext = doc.getText(TEXT_NAME)
  const undoManager = new Y.UndoManager(ytext)
  const acked: Record<AckLevel, number> = { local: 0, majority: 0, all: 0 }

  const editorBox = el('div', { class: 'editor' })
  const status = el('div', { class: 'status', 'data-testid': 'status' })
  const people = el('div', { class: 'people' })
  const freshness = el('div', { class: 'freshness', 'data-testid': 'staleness' })
  parent.append(el('article', { class: 'doc', 'data-doc': name }, el('h2', {}, 'document ', el('code', {}, name)), editorBox, status, freshness, people))
  const view = new EditorView({
    parent: editorBox,
    state: EditorState.create({
      doc: ytext.toString(),
      extensions: [basicSetup, EditorView.lineWrapping, yCollab(ytext, session.awareness, { undoManager })],
    }),
  })
  view.dom.setAttribute('data-testid', 'editor')

  const reached = (): AckLevel | 'none' => {
    const newest = acked.local
    if (newest === 0) return 'none'
    return [...LEVELS].reverse().find(level => acked[level] >= newest) ?? 'local'
  }

  const drawStatus = (): void => {
    const pending = session.pendingWrites
    const level = reached()
    const label = session.status === 'pending' ? `pending (${pending})` : session.status
    const detail = session.status === 'offline'
      ? pending > 0 ? `${pending} edit${pending === 1 ? '' : 's'} kept in this tab until a region answers` : 'no region answers; edits stay in this tab'
      : session.status === 'pending' ? 'waiting for every region to store the newest edits'
        : session.status === 'synced' ? level === 'none' ? 'up to date; no edits from this tab yet' : 'every edit is durable in every region' : ''
    status.dataset.status = session.status
    status.dataset.pending = String(pending)
    status.dataset.ack = level
    const ladder = LEVELS.map((l, i) => el('span', { class: `level${i <= LEVELS.indexOf(level as AckLevel) ? ' reached' : ''}`, title: `acknowledged at ${l}` }, l))
    fill(status, el('span', { class: 'dot' }), el('strong', {}, label), el('span', { class: 'detail' }, detail), el('span', { class: 'ladder', title: 'how far the newest acknowledged edit got' }, 'ack ', ...ladder))
  }

  const drawPeople = (): void => {
    const mine = (session.awareness.getLocalState()?.user as Presence | undefined)?.region ?? null
    const others = [...session.awareness.getStates().entries()]
      .filter(([id, state]) => id !== doc.clientID && state.user !== undefined)
      .map(([, state]) => state.user as Presence)
    if (others.length === 0) {
      fill(people, 'Nobody else here yet: open this page in another tab with ', el('code', {}, '?region=…'), ' to be a user somewhere else.')
      return
    }
    fill(people, 'Also here: ', ...others.flatMap((p, i) => {
      const delay = mine !== null && p.region !== null && p.region !== mine ? delayBetween(mine, p.region) : null
      const where = p.region === null ? 'offline' : p.region === mine ? `${p.region}, your region` : `${p.region}${delay === null ? '' : `, ${delay} ms one way from yours`}`
      return [i > 0 ? ', ' : '', el('span', { class: 'person', style: `--person: ${p.color}` }, p.name), ` (${where})`]
    }))
  }

  // How far behind the region in use is on each other region's writes, as its relay knows it.
  const drawStaleness = (): void => {
    const lags = Object.entries(session.staleness)
    if (lags.length === 0) return fill(freshness, '')
    fill(freshness, 'Behind: ', ...lags.flatMap(([region, lag], i) => [
      i > 0 ? ', ' : '',
      el('span', { class: lag.lagMs === 0 ? 'fresh' : 'behind', 'data-region': region },
        region, ' ', lag.lagMs === 0 ? 'up to date' : `${lag.lagMs < 1000 ? `${lag.lagMs} ms` : `${(lag.lagMs / 1000).toFixed(1)} s`}${lag.pending > 0 ? ` (${lag.pending} to get)` : ''}`),
    ]))
  }
  session.on('staleness', drawStaleness)
  session.on('status', drawStatus)
  session.on('ack', (writeId, level) => {
    acked[level] = Math.max(acked[level], writeId)
    drawStatus()
  })
  // Local edits change the pending count without changing the status.
  doc.on('update', drawStatus)
  session.awareness.on('change', drawPeople)
  const presence: Presence = { ...identity, region: client.region }
  session.awareness.setLocalStateField('user', presence)
  drawStatus()
  drawPeople()

  return {
    doc,
    session,
    reached,
    setRegion: region => {
      session.awareness.setLocalStateField('user', { ...presence, region })
      drawPeople()
    },
    refresh: drawPeople,
  }
}
