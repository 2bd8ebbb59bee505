import type { SloCountsQuery, SloSli, TimeRange } from './queries.js';
import type { SloCountsResult } from './results.js';

/**
 * How sloCounts answers every window exactly from one scan per data level: each window is cut
 * into its whole hours (slo_counts_1h), the whole minutes left at its edges (slo_counts_1m) and
 * the seconds left at its edges (raw access_logs rows); each level is read once, grouped by its
 * time unit, over the union of the pieces every window needs from it; each window then sums its
 * own pieces. Every request of [from, to) is counted once whatever the alignment.
 */

/** SLO_FACETS are the facets of slo_counts_1m / _1h (migrations/0010). */
export const SLO_FACETS = { status: 0, latency: 1, consumerStatus: 2, consumerLatency: 3 } as const;

/** SloLevel is one data level of an SLO count: where it reads and its time unit in seconds. */
export type SloLevel = 'rollup_1h' | 'rollup_1m' | 'raw';

const UNIT_S: Record<SloLevel, number> = { rollup_1h: 3600, rollup_1m: 60, raw: 1 };

/** SLO_SOURCES name each level's table and time column. */
export const SLO_SOURCES = {
  rollup_1h: { table: 'slo_counts_1h', time: 'hour' },
  rollup_1m: { table: 'slo_counts_1m', time: 'minute' },
  raw: { table: 'access_logs', time: 'ts' },
} as const satisfies Record<SloLevel, { table: string; time: string }>;

/** SloPiece is a part of a window answered by one level (aligned to that level's unit). */
export interface SloPiece {
  readonly level: SloLevel;
  readonly from: number;
  readonly to: number;
}

/** SloReadPlan says, per level, which time ranges to read, and per window which pieces it sums. */
export interface SloReadPlan {
  /** The facet of slo_counts_* the SLI reads. */
  readonly facet: number;
  /** Latency SLIs: the largest bucket k whose upper edge 1.01^k is at most thresholdMs. */
  readonly maxBucket?: number;
  /** Latency SLIs: 1.01^maxBucket, the threshold applied. */
  readonly thresholdMs?: number;
  /** Per level read, its ranges merged and sorted (levels with nothing to read are left out). */
  readonly reads: readonly { level: SloLevel; ranges: readonly TimeRange[] }[];
  /** Per asked window, in order, its pieces. */
  readonly pieces: readonly (readonly SloPiece[])[];
}

/** SloLevelRow is one time unit of one level: its start (epoch seconds) and its counts. */
export interface SloLevelRow {
  readonly t: number;
  readonly good: number;
  readonly total: number;
}

/**
 * latencyEdge is the latency bucket edge a threshold is rounded down to: the largest k with
 * 1.01^k ≤ thresholdMs (a relative slack of 1e-9 keeps a threshold given as an edge on it), and
 * that edge. Buckets hold (1.01^(k-1), 1.01^k], so "bucket ≤ k" is exactly "duration ≤ 1.01^k".
 */
export function latencyEdge(thresholdMs: number): { maxBucket: number; thresholdMs: number } {
  const maxBucket = Math.floor(Math.log(thresholdMs) / Math.log(1.01) + 1e-9);
  return { maxBucket, thresholdMs: 1.01 ** maxBucket };
}

/** splitWindow cuts [from, to) into pieces of the coarsest of `levels` that fit, then finer ones. */
function splitWindow(from: number, to: number, levels: readonly SloLevel[]): SloPiece[] {
  if (from >= to) return [];
  const [level, ...finer] = levels;
  if (level === undefined) return [{ level: 'raw', from, to }];
  const unit = UNIT_S[level];
  const a = Math.ceil(from / unit) * unit;
  const b = Math.floor(to / unit) * unit;
  if (a >= b) return splitWindow(from, to, finer);
  return [...splitWindow(from, a, finer), { level, from: a, to: b }, ...splitWindow(b, to, finer)];
}

function mergeRanges(ranges: TimeRange[]): TimeRange[] {
  const sorted = [...ranges].sort((x, y) => x.from - y.from);
  const out: TimeRange[] = [];
  for (const r of sorted) {
    const last = out[out.length - 1];
    if (last && r.from <= last.to) out[out.length - 1] = { from: last.from, to: Math.max(last.to, r.to) };
    else out.push({ ...r });
  }
  return out;
}

/**
 * planSloRead decides the facet and the pieces of every window. A per-consumer latency SLI has
 * no minute rollup (see migrations/0010): its pieces are whole hours, then raw seconds.
 */
