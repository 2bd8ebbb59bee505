import { durationText } from './fields.js';
import {
  SLO_COUNTS_MAX_WINDOWS,
  type SloCounter,
  type SloCountsQuery,
  type SloCountsResult,
  type SloCountsSelector,
  type SloWindow,
} from './slo-counter.js';
import { burnRate, errorBudgetOf, type SloBudget } from './slo-math.js';
import type { Slo } from './slos.js';

/**
 * An SLO's figures at an instant — SLI, error budget over its window, burn rates over the
 * standard windows and over its alerts' windows — from one sloCounts call. Windows end at the
 * instant floored to the minute, so every window is whole minutes.
 */

const MINUTE_MS = 60_000;

/** REPORT_WINDOWS_MS are the burn-rate windows every SLO reports: 5m, 30m, 1h, 6h, 1d, 3d. */
export const REPORT_WINDOWS_MS = [5, 30, 60, 360, 1440, 4320].map((m) => m * MINUTE_MS);

/** SloEvaluation is one SLO's state at `at`. */
export interface SloEvaluation {
  readonly name: string;
  /** at is the end of every window (exclusive), epoch seconds, a whole minute. */
  readonly at: number;
  readonly objective: number;
  /** window is the SLO's rolling window, e.g. 28d. */
  readonly window: string;
  readonly sli: {
    readonly kind: Slo['sli']['kind'];
    readonly good: number;
    readonly total: number;
    /** value_pct is 100 · good/total over the SLO window; null with no traffic. */
    readonly value_pct: number | null;
    /** threshold_ms is the latency threshold the store applied (latency SLIs). */
    readonly threshold_ms?: number;
  };
  readonly budget: SloBudget;
  /** burn_rates maps a window ('5m', '1h', '3d', and each alert window) to its burn rate. */
  readonly burn_rates: Readonly<Record<string, number>>;
  /** counts maps the same windows to their good and total requests. */
  readonly counts: Readonly<Record<string, { readonly good: number; readonly total: number }>>;
}

/** sloCountsQueryBase is the selector and SLI of an SLO in the Store's terms. */
export function sloCountsQueryBase(slo: Slo): Omit<SloCountsQuery, 'windows'> {
  const selector: SloCountsSelector = {};
  for (const [k, v] of Object.entries(slo.selector))
    if (v !== undefined) selector[k as keyof SloCountsSelector] = v;
  return {
    selector,
    sli:
      slo.sli.kind === 'availability'
        ? {
            kind: 'availability',
            badStatuses: [...slo.sli.bad_statuses],
            ignoredStatuses: [...slo.sli.ignored_statuses],
          }
        : { kind: 'latency', thresholdMs: slo.sli.threshold_ms },
  };
}

/** sloWindowEnd is the end of an evaluation's windows: `now` floored to the minute, epoch seconds. */
export function sloWindowEnd(nowMs: number): number {
  return Math.floor(nowMs / MINUTE_MS) * 60;
}

/** sloAlertWindowsMs are the distinct windows an SLO's burn-rate alerts read. */
export function sloAlertWindowsMs(slo: Slo): number[] {
  if (!slo.burn_rate_alerts.enabled) return [];
  return [...slo.burn_rate_alerts.page.windows, ...slo.burn_rate_alerts.ticket.windows].flatMap((p) => [
    p.long,
    p.short,
  ]);
}

/** sloEvaluationQuery is the one count an evaluation needs: the SLO's window, the report windows and its alert windows. */
function sloEvaluationQuery(
  slo: Slo,
  nowMs: number,
): { query: SloCountsQuery; lengths: number[]; to: number } {
  const to = sloWindowEnd(nowMs);
  const lengths = [...new Set([slo.window, ...REPORT_WINDOWS_MS, ...sloAlertWindowsMs(slo)])];
  const windows: SloWindow[] = lengths.map((ms) => ({ from: to - ms / 1000, to }));
  return { query: { ...sloCountsQueryBase(slo), windows }, lengths, to };
}

/** sloEvaluationOf computes an SLO's SLI, budget and burn rates from the counts of its evaluation query. */
function sloEvaluationOf(
  slo: Slo,
  asked: { query: SloCountsQuery; lengths: number[]; to: number },
  result: SloCountsResult,
): SloEvaluation {
  const { lengths, to } = asked;
  const windows = asked.query.windows;
  const counts: Record<string, { good: number; total: number }> = {};
  const burn: Record<string, number> = {};
  lengths.forEach((ms, i) => {
    const w = result.windows[i];
    if (!w || w.from !== windows[i]?.from || w.to !== to)
      throw new Error(
        `sloCounts answered window ${i} with ${JSON.stringify(w)}, asked ${JSON.stringify(windows[i])}`,
      );
    const key = durationText(ms);
    counts[key] = { good: w.good, total: w.total };
    burn[key] = burnRate(w.good, w.total, slo.objective);
  });
  const whole = counts[durationText(slo.window)] ?? { good: 0, total: 0 };
  return {
    name: slo.name,
    at: to,
    objective: slo.objective,
    window: durationText(slo.window),
    sli: {
      kind: slo.sli.kind,
      good: whole.good,
      total: whole.total,
      value_pct: whole.total === 0 ? null : (whole.good * 100) / whole.total,
      ...(result.thresholdMs !== undefined ? { threshold_ms: result.thresholdMs } : {}),
    },
    budget: errorBudgetOf(whole.good, whole.total, slo.objective),
    burn_rates: burn,
    counts,
  };
}

