#!/usr/bin/env node
// Usage: node packages/testkit/bin/attacks.js [--relay-bin PATH] [--only 1,2,3,4] [--json]
//          [--presence-wait] [--time-limit SECONDS] [--sync-step1 N] [--query-awareness N] [--quiet]
// Reproduces four denial-of-service attacks, each against a fresh relay child process on
// 127.0.0.1 started from PATH (default: this repository's packages/relay/bin/georelay.js), and
// prints per attack the longest /healthz answer (the relay's event-loop stall) and the relay's
// RSS before, at its peak and at the end. "1" runs 1 (sync step 1) and 1b (query awareness).
// Progress goes to stderr, the table (or JSON) to stdout. Exit 0 when every attack ran (whatever
// it measured), 1 when one failed to run, 2 on bad usage. Needs the compiled packages.
import path from 'node:path'
import { parseArgs } from 'node:util'
import { defaultAttackOptions, formatTable, parseOnly, runAttacks } from '../dist/attacks.js'

let values
try {
  ({ values } = parseArgs({
    options: {
      'relay-bin': { type: 'string' },
      only: { type: 'string', default: '1,2,3,4' },
      json: { type: 'boolean', default: false },
      'presence-wait': { type: 'boolean', default: false },
      'time-limit': { type: 'string', default: '60' },
      'sync-step1': { type: 'string' },
      'query-awareness': { type: 'string' },
      quiet: { type: 'boolean', default: false },
      help: { type: 'boolean', short: 'h', default: false },
    },
  }))
} catch (err) {
  console.error(`attacks: ${err.message}`)
  process.exit(2)
}
if (values.help) {
  console.log('usage: node packages/testkit/bin/attacks.js [--relay-bin PATH] [--only 1,2,3,4] [--json] [--presence-wait] [--time-limit SECONDS] [--sync-step1 N] [--query-awareness N] [--quiet]')
  process.exit(0)
}
const positive = (text, what) => {
  const n = Number(text)
  if (!(Number.isInteger(n) && n > 0)) {
    console.error(`attacks: ${what} must be a positive integer, not "${text}"`)
    process.exit(2)
  }
  return n
}
const defaults = defaultAttackOptions()
let only
try {
  only = parseOnly(values.only)
} catch (err) {
  console.error(`attacks: --only: ${err.message}`)
  process.exit(2)
}
const options = {
  relayBin: values['relay-bin'] === undefined ? defaults.relayBin : path.resolve(values['relay-bin']),
  only,
  timeLimitMs: positive(values['time-limit'], '--time-limit') * 1000,
  log: values.quiet ? undefined : line => console.error(line),
  syncStep1: { ...defaults.syncStep1, ...(values['sync-step1'] === undefined ? {} : { messages: positive(values['sync-step1'], '--sync-step1') }) },
  queryAwareness: { ...defaults.queryAwareness, ...(values['query-awareness'] === undefined ? {} : { messages: positive(values['query-awareness'], '--query-awareness') }) },
  presence: { ...defaults.presence, waitAfterMs: values['presence-wait'] ? 35_000 : 0 },
}
const results = await runAttacks(options)
console.log(values.json ? JSON.stringify(results, null, 2) : formatTable(results))
process.exit(results.some(r => r.error !== null) ? 1 : 0)