export function planSloRead(query: SloCountsQuery): SloReadPlan {
  const byConsumer = query.selector.consumer !== undefined;
  const sli: SloSli = query.sli;
  const levels: SloLevel[] =
    sli.kind === 'latency' && byConsumer ? ['rollup_1h'] : ['rollup_1h', 'rollup_1m'];
  const pieces = query.windows.map((w) => splitWindow(w.from, w.to, levels));
  const reads = (['rollup_1h', 'rollup_1m', 'raw'] as const)
    .map((level) => ({
      level,
      ranges: mergeRanges(
        pieces.flatMap((ps) => ps.filter((p) => p.level === level).map((p) => ({ from: p.from, to: p.to }))),
      ),
    }))
    .filter((r) => r.ranges.length > 0);
  if (sli.kind === 'latency') {
    return {
      facet: byConsumer ? SLO_FACETS.consumerLatency : SLO_FACETS.latency,
      ...latencyEdge(sli.thresholdMs),
      reads,
      pieces,
    };
  }
  return { facet: byConsumer ? SLO_FACETS.consumerStatus : SLO_FACETS.status, reads, pieces };
}

/** badStatusParts splits an availability SLI's bad statuses into class digits and exact codes. */
export function badStatusParts(badStatuses: readonly (string | number)[]): {
  classes: number[];
  codes: number[];
} {
  const classes = badStatuses.filter((s): s is string => typeof s === 'string').map((s) => Number(s[0]));
  const codes = badStatuses.filter((s): s is number => typeof s === 'number');
  return { classes, codes };
}

/** Prefix sums of one level's rows, sorted by time, for range sums by binary search. */
interface Cumulative {
  readonly t: number[];
  readonly good: number[];
  readonly total: number[];
}

function cumulative(rows: readonly SloLevelRow[]): Cumulative {
  const sorted = [...rows].sort((a, b) => a.t - b.t);
  const c: Cumulative = { t: [], good: [0], total: [0] };
  for (const r of sorted) {
    c.t.push(r.t);
    c.good.push((c.good[c.good.length - 1] ?? 0) + r.good);
    c.total.push((c.total[c.total.length - 1] ?? 0) + r.total);
  }
  return c;
}

/** The index of the first time ≥ x. */
function lowerBound(ts: readonly number[], x: number): number {
  let lo = 0;
  let hi = ts.length;
  while (lo < hi) {
    const mid = (lo + hi) >> 1;
    if ((ts[mid] ?? 0) < x) lo = mid + 1;
    else hi = mid;
  }
  return lo;
}

/** SloLevelRead reads one level's good and total counts per time unit over its ranges (one statement). */
export type SloLevelRead = (
  level: SloLevel,
  ranges: readonly TimeRange[],
  plan: SloReadPlan,
) => Promise<readonly { t: unknown; good: unknown; total: unknown }[]>;

/** countSlo plans an SLO count, reads every level it needs at once and sums each window. */
export async function countSlo(query: SloCountsQuery, read: SloLevelRead): Promise<SloCountsResult> {
  const plan = planSloRead(query);
  const levels = await Promise.all(
    plan.reads.map(async (r) => {
      // Drivers return 64-bit integers as strings (ClickHouse) or bigints (DuckDB).
      const rows = (await read(r.level, r.ranges, plan)).map((x) => ({
        t: Number(x.t),
        good: Number(x.good),
        total: Number(x.total),
      }));
      return [r.level, rows] as const;
    }),
  );
  return sloWindows(query, plan, Object.fromEntries(levels));
}

/** sloWindows sums each window's pieces from the rows read per level, in the order asked. */
export function sloWindows(
  query: SloCountsQuery,
  plan: SloReadPlan,
  rowsByLevel: Partial<Record<SloLevel, readonly SloLevelRow[]>>,
): SloCountsResult {
  const sums = new Map<SloLevel, Cumulative>();
  for (const level of ['rollup_1h', 'rollup_1m', 'raw'] as const)
    sums.set(level, cumulative(rowsByLevel[level] ?? []));
  const windows = query.windows.map((w, i) => {
    let good = 0;
    let total = 0;
    for (const p of plan.pieces[i] ?? []) {
      const c = sums.get(p.level);
      if (!c) continue;
      const a = lowerBound(c.t, p.from);
      const b = lowerBound(c.t, p.to);
      good += (c.good[b] ?? 0) - (c.good[a] ?? 0);
      total += (c.total[b] ?? 0) - (c.total[a] ?? 0);
    }
    return { from: w.from, to: w.to, good, total };
  });
  return plan.thresholdMs !== undefined ? { windows, thresholdMs: plan.thresholdMs } : { windows };
}
