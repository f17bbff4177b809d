/**
 * Catching a peer up by state vector, for what its marks cannot express: entries compaction
 * folded before the peer had them, and restricted documents (which cannot travel through a
 * region outside their set, so a forwarder's marks may claim entries of them it never had).
 * The link asks the peer's state vectors of the documents (`sv-request`, answered in order by
 * `sv-reply`) and sends what each lacks as a `catch-up` update.
 */
import { type PeerMessage, diffUpdate, isEmptyUpdate } from '@georelay/core'
import type { LinkDocuments, LinkPlacement } from './link-context.js'

/** Documents per state-vector request. */
export const SV_REQUEST_DOCS = 64

export interface CatchUpOptions {
  peer: string
  send(message: PeerMessage): boolean
  docsFoldedPast(origin: string, after: number): Promise<string[]>
  documents: LinkDocuments
  placement: LinkPlacement
  /** Counts one catch-up round (a request and what it sent). */
  counted?: () => void
  log?: (message: string, fields: Record<string, string | number>) => void
}

type Reply = { docName: string, stateVector: Uint8Array }[]

export class CatchUp {
  private readonly waiters: { resolve: (docs: Reply) => void, reject: (err: Error) => void }[] = []

  constructor (private readonly options: CatchUpOptions) {}

  /** A `sv-reply` arrived: it answers the oldest request. */
  reply (docs: Reply): void {
    this.waiters.shift()?.resolve(docs)
  }

  /** The link went down: requests still waiting fail. */
  reset (): void {
    for (const waiter of this.waiters.splice(0)) waiter.reject(new Error('link closed'))
  }

  /** Documents of `origin` folded past `after`: bring those the peer may hold up to date. */
  async folded (origin: string, after: number): Promise<void> {
    const { docsFoldedPast, placement, peer } = this.options
    const docNames = (await docsFoldedPast(origin, after)).filter(docName => placement.mayReceive(docName, peer))
    this.options.log?.('peer is behind compaction; catching up by state vector', { peer, origin, after, docs: docNames.length })
    await this.sendMissing(docNames)
  }

  /**
   * Restricted documents the peer may hold: brought up to date each time the link comes up.
   * Only the names under the rules that concern the peer are looked up, not the whole store.
   */
  async restricted (): Promise<void> {
    const { placement, documents, peer } = this.options
    const prefixes = placement.restrictedPrefixes(peer)
    // A rule starting with a wildcard concerns every name: one listing covers the others.
    const lookups = prefixes.includes('') ? [''] : prefixes
    const names = new Set<string>()
    for (const prefix of lookups) for (const name of await documents.listDocs(prefix)) names.add(name)
    const docNames = [...names].filter(docName => placement.restricted(docName) && placement.mayReceive(docName, peer))
    if (docNames.length > 0) await this.sendMissing(docNames)
  }

  /** Asks the peer's state vectors of these documents and sends what it lacks. */
  private async sendMissing (docNames: string[]): Promise<void> {
    for (let i = 0; i < docNames.length; i += SV_REQUEST_DOCS) {
      const asked = docNames.slice(i, i + SV_REQUEST_DOCS)
      const replies = await this.request(asked)
      for (const { docName, stateVector } of replies) {
        // Only what was asked: a reply naming another document must not make us send it.
        if (!asked.includes(docName)) continue
        const missing = diffUpdate(await this.options.documents.stateOf(docName), stateVector)
        if (!isEmptyUpdate(missing)) this.options.send({ type: 'catch-up', docName, update: missing })
      }
      this.options.counted?.()
    }
  }

  private request (docNames: string[]): Promise<Reply> {
    return new Promise((resolve, reject) => {
      if (!this.options.send({ type: 'sv-request', docNames })) return reject(new Error('link closed'))
      this.waiters.push({ resolve, reject })
    })
  }
}
