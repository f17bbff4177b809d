/**
 * Ports nothing listens on right now, for relays that must know each other's ports before any
 * of them listens. Another process may still take one before its relay binds it: callers that
 * can should retry on EADDRINUSE (as `ClusterPlan.startAll` does).
 */
import net from 'node:net'

const listenAnywhere = (host: string): Promise<net.Server> => new Promise((resolve, reject) => {
  const server = net.createServer()
  server.once('error', reject)
  server.listen(0, host, () => {
    server.off('error', reject)
    resolve(server)
  })
})

const closeServer = (server: net.Server): Promise<void> => new Promise(resolve => server.close(() => resolve()))

/**
 * `count` distinct free ports: all are held until every one is picked, so the system cannot
 * hand out the same port twice (as it may to one-at-a-time picks).
 */
export const freePorts = async (count: number, host = '127.0.0.1'): Promise<number[]> => {
  const servers = await Promise.allSettled(Array.from({ length: count }, () => listenAnywhere(host)))
  const held = servers.flatMap(s => s.status === 'fulfilled' ? [s.value] : [])
  const ports = held.map(server => (server.address() as net.AddressInfo).port)
  await Promise.all(held.map(closeServer))
  const failed = servers.find(s => s.status === 'rejected')
  if (failed !== undefined) throw failed.reason
  return ports
}

/** A port nothing listens on right now. */
export const freePort = async (host = '127.0.0.1'): Promise<number> => (await freePorts(1, host))[0] as number
