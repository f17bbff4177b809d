/**
 * Strong reads (a client's `refresh({ level })`): this region makes sure it holds every update
 * of a document that was acknowledged at `level` anywhere before the read began.
 *
 * A write acknowledged at a level is durable in at least `need` of the document's N regions
 * (`local` 1, `majority` ⌊N/2⌋+1, `all` N). Any set of N − need + 1 regions meets every such
 * group, so it is enough to hear from N − need regions besides this one: `all` needs none (this
 * region holds it already), `majority` of three needs one, `local` needs every other. This
 * region sends each reachable one its state vector (`pull`) and stores what it lacks from the
 * answers (`pulled`) as it stores a catch-up; the first N − need answers finish the read. The
 * updates are also handed back, so the caller can send them to its client before saying done
 * (a broadcast may wait for the fan-out window; the client must have them when the read ends).
 */
import { type AckLevel, EMPTY_UPDATE, type PeerMessage, diffUpdate, isEmptyUpdate, stateVectorOf } from '@georelay/core'
import type { DocRegistry } from '../docs/index.js'
import type { Logger } from '../observability/index.js'
import { type ReplicationLog, regionsNeeded } from '../replication/index.js'
import type { LinkPlacement } from './link-context.js'

export interface StrongReadResult {
  /** What this region lacked and took in, to send the client before it hears the read is done. */
  updates: Uint8Array[]
  /** Regions that did not answer in time (empty: the read is done). */
  unreachable: string[]
}

export interface StrongReadOptions {
  region: string
  log: ReplicationLog
  registry: DocRegistry
  placement: LinkPlacement & { allowedRegions(docName: string): string[] }
  logger: Logger
  send(region: string, message: PeerMessage): boolean
  neighbours(): string[]
}

interface Waiting {
  docName: string
  /** Regions asked, not answered yet. */
  asked: Set<string>
  /** Answers still needed. */
  left: number
  updates: Uint8Array[]
  stored: Promise<unknown>[]
  done: () => void
}

/** Regions, besides this one, a strong read at `level` must hear from. */
export const othersNeeded = (level: AckLevel, regions: number): number => regions - regionsNeeded(level, regions)

export class StrongReads {
  private nextNonce = 1
  private readonly waiting = new Map<number, Waiting>()

  constructor (private readonly o: StrongReadOptions) {}

  async read (docName: string, level: AckLevel, timeoutMs: number): Promise<StrongReadResult> {
    const others = this.o.placement.allowedRegions(docName).filter(region => region !== this.o.region)
    const need = othersNeeded(level, others.length + 1)
    if (need <= 0) return { updates: [], unreachable: [] }
    const stateVector = stateVectorOf(await this.o.registry.stateOf(docName))
    const nonce = this.nextNonce++
    const reachable = new Set(this.o.neighbours())
    const asked = new Set(others.filter(region => reachable.has(region) && this.o.send(region, { type: 'pull', nonce, docName, stateVector })))
    let entry: Waiting | undefined
    const finished = new Promise<void>(resolve => {
      entry = { docName, asked: new Set(asked), left: need, updates: [], stored: [], done: resolve }
    })
    const waiting = entry as Waiting
    this.waiting.set(nonce, waiting)
    let timer: NodeJS.Timeout | undefined
    const timedOut = new Promise<void>(resolve => { timer = setTimeout(resolve, timeoutMs) })
    if (asked.size >= need) await Promise.race([finished, timedOut])
    clearTimeout(timer)
    this.waiting.delete(nonce)
    await Promise.all(waiting.stored)
    if (waiting.left <= 0) return { updates: waiting.updates, unreachable: [] }
    // Not enough answers: every region that did not answer is named, whether it was asked or not.
    const silent = others.filter(region => waiting.asked.has(region) || !asked.has(region))
    return { updates: waiting.updates, unreachable: silent }
  }

  /** A peer's `pull` or `pulled`. */
  async receive (message: PeerMessage, from: string): Promise<void> {
    if (message.type === 'pull') {
      const { docName, nonce } = message
      // What the asker's rules or ours keep from it, or an erased document: nothing.
      const { placement, registry } = this.o
      const allowed = placement.allowsHere(docName) && placement.mayReceive(docName, from)
        && !registry.isErased(docName)
      const update = allowed ? diffUpdate(await this.o.registry.stateOf(docName), message.stateVector) : EMPTY_UPDATE
      this.o.send(from, { type: 'pulled', nonce, docName, update })
      return
    }
    if (message.type !== 'pulled') return
    const waiting = this.waiting.get(message.nonce)
    if (waiting === undefined || waiting.docName !== message.docName || !waiting.asked.delete(from)) return
    const takes = this.o.placement.allowsHere(message.docName) && !this.o.registry.isErased(message.docName)
    if (!isEmptyUpdate(message.update) && takes) {
      waiting.updates.push(message.update)
      // Stored as this region's own write, as a catch-up is: its peers get it from here too.
      waiting.stored.push(this.o.log.appendLocal(message.docName, message.update)
        .then(() => this.o.registry.applyDurable(message.docName, message.update))
        .catch(err => this.o.logger.log('warn', 'could not store what a strong read pulled; the read still ends', { error: (err as Error).message })))
    }
    if (--waiting.left <= 0) waiting.done()
  }
}
