import type { SloCountsQuery, SloSli, TimeRange } from './queries.js';
import type { SloCountsResult } from './results.js';

/**
 * How sloCounts answers every window exactly from one scan per data level: each window is cut
 * into its whole hours (hourly rollup), the whole minutes left at its edges (minute rollup) and
 * the seconds left at its edges (raw access_logs rows); each level is read once, grouped by its
 * time unit, over the union of the pieces every window needs from it; each window then sums its
 * own pieces. Every request of [from, to) is counted once whatever the alignment. The rollups:
 * slo_counts_1m / _1h (migrations/0010) for statuses and per-consumer buckets, the route
 * histograms (migrations/0007) for latency buckets over all consumers.
 */

/** SLO_FACETS are the facets of slo_counts_1m / _1h (migrations/0010); consumerLatency is hourly only. */
export const SLO_FACETS = { status: 0, consumerStatus: 1, consumerLatency: 2 } as const;

/** SloLevel is one data level of an SLO count: where it reads and its time unit in seconds. */
export type SloLevel = 'rollup_1h' | 'rollup_1m' | 'raw';

const UNIT_S: Record<SloLevel, number> = { rollup_1h: 3600, rollup_1m: 60, raw: 1 };

/**
 * SloSource is where one level of an SLO count reads: its table and time column, and for a rollup
 * the column holding the status or latency bucket and (slo_counts) the facet; raw rows have neither.
 */
export interface SloSource {
  readonly table: string;
  readonly time: string;
  readonly value?: 'value' | 'bucket';
  readonly facet?: number;
}

/** sloSource says where a level of a planned SLO count reads. */
export function sloSource(level: SloLevel, plan: SloReadPlan): SloSource {
  if (level === 'raw') return { table: 'access_logs', time: 'ts' };
  const time = level === 'rollup_1h' ? 'hour' : 'minute';
  if (plan.facet === undefined) return { table: `route_histogram_${level.slice(-2)}`, time, value: 'bucket' };
  return { table: `slo_counts_${level.slice(-2)}`, time, value: 'value', facet: plan.facet };
}

/** SloPiece is a part of a window answered by one level (aligned to that level's unit). */
export interface SloPiece {
  readonly level: SloLevel;
  readonly from: number;
  readonly to: number;
}

/** SloReadPlan says, per level, which time ranges to read, and per window which pieces it sums. */
export interface SloReadPlan {
  /** The facet of slo_counts_* the SLI reads; undefined: the route histograms. */
  readonly facet?: number;
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
    const edge = latencyEdge(sli.thresholdMs);
    return byConsumer
      ? { facet: SLO_FACETS.consumerLatency, ...edge, reads, pieces }
      : { ...edge, reads, pieces };
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

/** SloLevelPart is one SLO's share of a level read: its index in the batch, its query, plan and ranges. */
export interface SloLevelPart {
  readonly index: number;
  readonly query: SloCountsQuery;
  readonly plan: SloReadPlan;
  readonly ranges: readonly TimeRange[];
}

/**
 * SloLevelRead reads one level's good and total counts per time unit for several SLOs in one
 * statement (UNION ALL of one branch per part), each row tagged `q` with its part's index.
 */
export type SloLevelRead = (
  level: SloLevel,
  parts: readonly SloLevelPart[],
) => Promise<readonly { q: unknown; t: unknown; good: unknown; total: unknown }[]>;

/**
 * SLO_BRANCHES_PER_STATEMENT bounds the SLOs one statement reads: 40 branches stay far below
 * ClickHouse 18.16's 256 KiB max_query_size (a branch is under 1 KiB plus its ranges).
 */
export const SLO_BRANCHES_PER_STATEMENT = 40;

/**
 * countSlos plans the counts of many SLOs and reads each level they need once for all of them —
 * one statement per level (per 40 SLOs), not one per SLO and level: 50 SLOs cost two or three
 * round trips — then sums each SLO's windows. Answers in the order asked.
 */
export async function countSlos(
  queries: readonly SloCountsQuery[],
  read: SloLevelRead,
): Promise<SloCountsResult[]> {
  const plans = queries.map((q) => planSloRead(q));
  const parts = new Map<SloLevel, SloLevelPart[]>();
  plans.forEach((plan, index) => {
    const query = queries[index] as SloCountsQuery;
    for (const r of plan.reads) {
      const list = parts.get(r.level) ?? [];
      list.push({ index, query, plan, ranges: r.ranges });
      parts.set(r.level, list);
    }
  });
  const rows: Partial<Record<SloLevel, SloLevelRow[]>>[] = queries.map(() => ({}));
  const statements: Promise<void>[] = [];
  for (const [level, list] of parts)
    for (let i = 0; i < list.length; i += SLO_BRANCHES_PER_STATEMENT)
      statements.push(
        read(level, list.slice(i, i + SLO_BRANCHES_PER_STATEMENT)).then((answer) => {
          // Drivers return 64-bit integers as strings (ClickHouse) or bigints (DuckDB).
          for (const x of answer) {
            const byLevel = rows[Number(x.q)];
            if (!byLevel) continue;
            const list = byLevel[level] ?? [];
            list.push({ t: Number(x.t), good: Number(x.good), total: Number(x.total) });
            byLevel[level] = list;
          }
        }),
      );
  await Promise.all(statements);
  return queries.map((q, i) => sloWindows(q, plans[i] as SloReadPlan, rows[i] ?? {}));
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
