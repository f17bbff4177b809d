/**
 * Unchanged `@hocuspocus/provider`s for tests, in Node (`ws` as the WebSocket): the newest 4.x
 * and the last 3.x, the two versions the relay's `/v1/hocuspocus` endpoint speaks with.
 */
import WebSocket from 'ws'
import * as Y from 'yjs'
import * as v4 from '@hocuspocus/provider'
import * as v3 from 'hocuspocus-provider-3'
import { nextEvent, on, waitUntil } from './wait-for.js'

export type HocuspocusVersion = 3 | 4

/** What tests use of a provider, the same in both versions. */
export interface TestHocuspocusProvider {
  readonly version: HocuspocusVersion
  readonly document: Y.Doc
  readonly synced: boolean
  readonly isAuthenticated: boolean
  readonly authorizedScope: string | undefined
  readonly unsyncedChanges: number
  readonly awareness: v4.HocuspocusProvider['awareness']
  on(event: string, listener: (payload: never) => void): unknown
  off(event: string, listener: (payload: never) => void): unknown
  attach(): void
  destroy(): void
}

export interface HocuspocusOptions {
  token?: string
  document?: Y.Doc
  /** A socket shared by several providers (see `hocuspocusSocket`); by default each has its own. */
  socket?: HocuspocusSocket
}

export interface HocuspocusSocket {
  readonly version: HocuspocusVersion
  destroy(): void
  /** The socket object the provider takes as `websocketProvider`. */
  readonly inner: unknown
}

const polyfill = { WebSocketPolyfill: WebSocket as unknown as typeof globalThis.WebSocket }

/** One socket for many documents, as Tiptap apps with several editors use it. */
export const hocuspocusSocket = (version: HocuspocusVersion, url: string): HocuspocusSocket => {
  const inner = version === 4
    ? new v4.HocuspocusProviderWebsocket({ url, ...polyfill })
    : new v3.HocuspocusProviderWebsocket({ url, ...polyfill })
  return { version, inner, destroy: () => inner.destroy() }
}

export const connectHocuspocus = (
  version: HocuspocusVersion,
  url: string,
  name: string,
  { token, document = new Y.Doc(), socket }: HocuspocusOptions = {},
): TestHocuspocusProvider => {
  if (socket !== undefined && socket.version !== version) throw new Error(`a ${socket.version}.x socket cannot carry a ${version}.x provider`)
  const shared = socket === undefined ? { url, ...polyfill } : { websocketProvider: socket.inner }
  const config = { name, document, token: token ?? null, ...shared }
  const provider = version === 4
    ? new v4.HocuspocusProvider(config as v4.HocuspocusProviderConfiguration)
    : new v3.HocuspocusProvider(config as v3.HocuspocusProviderConfiguration)
  // A provider on a shared socket starts once attached.
  if (socket !== undefined) provider.attach()
  return Object.assign(provider as unknown as TestHocuspocusProvider, { version })
}

export const waitHocuspocusSynced = (provider: TestHocuspocusProvider, timeoutMs?: number): Promise<true> =>
  waitUntil([on(provider, 'synced')], () => provider.synced, { what: `Hocuspocus ${provider.version}.x provider to sync`, ...(timeoutMs === undefined ? {} : { timeoutMs }) })

/** Waits until the provider knows every change it made is stored by the relay (SyncStatus). */
export const waitHocuspocusSaved = (provider: TestHocuspocusProvider, timeoutMs?: number): Promise<true> =>
  waitUntil([on(provider, 'unsyncedChanges')], () => provider.unsyncedChanges === 0, { what: `Hocuspocus ${provider.version}.x provider's changes to be saved`, ...(timeoutMs === undefined ? {} : { timeoutMs }) })

/** The reason of the provider's next `authenticationFailed`. */
export const nextAuthFailure = async (provider: TestHocuspocusProvider, timeoutMs?: number): Promise<string> => {
  const [{ reason }] = await nextEvent<[{ reason: string }]>(provider, 'authenticationFailed', {
    what: 'the provider\'s authenticationFailed', ...(timeoutMs === undefined ? {} : { timeoutMs }),
  })
  return reason
}

export const destroyHocuspocus = (provider: TestHocuspocusProvider): void => {
  provider.destroy()
  provider.document.destroy()
}
