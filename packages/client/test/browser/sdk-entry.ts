/**
 * Runs in the page: the SDK as an application would bundle it. It imports the package by name,
 * so esbuild goes through packages/client/package.json (`exports` to dist, and the `browser`
 * field that leaves `ws` and the file store out), and yjs as the application's own copy.
 * The Node test drives it through `globalThis.georelaySdk`; values cross page.evaluate as JSON.
 */
import * as Y from 'yjs'
import { GeoClient, IndexedDbOfflineStore, type GeoSession, type RegionEndpoint, type SessionStatus } from '@georelay/client'

export type OfflineMode = 'indexeddb' | 'memory'

/** One edit of the text 't': insert at a position, or delete a range. */
export type Edit = { at: number, insert: string } | { at: number, delete: number }

export interface StartOptions {
  regions: RegionEndpoint[]
  offline: OfflineMode
  docName: string
}

export interface SdkState {
  status: SessionStatus
  region: string | null
  text: string
  /** The client's 'warning' events so far (for failure messages). */
  warnings: string[]
}

export interface SdkTestApi {
  /** Starts a GeoClient and opens `docName` on a fresh Y.Doc (one client per page life). */
  start(options: StartOptions): void
  /** Applies each edit in its own transaction (one write each), waits until all are kept, returns the text. */
  edit(edits: Edit[], timeoutMs: number): Promise<string>
  /** Waits for the session's first sync with a relay, returns the text right then. */
  synced(timeoutMs: number): Promise<string>
  flush(timeoutMs: number): Promise<void>
  state(): SdkState
  /** Closes the client (its IndexedDB connection included). */
  close(): Promise<void>
  /** How many pending writes of `docName` the SDK's IndexedDB database holds, read on a connection of its own. */
  storedWrites(docName: string): Promise<number>
}

/** Rejects with `what` if `promise` has not settled in time. */
const within = <T>(promise: Promise<T>, timeoutMs: number, what: string): Promise<T> => {
  let timer: ReturnType<typeof setTimeout> | undefined
  const timeout = new Promise<never>((_resolve, reject) => {
    timer = setTimeout(() => reject(new Error(`timed out after ${timeoutMs} ms waiting for ${what} (${JSON.stringify(api.state())})`)), timeoutMs)
  })
  return Promise.race([promise, timeout]).finally(() => clearTimeout(timer))
}

let client: GeoClient | null = null
let session: GeoSession | null = null
let doc: Y.Doc | null = null
const warnings: string[] = []

const current = (): { client: GeoClient, session: GeoSession, doc: Y.Doc } => {
  if (client === null || session === null || doc === null) throw new Error('no client in this page: call start() first')
  return { client, session, doc }
}

const api: SdkTestApi = {
  start: ({ regions, offline, docName }) => {
    if (client !== null) throw new Error('this page already started a client')
    client = new GeoClient({ regions, offline, probeIntervalMs: 0 })
    client.on('warning', message => { warnings.push(message) })
    doc = new Y.Doc()
    session = client.open(docName, doc, { ack: 'local' })
  },
  edit: async (edits, timeoutMs) => {
    const { session, doc } = current()
    const text = doc.getText('t')
    for (const e of edits) {
      doc.transact(() => {
        if ('insert' in e) text.insert(e.at, e.insert)
        else text.delete(e.at, e.delete)
      })
    }
    await within(session.whenKept(), timeoutMs, 'the edits to be kept')
    return text.toString()
  },
  synced: async timeoutMs => {
    const { session, doc } = current()
    await within(session.synced, timeoutMs, 'the first sync with a relay')
    return doc.getText('t').toString()
  },
  flush: timeoutMs => current().session.flush(timeoutMs),
  state: () => ({
    status: session?.status ?? 'offline',
    region: client?.region ?? null,
    text: doc?.getText('t').toString() ?? '',
    warnings: [...warnings],
  }),
  close: async () => {
    await client?.close()
    doc?.destroy()
  },
  storedWrites: async docName => {
    const store = await IndexedDbOfflineStore.open()
    try {
      return (await store.load(docName)).length
    } finally {
      await store.close()
    }
  },
}

;(globalThis as unknown as { georelaySdk: SdkTestApi }).georelaySdk = api
