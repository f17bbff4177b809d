#!/usr/bin/env node
// Usage: npm run fuzz -- [--seconds N] [--frames N] [--seed S] [--concurrency N]
// Fuzzes a fresh relay's three endpoints (--frames is per endpoint) and prints the summary;
// exits 1 if any check failed.
// Build first (npm run build): this runs the compiled testkit.
import { parseArgs } from 'node:util'
import { formatFuzzSummary, fuzzRelay } from '../dist/fuzz-relay.js'

const { values } = parseArgs({
  options: {
    seconds: { type: 'string' },
    frames: { type: 'string' },
    seed: { type: 'string', default: String(Date.now() % 1_000_000) },
    concurrency: { type: 'string', default: '2' },
  },
})
const seconds = values.seconds === undefined ? (values.frames === undefined ? 60 : undefined) : Number(values.seconds)
const frames = values.frames === undefined ? undefined : Number(values.frames)
console.log(`fuzzing a relay: seed ${values.seed}, ${seconds === undefined ? '' : `${seconds} s`}${seconds !== undefined && frames !== undefined ? ' or ' : ''}${frames === undefined ? '' : `${frames} frames`}`)
const summary = await fuzzRelay({
  seed: Number(values.seed),
  seconds,
  frames,
  concurrency: Number(values.concurrency),
  onProgress: s => process.stderr.isTTY && process.stderr.write(`\r  ${s.seconds.toFixed(0)} s, ${s.framesTried} frames…`),
})
if (process.stderr.isTTY) process.stderr.write('\r')
console.log(formatFuzzSummary(summary))
const endpoints = Object.values(summary.endpoints)
const failed = summary.crashes + summary.healthFailures + summary.lost + summary.syncFailures + summary.stateChanged +
  summary.unexpectedDocs.length + summary.unreadableDocs.length +
  endpoints.reduce(
    (n, e) => n + e.wrongCodes + e.acceptedInvalid + e.refusedValid + e.otherDocsHurt + e.probeTimeouts,
    0,
  )
console.log(failed === 0 ? 'every check held' : `${failed} check failures`)
process.exit(failed === 0 ? 0 : 1)
