/**
 * docs/grafana-dashboard.json queries the relay's own metric names: a metric renamed or removed in
 * observability/metrics.ts (or a typo in the dashboard) would leave a panel silently empty, so every
 * name a query uses must be in the registry the relay creates.
 */
import fs from 'node:fs'
import { describe, expect, it } from '@jest/globals'
import { createRelayMetrics } from '../src/observability/index.js'

interface Source { datasource?: { uid?: string } }
interface Target extends Source { expr?: string }
interface Panel extends Source { id?: number, type?: string, title?: string, targets?: Target[], panels?: Panel[] }
interface Variable { name: string, type: string, query?: string | { query?: string } }
interface Dashboard { panels: Panel[], templating: { list: Variable[] } }

const dashboardUrl = new URL('../../../docs/grafana-dashboard.json', import.meta.url)
const dashboard = JSON.parse(fs.readFileSync(dashboardUrl, 'utf8')) as Dashboard

/** Rows hold their panels inline when collapsed: those count too. */
const allPanels = (panels: Panel[]): Panel[] => panels.flatMap(p => [p, ...allPanels(p.panels ?? [])])
const panels = allPanels(dashboard.panels)
const queryPanels = panels.filter(p => p.type !== 'row')
const exprs = queryPanels.flatMap(p => (p.targets ?? []).map(t => t.expr ?? ''))
const variableQueries = dashboard.templating.list
  .filter(v => v.type === 'query')
  .map(v => typeof v.query === 'string' ? v.query : v.query?.query ?? '')

const METRIC = /\bgeorelay_[A-Za-z0-9_:]+/g
const metricsOf = (expr: string): string[] => expr.match(METRIC) ?? []

/** Prometheus exposes a histogram as NAME_bucket, NAME_sum and NAME_count; a summary without buckets. */
const SERIES_OF: Record<string, string[]> = { histogram: ['bucket', 'sum', 'count'], summary: ['sum', 'count'] }

const registered = async (): Promise<Map<string, string>> => {
  const { registry } = createRelayMetrics('test-region')
  const metrics = await registry.getMetricsAsJSON()
  return new Map(metrics.map(m => [m.name, String(m.type)]))
}

/** The registered metric a series name belongs to, or null. */
const metricOfSeries = (series: string, types: Map<string, string>): string | null => {
  if (types.has(series)) return series
  const match = /^(.+)_(bucket|sum|count)$/.exec(series)
  if (match === null) return null
  const [, base = '', suffix = ''] = match
  return SERIES_OF[types.get(base) ?? '']?.includes(suffix) === true ? base : null
}

describe('docs/grafana-dashboard.json', () => {
  it('has panels, each with a title, and queries that all name a georelay metric', () => {
    expect(queryPanels.length).toBeGreaterThan(0)
    for (const panel of panels) expect(panel.title?.trim()).toBeTruthy()
    for (const panel of queryPanels) expect(panel.targets?.length ?? 0).toBeGreaterThan(0)
    // An expression naming no georelay_ metric (a misspelt prefix, say) would escape the check below.
    for (const expr of [...exprs, ...variableQueries]) expect([expr, metricsOf(expr).length > 0]).toEqual([expr, true])
    const ids = panels.map(p => p.id)
    expect(new Set(ids).size).toBe(ids.length)
  })

  it('queries only metrics that the relay registers', async () => {
    const types = await registered()
    const used = new Set([...exprs, ...variableQueries].flatMap(metricsOf))
    const unknown = [...used].filter(series => metricOfSeries(series, types) === null)
    expect(unknown).toEqual([])
  })

  it('reads the Prometheus data source from the datasource variable', () => {
    expect(dashboard.templating.list.find(v => v.name === 'datasource')?.type).toBe('datasource')
    for (const panel of queryPanels) {
      const sources = [panel, ...(panel.targets ?? [])].map(p => p.datasource?.uid)
      expect([panel.title, sources.every(uid => uid === '${datasource}')]).toEqual([panel.title, true])
    }
  })

  // What an operator needs to see of a mesh; each area must keep at least one panel.
  const AREAS: [string, RegExp][] = [
    ['connections per endpoint', /georelay_connections\b.*endpoint|endpoint.*georelay_connections\b/],
    ['updates in', /rate\(georelay_updates_received_total/],
    ['updates out', /rate\(georelay_updates_sent_total/],
    ['bytes out', /rate\(georelay_bytes_sent_total/],
    ['store append latency', /histogram_quantile\(0\.99,.*georelay_store_append_seconds_bucket/],
    ['store errors', /georelay_store_errors_total/],
    ['rejected messages by code', /by \([^)]*code[^)]*\) \(rate\(georelay_messages_rejected_total/],
    ['peer link state', /georelay_peer_link_up/],
    ['replication lag', /georelay_replication_lag_ms/],
    ['replication pending', /georelay_replication_pending_updates/],
    ['throttled sockets', /georelay_client_throttled_total/],
    ['process CPU', /rate\(georelay_process_cpu_seconds_total/],
    ['process memory', /georelay_process_resident_memory_bytes/],
  ]
  it.each(AREAS)('has a panel for %s', (_area, pattern) => {
    expect(queryPanels.some(p => (p.targets ?? []).some(t => pattern.test(t.expr ?? '')))).toBe(true)
  })
})
