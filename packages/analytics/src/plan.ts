import { AnalyticsError } from './errors.js';
import type { Filters, Source, TimeRange } from './queries.js';

/** ROLLUP_STEP_S is the resolution of the finest rollup tables. */
export const ROLLUP_STEP_S = 60;

/** HOURLY_STEP_S is the resolution of the hourly request rollup. */
export const HOURLY_STEP_S = 3600;

/** HOURLY_MIN_WINDOW_S is the shortest window whose overview reads the hourly rollup (and is aligned to hours). */
export const HOURLY_MIN_WINDOW_S = 6 * 3600;

/** SourceUsed says where an answer came from. */
export type SourceUsed = 'raw' | 'rollup_1m' | 'rollup_1h';

/**
 * rollupBlocker says why the rollups cannot answer a query exactly (undefined when they can):
 * the window must be whole minutes (whole hours for the hourly one), the step likewise, and every
 * filter a rollup dimension (tenant, service, route, method).
 */
export function rollupBlocker(
  range: TimeRange,
  stepS: number | undefined,
  filters?: Filters,
  resolutionS: number = ROLLUP_STEP_S,
): string | undefined {
  const unit = resolutionS === HOURLY_STEP_S ? 'hours' : 'minutes';
  if (range.from % resolutionS !== 0 || range.to % resolutionS !== 0)
    return `from and to must be whole ${unit}`;
  if (stepS !== undefined && stepS % resolutionS !== 0) return `step must be a whole number of ${unit}`;
  if (filters?.consumer !== undefined) return 'the consumer filter needs raw data';
  if (filters?.statusClass !== undefined) return 'the status class filter needs raw data';
  return undefined;
}

/**
 * chooseSource resolves the requested source: auto and rollup take the hourly rollup when it can
 * answer exactly and `hourly` is offered, else the 1-minute one, else (auto only) raw rows;
 * a forced rollup that cannot answer exactly is a 400 naming `source`.
 */
export function chooseSource(
  requested: Source,
  range: TimeRange,
  stepS: number | undefined,
  filters: Filters | undefined,
  options: { hourly: boolean } = { hourly: false },
): SourceUsed {
  if (requested === 'raw') return 'raw';
  const minute = rollupBlocker(range, stepS, filters, ROLLUP_STEP_S);
  const hour = options.hourly ? rollupBlocker(range, stepS, filters, HOURLY_STEP_S) : 'not available here';
  const refuse = (why: string) =>
    new AnalyticsError('TAPWIRE_ANALYTICS_INVALID_QUERY', `source=${requested}: ${why}`, { field: 'source' });
  if (requested === 'rollup_1h') {
    if (hour) throw refuse(hour);
    return 'rollup_1h';
  }
  if (requested === 'rollup_1m') {
    if (minute) throw refuse(minute);
    return 'rollup_1m';
  }
  if (!hour) return 'rollup_1h';
  if (!minute) return 'rollup_1m';
  if (requested === 'rollup') throw refuse(minute);
  return 'raw';
}

/**
 * alignForRollups widens a window so a rollup can answer it: to whole hours when it spans at
 * least HOURLY_MIN_WINDOW_S, else to whole minutes; raw and forced-minute requests keep finer edges.
 */
export function alignForRollups(range: TimeRange, requested: Source): TimeRange {
  if (requested === 'raw') return range;
  const hourly = requested !== 'rollup_1m' && range.to - range.from >= HOURLY_MIN_WINDOW_S;
  return alignRange(range, hourly ? HOURLY_STEP_S : ROLLUP_STEP_S);
}

const NICE_STEPS_S = [
  1, 5, 10, 15, 30, 60, 120, 300, 600, 900, 1800, 3600, 7200, 10_800, 21_600, 43_200, 86_400,
];

/** autoStep picks the smallest readable step that keeps a window within `targetPoints` points. */
export function autoStep(range: TimeRange, targetPoints: number): number {
  const span = range.to - range.from;
  return NICE_STEPS_S.find((s) => span / s <= targetPoints) ?? 86_400;
}

/** alignRange widens a window to whole steps (Grafana and Prometheus align series the same way). */
export function alignRange(range: TimeRange, stepS: number): TimeRange {
  const from = Math.floor(range.from / stepS) * stepS;
  const to = Math.ceil(range.to / stepS) * stepS;
  return { from, to: to > from ? to : from + stepS };
}
