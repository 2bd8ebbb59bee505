import { decimals } from './slos.js';

/**
 * The error-budget arithmetic of an SLO, exact where it matters: the objective (a percentage with
 * at most 6 decimals) is read as the fraction P/S of two integers, so a burn rate is one division
 * of two integers — bad·S / (total·(S−P)) — rounded once. A burn rate that is exactly a factor
 * (say 14.4) therefore equals the factor, and one a request above or below compares that way.
 */

/** ObjectiveFraction is an objective as good/scale: 99.9 % → 999/1000. */
export interface ObjectiveFraction {
  readonly good: number;
  readonly scale: number;
}

/** objectiveFraction reads a percentage objective as a fraction of two integers. */
export function objectiveFraction(objectivePct: number): ObjectiveFraction {
  const scale = 100 * 10 ** decimals(objectivePct);
  return { good: Math.round((objectivePct * scale) / 100), scale };
}

/** errorBudget is 1 − objective as a ratio: 99.9 % → 0.001. */
export function errorBudget(objectivePct: number): number {
  const { good, scale } = objectiveFraction(objectivePct);
  return (scale - good) / scale;
}

/**
 * burnRate is how many times faster than allowed the budget burns: (bad/total) / (1 − objective).
 * No traffic burns nothing: 0 when total is 0.
 */
export function burnRate(good: number, total: number, objectivePct: number): number {
  if (total === 0) return 0;
  const o = objectiveFraction(objectivePct);
  return ((total - good) * o.scale) / (total * (o.scale - o.good));
}

/** SloBudget is the error budget over an SLO window, in requests. */
export interface SloBudget {
  /** total is how many bad requests the window may hold: (1 − objective) · requests. */
  readonly total: number;
  /** spent is the bad requests of the window. */
  readonly spent: number;
  /** remaining is total − spent (negative once overspent). */
  readonly remaining: number;
  /** remaining_pct is 100 · (1 − spent/total): 100 with nothing spent (and with no traffic), negative once overspent. */
  readonly remaining_pct: number;
}

/** errorBudgetOf computes the budget figures of a window's good and total counts. */
export function errorBudgetOf(good: number, total: number, objectivePct: number): SloBudget {
  const o = objectiveFraction(objectivePct);
  const bad = total - good;
  const allowedTimesScale = total * (o.scale - o.good);
  const remainingTimesScale = allowedTimesScale - bad * o.scale;
  return {
    total: allowedTimesScale / o.scale,
    spent: bad,
    remaining: remainingTimesScale / o.scale,
    remaining_pct: total === 0 ? 100 : (remainingTimesScale * 100) / allowedTimesScale,
  };
}
