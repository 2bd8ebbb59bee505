/**
 * The latency histogram shared by every path: rows carry a bucket key k for (1.01^(k-1), 1.01^k] ms,
 * a group carries `h` = (sorted keys, counts); `HISTOGRAM_WITH_SQL` adds its total `hn` and
 * cumulative counts `cum`, and `quantileOfHistogram` reads a quantile from them.
 */

/**
 * Quantile q of a histogram, interpolated between the samples at ranks floor and ceil of
 * q·(n−1) (the definition of numpy's default and of most exact tools); each sample is read as its
 * bucket's midpoint 2·1.01^k / 2.01, within 0.5% of the real value.
 */
export function quantileOfHistogram(level: number): string {
  const rank = `(${level} * greatest(toFloat64(hn) - 1, 0))`;
  const sample = (idx: string) =>
    `(2 * pow(1.01, tupleElement(h, 1)[arrayFirstIndex(c -> c > ${idx}, cum)]) / 2.01)`;
  const lo = sample(`floor(${rank})`);
  return `${lo} + (${sample(`ceil(${rank})`)} - ${lo}) * (${rank} - floor(${rank}))`;
}
/** HISTOGRAM_WITH_SQL defines hn (total) and cum (cumulative counts) of a histogram column `h`, for a WITH clause. */
export const HISTOGRAM_WITH_SQL = 'arraySum(h.2) AS hn, arrayCumSum(h.2) AS cum';
