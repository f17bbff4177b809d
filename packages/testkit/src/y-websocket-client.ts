/**
 * Stock y-websocket providers for tests, in Node: `ws` as the WebSocket, and no
 * BroadcastChannel (Node has one, and providers in one process would sync through it instead
 * of through the relay, hiding relay bugs).
 */
import WebSocket from 'ws'
import * as Y from 'yjs'
import { WebsocketProvider } from 'y-websocket'
import { on, waitUntil } from './wait-for.js'

export const connectProvider = (url: string, docName: string, doc: Y.Doc = new Y.Doc()): WebsocketProvider =>
  new WebsocketProvider(url, docName, doc, {
    WebSocketPolyfill: WebSocket as unknown as typeof globalThis.WebSocket,
    disableBc: true,
  })

export const waitSynced = (provider: WebsocketProvider, timeoutMs?: number): Promise<true> =>
  waitUntil([on(provider, 'sync')], () => provider.synced, { what: `provider of ${provider.roomname} to sync`, ...(timeoutMs === undefined ? {} : { timeoutMs }) })

/** Waits until the doc's text named `name` (default 't') satisfies `predicate`. */
export const waitForText = (doc: Y.Doc, predicate: (text: string) => boolean, what: string, name = 't', timeoutMs?: number): Promise<true> =>
  waitUntil([on(doc, 'update')], () => predicate(doc.getText(name).toString()), { what, ...(timeoutMs === undefined ? {} : { timeoutMs }) })

/** Disconnects a provider and destroys its doc (which stops its awareness timer). */
export const destroyProvider = (provider: WebsocketProvider): void => {
  provider.destroy()
  provider.doc.destroy()
}
