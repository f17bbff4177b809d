/**
 * `preferRegion`: a region chosen by the application (a user's home region, a demo's pin) comes
 * before the nearest one whenever it answers, the others stay for failover, and the client goes
 * back to it at the first measurement after it answers again.
 */
import { afterEach, describe, expect, it } from '@jest/globals'
import * as Y from 'yjs'
import { GeoClient, RegionPicker, type Fetch } from '@georelay/client'
import { TestCluster } from '@georelay/testkit'

const REGIONS = [
  { name: 'a', url: 'ws://a.invalid' },
  { name: 'b', url: 'ws://b.invalid' },
  { name: 'c', url: 'ws://c.invalid' },
]

/** A fetch that answers /healthz at once for the regions in `up` and fails for the others. */
const healthOf = (up: Set<string>): Fetch => async url => {
  const region = /^http:\/\/([a-z]+)\.invalid/.exec(url)?.[1] ?? ''
  if (!up.has(region)) throw new TypeError(`fetch failed: ${region} is down`)
  return { ok: true, text: async () => 'ok\n' }
}

describe('RegionPicker with a preferred region', () => {
  it('ranks the preferred region first while it answers, and last once it does not', async () => {
    const up = new Set(['a', 'b', 'c'])
    const picker = new RegionPicker(REGIONS, healthOf(up), undefined, 'c')
    await picker.measure()
    expect(picker.ranked()[0]?.name).toBe('c')
    up.delete('c')
    await picker.measure()
    expect(picker.ranked().map(r => r.name)[2]).toBe('c')
  })

  it('moves back to the preferred region at the first measurement it answers, and stays there', async () => {
    const up = new Set(['a', 'b'])
    const picker = new RegionPicker(REGIONS, healthOf(up), undefined, 'c')
    await picker.measure()
    expect(picker.failbackFrom('a')).toBeNull()
    up.add('c')
    await picker.measure()
    expect(picker.failbackFrom('a')?.name).toBe('c')
    expect(picker.failbackFrom('c')).toBeNull()
  })

  it('without a preference, ranks by round trip as before (no failback between equals)', async () => {
    const picker = new RegionPicker(REGIONS, healthOf(new Set(['a', 'b', 'c'])))
    await picker.measure()
    expect(picker.ranked().map(r => r.name).sort()).toEqual(['a', 'b', 'c'])
    expect(picker.failbackFrom('a')).toBeNull()
  })
})

describe('GeoClient preferRegion', () => {
  let cluster: TestCluster | undefined
  let client: GeoClient | undefined
  afterEach(async () => {
    await client?.close()
    await cluster?.close()
  })

  it('connects to the preferred region although another is nearer', async () => {
    cluster = await TestCluster.start({ regions: ['a', 'b'] })
    // The client lives next to a; b is 40 ms away.
    const regions = await cluster.clientEndpoints('client', { a: 0, b: 40 })
    client = new GeoClient({ regions, preferRegion: 'b', probeIntervalMs: 0 })
    const session = client.open('prefer/doc', new Y.Doc())
    await session.synced
    expect(client.region).toBe('b')
  })
})
