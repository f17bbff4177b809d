/**
 * Two small chart kinds as standalone SVG text, so that results can be looked at in a browser
 * or on GitHub without any charting dependency: horizontal bars, and latency distributions
 * (percentile against latency, log scale).
 */
import { QUANTILE_POINTS } from './stats.js'

const PALETTE = ['#4e79a7', '#f28e2b', '#59a14f', '#e15759', '#76b7b2', '#b07aa1', '#edc948']
const FONT = 'font-family="system-ui, -apple-system, Segoe UI, sans-serif"'

const escape = (text: string): string => text.replace(/[&<>"]/g, c => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;' })[c] as string)

const compact = (value: number): string => {
  if (!Number.isFinite(value)) return 'n/a'
  const abs = Math.abs(value)
  if (abs >= 1e6) return `${(value / 1e6).toFixed(abs >= 1e7 ? 0 : 1)}M`
  if (abs >= 1e4) return `${(value / 1e3).toFixed(0)}k`
  if (abs >= 100) return value.toFixed(0)
  if (abs >= 1) return value.toFixed(abs >= 10 ? 1 : 2)
  return value.toPrecision(2)
}

export interface Bar {
  label: string
  value: number
  /** Drawn after the value, like "load generator bound". */
  note?: string
  /** Draw this one in the accent colour (georelay). */
  highlight?: boolean
}

export const barChart = (
  { title, unit, bars, goal }: { title: string, unit: string, bars: Bar[], goal?: { value: number, label: string } },
): string => {
  const width = 720
  const left = 190
  const right = 150
  const rowHeight = 34
  const top = 48
  const height = top + bars.length * rowHeight + 40
  const finite = bars.map(b => b.value).filter(Number.isFinite)
  const max = Math.max(...finite, goal?.value ?? 0, 1e-9) * 1.05
  const x = (v: number): number => left + (width - left - right) * v / max
  const rows = bars.map((bar, i) => {
    const y = top + i * rowHeight
    const w = Number.isFinite(bar.value) ? Math.max(1, x(bar.value) - left) : 0
    const colour = bar.highlight === true ? PALETTE[3] : PALETTE[0]
    return `<text x="${left - 8}" y="${y + 20}" text-anchor="end" font-size="13">${escape(bar.label)}</text>` +
      `<rect x="${left}" y="${y + 6}" width="${w.toFixed(1)}" height="${rowHeight - 12}" rx="3" fill="${colour}"/>` +
      `<text x="${(left + w + 6).toFixed(1)}" y="${y + 20}" font-size="12">${escape(compact(bar.value))} ${escape(unit)}${bar.note === undefined ? '' : ` · ${escape(bar.note)}`}</text>`
  }).join('\n')
  const goalLine = goal === undefined ? ''
    : `<line x1="${x(goal.value).toFixed(1)}" x2="${x(goal.value).toFixed(1)}" y1="${top - 4}" y2="${top + bars.length * rowHeight}" stroke="#333" stroke-dasharray="4 3"/>` +
      `<text x="${x(goal.value).toFixed(1)}" y="${top + bars.length * rowHeight + 16}" text-anchor="middle" font-size="11">${escape(goal.label)}</text>`
  return `<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}" viewBox="0 0 ${width} ${height}" ${FONT}>
<rect width="100%" height="100%" fill="#fff"/>
<text x="16" y="28" font-size="16" font-weight="600">${escape(title)}</text>
${rows}
${goalLine}
</svg>
`
}

export interface Series {
  label: string
  /** Values at stats.QUANTILE_POINTS (see stats.quantiles). */
  quantiles: number[]
  highlight?: boolean
}

/** How far into the tail a probability is: p50, p90, p99 and p99.9 fall evenly spaced. */
const tailDepth = (q: number): number => -Math.log10(1 - Math.min(q, 0.999))

/**
 * Percentile (y, tail-stretched so p90 to p99.9 get as much room as p0 to p90) against latency
 * (x, log scale): further left is faster; a long tail shows as a line bending right at the top.
 */
export const distributionChart = (
  { title, unit, series }: { title: string, unit: string, series: Series[] },
): string => {
  const width = 720
  const height = 400
  const pad = { left: 60, right: 200, top: 44, bottom: 46 }
  const values = series.flatMap(s => s.quantiles).filter(v => Number.isFinite(v) && v > 0)
  const lo = Math.max(1e-3, Math.min(...values, 1))
  const hi = Math.max(...values, lo * 10)
  const [logLo, logHi] = [Math.floor(Math.log10(lo)), Math.ceil(Math.log10(hi))]
  const decades = Math.max(1, logHi - logLo)
  const x = (v: number): number =>
    pad.left + (width - pad.left - pad.right) * (Math.log10(Math.max(v, 10 ** logLo)) - logLo) / decades
  const y = (q: number): number => height - pad.bottom - (height - pad.top - pad.bottom) * tailDepth(q) / tailDepth(1)
  const grid: string[] = []
  for (let e = logLo; e <= logHi; e++) {
    grid.push(`<line x1="${x(10 ** e).toFixed(1)}" x2="${x(10 ** e).toFixed(1)}" y1="${pad.top}" y2="${height - pad.bottom}" stroke="#ddd"/>`,
      `<text x="${x(10 ** e).toFixed(1)}" y="${height - pad.bottom + 16}" text-anchor="middle" font-size="11">${compact(10 ** e)}</text>`)
  }
  for (const q of [0, 0.5, 0.9, 0.99, 0.999]) {
    grid.push(`<line x1="${pad.left}" x2="${width - pad.right}" y1="${y(q).toFixed(1)}" y2="${y(q).toFixed(1)}" stroke="${q === 0.5 || q === 0.99 ? '#bbb' : '#eee'}"/>`,
      `<text x="${pad.left - 6}" y="${(y(q) + 4).toFixed(1)}" text-anchor="end" font-size="11">p${Number((q * 100).toFixed(1))}</text>`)
  }
  const lines = series.map((s, i) => {
    const colour = s.highlight === true
      ? PALETTE[3]
      : PALETTE[(i % (PALETTE.length - 1)) + (i >= 3 ? 1 : 0)] ?? PALETTE[0]
    // The maximum sits on the p99.9 line: the chart stops there.
    const points = s.quantiles.map((v, k) => `${x(v).toFixed(1)},${y(QUANTILE_POINTS[k] ?? 1).toFixed(1)}`).join(' ')
    const legendY = pad.top + 8 + i * 20
    return `<polyline fill="none" stroke="${colour}" stroke-width="${s.highlight === true ? 2.5 : 1.6}" points="${points}"/>` +
      `<rect x="${width - pad.right + 14}" y="${legendY - 9}" width="12" height="12" fill="${colour}"/>` +
      `<text x="${width - pad.right + 32}" y="${legendY + 1}" font-size="12">${escape(s.label)}</text>`
  }).join('\n')
  return `<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}" viewBox="0 0 ${width} ${height}" ${FONT}>
<rect width="100%" height="100%" fill="#fff"/>
<text x="16" y="26" font-size="16" font-weight="600">${escape(title)}</text>
${grid.join('\n')}
${lines}
<text x="${((pad.left + width - pad.right) / 2).toFixed(0)}" y="${height - 10}" text-anchor="middle" font-size="12">${escape(unit)} (log scale)</text>
</svg>
`
}
