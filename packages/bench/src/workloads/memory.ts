/**
 * Memory: N documents of a trace's final size held open (one socket each), and the server's
 * resident memory once they are all loaded, against what it used before.
 */
import { type ContenderKind, type StartContenderOptions, startContender } from '../contenders.js'
import { type LoadSocket, openLoadSocket } from '../load-socket.js'
import { openingFrames, updateFrame } from '../wire.js'

export interface MemoryOptions {
  docs: number
  /** The final state of a document (one update). */
  state: Uint8Array
  /** Documents loaded at once. */
  concurrency?: number
  /** Pause after loading before the settled sample (lets timers and GC run; a measurement choice). */
  settleMs?: number
}

export interface MemoryResult {
  kind: ContenderKind
  label: string
  docs: number
  docBytes: number
  /** RSS before any document was opened. */
  baseRssBytes: number
  /** RSS with every document open, after settling. */
  rssBytes: number
  peakRssBytes: number
  loadSeconds: number
  error?: string
}

/**
 * Opens one document: sends its state, then asks for the server's (sync step 1); the answer
 * comes after the state is applied, so the document is loaded once it arrives. The echo holds
 * no documents and answers nothing: it is a process holding N sockets.
 */
const loadDoc = (
  contender: Parameters<typeof openLoadSocket>[0],
  name: string,
  state: Uint8Array,
): Promise<LoadSocket> =>
  new Promise((resolve, reject) => {
    let answers = 0
    let socket: LoadSocket | undefined
    openLoadSocket(contender, name, {
      onFrame: sync => {
        answers += sync.step2s
        // The first step 2 answers the opening step 1; the second, ours after the state.
        if (answers >= 2 && socket !== undefined) resolve(socket)
      },
    }).then(opened => {
      socket = opened
      opened.send(updateFrame(contender.framing, name, state))
      if (!contender.speaksFirst) return resolve(opened)
      for (const frame of openingFrames(contender.framing, name).slice(-1)) opened.send(frame)
      if (answers >= 2) resolve(opened)
    }, reject)
  })

export const runMemory = async (
  kind: ContenderKind,
  { docs, state, concurrency = 16, settleMs = 2000 }: MemoryOptions,
  start: StartContenderOptions = {},
): Promise<MemoryResult> => {
  const contender = await startContender(kind, start)
  const base = contender.sample()
  const result: MemoryResult = {
    kind,
    label: contender.label,
    docs,
    docBytes: state.length,
    baseRssBytes: base.rssBytes,
    rssBytes: 0,
    peakRssBytes: 0,
    loadSeconds: 0,
  }
  const sockets: LoadSocket[] = []
  try {
    const started = performance.now()
    let next = 0
    await Promise.all(Array.from({ length: concurrency }, async () => {
      while (next < docs) {
        const name = `bench/memory-${next++}`
        sockets.push(await Promise.race([
          loadDoc(contender, name, state),
          new Promise<never>((_, reject) => setTimeout(() => reject(new Error(`${contender.label}: ${name} not loaded within 60 s`)), 60_000).unref()),
        ]))
      }
    }))
    result.loadSeconds = (performance.now() - started) / 1000
    await new Promise(resolve => setTimeout(resolve, settleMs))
    const after = contender.sample()
    result.rssBytes = after.rssBytes
    result.peakRssBytes = after.peakRssBytes
  } catch (err) {
    result.error = (err as Error).message
  } finally {
    for (const socket of sockets) socket.close()
    await contender.stop()
  }
  return result
}
