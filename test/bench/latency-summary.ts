/** percentile is the nearest-rank q-quantile of sorted values, rounded to 0.1. */
export function percentile(sorted: readonly number[], q: number): number {
  const i = Math.min(sorted.length - 1, Math.max(0, Math.ceil(q * sorted.length) - 1));
  return Math.round((sorted[i] ?? 0) * 10) / 10;
}

/** latencySummary is the p50, p95 and max of durations in ms. */
export function latencySummary(ms: readonly number[]): { p50_ms: number; p95_ms: number; max_ms: number } {
  const sorted = [...ms].sort((a, b) => a - b);
  return { p50_ms: percentile(sorted, 0.5), p95_ms: percentile(sorted, 0.95), max_ms: percentile(sorted, 1) };
}
