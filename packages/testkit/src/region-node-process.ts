/**
 * One node of a region of several as a real `georelay relay` process, configured as an operator
 * would: the schema in a configuration file (it has no flag), the database and Redis URLs in the
 * environment, the rest as flags. The file is removed once the process has exited.
 */
import fs from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import { type RelayProcess, startRelayProcess } from './relay-process.js'

export interface RegionNodeOptions {
  region: string
  node: string
  postgres: { url: string, schema: string }
  redisUrl: string
  /** redis.pollMs (default 250: tests do not wait a second for a lost hint). */
  pollMs?: number
  /** The region's peers, for a region of nodes in a mesh (with `meshSecret`). */
  peers?: { region: string, url: string }[]
  meshSecret?: string
  /** The port to listen on (default 0: any); a fixed one lets a killed node come back where its clients are. */
  port?: number
}

export const startRegionNodeProcess = async (
  { region, node, postgres, redisUrl, pollMs = 250, peers = [], meshSecret, port = 0 }: RegionNodeOptions,
): Promise<RelayProcess> => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), `georelay-node-${node}-`))
  const configFile = path.join(dir, `${region}.json`)
  const config = {
    storage: { postgres: { schema: postgres.schema } },
    redis: { pollMs },
    ...(peers.length === 0 ? {} : { peers }),
    ...(meshSecret === undefined ? {} : { meshSecret }),
  }
  fs.writeFileSync(configFile, JSON.stringify(config))
  try {
    const relay = await startRelayProcess({
      args: ['--config', configFile, '--region', region, '--port', String(port), '--store', 'postgres', '--node', node],
      env: { GEORELAY_POSTGRES_URL: postgres.url, GEORELAY_REDIS_URL: redisUrl, GEORELAY_LOG_LEVEL: 'warn' },
    })
    void relay.exited.then(() => fs.rmSync(dir, { recursive: true, force: true }))
    return relay
  } catch (err) {
    fs.rmSync(dir, { recursive: true, force: true })
    throw err
  }
}
