/**
 * `npm start`: the demo server, with flags (and environment variables, so that a test or a
 * second copy can move it off the default ports). Exit codes: 0 stopped, 1 failed, 2 bad usage.
 */
import { parseArgs } from 'node:util'
import { parseLatencies } from '@georelay/cluster'
import { type LogLevel, stderrLogger } from '@georelay/relay'
import { startDemoServer } from './demo-server.js'

export const HELP = `georelay demo — a collaborative editor over a local three-region cluster

Usage: npm start -- [flags]     (or: node examples/collab-editor/bin/collab-editor.js [flags])

  --port PORT          the page and its control API (default 4000; 0 = any)  GEORELAY_DEMO_PORT
  --base-port PORT     first relay's port, the others follow (default 4001)  GEORELAY_DEMO_BASE_PORT
  --data DIR           data directory; region R uses DIR/R (default data/cluster)
  --store KIND         sqlite (default) or memory
  --regions A,B,C      region names (default us-east,eu-west,ap-south)
  --latency A:B=MS     one-way delay between two regions; repeatable
  --log-level LEVEL    the relays' log: debug, info, warn (default) or error
`

const usage = (message: string): number => {
  process.stderr.write(`georelay demo: ${message}\n\n${HELP}`)
  return 2
}

const isPort = (text: string): boolean => /^\d{1,5}$/.test(text) && Number(text) <= 65535

const untilSignal = (stop: () => Promise<void>): Promise<number> => new Promise(resolve => {
  const handle = (): void => {
    stop().then(() => resolve(0), err => {
      process.stderr.write(`georelay demo: stopping failed (${(err as Error).message})\n`)
      resolve(1)
    })
  }
  process.once('SIGTERM', handle)
  process.once('SIGINT', handle)
})

export const main = async (argv: string[]): Promise<number> => {
  let values
  try {
    ({ values } = parseArgs({
      args: argv,
      strict: true,
      allowPositionals: false,
      options: {
        port: { type: 'string', default: process.env.GEORELAY_DEMO_PORT ?? '4000' },
        'base-port': { type: 'string', default: process.env.GEORELAY_DEMO_BASE_PORT ?? '4001' },
        data: { type: 'string', default: 'data/cluster' },
        store: { type: 'string', default: 'sqlite' },
        regions: { type: 'string', default: 'us-east,eu-west,ap-south' },
        latency: { type: 'string', multiple: true },
        'log-level': { type: 'string', default: 'warn' },
        help: { type: 'boolean', short: 'h' },
      },
    }))
  } catch (err) {
    return usage((err as Error).message)
  }
  if (values.help === true) {
    process.stdout.write(HELP)
    return 0
  }
  if (!isPort(values.port)) return usage(`--port must be a port number, not "${values.port}"`)
  if (!isPort(values['base-port'])) return usage(`--base-port must be a port number, not "${values['base-port']}"`)
  const [port, basePort] = [Number(values.port), Number(values['base-port'])]
  if (values.store !== 'sqlite' && values.store !== 'memory') return usage(`--store must be sqlite or memory, not "${values.store}"`)
  if (!['debug', 'info', 'warn', 'error'].includes(values['log-level'])) return usage(`--log-level must be debug, info, warn or error, not "${values['log-level']}"`)
  const regions = values.regions.split(',').map(r => r.trim()).filter(Boolean)
  let latency: Record<string, number>
  try {
    latency = parseLatencies(values.latency ?? [])
  } catch (err) {
    return usage((err as Error).message)
  }
  let demo
  try {
    demo = await startDemoServer({ regions, port, basePort, dataDir: values.data, store: values.store, latency, logger: stderrLogger(values['log-level'] as LogLevel) })
  } catch (err) {
    const hint = (err as NodeJS.ErrnoException).code === 'EADDRINUSE' ? ' (a port is taken: is another `npm start` running? Pick others with --port and --base-port)' : ''
    process.stderr.write(`georelay demo: could not start: ${(err as Error).message}${hint}\n`)
    return 1
  }
  // The last two: with the default regions, a user in Europe and one in Asia.
  const [first, second] = regions.slice(-2)
  const lines = [
    `georelay demo: open ${demo.url}`,
    ...(first !== undefined && second !== undefined
      ? [`  side by side, a user in ${first} and one in ${second}:`, `    ${demo.url}?region=${first}`, `    ${demo.url}?region=${second}`]
      : []),
    `  rich text, Tiptap over the Hocuspocus provider: ${demo.url}tiptap${first === undefined ? '' : `?region=${first}`}`,
    `  control API: ${demo.url}api/cluster`,
    `georelay cluster: ${regions.length} regions (store: ${values.store}${values.store === 'sqlite' ? ` in ${values.data}` : ''})`,
    ...demo.cluster.describe(),
    'Stop with Ctrl-C.',
  ]
  process.stdout.write(lines.join('\n') + '\n')
  return untilSignal(() => demo.close())
}
