import { createHash } from 'node:crypto';
import type { Comparison, Rule } from '@tapwire/alerting';

/**
 * The per-series alert state machine (docs/alerting.md, States), as in Prometheus and Grafana: inactive → pending →
 * firing → (recovering) → resolved, with NoData and Error instances as separate series. Pure:
 * given the previous state, one evaluation outcome and the time, it returns the next state and
 * the transitions — no I/O, so restarts replay it exactly.
 */

/** InstanceState is the state of one alert series (inactive series are simply absent). */
export type InstanceState = 'pending' | 'firing' | 'recovering' | 'resolved';

/** Instance is one alert series of a rule. */
export interface Instance {
  readonly fingerprint: string;
  readonly labels: Readonly<Record<string, string>>;
  state: InstanceState;
  /** When the current state began (activeAt for pending, firedAt, keepFiringSince, resolvedAt), ms. */
  since: number;
  /** When it first became active in this episode (the alert's startsAt), ms. */
  activeAt: number;
  /** When this episode started firing (kept through recovering), ms; null while pending. */
  firedAt: number | null;
  value: number | null;
  /** Consecutive evaluations the series was missing while the rule returned other series. */
  missingEvals: number;
  /** When a notification including this state was last delivered (ms), or null. */
  lastNotified: number | null;
}

/**
 * MachineRule is what the state machine reads of a rule: a rule of the file, or a burn-rate
 * condition generated from an SLO (kind `slo_burn_rate`, whose value the alerter computes).
 */
export type MachineRule = Omit<Rule, 'kind'> & { readonly kind: Rule['kind'] | 'slo_burn_rate' };

/** RuleState is everything the machine remembers about one rule. */
export interface RuleState {
  readonly instances: Map<string, Instance>;
  noDataSince: number | null;
  consecutiveErrors: number;
}

/** SeriesValue is one series a rule's query returned. */
export interface SeriesValue {
  readonly labels: Readonly<Record<string, string>>;
  readonly value: number;
  readonly samples: number;
}

/** EvaluationOutcome is what one evaluation of a rule produced. */
export type EvaluationOutcome =
  | { readonly ok: true; readonly series: readonly SeriesValue[] }
  | { readonly ok: false; readonly error: string };

/** Transition is one state change of a series. */
export interface Transition {
  readonly fingerprint: string;
  readonly labels: Readonly<Record<string, string>>;
  readonly from: InstanceState | 'inactive';
  readonly to: InstanceState | 'inactive';
  readonly value: number | null;
  readonly at: number;
}

/** RESOLVED_RETENTION_MS is how long a resolved series is kept so its resolve can still be (re)sent. */
export const RESOLVED_RETENTION_MS = 15 * 60_000;

/** emptyRuleState is a rule never evaluated. */
export function emptyRuleState(): RuleState {
  return { instances: new Map(), noDataSince: null, consecutiveErrors: 0 };
}

/** fingerprintOf hashes a label set (sorted pairs) into 16 hex characters, like Alertmanager. */
export function fingerprintOf(labels: Readonly<Record<string, string>>): string {
  const text = Object.keys(labels)
    .sort()
    .map((k) => `${k}\u0000${labels[k]}`)
    .join('\u0001');
  return createHash('sha256').update(text).digest('hex').slice(0, 16);
}

/** compare applies a rule comparison. */
export function compare(value: number, op: Comparison, threshold: number): boolean {
  switch (op) {
    case '>':
      return value > threshold;
    case '>=':
      return value >= threshold;
    case '<':
      return value < threshold;
    case '<=':
      return value <= threshold;
    case '==':
      return value === threshold;
    case '!=':
      return value !== threshold;
  }
}

/** seriesLabels are the identifying labels of a series: the query's group labels plus the rule's. */
export function seriesLabels(
  rule: Pick<MachineRule, 'alert' | 'id' | 'labels' | 'severity'>,
  groupLabels: Readonly<Record<string, string>>,
  alertname = rule.alert,
): Record<string, string> {
  return { ...groupLabels, ...rule.labels, alertname, rule_id: rule.id, severity: rule.severity };
}

type Verdict = 'breach' | 'clear' | 'hold';

/**
 * evaluateRule advances a rule's state by one evaluation at `now` and returns the transitions.
 * NoData and Error policies follow Grafana's options (ok, alerting, nodata/error, keep_last).
 */
