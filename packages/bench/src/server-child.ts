/**
 * A contender as its own process: `node dist/server-child.js <kind>` serves on a free loopback
 * port and prints `listening on ws://127.0.0.1:PORT` (the line georelay's CLI prints), then
 * runs until SIGTERM, on which it exits normally so that `--cpu-prof` can write its profile.
 *
 *   ywss        `@y/websocket-server` 0.1.1 as its own bin sets it up (no persistence)
 *   hocuspocus  `@hocuspocus/server` with its defaults (per-turn merge of updates)
 *   hocuspocus-sqlite DIR  the same with `@hocuspocus/extension-sqlite` storing in DIR: its
 *               way to keep documents (the whole state, debounced: 2 s after a change, at most
 *               10 s), beside georelay on SQLite (every update appended before its ack)
 *   echo        a bare `ws` broadcast echo: every message goes as it came to the document's
 *               other sockets; the ceiling for a relay written in Node on `ws`
 *   merge-echo [MS]  an experiment, not a product: the echo, but the sync updates of a document
 *               that arrive within one event-loop turn (or MS milliseconds) are merged with
 *               `Y.mergeUpdates` and sent as one message; what "merge what arrives together"
 *               buys a relay that keeps no Y.Doc
 */
import http from 'node:http'
import type { AddressInfo } from 'node:net'
import * as decoding from 'lib0/decoding'
import { WebSocketServer, type WebSocket } from 'ws'
import * as Y from 'yjs'
import { updateFrame } from './wire.js'

const HOST = '127.0.0.1'

const announce = (port: number): void => { process.stdout.write(`listening on ws://${HOST}:${port}\n`) }

const listenHttp = (server: http.Server): Promise<number> =>
  new Promise(resolve => server.listen(0, HOST, () => resolve((server.address() as AddressInfo).port)))

const startYwss = async (): Promise<number> => {
  const { setupWSConnection } = await import('@y/websocket-server/utils')
  const wss = new WebSocketServer({ noServer: true })
  const server = http.createServer((_req, res) => { res.writeHead(200).end('okay') })
  wss.on('connection', setupWSConnection)
  server.on('upgrade', (request, socket, head) => {
    wss.handleUpgrade(request, socket, head, ws => { wss.emit('connection', ws, request) })
  })
  return listenHttp(server)
}

const startHocuspocus = async (): Promise<number> => {
  const { Server } = await import('@hocuspocus/server')
  const server = new Server({ port: 0, address: HOST, quiet: true, stopOnSignals: false })
  await server.listen()
  return server.address.port
}

const startHocuspocusSqlite = async (): Promise<number> => {
  const { Server } = await import('@hocuspocus/server')
  const { SQLite } = await import('@hocuspocus/extension-sqlite')
  const dir = process.argv[3]
  if (dir === undefined) throw new Error('usage: server-child.js hocuspocus-sqlite DIR')
  const server = new Server({
    port: 0, address: HOST, quiet: true, stopOnSignals: false, extensions: [new SQLite({ database: `${dir}/hocuspocus.sqlite` })],
  })
  await server.listen()
  return server.address.port
}

interface Room { members: Set<WebSocket> }

/** A ws server that groups sockets by URL path (the document) and hands every message to `relay`. */
const startRooms = <R extends Room>(
  newRoom: () => R,
  relay: (room: R, from: WebSocket, data: Buffer) => void,
): Promise<number> => {
  const rooms = new Map<string, R>()
  const wss = new WebSocketServer({ noServer: true })
  const server = http.createServer((_req, res) => { res.writeHead(200).end('okay') })
  server.on('upgrade', (request, socket, head) => {
    wss.handleUpgrade(request, socket, head, ws => {
      const name = request.url ?? '/'
      const room = rooms.get(name) ?? newRoom()
      rooms.set(name, room)
      room.members.add(ws)
      ws.on('message', (data: Buffer) => relay(room, ws, data))
      ws.on('close', () => {
        room.members.delete(ws)
        if (room.members.size === 0) rooms.delete(name)
      })
    })
  })
  return listenHttp(server)
}

const startEcho = (): Promise<number> => startRooms(() => ({ members: new Set() }), (room, from, data) => {
  for (const other of room.members) if (other !== from) other.send(data)
})

/** The update of a y-websocket sync update message (type 0, sub-type 2), or null for anything else. */
const syncUpdateOf = (data: Uint8Array): Uint8Array | null => {
  const decoder = decoding.createDecoder(data)
  if (decoding.readVarUint(decoder) !== 0 || decoding.readVarUint(decoder) !== 2) return null
  return decoding.readVarUint8Array(decoder)
}

interface MergeRoom extends Room { pending: Uint8Array[], from: Set<WebSocket>, scheduled: boolean }

const startMergeEcho = (): Promise<number> => {
  const windowMs = Number(process.argv[3] ?? '0')
  const flush = (room: MergeRoom): void => {
    room.scheduled = false
    const update = room.pending.length === 1 ? room.pending[0] as Uint8Array : Y.mergeUpdates(room.pending)
    const frame = updateFrame('y-websocket', '', update)
    // A single sender does not get its own updates back; with several, everyone gets all (a no-op in Yjs).
    const except = room.from.size === 1 ? [...room.from][0] : undefined
    room.pending = []
    room.from.clear()
    for (const member of room.members) if (member !== except) member.send(frame)
  }
  const newRoom = (): MergeRoom => ({ members: new Set(), pending: [], from: new Set(), scheduled: false })
  return startRooms<MergeRoom>(newRoom, (room, from, data) => {
    const update = syncUpdateOf(data)
    if (update === null) {
      for (const other of room.members) if (other !== from) other.send(data)
      return
    }
    room.pending.push(update)
    room.from.add(from)
    if (room.scheduled) return
    room.scheduled = true
    if (windowMs > 0) setTimeout(() => flush(room), windowMs)
    else setImmediate(() => flush(room))
  })
}

const starters: Record<string, () => Promise<number>> = {
  ywss: startYwss, hocuspocus: startHocuspocus, 'hocuspocus-sqlite': startHocuspocusSqlite, echo: startEcho, 'merge-echo': startMergeEcho,
}

const kind = process.argv[2] ?? ''
const start = starters[kind]
if (start === undefined) {
  process.stderr.write(`usage: server-child.js ${Object.keys(starters).join('|')}\n`)
  process.exit(2)
}
process.on('SIGTERM', () => process.exit(0))
process.on('SIGINT', () => process.exit(0))
announce(await start())
