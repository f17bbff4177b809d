import { afterAll, beforeAll, describe, expect, it } from '@jest/globals'
import net from 'node:net'
import { type RedisServer, startRedis } from '@georelay/testkit'

/** One RESP command over a fresh socket; resolves with the first reply line, rejects on a refused connection. */
const command = (port: number, line: string): Promise<string> => new Promise((resolve, reject) => {
  const socket = net.connect(port, '127.0.0.1')
  let reply = ''
  socket.setTimeout(5_000, () => socket.destroy(new Error(`no reply to ${line} within 5 s`)))
  socket.on('connect', () => socket.write(`${line}\r\n`))
  socket.on('data', chunk => {
    reply += chunk.toString('utf8')
    const end = reply.indexOf('\r\n')
    if (end >= 0) {
      socket.end()
      resolve(reply.slice(0, end))
    }
  })
  socket.on('error', reject)
})

describe('startRedis', () => {
  let redis: RedisServer
  beforeAll(async () => { redis = await startRedis() })
  afterAll(async () => { await redis?.destroy() })

  it('serves on loopback at the URL it gives', async () => {
    expect(redis.url).toBe(`redis://127.0.0.1:${redis.port}`)
    expect(await command(redis.port, 'PING')).toBe('+PONG')
  })

  it('stops like a crash and starts again on the same port, empty', async () => {
    expect(await command(redis.port, 'SET georelay:probe 1')).toBe('+OK')
    await redis.stop()
    await expect(command(redis.port, 'PING')).rejects.toThrow(/ECONNREFUSED/)
    await redis.start()
    // Nothing is persisted: a restarted Redis has forgotten every hint, which is what tests want.
    expect(await command(redis.port, 'EXISTS georelay:probe')).toBe(':0')
  })
})
