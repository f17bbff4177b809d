/**
 * Convergence and cross-region bytes: three regions under the WAN simulator (testkit's
 * measureMesh), a writer in one replaying a trace at a fast and at a human typing pace.
 */
import { type EditingTrace, type MeshMeasurement, measureMesh } from '@georelay/testkit'

export interface ConvergenceOptions {
  trace: EditingTrace
  delayMs: number
  /** Keystrokes replayed as fast as the writer can (the batching case). */
  fastUpdates: number
  /** Keystrokes at `humanIntervalMs` apart. */
  humanUpdates: number
  humanIntervalMs: number
}

export interface ConvergenceResult {
  fast: MeshMeasurement | null
  human: MeshMeasurement | null
  error?: string
}

export const runConvergence = async (
  { trace, delayMs, fastUpdates, humanUpdates, humanIntervalMs }: ConvergenceOptions,
): Promise<ConvergenceResult> => {
  const result: ConvergenceResult = { fast: null, human: null }
  try {
    result.fast = await measureMesh({ trace, updates: fastUpdates, intervalMs: 0, delayMs })
    result.human = await measureMesh({ trace, updates: humanUpdates, intervalMs: humanIntervalMs, delayMs })
  } catch (err) {
    result.error = (err as Error).message
  }
  return result
}
