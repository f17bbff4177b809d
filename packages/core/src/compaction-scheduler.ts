import type { CompactionThresholds } from './doc-store.js'

/**
 * Decides when a store compacts a document: tracks each document's log size and starts at most
 * one compaction per document once a threshold is passed. Shared by every store so that all
 * of them compact on the same rule.
 */
export class CompactionScheduler {
  private readonly logs = new Map<string, { count: number, bytes: number }>()
  private readonly running = new Map<string, Promise<void>>()
  private readonly queued = new Map<string, Promise<void>>()

  constructor (
    private readonly thresholds: CompactionThresholds,
    private readonly run: (docName: string) => Promise<{ count: number, bytes: number }>,
    private readonly onError: (docName: string, err: unknown) => void,
  ) {}

  /** Records a document's log size as read from storage. */
  observe (docName: string, count: number, bytes: number): void {
    this.logs.set(docName, { count, bytes })
    this.maybeStart(docName)
  }

  noteAppend (docName: string, bytes: number): void {
    const log = this.logs.get(docName) ?? { count: 0, bytes: 0 }
    log.count++
    log.bytes += bytes
    this.logs.set(docName, log)
    this.maybeStart(docName)
  }

  /**
   * Runs a compaction now. One already running took its cut before this call, so another one
   * follows it, shared by every caller that arrives meanwhile.
   */
  compact (docName: string): Promise<void> {
    const running = this.running.get(docName)
    if (running !== undefined) {
      let next = this.queued.get(docName)
      if (next === undefined) {
        next = running.then(() => {}, () => {}).then(() => {
          this.queued.delete(docName)
          return this.compact(docName)
        })
        this.queued.set(docName, next)
      }
      return next
    }
    const job = this.run(docName).then(folded => {
      const log = this.logs.get(docName)
      if (log !== undefined) {
        log.count = Math.max(0, log.count - folded.count)
        log.bytes = Math.max(0, log.bytes - folded.bytes)
      }
    }).finally(() => this.running.delete(docName))
    this.running.set(docName, job)
    // Appends that raced with this compaction may already have filled the log again.
    job.then(() => this.maybeStart(docName), () => {})
    return job
  }

  /** Resolves when no compaction is running or queued. */
  async settled (): Promise<void> {
    while (this.running.size > 0 || this.queued.size > 0) {
      await Promise.allSettled([...this.running.values(), ...this.queued.values()])
    }
  }

  private maybeStart (docName: string): void {
    const log = this.logs.get(docName)
    if (log === undefined || this.running.has(docName)) return
    if (log.count < this.thresholds.updates && log.bytes < this.thresholds.bytes) return
    this.compact(docName).catch(err => this.onError(docName, err))
  }
}
