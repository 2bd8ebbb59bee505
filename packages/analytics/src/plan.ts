import { AnalyticsError } from './errors.js';
import type { Filters, Source, TimeRange } from './queries.js';

/** ROLLUP_STEP_S is the resolution of the rollup tables. */
export const ROLLUP_STEP_S = 60;

/**
 * rollupBlocker says why the 1-minute rollups cannot answer a query exactly (undefined when they
 * can): the window must be whole minutes, the step a whole number of minutes, and every filter a
 * rollup dimension (tenant, service, route, method).
 */
export function rollupBlocker(
  range: TimeRange,
  stepS: number | undefined,
  filters?: Filters,
): string | undefined {
  if (range.from % ROLLUP_STEP_S !== 0 || range.to % ROLLUP_STEP_S !== 0)
    return 'from and to must be whole minutes';
  if (stepS !== undefined && stepS % ROLLUP_STEP_S !== 0) return 'step must be a whole number of minutes';
  if (filters?.consumer !== undefined) return 'the consumer filter needs raw data';
  if (filters?.statusClass !== undefined) return 'the status class filter needs raw data';
  return undefined;
}

/** chooseSource resolves `auto` and refuses `rollup` when the rollups cannot answer exactly. */
export function chooseSource(requested: Source, blocker: string | undefined): 'raw' | 'rollup' {
  if (requested === 'raw') return 'raw';
  if (requested === 'rollup') {
    if (blocker)
      throw new AnalyticsError('TAPWIRE_ANALYTICS_INVALID_QUERY', `source=rollup: ${blocker}`, {
        field: 'source',
      });
    return 'rollup';
  }
  return blocker ? 'raw' : 'rollup';
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
