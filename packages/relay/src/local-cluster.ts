/**
 * `georelay cluster`: one relay per region on this machine, each with its own store, linked
 * through the WAN simulator so that what crosses regions is as late as it would be between
 * real regions. Clients connect straight to their region's relay.
 */
import crypto from 'node:crypto'
import net from 'node:net'
import path from 'node:path'
import { type Logger, silentLogger } from './logger.js'
import { oneWayDelayMs } from './latency-table.js'
import { parseRelayConfig } from './config.js'
import { Relay } from './relay.js'
import { WanSimulator } from './wan-simulator.js'

export interface LocalClusterOptions {
  regions: string[]
  /** Port of the first region's relay; the others follow. 0 picks free ports. */
  basePort: number
  host?: string
  /** Each region's store lives in `<dataDir>/<region>`. */
  dataDir: string
  store: 'sqlite' | 'memory'
  /** One-way delay overrides, keyed `a:b` with the names sorted. */
  latency?: Record<string, number>
  meshSecret?: string
  logger?: Logger
}

export interface ClusterRegionInfo {
  region: string
  url: string
  relay: Relay
}

/** A port nothing listens on right now (for relays that must know each other's ports up front). */
export const freePort = (host = '127.0.0.1'): Promise<number> => new Promise((resolve, reject) => {
  const server = net.createServer()
  server.once('error', reject)
  server.listen(0, host, () => {
    const { port } = server.address() as net.AddressInfo
    server.close(() => resolve(port))
  })
})

export class LocalCluster {
  private constructor (readonly regions: ClusterRegionInfo[], readonly wan: WanSimulator) {}

  static async start (options: LocalClusterOptions): Promise<LocalCluster> {
    const host = options.host ?? '127.0.0.1'
    const unique = new Set(options.regions)
    if (unique.size !== options.regions.length || options.regions.length === 0) throw new Error('--regions needs one or more distinct region names')
    const ports = new Map<string, number>()
    for (const [i, region] of options.regions.entries()) ports.set(region, options.basePort === 0 ? await freePort(host) : options.basePort + i)
    const wan = new WanSimulator()
    const meshSecret = options.meshSecret ?? crypto.randomBytes(16).toString('hex')
    const relays: ClusterRegionInfo[] = []
    try {
      const peersOf = new Map<string, { region: string, url: string }[]>()
      for (const from of options.regions) {
        const peers = []
        for (const to of options.regions) {
          if (to === from) continue
          const link = await wan.link(from, to, { host, port: ports.get(to) as number })
          peers.push({ region: to, url: link.url, publicUrl: `ws://${host}:${ports.get(to) as number}` })
          if (from < to) wan.setConditions(from, to, { delayMs: oneWayDelayMs(from, to, options.latency) })
        }
        peersOf.set(from, peers)
      }
      for (const region of options.regions) {
        const config = parseRelayConfig({
          region,
          listen: { host, port: ports.get(region) },
          dataDir: path.join(options.dataDir, region),
          store: options.store,
          peers: peersOf.get(region),
          meshSecret,
        }, `cluster region ${region}`)
        const relay = await Relay.start({ config, logger: options.logger ?? silentLogger })
        relays.push({ region, url: relay.url, relay })
      }
    } catch (err) {
      await Promise.allSettled(relays.map(r => r.relay.close()))
      await wan.close()
      throw err
    }
    return new LocalCluster(relays, wan)
  }

  async close (): Promise<void> {
    await Promise.allSettled(this.regions.map(r => r.relay.close()))
    await this.wan.close()
  }
}
