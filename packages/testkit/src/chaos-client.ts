/**
 * One writer of a chaos run: a GeoClient living in a region (its relay nearest), with one
 * session at one ack level, that inserts unique elements into the shared Y.Array and reads
 * its replica, recording each write, acknowledgement, read and first sight in the history.
 */
import * as Y from 'yjs'
import * as prng from 'lib0/prng'
import { ACK_LEVELS, type AckLevel } from '@georelay/core'
import { GeoClient, type GeoSession } from '@georelay/client'
import type { TestCluster } from './cluster.js'
import type { ChaosHistory } from './chaos-history.js'

export const CHAOS_DOC = 'chaos/set'
export const CHAOS_ARRAY = 'set'

/** Client timing for chaos: a dead or silent relay is left within about a second. */
const CLIENT_TIMING = {
  heartbeatMs: 200,
  heartbeatTimeoutMs: 1000,
  probeIntervalMs: 1500,
  failoverJitterMs: 100,
  backoff: { baseMs: 100, maxMs: 1000 },
}

export interface ChaosClientOptions {
  /** Pause between two operations of this client, in ms: [min, max]. */
  opIntervalMs: [number, number]
  /** Share of operations that are reads (the rest insert an element). */
  readShare: number
  /** One-way delay from this client to its own region's relay and to the others, in ms. */
  nearMs: number
  farMs: number
}

export class ChaosClient {
  readonly name: string
  /** Alive until its region is lost for good (it goes with it). */
  alive = true
  /** The element of each write, by write id - 1: a fresh session numbers its writes 1, 2, 3… */
  private readonly elements: string[] = []
  private readonly ackedUpTo: Record<AckLevel, number> = { local: 0, majority: 0, all: 0 }
  private timer: ReturnType<typeof setTimeout> | null = null
  private writing = false

  private constructor (
    readonly home: string,
    readonly level: AckLevel,
    /** 1 for the region's first client at this level, 2 for the one that replaced it… */
    readonly incarnation: number,
    readonly doc: Y.Doc,
    readonly client: GeoClient,
    readonly session: GeoSession,
    private readonly history: ChaosHistory,
    private readonly gen: prng.PRNG,
    private readonly options: ChaosClientOptions,
  ) {
    this.name = `${home}/${level}${incarnation > 1 ? `~${incarnation}` : ''}`
    session.on('ack', (writeId, acked) => this.onAck(writeId, acked))
    void session.synced.then(() => history.joined(this.name))
    doc.getArray<string>(CHAOS_ARRAY).observe(event => {
      const inserted: string[] = []
      for (const part of event.changes.delta) {
        if (Array.isArray(part.insert)) inserted.push(...(part.insert as string[]))
      }
      history.seen(this.name, inserted)
    })
  }

  static async start (
    cluster: TestCluster,
    home: string,
    level: AckLevel,
    incarnation: number,
    history: ChaosHistory,
    gen: prng.PRNG,
    options: ChaosClientOptions,
  ): Promise<ChaosClient> {
    const place = `client-${home}-${level}-${incarnation}`
    const delays = Object.fromEntries(
      [...cluster.regions.keys()].map(r => [r, r === home ? options.nearMs : options.farMs]),
    )
    const client = new GeoClient({ regions: await cluster.clientEndpoints(place, delays), ...CLIENT_TIMING })
    const doc = new Y.Doc()
    const session = client.open(CHAOS_DOC, doc, { ack: level })
    return new ChaosClient(home, level, incarnation, doc, client, session, history, gen, options)
  }

  /** Inserts and reads at seeded intervals until `stopWriting`. */
  startWriting (): void {
    this.writing = true
    this.schedule()
  }

  stopWriting (): void {
    this.writing = false
    if (this.timer !== null) clearTimeout(this.timer)
    this.timer = null
  }

  /** Its region goes down: the client dies too, with whatever it had not sent. */
  async die (): Promise<void> {
    this.stopWriting()
    this.alive = false
    await this.client.close()
  }

  async close (): Promise<void> {
    this.stopWriting()
    await this.client.close()
  }

  /** The region whose relay the client uses now (null while it has none). */
  get region (): string | null {
    return this.client.region
  }

  /** Writes not yet acknowledged at the session's level. */
  get pending (): number {
    return this.session.pendingWrites
  }

  private schedule (): void {
    if (!this.writing) return
    const [min, max] = this.options.opIntervalMs
    this.timer = setTimeout(() => {
      this.timer = null
      if (!this.writing) return
      if (prng.real53(this.gen) < this.options.readShare) this.history.read(this.name)
      else this.write()
      this.schedule()
    }, prng.uint32(this.gen, min, max))
  }

  private write (): void {
    const element = `${this.name}#${this.elements.length + 1}`
    this.elements.push(element)
    this.history.written(element, this.name, this.level)
    // One transaction, one update, one write id.
    this.doc.getArray<string>(CHAOS_ARRAY).push([element])
  }

  /** An ack at a level covers every earlier write, and implies the lower levels (as the SDK reads it). */
  private onAck (writeId: number, level: AckLevel): void {
    const region = this.client.region
    for (const l of ACK_LEVELS.slice(0, ACK_LEVELS.indexOf(level) + 1)) {
      const upTo = Math.min(writeId, this.elements.length)
      for (let id = this.ackedUpTo[l] + 1; id <= upTo; id++) {
        this.history.acked(this.elements[id - 1] as string, l, region)
      }
      this.ackedUpTo[l] = Math.max(this.ackedUpTo[l], upTo)
    }
  }
}
