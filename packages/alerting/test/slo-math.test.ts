import { describe, expect, it } from 'vitest';
import { createFakeSloCounter, steadyTraffic } from '../../../test/support/slo-counter.js';
import {
  alertingConfigSchema,
  burnRate,
  burnRuleValue,
  errorBudget,
  errorBudgetOf,
  evaluateSlo,
  evaluateSlos,
  objectiveFraction,
  type Slo,
  sloBurnRules,
  sloSeries,
} from '../src/index.js';

// A whole minute: every window of an evaluation ends here.
const NOW = Date.UTC(2026, 10, 20, 12, 0, 0);
const NOW_S = NOW / 1000;
const MIN = 60;
const HOUR = 3600;
const DAY = 86_400;

function slo(over: Record<string, unknown> = {}): Slo {
  const c = alertingConfigSchema.parse({
    route: { receiver: 'chat' },
    receivers: [{ name: 'chat', webhook: { url: 'http://hook.test/x' } }],
    slos: [{ name: 'checkout', sli: { kind: 'availability' }, objective: 99.9, ...over }],
  });
  const s = c.slos[0];
  if (!s) throw new Error('no SLO');
  return s;
}

describe('error budget arithmetic', () => {
  it('reads the objective as a fraction of integers, so 99.9 % leaves exactly 1/1000', () => {
    expect(objectiveFraction(99.9)).toEqual({ good: 999, scale: 1000 });
    expect(objectiveFraction(99.95)).toEqual({ good: 9995, scale: 10000 });
    expect(objectiveFraction(99)).toEqual({ good: 99, scale: 100 });
    expect(errorBudget(99.9)).toBe(0.001);
    expect(errorBudget(99.95)).toBe(0.0005);
    expect(errorBudget(99.999)).toBe(0.00001);
  });

  it('burn rate is the bad share over the budget; no traffic burns nothing', () => {
    expect(burnRate(980, 1000, 99.9)).toBe(20);
    expect(burnRate(9856, 10_000, 99.9)).toBe(14.4);
    expect(burnRate(9855, 10_000, 99.9)).toBe(14.5);
    expect(burnRate(999, 1000, 99.9)).toBe(1);
    expect(burnRate(1000, 1000, 99.9)).toBe(0);
    expect(burnRate(0, 0, 99.9)).toBe(0);
    expect(burnRate(0, 10, 99)).toBe(100);
  });

  it('budget: allowed = (1 − objective)·total, spent = bad, remaining may go negative', () => {
    expect(errorBudgetOf(999_750, 1_000_000, 99.9)).toEqual({
      total: 1000,
      spent: 250,
      remaining: 750,
      remaining_pct: 75,
    });
    expect(errorBudgetOf(998_500, 1_000_000, 99.9)).toEqual({
      total: 1000,
      spent: 1500,
      remaining: -500,
      remaining_pct: -50,
    });
    expect(errorBudgetOf(0, 0, 99.9)).toEqual({ total: 0, spent: 0, remaining: 0, remaining_pct: 100 });
  });
});

