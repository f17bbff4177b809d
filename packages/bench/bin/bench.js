#!/usr/bin/env node
// `npm run bench [-- --quick] [options]`: georelay side by side with other Yjs servers.
// Build first (`npx tsc -b`): this runs the compiled dist/.
import { parseArgs } from 'node:util'
import path from 'node:path'
import fs from 'node:fs'
import { WORKLOADS, defaultOptions, parseContenders, parseWorkloads, runBench } from '../dist/run-bench.js'
import { formatProfileSummary, summarizeProfile } from '../dist/cpu-profile.js'
import { writeReport } from '../dist/report.js'

const HELP = `Usage: npm run bench -- [options]

  --quick               the 2-minute version (fewer keystrokes, smaller documents)
  --trace PATH          a sequential editing trace ({endContent, txns:[{patches}]}, .json or .json.gz)
                        for every workload; default a seeded synthetic trace
  --seed N              seed of the synthetic trace (default 1)
  --only LIST           workloads to run, comma-separated: ${WORKLOADS.join(',')}
  --contenders LIST     fan-out servers: ywss,hocuspocus,hocuspocus-sqlite,echo,georelay,georelay-memory
                        (experiments: merge-echo, merge-echo-5ms)
  --docs N              fan-out documents (default 4), each 1 writer + --readers readers (default 16)
  --rate N              paced fan-out updates/s per writer (default 500)
  --delay MS            one-way delay between regions, convergence workload (default 40)
  --memory-docs N       documents held open in the memory workload (default 1000)
  --cpu-prof            profile every server during fan-out and the relay during durable ack (.cpuprofile files in <out>/profiles)
  --profile FILE        print the hot spots of a .cpuprofile and exit
  --render FILE         write the markdown and charts again from a results JSON (into its directory) and exit
  --out DIR             results directory (default packages/bench/results)
  --help                this text
`

const { values } = parseArgs({
  options: {
    quick: { type: 'boolean', default: false },
    trace: { type: 'string' },
    seed: { type: 'string' },
    only: { type: 'string' },
    contenders: { type: 'string' },
    docs: { type: 'string' },
    readers: { type: 'string' },
    rate: { type: 'string' },
    delay: { type: 'string' },
    'memory-docs': { type: 'string' },
    'cpu-prof': { type: 'boolean', default: false },
    out: { type: 'string' },
    profile: { type: 'string' },
    render: { type: 'string' },
    help: { type: 'boolean', default: false },
  },
})
if (values.help) {
  process.stdout.write(HELP)
  process.exit(0)
}
if (values.profile !== undefined) {
  process.stdout.write(`${formatProfileSummary(summarizeProfile(values.profile))}\n`)
  process.exit(0)
}
if (values.render !== undefined) {
  const file = path.resolve(values.render)
  process.stdout.write(`${writeReport(JSON.parse(fs.readFileSync(file, 'utf8')), path.dirname(file))}\n`)
  process.exit(0)
}
const options = defaultOptions(values.quick)
const number = (name, text) => {
  const n = Number(text)
  if (!Number.isFinite(n) || n <= 0) { process.stderr.write(`--${name} must be a positive number, not "${text}"\n`); process.exit(2) }
  return n
}
try {
  if (values.trace !== undefined) options.trace = path.resolve(values.trace)
  if (values.seed !== undefined) options.seed = number('seed', values.seed)
  if (values.only !== undefined) options.workloads = parseWorkloads(values.only)
  if (values.contenders !== undefined) options.contenders = parseContenders(values.contenders)
  if (values.docs !== undefined) options.docs = number('docs', values.docs)
  if (values.readers !== undefined) options.readersPerDoc = number('readers', values.readers)
  if (values.rate !== undefined) options.pacedRate = number('rate', values.rate)
  if (values.delay !== undefined) options.delayMs = number('delay', values.delay)
  if (values['memory-docs'] !== undefined) options.memoryDocs = number('memory-docs', values['memory-docs'])
  if (values.out !== undefined) options.outDir = path.resolve(values.out)
  options.cpuProf = values['cpu-prof']
} catch (err) {
  process.stderr.write(`${err.message}\n${HELP}`)
  process.exit(2)
}
const profilesBefore = new Set(listProfiles(options.outDir))
const { markdownPath } = await runBench(options)
for (const file of listProfiles(options.outDir).filter(f => !profilesBefore.has(f))) {
  process.stderr.write(`\nprofile ${file}\n${formatProfileSummary(summarizeProfile(file))}\n`)
}
process.stdout.write(`${markdownPath}\n`)

function listProfiles (outDir) {
  const dir = path.join(outDir, 'profiles')
  return fs.existsSync(dir) ? fs.readdirSync(dir).filter(f => f.endsWith('.cpuprofile')).map(f => path.join(dir, f)) : []
}
