/**
 * Which nodes of a region are alive, for `/v1/regions`: each node keeps a key of its own in
 * Redis that expires unless renewed (`georelay:{REGION}:node:NAME` → its public URL), and adds
 * its name to the region's set. Redis's own clock expires the keys, so the nodes' clocks need
 * not agree; the hash tag keeps a region's keys in one slot (Redis Cluster), so one MGET reads
 * them. While Redis is away a node lists itself alone.
 */
import type { Cluster, Redis } from 'ioredis'

export interface LiveNode {
  name: string
  url: string
}

/** A node that has not renewed its key for this long is gone. */
export const NODE_TTL_MS = 3000

const setKey = (region: string): string => `georelay:{${region}}:nodes`
const nodeKey = (region: string, name: string): string => `georelay:{${region}}:node:${name}`

/** How long a stopping node waits to withdraw its entry from Redis. */
const CLOSE_WAIT_MS = 1000

export class NodeDirectory {
  private live: LiveNode[]
  private timer: NodeJS.Timeout | null = null
  /** A renewal still waiting for Redis: the next tick skips rather than piling up. */
  private renewing = false

  constructor (
    /** Every key of a region shares its hash tag, so on a cluster they are on one shard. */
    private readonly redis: Redis | Cluster,
    private readonly region: string,
    private readonly self: LiveNode,
    /** Called when the list of live nodes changed. */
    private readonly onChange: (nodes: LiveNode[]) => void = () => {},
    /** Called when another node (or this one's previous run) announced this name at `url`. */
    private readonly onClash: (url: string) => void = () => {},
  ) {
    this.live = [self]
  }

  /** The live nodes as last read, this one included, by name. */
  get nodes (): LiveNode[] {
    return this.live
  }

  /** Announces this node now and every third of the TTL. */
  start (): void {
    void this.renew()
    this.timer = setInterval(() => { void this.renew() }, NODE_TTL_MS / 3)
    this.timer.unref()
  }

  /** Stops announcing and removes this node's key, so that its siblings stop listing it at once. */
  async close (): Promise<void> {
    if (this.timer !== null) clearInterval(this.timer)
    // Bounded: with Redis unreachable (or a connection gone silent, which ioredis does not time
    // out) a stop would wait forever; the key expires with its TTL anyway.
    let timer: NodeJS.Timeout | undefined
    const gaveUp = new Promise<void>(resolve => { timer = setTimeout(resolve, CLOSE_WAIT_MS) })
    await Promise.race([this.redis.del(nodeKey(this.region, this.self.name)).catch(() => {}), gaveUp])
    clearTimeout(timer)
  }

  private async renew (): Promise<void> {
    if (this.renewing) return
    this.renewing = true
    try {
      const previous = await this.redis.set(nodeKey(this.region, this.self.name), this.self.url, 'PX', NODE_TTL_MS, 'GET')
      if (previous !== null && previous !== this.self.url) this.onClash(previous)
      await this.redis.sadd(setKey(this.region), this.self.name)
      const names = (await this.redis.smembers(setKey(this.region))).sort()
      const urls = names.length === 0 ? [] : await this.redis.mget(...names.map(name => nodeKey(this.region, name)))
      const gone = names.filter((_, i) => urls[i] == null)
      if (gone.length > 0) await this.redis.srem(setKey(this.region), ...gone)
      this.update(names.flatMap((name, i) => {
        const url = urls[i]
        return url == null ? [] : [{ name, url }]
      }))
    } catch {
      // Redis is away: this node knows only itself.
      this.update([this.self])
    } finally {
      this.renewing = false
    }
  }

  private update (live: LiveNode[]): void {
    const changed = JSON.stringify(live) !== JSON.stringify(this.live)
    this.live = live
    if (changed) this.onChange(live)
  }
}
