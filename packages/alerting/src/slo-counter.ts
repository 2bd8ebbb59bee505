import type { StatusClass } from './slos.js';

/**
 * The counting an SLO needs from the analytics Store: good and total requests of a selector over
 * many half-open windows [from, to) (epoch seconds) in one call. The Store's `sloCounts`
 * satisfies this interface structurally; the alerter and the API program against it.
 */

/** SloCountsSelector pins requests by equality on each given field. */
export interface SloCountsSelector {
  tenant?: string;
  service?: string;
  route?: string;
  method?: string;
  consumer?: string;
}

/** SloCountsSli says which requests are good. */
export type SloCountsSli =
  | { kind: 'availability'; badStatuses: (StatusClass | number)[]; ignoredStatuses: number[] }
  | { kind: 'latency'; thresholdMs: number };

/** SloWindow is a half-open window [from, to) in epoch seconds. */
export interface SloWindow {
  from: number;
  to: number;
}

/** SloCountsQuery asks for the counts of one SLI over 1..512 windows. */
export interface SloCountsQuery {
  selector: SloCountsSelector;
  sli: SloCountsSli;
  windows: SloWindow[];
}

/** SloCountsResult has one entry per window, in the order asked; thresholdMs is the latency threshold applied. */
export interface SloCountsResult {
  windows: { from: number; to: number; good: number; total: number }[];
  thresholdMs?: number;
}

/** SloCounter counts good and total requests for SLOs (the analytics Store implements it). */
export interface SloCounter {
  sloCounts(scope: { tenant: string | null }, query: SloCountsQuery): Promise<SloCountsResult>;
  /** sloCountsMany counts many SLOs at once, answered in the order asked. */
  sloCountsMany(
    scope: { tenant: string | null },
    queries: readonly SloCountsQuery[],
  ): Promise<SloCountsResult[]>;
}

/** SLO_COUNTS_MAX_WINDOWS is the most windows one sloCounts call accepts. */
export const SLO_COUNTS_MAX_WINDOWS = 512;
