/** The cluster as the page shows it, read from the in-process relays and the WAN simulator. */
import type { LocalCluster } from '@georelay/cluster'
import type { ClusterSnapshot, RegionSnapshot } from '../shared/cluster-snapshot.js'

export const snapshotOf = (cluster: LocalCluster): ClusterSnapshot => {
  const links = cluster.links()
  const regions = cluster.regions.map(({ region, url, relay }): RegionSnapshot => {
    if (!cluster.isRunning(region)) return { name: region, url, state: 'down', lagMs: null, pendingUpdates: null, peers: [] }
    const peers = relay.regionInfo().peers.map(p => ({
      region: p.region,
      link: p.state,
      lagMs: p.lagMs,
      pendingUpdates: p.pendingUpdates,
    }))
    const cut = links.some(l => l.cut && (l.a === region || l.b === region))
    return {
      name: region,
      url,
      state: cut ? 'cut' : 'up',
      lagMs: Math.max(0, ...peers.map(p => p.lagMs)),
      pendingUpdates: peers.reduce((sum, p) => sum + p.pendingUpdates, 0),
      peers,
    }
  })
  return { regions, links }
}