export function evaluateRule(
  rule: MachineRule,
  state: RuleState,
  outcome: EvaluationOutcome,
  now: number,
): Transition[] {
  const transitions: Transition[] = [];
  const verdicts = new Map<
    string,
    { labels: Record<string, string>; verdict: Verdict; value: number | null }
  >();
  const existing = () => [...state.instances.values()].filter((i) => i.state !== 'resolved');
  const special = (suffix: 'NoData' | 'EvalError', verdict: Verdict) => {
    const labels = seriesLabels(rule, {}, `${rule.alert}_${suffix}`);
    verdicts.set(fingerprintOf(labels), { labels, verdict, value: null });
  };
  const allExisting = (verdict: Verdict) => {
    for (const i of existing())
      verdicts.set(i.fingerprint, { labels: { ...i.labels }, verdict, value: i.value });
  };

  if (!outcome.ok) {
    state.consecutiveErrors++;
    switch (rule.on_error.state) {
      case 'ok':
        allExisting('clear');
        break;
      case 'alerting':
        allExisting('breach');
        if (existing().length === 0) special('EvalError', 'breach');
        break;
      case 'error':
        special('EvalError', 'breach');
        break;
      case 'keep_last':
        return transitions;
    }
  } else {
    state.consecutiveErrors = 0;
    const usable = outcome.series.filter((s) => s.samples >= rule.min_samples);
    // Absence of traffic: a known series that returns nothing is traffic 0, not missing.
    if (outcome.series.length === 0 && rule.kind !== 'absence') {
      state.noDataSince ??= now;
      if (now - state.noDataSince < rule.no_data.after) return transitions;
      switch (rule.no_data.state) {
        case 'ok':
          allExisting('clear');
          break;
        case 'alerting':
          allExisting('breach');
          if (existing().length === 0) special('NoData', 'breach');
          break;
        case 'nodata':
          special('NoData', 'breach');
          break;
        case 'keep_last':
          return transitions;
      }
    } else {
      state.noDataSince = null;
      for (const s of usable) {
        const labels = seriesLabels(rule, s.labels);
        const fp = fingerprintOf(labels);
        const active = state.instances.get(fp);
        const isActive = active !== undefined && (active.state === 'firing' || active.state === 'recovering');
        // Hysteresis: an active alert stays in breach until the value passes the clear threshold.
        const limit = isActive && rule.clear_threshold !== undefined ? rule.clear_threshold : rule.threshold;
        verdicts.set(fp, {
          labels,
          verdict: compare(s.value, rule.op, limit) ? 'breach' : 'clear',
          value: s.value,
        });
      }
      // Series with too few samples hold their state; the NoData/EvalError series clear.
      for (const s of outcome.series) {
        if (s.samples >= rule.min_samples) continue;
        const labels = seriesLabels(rule, s.labels);
        const fp = fingerprintOf(labels);
        if (!verdicts.has(fp)) verdicts.set(fp, { labels, verdict: 'hold', value: s.value });
      }
      for (const i of existing()) {
        if (verdicts.has(i.fingerprint)) continue;
        const special = i.labels.alertname !== rule.alert;
        if (special) {
          verdicts.set(i.fingerprint, { labels: { ...i.labels }, verdict: 'clear', value: null });
        } else if (rule.kind === 'absence') {
          verdicts.set(i.fingerprint, {
            labels: { ...i.labels },
            verdict: compare(0, rule.op, rule.threshold) ? 'breach' : 'clear',
            value: 0,
          });
        } else {
          i.missingEvals++;
          verdicts.set(i.fingerprint, {
            labels: { ...i.labels },
            verdict: i.missingEvals >= rule.missing_series_evals_to_resolve ? 'clear' : 'hold',
            value: i.value,
          });
        }
      }
    }
  }

  for (const [fp, { labels, verdict, value }] of verdicts) {
    const i = state.instances.get(fp);
    const from = i && i.state !== 'resolved' ? i.state : 'inactive';
    const move = (to: InstanceState | 'inactive') =>
      transitions.push({ fingerprint: fp, labels, from, to, value, at: now });
    if (verdict === 'hold') continue;
    if (i && verdict === 'breach') i.missingEvals = 0;
    if (verdict === 'breach') {
      if (!i || i.state === 'resolved') {
        const firing = rule.for === 0;
        state.instances.set(fp, {
          fingerprint: fp,
          labels,
          state: firing ? 'firing' : 'pending',
          since: now,
          activeAt: now,
          firedAt: firing ? now : null,
          value,
          missingEvals: 0,
          lastNotified: null,
        });
        move(firing ? 'firing' : 'pending');
      } else {
        i.value = value;
        if (i.state === 'pending' && now - i.since >= rule.for) {
          i.state = 'firing';
          i.since = now;
          i.firedAt = now;
          move('firing');
        } else if (i.state === 'recovering') {
          i.state = 'firing';
          i.since = now;
          move('firing');
        }
      }
      continue;
    }
    // verdict === 'clear'
    if (!i || i.state === 'resolved') continue;
    i.value = value;
    if (i.state === 'pending') {
      state.instances.delete(fp);
      move('inactive');
    } else if (i.state === 'firing' && rule.keep_firing_for > 0) {
      i.state = 'recovering';
      i.since = now;
      move('recovering');
    } else if (i.state === 'firing' || (i.state === 'recovering' && now - i.since >= rule.keep_firing_for)) {
      i.state = 'resolved';
      i.since = now;
      move('resolved');
    }
  }

  for (const [fp, i] of state.instances)
    if (i.state === 'resolved' && now - i.since > RESOLVED_RETENTION_MS) state.instances.delete(fp);
  return transitions;
}
