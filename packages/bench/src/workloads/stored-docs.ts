/**
 * A relay over a large store: none of start, link-up or `/v1/regions` may grow with the number
 * of stored documents (docs/architecture.md, Performance goals). For each count, a SQLite store
 * is filled with that many small documents (a tenth of them in a namespace restricted to this
 * region, which makes every link-up reconcile restricted documents), an empty peer region is
 * started, then a georelay process on the store. Measured: its start (spawn to listening), from
 * then until its link to the peer is up and until the peer stored a first entry from it, and
 * `/v1/regions` latency. The peer runs first so that the big relay dials it at once: dialled the
 * other way round, a link-up would wait for wherever the dialler's redial backoff stood.
 */
import fs from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import * as Y from 'yjs'
import { freePort } from '@georelay/cluster'
import { SqliteStore } from '@georelay/store-sqlite'
import { type Contender, startContender } from '../contenders.js'
import { type Distribution, distribution } from '../stats.js'

export interface StoredDocsRun {
  docs: number
  /** Filling the store beforehand (not part of the goal). */
  seedSeconds: number
  startMs: number
  regionsMs: Distribution
  /** From the big relay's listening to its link to the joining region reported up. */
  linkUpMs: number
  /** …to the first replicated entry stored there. */
  firstEntryMs: number
  error?: string
}

export interface StoredDocsResult {
  runs: StoredDocsRun[]
}

const SECRET = 'bench-mesh-secret-0123456789abcdef0123456789abcdef'
const REGIONS_SAMPLES = 50
const POLL_MS = 10

/** A small document of its own client, as a real one would be. */
const docUpdate = (i: number): Uint8Array => {
  const doc = new Y.Doc()
  doc.getText('t').insert(0, `document ${i}: a line of text`)
  return Y.encodeStateAsUpdate(doc)
}

const seed = async (dir: string, docs: number): Promise<void> => {
  const store = new SqliteStore(dir, { synchronous: 'normal' })
  try {
    for (let i = 0; i < docs; i += 1000) {
      const chunk = Array.from({ length: Math.min(1000, docs - i) }, (_, k) => i + k)
      await Promise.all(chunk.map(n => store.append(n % 10 === 0 ? `private/${n}` : `docs/${n}`, docUpdate(n))))
    }
  } finally {
    await store.close()
  }
}

const httpOf = (contender: Contender): string => contender.url.replace(/^ws/, 'http')

const getJson = async (url: string): Promise<unknown> => {
  const response = await fetch(url)
  if (!response.ok) throw new Error(`${url}: HTTP ${response.status}`)
  return response.json()
}

const peerMetric = async (contender: Contender): Promise<number> => {
  const text = await (await fetch(`${httpOf(contender)}/metrics`)).text()
  return [...text.matchAll(/^georelay_peer_updates_received_total\{[^}]*\} (\d+)/gm)].reduce((n, m) => n + Number(m[1]), 0)
}

/** Polls until `check` holds (a measurement, not a test: it times what it waits for). */
const timeUntil = async (check: () => Promise<boolean>, timeoutMs: number, what: string): Promise<number> => {
  const started = performance.now()
  while (!(await check())) {
    if (performance.now() - started > timeoutMs) throw new Error(`${what}: not within ${timeoutMs} ms`)
    await new Promise(resolve => setTimeout(resolve, POLL_MS))
  }
  return performance.now() - started
}

/** Both regions' rules (they must agree): a tenth of the documents may stay only in the big region. */
const CONFIG = {
  http: { regions: 'full' },
  namespaces: [{ match: 'private/**', regions: ['big'] }, { match: '**', regions: ['big', 'joining'] }],
}

const runOne = async (docs: number, onProgress: (line: string) => void): Promise<StoredDocsRun> => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'georelay-bench-stored-'))
  const seedStarted = performance.now()
  await seed(dir, docs)
  const seedSeconds = (performance.now() - seedStarted) / 1000
  onProgress(`${docs} documents stored in ${seedSeconds.toFixed(1)} s`)
  const [joiningPort, bigPort] = [await freePort(), await freePort()]
  let big: Contender | null = null
  let joining: Contender | null = null
  const run: StoredDocsRun = {
    docs, seedSeconds, startMs: NaN, regionsMs: distribution([]), linkUpMs: NaN, firstEntryMs: NaN,
  }
  try {
    const mesh = ['--mesh-secret', SECRET]
    joining = await startContender('georelay-memory', {
      extraConfig: CONFIG,
      relayArgs: ['--region', 'joining', '--port', String(joiningPort), '--peer', `big=ws://127.0.0.1:${bigPort}`, ...mesh],
    })
    const joined = joining
    const started = performance.now()
    big = await startContender('georelay', {
      dataDir: dir,
      extraConfig: CONFIG,
      relayArgs: ['--region', 'big', '--port', String(bigPort), '--peer', `joining=ws://127.0.0.1:${joiningPort}`, ...mesh],
      timeoutMs: 120_000,
    })
    run.startMs = performance.now() - started
    const regionsUrl = `${httpOf(big)}/v1/regions`
    const linkUp = async (): Promise<boolean> => {
      const info = await getJson(regionsUrl) as { peers: { region: string, state: string }[] }
      return info.peers.some(p => p.region === 'joining' && p.state === 'up')
    }
    run.linkUpMs = await timeUntil(linkUp, 60_000, 'the link to the joining region')
    run.firstEntryMs = run.linkUpMs + await timeUntil(async () => await peerMetric(joined) > 0, 120_000, 'a first replicated entry')
    const samples: number[] = []
    for (let i = 0; i < REGIONS_SAMPLES; i++) {
      const t = performance.now()
      await getJson(regionsUrl)
      samples.push(performance.now() - t)
    }
    run.regionsMs = distribution(samples)
  } catch (err) {
    run.error = (err as Error).message
  } finally {
    await joining?.stop()
    await big?.stop()
    fs.rmSync(dir, { recursive: true, force: true })
  }
  return run
}

export const runStoredDocs = async (
  counts: readonly number[],
  onProgress: (line: string) => void = () => {},
): Promise<StoredDocsResult> => {
  const runs: StoredDocsRun[] = []
  for (const docs of counts) runs.push(await runOne(docs, onProgress))
  return { runs }
}