describe('evaluateSlo', () => {
  it('the workbook example: 2 h burning at exactly 20× ending now, over a 28d / 99.9 % SLO', async () => {
    // 28 days of 1,000 requests a minute; in the last 2 h, 20 of them a minute answer 500 (2 % = 20 × 0.1 %).
    const counter = createFakeSloCounter(
      steadyTraffic(NOW_S - 28 * DAY, NOW_S, 1000, (t) => (t >= NOW_S - 2 * HOUR ? 20 : 0)),
    );
    const s = slo();
    const e = await evaluateSlo(counter, { tenant: null }, s, NOW + 59_999);
    expect(counter.calls).toHaveLength(1);
    expect(e.at).toBe(NOW_S);
    expect(e.burn_rates).toEqual({
      '28d': (2400 * 1000) / (40_320_000 * 1),
      '5m': 20,
      '30m': 20,
      '1h': 20,
      '6h': (20 * 2) / 6,
      '1d': (20 * 2) / 24,
      '3d': (20 * 2) / 72,
    });
    expect(e.budget).toEqual({
      total: 40_320,
      spent: 2400,
      remaining: 37_920,
      remaining_pct: (37_920 * 100) / 40_320,
    });
    expect(e.sli).toEqual({
      kind: 'availability',
      good: 40_320_000 - 2400,
      total: 40_320_000,
      value_pct: ((40_320_000 - 2400) * 100) / 40_320_000,
    });
    const fires = sloBurnRules(s).map((r) => [
      r.id,
      burnRuleValue(r, e),
      burnRuleValue(r, e) > r.pair.factor,
    ]);
    expect(fires).toEqual([
      ['slo:checkout:page:1h/5m', 20, true],
      ['slo:checkout:page:6h/30m', 20 / 3, true],
      ['slo:checkout:ticket:3d/6h', 40 / 72, false],
    ]);
  });

  it('evaluateSlos: many SLOs in one sloCountsMany call, each equal to its own evaluation, in order', async () => {
    const traffic = [
      ...steadyTraffic(NOW_S - 3 * DAY, NOW_S, 100, (t) => (t >= NOW_S - HOUR ? 7 : 1), { route: '/pay' }),
      ...steadyTraffic(NOW_S - DAY, NOW_S, 50, () => 0, { route: '/cart', durationMs: 120 }),
    ];
    const slos = [
      slo({ name: 'pay', selector: { route: '/pay' } }),
      slo({ name: 'cart-fast', selector: { route: '/cart' }, sli: { kind: 'latency', threshold_ms: 100 } }),
      slo({ name: 'all', objective: 99 }),
    ];
    const counter = createFakeSloCounter(traffic);
    let batches = 0;
    const many = counter.sloCountsMany.bind(counter);
    counter.sloCountsMany = async (scope, queries) => {
      batches++;
      return many(scope, queries);
    };
    const together = await evaluateSlos(counter, { tenant: null }, slos, NOW + 5_000);
    expect(batches).toBe(1);
    const alone = await Promise.all(
      slos.map((s) => evaluateSlo(createFakeSloCounter(traffic), { tenant: null }, s, NOW)),
    );
    expect(together).toEqual(alone);
    expect(together.map((e) => e.name)).toEqual(['pay', 'cart-fast', 'all']);
    expect(together[0]?.burn_rates['1h']).toBe(70);
    expect(together[1]?.sli.good).toBe(0);
    expect(await evaluateSlos(counter, { tenant: null }, [], NOW)).toEqual([]);
    expect(batches).toBe(1);
  });

  it('asks for whole-minute windows ending at now floored to the minute, in one call', async () => {
    const counter = createFakeSloCounter();
    await evaluateSlo(
      counter,
      { tenant: null },
      slo({ selector: { route: '/pay', consumer: 'acme' } }),
      NOW + 42_000,
    );
    expect(counter.calls).toEqual([
      {
        selector: { route: '/pay', consumer: 'acme' },
        sli: { kind: 'availability', badStatuses: ['5xx'], ignoredStatuses: [] },
        windows: [28 * DAY, 5 * MIN, 30 * MIN, HOUR, 6 * HOUR, DAY, 3 * DAY].map((w) => ({
          from: NOW_S - w,
          to: NOW_S,
        })),
      },
    ]);
  });

  it('counts only the selector, leaves ignored statuses out and reports the latency threshold used', async () => {
    const counter = createFakeSloCounter([
      { tsS: NOW_S - 60, status: 200, route: '/a', durationMs: 100, count: 90 },
      { tsS: NOW_S - 60, status: 503, route: '/a', durationMs: 900, count: 6 },
      { tsS: NOW_S - 60, status: 429, route: '/a', durationMs: 5, count: 4 },
      { tsS: NOW_S - 60, status: 500, route: '/b', count: 1000 },
      { tsS: NOW_S, status: 500, route: '/a', count: 1000 },
    ]);
    const avail = await evaluateSlo(
      counter,
      { tenant: null },
      slo({
        selector: { route: '/a' },
        sli: { kind: 'availability', ignored_statuses: [429] },
        objective: 99,
      }),
      NOW,
    );
    expect(avail.counts['5m']).toEqual({ good: 90, total: 96 });
    expect(avail.burn_rates['5m']).toBe((6 * 100) / 96);
    const latency = await evaluateSlo(
      counter,
      { tenant: null },
      slo({ selector: { route: '/a' }, sli: { kind: 'latency', threshold_ms: 200 }, objective: 90 }),
      NOW,
    );
    expect(latency.counts['5m']).toEqual({ good: 94, total: 100 });
    expect(latency.sli.threshold_ms).toBe(200);
    expect(latency.burn_rates['1h']).toBe((6 * 10) / 100);
  });

  it('adds the windows of configured burn-rate alerts to the same call', async () => {
    const counter = createFakeSloCounter();
    const e = await evaluateSlo(
      counter,
      { tenant: null },
      slo({ burn_rate_alerts: { page: { windows: [{ long: '10m', short: '2m', factor: 2 }] } } }),
      NOW,
    );
    expect(counter.calls).toHaveLength(1);
    expect(Object.keys(e.burn_rates)).toEqual(['28d', '5m', '30m', '1h', '6h', '1d', '3d', '10m', '2m']);
  });
});

describe('sloSeries', () => {
  it('gives budget remaining and burn rate per step from one call', async () => {
    // 100 requests a minute for 2 days; 1 bad a minute during the last hour.
    const counter = createFakeSloCounter(
      steadyTraffic(NOW_S - 2 * DAY, NOW_S, 100, (t) => (t >= NOW_S - HOUR ? 1 : 0)),
    );
    const s = slo({ window: '1d', objective: 99, burn_rate_alerts: { enabled: false } });
    const r = await sloSeries(counter, { tenant: null }, s, {
      fromMs: NOW - 2 * HOUR * 1000,
      toMs: NOW,
      stepMs: 3_600_000,
    });
    expect(counter.calls).toHaveLength(1);
    expect(counter.calls[0]?.windows).toHaveLength(6);
    expect(r.burn_window).toBe('1h');
    expect(r.points).toEqual([
      { at: NOW_S - 2 * HOUR, budget: errorBudgetOf(144_000, 144_000, 99), burn_rate: 0 },
      { at: NOW_S - HOUR, budget: errorBudgetOf(144_000, 144_000, 99), burn_rate: 0 },
      {
        at: NOW_S,
        budget: { total: 1440, spent: 60, remaining: 1380, remaining_pct: (1380 * 100) / 1440 },
        burn_rate: 1,
      },
    ]);
  });
});
