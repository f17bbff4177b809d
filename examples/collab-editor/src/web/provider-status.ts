/**
 * The rich-text page's status line, from what a Hocuspocus provider tells: the socket's state,
 * whether its first sync is done, and how many local changes the relay has yet to confirm
 * (`unsyncedChanges`: the relay answers each with a SyncStatus once it is durable in its region).
 */
import type { HocuspocusProvider } from '@hocuspocus/provider'
import { el, fill } from './element.js'

export type RichStatus = 'connecting' | 'syncing' | 'saving' | 'saved' | 'offline' | 'refused'

export interface ProviderStatus {
  /** The socket: connecting, connected or disconnected. */
  socket(): string
  status(): RichStatus
  /** Why the relay refused the document (`authenticationFailed`), null unless it did. */
  refusal(): string | null
}

const plural = (n: number, word: string): string => `${n} ${word}${n === 1 ? '' : 's'}`

const detailOf = (status: RichStatus, region: string, unsynced: number, refusal: string | null): string => {
  switch (status) {
    case 'connecting': return `connecting to ${region}…`
    case 'syncing': return `connected to ${region}, loading the document`
    case 'saving': return `${plural(unsynced, 'change')} on the way to ${region}'s store`
    case 'saved': return `every edit is stored in ${region}, which replicates it to the other regions`
    case 'offline': return `${region} does not answer; edits stay in this tab and go out when it is back`
    case 'refused': return `${region} refused the document: ${refusal ?? 'no reason given'}`
  }
}

/** The socket's state: connecting, connected or disconnected (kept on the socket the provider made from `url`). */
export const socketOf = (provider: HocuspocusProvider): string => provider.configuration.websocketProvider.status

/** Draws the line into `line` now and on every change of the provider; `onChange` runs after. */
export const watchProvider = (
  provider: HocuspocusProvider,
  region: string,
  line: HTMLElement,
  onChange: () => void,
): ProviderStatus => {
  let refusal: string | null = null
  const socket = (): string => socketOf(provider)
  const status = (): RichStatus => {
    if (refusal !== null) return 'refused'
    if (socket() === 'disconnected') return 'offline'
    if (socket() === 'connecting') return 'connecting'
    if (!provider.synced) return 'syncing'
    return provider.unsyncedChanges > 0 ? 'saving' : 'saved'
  }
  const draw = (): void => {
    const now = status()
    const unsynced = provider.unsyncedChanges
    // For tests and styles: [data-status=saved][data-unsynced="0"].
    Object.assign(line.dataset, {
      status: now,
      socket: socket(),
      synced: String(provider.synced),
      unsynced: String(unsynced),
    })
    const label = now === 'saving' ? `saving (${unsynced})` : now
    fill(line, el('span', { class: 'dot' }), el('strong', {}, label), el('span', { class: 'detail' }, detailOf(now, region, unsynced, refusal)))
    onChange()
  }
  provider.on('authenticationFailed', ({ reason }: { reason: string }) => {
    refusal = reason
    draw()
  })
  provider.on('authenticated', () => {
    refusal = null
    draw()
  })
  // 'close' as well as 'status': the provider forgets its sync when the socket closes.
  for (const event of ['status', 'close', 'synced', 'unsyncedChanges']) provider.on(event, draw)
  draw()
  return { socket, status, refusal: () => refusal }
}
