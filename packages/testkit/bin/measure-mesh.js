#!/usr/bin/env node
// Usage: node packages/testkit/bin/measure-mesh.js [--trace FILE] [--updates N] [--delay MS] [--interval MS ...]
// Prints, per typing pace, edit-to-visible latency minus the injected delay and cross-region
// bytes per client update byte (goals in docs/architecture.md: p50 <= +10 ms, p99 <= +20 ms, ratio <= 0.5).
import { parseArgs } from 'node:util'
import { loadTrace, measureMesh, syntheticTrace } from '../dist/index.js'

const { values } = parseArgs({
  options: {
    trace: { type: 'string' },
    updates: { type: 'string', default: '2000' },
    delay: { type: 'string', default: '40' },
    interval: { type: 'string', multiple: true, default: ['0', '20'] },
  },
})
const updates = Number(values.updates)
const trace = values.trace ? loadTrace(values.trace) : syntheticTrace(updates)
console.log(`trace: ${values.trace ?? 'synthetic (seed 1)'}, ${Math.min(updates, trace.patches.length)} keystrokes, one-way delay ${values.delay} ms, 3 regions`)
for (const interval of values.interval) {
  const m = await measureMesh({ trace, updates, intervalMs: Number(interval), delayMs: Number(values.delay), onProgress: n => process.stderr.write(`\r  ${n} keystrokes…`) })
  process.stderr.write('\r')
  const pace = m.intervalMs === 0 ? 'as fast as possible' : `one keystroke per ${m.intervalMs} ms`
  console.log(`${pace}: latency - delay p50 ${m.latencyMinusDelayMs.p50.toFixed(1)} ms, p99 ${m.latencyMinusDelayMs.p99.toFixed(1)} ms, max ${m.latencyMinusDelayMs.max.toFixed(1)} ms; ` +
    `cross-region bytes ${m.crossRegionBytes} / client update bytes ${m.clientUpdateBytes} = ${m.bytesRatio.toFixed(3)}`)
}
