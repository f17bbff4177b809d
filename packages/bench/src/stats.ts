/** Percentiles over samples (nearest rank on a sorted copy). */
export interface Distribution {
  count: number
  p50: number
  p90: number
  p99: number
  max: number
}

export const percentile = (sorted: readonly number[], p: number): number =>
  sorted.length === 0 ? NaN : sorted[Math.min(sorted.length - 1, Math.floor(p * sorted.length))] as number

export const distribution = (samples: readonly number[]): Distribution => {
  const sorted = Float64Array.from(samples).sort()
  const s = Array.from(sorted)
  return {
    count: s.length,
    p50: percentile(s, 0.5),
    p90: percentile(s, 0.9),
    p99: percentile(s, 0.99),
    max: s[s.length - 1] ?? NaN,
  }
}

/** The probabilities `quantiles` reports: dense in the tail, where servers differ. */
export const QUANTILE_POINTS: readonly number[] = [
  ...Array.from({ length: 18 }, (_, i) => i * 0.05),
  ...Array.from({ length: 10 }, (_, i) => 0.9 + i * 0.01),
  0.995, 0.999, 1,
]

/** The samples' values at QUANTILE_POINTS, for distribution charts. */
export const quantiles = (samples: readonly number[]): number[] => {
  const sorted = Array.from(Float64Array.from(samples).sort())
  if (sorted.length === 0) return []
  return QUANTILE_POINTS.map(q => q === 1 ? sorted[sorted.length - 1] as number : percentile(sorted, q))
}
