#!/usr/bin/env node
// Usage: npm run chaos -- [--minutes N] [--seed S] [--one-at-a-time] [--no-loss] [--quiet]
// Runs the chaos suite for N minutes (default 1) with seed S (default 1), prints its summary,
// and exits 1 if an acknowledged write was lost or duplicated, or the replicas differ (2 if the
// run itself could not go on, e.g. a relay that would not start).
// Needs the compiled packages: `npm run build` first.
import { parseArgs } from 'node:util'
import { chaosPassed, formatSummary, runChaos } from '../dist/chaos.js'

const { values } = parseArgs({
  options: {
    minutes: { type: 'string', default: '1' },
    seed: { type: 'string', default: '1' },
    'no-loss': { type: 'boolean', default: false },
    'one-at-a-time': { type: 'boolean', default: false },
    quiet: { type: 'boolean', default: false },
  },
})
const minutes = Number(values.minutes)
const seed = Number(values.seed)
if (!(minutes > 0) || !Number.isInteger(seed)) {
  console.error('usage: npm run chaos -- --minutes N --seed S   (N > 0, S an integer)')
  process.exit(2)
}
const durationMs = Math.round(minutes * 60_000)
const summary = await runChaos({
  seed,
  durationMs,
  // Link faults (cut, partition) and process faults (kill, pause) overlap unless told otherwise.
  overlap: !values['one-at-a-time'],
  // The last 10% of the time (at most 30 s) one region is gone for good: the `majority` rule.
  finalLossMs: values['no-loss'] ? 0 : Math.min(30_000, Math.max(3000, durationMs / 10)),
  log: values.quiet ? undefined : line => console.error(line),
}).catch(err => {
  console.error(`chaos run aborted: ${err.stack ?? err}`)
  process.exit(2)
})
console.log(formatSummary(summary))
process.exit(chaosPassed(summary) ? 0 : 1)
