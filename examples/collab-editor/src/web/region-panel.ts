/**
 * The region panel: every region with its state (up, down, cut) and replication lag, every
 * simulated link with its delay, and the buttons that kill and revive a region or cut and heal
 * a link through the demo server's control API.
 */
import type { ApiError, ClusterSnapshot, RegionSnapshot } from '../shared/cluster-snapshot.js'
import { el, fill } from './element.js'

export interface PanelContext {
  /** The region this tab is connected to (null while none). */
  current(): string | null
  pinned: string | null
  /** Something went wrong talking to the demo server. */
  onError(message: string): void
}

/** Asks the demo server for a change; it answers with the cluster after the change. */
const post = async (path: string): Promise<ClusterSnapshot> => {
  const res = await fetch(path, { method: 'POST' })
  const body = await res.json() as ClusterSnapshot | ApiError
  if (!res.ok || 'error' in body) throw new Error('error' in body ? body.error : `${path} answered ${res.status}`)
  return body
}

const lagText = (r: RegionSnapshot): string => {
  if (r.lagMs === null) return '—'
  const peers = r.peers.filter(p => p.link !== 'up').map(p => p.region)
  const lag = r.lagMs === 0 ? 'in sync' : `${r.lagMs < 1000 ? `${r.lagMs} ms` : `${(r.lagMs / 1000).toFixed(1)} s`} behind`
  return `${lag}${r.pendingUpdates ? ` · ${r.pendingUpdates} to send` : ''}${peers.length > 0 ? ` · ${peers.join(', ')} unreachable` : ''}`
}

interface RegionRow {
  row: HTMLElement
  name: HTMLElement
  state: HTMLElement
  lag: HTMLElement
  button: HTMLButtonElement
}
interface LinkRow { row: HTMLElement, state: HTMLElement, button: HTMLButtonElement }

const setButton = (button: HTMLButtonElement, action: string, target: string, busy: boolean): void => {
  button.dataset.action = action
  button.dataset.target = target
  button.dataset.testid = `${action}-${target.replace('/', '-')}`
  button.className = action
  button.textContent = action
  button.disabled = busy
}

const setBadge = (badge: HTMLElement, state: string): void => {
  badge.className = `badge ${state}`
  badge.textContent = state
}

/**
 * The tables are built once and then updated in place: the cluster's state arrives twice a
 * second, and a button rebuilt that often could not be clicked.
 */
export class RegionPanel {
  private readonly busy = new Set<string>()
  private last: ClusterSnapshot | null = null
  private readonly regionRows = new Map<string, RegionRow>()
  private readonly linkRows = new Map<string, LinkRow>()

  constructor (
    private readonly regionsTable: HTMLElement,
    private readonly linksTable: HTMLElement,
    private readonly ctx: PanelContext,
  ) {
    for (const table of [regionsTable, linksTable]) {
      table.addEventListener('click', event => {
        const button = (event.target as Element).closest('button[data-action]')
        if (button instanceof HTMLButtonElement && !button.disabled) {
          this.act(button.dataset.action as string, button.dataset.target as string)
        }
      })
    }
  }

  get snapshot (): ClusterSnapshot | null {
    return this.last
  }

  render (snapshot: ClusterSnapshot | null = this.last): void {
    if (snapshot === null) return
    this.last = snapshot
    const current = this.ctx.current()
    for (const r of snapshot.regions) {
      const row = this.regionRow(r.name)
      row.row.classList.toggle('current', r.name === current)
      fill(row.name, el('strong', {}, r.name),
        r.name === current && el('span', { class: 'tag you' }, 'you'),
        r.name === this.ctx.pinned && el('span', { class: 'tag' }, 'pinned'))
      setBadge(row.state, r.state)
      row.lag.textContent = lagText(r)
      row.lag.title = r.peers.map(p => `${p.region}: link ${p.link}, ${p.lagMs} ms, ${p.pendingUpdates} pending`).join('\n')
      setButton(row.button, r.state === 'down' ? 'revive' : 'kill', r.name, this.busy.has(r.name))
    }
    for (const l of snapshot.links) {
      const target = `${l.a}/${l.b}`
      const row = this.linkRow(l.a, l.b, l.delayMs)
      row.row.classList.toggle('current', current !== null && (l.a === current || l.b === current))
      setBadge(row.state, l.cut ? 'cut' : 'up')
      setButton(row.button, l.cut ? 'heal' : 'cut', target, this.busy.has(target))
    }
  }

  private regionRow (name: string): RegionRow {
    let row = this.regionRows.get(name)
    if (row === undefined) {
      if (this.regionRows.size === 0) this.regionsTable.append(el('tr', {}, el('th', {}, 'region'), el('th', {}, 'state'), el('th', {}, 'replication lag'), el('th', {})))
      const cells = { name: el('td'), state: el('span', { 'data-testid': 'region-state' }), lag: el('td', { class: 'lag' }), button: el('button') as HTMLButtonElement }
      row = { row: el('tr', { 'data-region': name }, cells.name, el('td', {}, cells.state), cells.lag, el('td', {}, cells.button)), ...cells }
      this.regionsTable.append(row.row)
      this.regionRows.set(name, row)
    }
    return row
  }

  private linkRow (a: string, b: string, delayMs: number): LinkRow {
    const key = `${a}/${b}`
    let row = this.linkRows.get(key)
    if (row === undefined) {
      if (this.linkRows.size === 0) this.linksTable.append(el('tr', {}, el('th', {}, 'link'), el('th', {}, 'one way'), el('th', {}, 'state'), el('th', {})))
      const cells = { state: el('span'), button: el('button') as HTMLButtonElement }
      row = { row: el('tr', { 'data-link': key }, el('td', {}, `${a} ↔ ${b}`), el('td', {}, `${delayMs} ms`), el('td', {}, cells.state), el('td', {}, cells.button)), ...cells }
      this.linksTable.append(row.row)
      this.linkRows.set(key, row)
    }
    return row
  }

  private act (action: string, target: string): void {
    const path = action === 'kill' || action === 'revive' ? `/api/regions/${target}/${action}` : `/api/links/${target}/${action}`
    this.busy.add(target)
    this.render()
    post(path).then(snapshot => {
      this.busy.delete(target)
      this.render(snapshot)
    }, (err: Error) => {
      this.busy.delete(target)
      this.render()
      this.ctx.onError(`${action} ${target.replace('/', '–')} failed: ${err.message}`)
    })
  }
}
