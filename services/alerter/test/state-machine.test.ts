import { type Rule, ruleSchema } from '@tapwire/alerting';
import { describe, expect, it } from 'vitest';
import {
  type EvaluationOutcome,
  emptyRuleState,
  evaluateRule,
  fingerprintOf,
  seriesLabels,
} from '../src/index.js';

function rule(over: Record<string, unknown> = {}): Rule {
  return ruleSchema.parse({
    id: 'p99',
    alert: 'P99High',
    kind: 'latency_quantile',
    quantile: 0.99,
    group_by: ['route'],
    threshold: 750,
    ...over,
  });
}
const series = (value: number, route = '/a', samples = 100): EvaluationOutcome => ({
  ok: true,
  series: [{ labels: { route }, value, samples }],
});
const S = 1000;

function run(r: Rule, steps: [number, EvaluationOutcome][]) {
  const state = emptyRuleState();
  const log: string[] = [];
  for (const [t, outcome] of steps)
    for (const tr of evaluateRule(r, state, outcome, t * S))
      log.push(`${t}:${tr.labels.alertname}:${tr.from}->${tr.to}`);
  return { state, log };
}

describe('alert state machine', () => {
  it('fires once the breach has lasted `for`, and resolves when it clears', () => {
    const { log } = run(rule({ for: '1m' }), [
      [0, series(800)],
      [30, series(900)],
      [60, series(800)],
      [75, series(800)],
      [90, series(500)],
    ]);
    expect(log).toEqual([
      '0:P99High:inactive->pending',
      '60:P99High:pending->firing',
      '90:P99High:firing->resolved',
    ]);
  });

  it('a breach that flaps inside `for` never fires', () => {
    const { log } = run(rule({ for: '1m' }), [
      [0, series(800)],
      [15, series(500)],
      [30, series(800)],
      [45, series(500)],
      [60, series(800)],
      [75, series(500)],
    ]);
    expect(log.filter((l) => l.endsWith('->firing'))).toEqual([]);
    expect(log).toContain('15:P99High:pending->inactive');
  });

  it('hysteresis: a firing alert clears only past clear_threshold', () => {
    const { log } = run(rule({ clear_threshold: 650 }), [
      [0, series(800)],
      [15, series(700)],
      [30, series(720)],
      [45, series(640)],
      [60, series(700)],
    ]);
    expect(log).toEqual(['0:P99High:inactive->firing', '45:P99High:firing->resolved']);
  });

  it('keep_firing_for holds a clearing alert in recovering, and a new breach keeps it firing', () => {
    const { log } = run(rule({ keep_firing_for: '1m' }), [
      [0, series(800)],
      [15, series(500)],
      [30, series(800)],
      [45, series(500)],
      [90, series(500)],
      [105, series(500)],
    ]);
    expect(log).toEqual([
      '0:P99High:inactive->firing',
      '15:P99High:firing->recovering',
      '30:P99High:recovering->firing',
      '45:P99High:firing->recovering',
      '105:P99High:recovering->resolved',
    ]);
  });

  it('no data: by default (ok) a firing alert resolves, as in Prometheus; keep_last holds; nodata raises <alert>_NoData after `after`', () => {
    const empty: EvaluationOutcome = { ok: true, series: [] };
    expect(rule().no_data).toEqual({ state: 'ok', after: 0 });
    expect(
      run(rule(), [
        [0, series(800)],
        [15, empty],
        [30, empty],
      ]).log,
    ).toEqual(['0:P99High:inactive->firing', '15:P99High:firing->resolved']);
    expect(
      run(rule({ keep_firing_for: '30s' }), [
        [0, series(800)],
        [15, empty],
        [30, empty],
        [45, empty],
      ]).log,
    ).toEqual([
      '0:P99High:inactive->firing',
      '15:P99High:firing->recovering',
      '45:P99High:recovering->resolved',
    ]);
    expect(
      run(rule({ no_data: { state: 'keep_last' } }), [
        [0, series(800)],
        [15, empty],
        [30, empty],
      ]).log,
    ).toEqual(['0:P99High:inactive->firing']);
    expect(
      run(rule({ no_data: { state: 'nodata', after: '30s' } }), [
        [0, empty],
        [15, empty],
        [30, empty],
        [45, series(100)],
      ]).log,
    ).toEqual(['30:P99High_NoData:inactive->firing', '45:P99High_NoData:firing->resolved']);
    expect(
      run(rule({ no_data: { state: 'alerting' } }), [
        [0, series(800, '/a')],
        [15, series(100, '/a')],
        [30, empty],
      ]).log,
    ).toEqual([
      '0:P99High:inactive->firing',
      '15:P99High:firing->resolved',
      '30:P99High_NoData:inactive->firing',
    ]);
  });

  it('query errors follow on_error: error raises <alert>_EvalError, keep_last changes nothing', () => {
    const fail: EvaluationOutcome = { ok: false, error: 'ClickHouse unreachable' };
    expect(
      run(rule({ on_error: { state: 'error' } }), [
        [0, fail],
        [15, series(100)],
      ]).log,
    ).toEqual(['0:P99High_EvalError:inactive->firing', '15:P99High_EvalError:firing->resolved']);
    const kept = run(rule(), [
      [0, series(800)],
      [15, fail],
      [30, fail],
    ]);
    expect(kept.log).toEqual(['0:P99High:inactive->firing']);
    expect(kept.state.consecutiveErrors).toBe(2);
  });

  it('series below min_samples hold their state; a vanished series resolves after N missing evaluations', () => {
    const other = (v: number): EvaluationOutcome => ({
      ok: true,
      series: [{ labels: { route: '/b' }, value: v, samples: 100 }],
    });
    expect(
      run(rule({ min_samples: 50 }), [
        [0, series(800, '/a', 10)],
        [15, series(800, '/a', 60)],
      ]).log,
    ).toEqual(['15:P99High:inactive->firing']);
    expect(
      run(rule(), [
        [0, series(800)],
        [15, other(100)],
        [30, other(100)],
      ]).log,
    ).toEqual(['0:P99High:inactive->firing', '30:P99High:firing->resolved']);
  });

  it('absence of traffic: a known series that returns nothing counts as zero', () => {
    const r = rule({ kind: 'absence', quantile: undefined, op: '<', threshold: 1 });
    expect(
      run(r, [
        [0, series(5)],
        [15, { ok: true, series: [] }],
        [30, series(3)],
      ]).log,
    ).toEqual([]);
    const low = run(r, [
      [0, series(0)],
      [15, { ok: true, series: [] }],
      [30, series(2)],
    ]);
    expect(low.log).toEqual(['0:P99High:inactive->firing', '30:P99High:firing->resolved']);
  });

  it('fingerprints are stable and identify rule, group and severity labels', () => {
    const r = rule({ labels: { team: 'checkout' } });
    const labels = seriesLabels(r, { route: '/a' });
    expect(labels).toEqual({
      route: '/a',
      team: 'checkout',
      alertname: 'P99High',
      rule_id: 'p99',
      severity: 'error',
    });
    expect(fingerprintOf(labels)).toMatch(/^[0-9a-f]{16}$/);
    expect(fingerprintOf({ b: '2', a: '1' })).toBe(fingerprintOf({ a: '1', b: '2' }));
  });
});