/**
 * evaluateSlo reads an SLO's counts over its window, the report windows and its alert windows in
 * one sloCounts call, and computes its SLI, budget and burn rates at `nowMs` (floored to the minute).
 */
export async function evaluateSlo(
  counter: SloCounter,
  scope: { tenant: string | null },
  slo: Slo,
  nowMs: number,
): Promise<SloEvaluation> {
  const asked = sloEvaluationQuery(slo, nowMs);
  return sloEvaluationOf(slo, asked, await counter.sloCounts(scope, asked.query));
}

/**
 * evaluateSlos is evaluateSlo for many SLOs with one sloCountsMany call (the store reads each data
 * level once for all of them), answered in the order given.
 */
export async function evaluateSlos(
  counter: SloCounter,
  scope: { tenant: string | null },
  slos: readonly Slo[],
  nowMs: number,
): Promise<SloEvaluation[]> {
  if (slos.length === 0) return [];
  const asked = slos.map((slo) => sloEvaluationQuery(slo, nowMs));
  const results = await counter.sloCountsMany(
    scope,
    asked.map((a) => a.query),
  );
  if (results.length !== slos.length)
    throw new Error(`sloCountsMany answered ${results.length} SLOs, asked ${slos.length}`);
  return slos.map((slo, i) => sloEvaluationOf(slo, asked[i]!, results[i]!));
}

/** SLO_SERIES_MAX_STEPS is the most steps a series answers (two windows per step in one sloCounts call). */
export const SLO_SERIES_MAX_STEPS = SLO_COUNTS_MAX_WINDOWS / 2;

/** SloSeriesPoint is an SLO's budget and burn rate at the end of one step. */
export interface SloSeriesPoint {
  /** at is the end of the windows, epoch seconds. */
  readonly at: number;
  readonly budget: SloBudget;
  /** burn_rate is over `burnWindow` ending at `at`. */
  readonly burn_rate: number;
}

/**
 * sloSeries computes budget remaining (over the SLO window) and the burn rate (over `burnWindowMs`,
 * default 1h) at every step end from `fromMs` to `toMs` (both floored to the minute; the step is
 * whole minutes), all in one sloCounts call.
 */
export async function sloSeries(
  counter: SloCounter,
  scope: { tenant: string | null },
  slo: Slo,
  range: { fromMs: number; toMs: number; stepMs: number; burnWindowMs?: number },
): Promise<{ points: SloSeriesPoint[]; burn_window: string; threshold_ms?: number }> {
  const burnWindowMs = range.burnWindowMs ?? 3_600_000;
  if (
    range.stepMs < MINUTE_MS ||
    range.stepMs % MINUTE_MS !== 0 ||
    burnWindowMs % MINUTE_MS !== 0 ||
    burnWindowMs <= 0
  )
    throw new RangeError('step and burn window must be whole minutes');
  const first = sloWindowEnd(range.fromMs);
  const last = sloWindowEnd(range.toMs);
  const step = range.stepMs / 1000;
  const ends: number[] = [];
  for (let t = first; t <= last; t += step) ends.push(t);
  if (ends.length === 0) throw new RangeError('the range holds no step');
  if (ends.length > SLO_SERIES_MAX_STEPS)
    throw new RangeError(`at most ${SLO_SERIES_MAX_STEPS} steps, asked ${ends.length}`);
  const windows = ends.flatMap((to) => [
    { from: to - slo.window / 1000, to },
    { from: to - burnWindowMs / 1000, to },
  ]);
  const result = await counter.sloCounts(scope, { ...sloCountsQueryBase(slo), windows });
  const points = ends.map((at, i) => {
    const whole = result.windows[2 * i];
    const recent = result.windows[2 * i + 1];
    if (!whole || !recent)
      throw new Error(`sloCounts answered ${result.windows.length} windows, asked ${windows.length}`);
    return {
      at,
      budget: errorBudgetOf(whole.good, whole.total, slo.objective),
      burn_rate: burnRate(recent.good, recent.total, slo.objective),
    };
  });
  return {
    points,
    burn_window: durationText(burnWindowMs),
    ...(result.thresholdMs !== undefined ? { threshold_ms: result.thresholdMs } : {}),
  };
}

/**
 * burnRuleValue is what a generated burn-rate condition compares with its factor: the smaller of
 * its long and short windows' burn rates (both exceed the factor exactly when this does).
 */
export function burnRuleValue(
  rule: { readonly labels: Readonly<Record<string, string>> },
  evaluation: SloEvaluation,
): number {
  const long = evaluation.burn_rates[rule.labels.long_window ?? ''];
  const short = evaluation.burn_rates[rule.labels.short_window ?? ''];
  if (long === undefined || short === undefined) throw new Error('the evaluation lacks a window of the rule');
  return Math.min(long, short);
}
