import { randomUUID } from 'node:crypto';
import {
  type AlertingConfig,
  burnRuleValue,
  evaluateSlos,
  type Rule,
  type RuleGroup,
  renderTemplate,
  type Slo,
  type SloBurnRule,
  type SloCounter,
  type SloEvaluation,
  sloBurnRules,
} from '@tapwire/alerting';
import type { SignalQuery, Store } from '@tapwire/analytics';
import { type AlertStateEvent, TOPICS } from '@tapwire/schema';
import type { EventSink } from '@tapwire/stream';
import type { Logger } from '@tapwire/telemetry';
import { createDispatcher, type DispatchAlert, type Dispatcher, type Silence } from './dispatcher.js';
import type { AlerterMetrics } from './metrics.js';
import type { RetryPolicy } from './notify/deliver.js';
import { createRateLimiter } from './notify/rate-limiter.js';
import { buildNotifiers } from './notify/registry.js';
import {
  type EvaluationOutcome,
  emptyRuleState,
  evaluateRule,
  type Instance,
  type MachineRule,
  RESOLVED_RETENTION_MS,
  type RuleState,
  type Transition,
} from './state-machine.js';

/** AlerterOptions are the alerter's settings besides the alerting file. */
export interface AlerterOptions {
  /** Base URL of the analytics API (alerts link to the query that fired them). */
  readonly apiUrl: string;
  /** Grafana dashboard linked from every notification. */
  readonly dashboardUrl: string;
  /** How often due groups are flushed, in ms. */
  readonly dispatchTickMs: number;
  readonly retry: RetryPolicy;
}

/** Alerter evaluates rules, keeps per-series state as events and notifies through the dispatcher. */
export interface Alerter {
  /** restore replays alert-state events (oldest first) into rule state and delivery records. */
  restore(events: readonly AlertStateEvent[]): void;
  /** start schedules every group's evaluations and the dispatcher's flushes. */
  start(): void;
  /** evaluateGroup runs one evaluation of every rule of a group (the scheduler calls it; tests too). */
  evaluateGroup(group: RuleGroup, now?: number): Promise<void>;
  /** evaluateSlos runs one evaluation of every SLO's burn-rate alerts (one sloCountsMany call for all). */
  evaluateSlos(now?: number): Promise<void>;
  /** dispatch flushes every group that is due. */
  dispatch(now?: number): Promise<void>;
  /** reload swaps in a new alerting file, keeping the state of rules that still exist. */
  reload(config: AlertingConfig): void;
  setSilences(silences: readonly Silence[]): void;
  /** brokenReceivers maps receivers whose last notification was refused (4xx) to the reason. */
  brokenReceivers(): Record<string, string>;
  /** alerts lists current series (pending, firing, recovering, and recently resolved). */
  alerts(): { ruleId: string; instance: Instance }[];
  readonly config: () => AlertingConfig;
  close(): Promise<void>;
}

const UNIT_OF: Record<MachineRule['kind'], string> = {
  latency_quantile: 'ms',
  error_rate: 'ratio',
  request_rate: 'rps',
  absence: 'rps',
  saturation: 'ratio',
  rate_limited: 'ratio',
  quota_used: 'ratio',
  auth_failures: 'ratio',
  cache_hit_ratio: 'ratio',
  slo_burn_rate: '×',
};

/** SloRule is a burn-rate condition of an SLO as the state machine runs it. */
interface SloRule extends MachineRule {
  readonly kind: 'slo_burn_rate';
  readonly burn: SloBurnRule;
}

/** AlertRule is a rule of the file or one generated from an SLO. */
type AlertRule = Rule | SloRule;

/**
 * sloRule makes a generated burn-rate condition a rule: it fires at the first evaluation where
 * both windows burn faster than the factor (the value is the smaller burn rate) and resolves at the
 * first where one does not — in practice the short window recovering. An evaluation that fails
 * leaves the alert as it was.
 */
function sloRule(burn: SloBurnRule): SloRule {
  return {
    id: burn.id,
    alert: burn.alert,
    kind: 'slo_burn_rate',
    burn,
    filters: {},
    group_by: [],
    window: burn.pair.long,
    op: '>',
    threshold: burn.pair.factor,
    clear_threshold: undefined,
    for: 0,
    keep_firing_for: 0,
    min_samples: 0,
    no_data: { state: 'ok', after: 0 },
    on_error: { state: 'keep_last' },
    missing_series_evals_to_resolve: 1,
    severity: burn.severity,
    labels: burn.labels,
    annotations: burn.annotations,
  };
}

function unitOf(rule: AlertRule): string {
  if (rule.kind === 'saturation' && rule.metric === 'event_loop_delay_ms') return 'ms';
  if (rule.kind === 'saturation' && rule.metric === 'targets_unhealthy') return 'targets';
  return UNIT_OF[rule.kind];
}

function windowText(ms: number): string {
  return ms % 3_600_000 === 0
    ? `${ms / 3_600_000}h`
    : ms % 60_000 === 0
      ? `${ms / 60_000}m`
      : `${ms / 1000}s`;
}

/** buildAlerter wires the state machine, the dispatcher and the analytics Store. */
export function buildAlerter(
  deps: {
    store: Store;
    sink: EventSink;
    logger: Logger;
    metrics: AlerterMetrics;
    /** slos counts SLO requests (the Store, once it answers sloCounts); without it SLO evaluations fail. */
    slos?: SloCounter;
    now?: () => number;
  },
  initial: AlertingConfig,
  options: AlerterOptions,
): Alerter {
  const now = deps.now ?? (() => Date.now());
  let config = initial;
  let rulesById = new Map<string, AlertRule>();
  let sloRules = new Map<string, { slo: Slo; rules: SloRule[] }>();
  const states = new Map<string, RuleState>();
  const notified = new Map<string, Record<string, number>>();
  const running = new Set<string>();
  const timers: NodeJS.Timeout[] = [];
  let silences: readonly Silence[] = [];
  let dispatcher: Dispatcher = makeDispatcher(config);
  let started = false;

  /** schedule (re)arms one timer per rule group and the dispatcher's tick. */
  function schedule() {
    for (const t of timers.splice(0)) clearInterval(t);
    for (const group of config.groups) {
      const t = setInterval(() => void api.evaluateGroup(group), group.interval);
      t.unref();
      timers.push(t);
      void api.evaluateGroup(group);
    }
    if (sloRules.size > 0) {
      const t = setInterval(() => void api.evaluateSlos(), config.slo_defaults.interval);
      t.unref();
      timers.push(t);
      void api.evaluateSlos();
    }
    const tick = setInterval(() => void api.dispatch(), options.dispatchTickMs);
    tick.unref();
    timers.push(tick);
  }

  function makeDispatcher(c: AlertingConfig): Dispatcher {
    const registered = buildNotifiers(c.receivers);
    const d = createDispatcher(
      {
        notifiers: registered,
        limiter: createRateLimiter({
          ratePerSecond: (dest) =>
            [...registered.values()].find((r) => r.notifier.destination === dest)?.ratePerSecond ?? 1,
          burst: 3,
        }),
        policy: options.retry,
        logger: deps.logger,
        now,
        onDelivered: (d) => {
          for (const fp of d.fingerprints) {
            notified.set(fp, { ...(notified.get(fp) ?? {}), [d.receiver]: d.at });
            const found = findInstance(fp);
            if (found) emit(found.rule, found.instance, d.at, d.receiver);
          }
        },
        onOutcome: (receiver, outcome) => deps.metrics.notification(receiver, outcome.outcome),
      },
      { alerting: c, externalUrl: `${options.apiUrl}/v1/alerts`, dashboardUrl: options.dashboardUrl },
    );
    d.setSilences(silences);
    return d;
  }

  function index(c: AlertingConfig) {
    sloRules = new Map(
      c.slos
        .map((slo) => ({ slo, rules: sloBurnRules(slo).map(sloRule) }))
        .filter((s) => s.rules.length > 0)
        .map((s) => [s.slo.name, s]),
    );
    rulesById = new Map<string, AlertRule>([
      ...c.groups.flatMap((g) => g.rules.map((r) => [r.id, r] as const)),
      ...[...sloRules.values()].flatMap((s) => s.rules.map((r) => [r.id, r] as const)),
    ]);
    if (sloRules.size > 0 && !deps.slos)
      deps.logger.warn(
        { slos: sloRules.size },
        'SLOs are declared but the store cannot count them; their burn-rate alerts are not evaluated',
      );
    for (const id of [...states.keys()]) if (!rulesById.has(id)) states.delete(id);
    for (const id of rulesById.keys()) if (!states.has(id)) states.set(id, emptyRuleState());
  }
  index(config);

  function findInstance(fp: string): { rule: AlertRule; instance: Instance } | undefined {
    for (const [id, st] of states) {
      const instance = st.instances.get(fp);
      const rule = rulesById.get(id);
      if (instance && rule) return { rule, instance };
    }
    return undefined;
  }

  function emit(rule: AlertRule, i: Instance | Transition, at: number, receiver?: string) {
    const instance = 'state' in i ? i : undefined;
    const state = instance ? instance.state : (i as Transition).to;
    const event: AlertStateEvent = {
      v: 1,
      id: randomUUID(),
      ts: at * 1000,
      tenant: i.labels.tenant ?? 'default',
      rule_id: rule.id,
      fingerprint: i.fingerprint,
      labels: { ...i.labels },
      state,
      value: i.value,
      threshold: rule.threshold,
      since: (instance?.since ?? at) * 1000,
      last_notified: receiver ? at * 1000 : null,
      ...(instance
        ? {
            active_at: instance.activeAt * 1000,
            fired_at: instance.firedAt === null ? null : instance.firedAt * 1000,
          }
        : {}),
      ...(receiver ? { receiver } : {}),
    };
    if (!deps.sink.emit(TOPICS.alertState, event))
      deps.logger.warn({ rule: rule.id }, 'alert state event dropped');
  }

  function dispatchAlerts(): DispatchAlert[] {
    const out: DispatchAlert[] = [];
    for (const [id, st] of states) {
      const rule = rulesById.get(id);
      if (!rule) continue;
      for (const i of st.instances.values()) {
        if (i.state === 'pending' || i.firedAt === null) continue;
        const data = {
          value: i.value,
          threshold: rule.threshold,
          labels: i.labels,
          window: windowText(rule.window),
        };
        const annotations = Object.fromEntries(
          Object.entries(rule.annotations).map(([k, v]) => [k, renderTemplate(v, data)]),
        );
        const q = new URLSearchParams({ from: new Date(i.activeAt - 3_600_000).toISOString() });
        for (const dim of ['tenant', 'service', 'route', 'method'])
          if (i.labels[dim]) q.set(dim, i.labels[dim] ?? '');
        const generatorUrl =
          rule.kind === 'slo_burn_rate'
            ? `${options.apiUrl}/v1/slos/${encodeURIComponent(rule.burn.slo)}`
            : `${options.apiUrl}/v1/series?${q}`;
        out.push({
          status: i.state === 'resolved' ? 'resolved' : 'firing',
          labels: i.labels,
          annotations,
          startsAt: new Date(i.activeAt),
          endsAt: i.state === 'resolved' ? new Date(i.since) : undefined,
          fingerprint: i.fingerprint,
          value: i.value ?? Number.NaN,
          threshold: rule.threshold,
          unit: unitOf(rule),
          generatorUrl,
          firedAt: i.firedAt,
          notified: notified.get(i.fingerprint) ?? {},
          ...('receivers' in rule && rule.receivers?.length ? { receivers: rule.receivers } : {}),
        });
      }
    }
    return out;
  }

  async function evaluate(rule: Rule, group: RuleGroup, at: number): Promise<void> {
    const state = states.get(rule.id);
    if (!state || running.has(rule.id)) return;
    running.add(rule.id);
    const started = performance.now();
    let outcome: EvaluationOutcome;
    try {
      const end = Math.floor((at - group.query_offset) / 1000);
      const { tenant, ...filters } = rule.filters;
      const query: SignalQuery = {
        kind: rule.kind,
        range: { from: end - Math.max(1, Math.round(rule.window / 1000)), to: end },
        filters: { ...filters, ...(tenant ? { tenant } : {}) } as SignalQuery['filters'],
        groupBy: rule.group_by as SignalQuery['groupBy'],
        ...(rule.quantile !== undefined ? { quantile: rule.quantile } : {}),
        ...(rule.metric !== undefined ? { metric: rule.metric } : {}),
      };
      outcome = { ok: true, series: (await deps.store.signal({ tenant: null }, query)).series };
      deps.metrics.evaluation(rule.id, 'ok', (performance.now() - started) / 1000);
    } catch (err) {
      outcome = { ok: false, error: (err as Error).message };
      deps.metrics.evaluation(rule.id, 'error', (performance.now() - started) / 1000);
      deps.logger.warn({ rule: rule.id, err }, 'rule evaluation failed');
    } finally {
      running.delete(rule.id);
    }
    advance(rule, state, outcome, at);
  }

  /** advance runs the state machine on one outcome and records each transition. */
  function advance(rule: AlertRule, state: RuleState, outcome: EvaluationOutcome, at: number): void {
    for (const t of evaluateRule(rule, state, outcome, at)) {
      const instance = state.instances.get(t.fingerprint);
      emit(rule, instance ?? t, at);
      if (t.to === 'inactive' || (t.to === 'resolved' && !instance)) notified.delete(t.fingerprint);
      deps.logger.info(
        { rule: rule.id, fingerprint: t.fingerprint, from: t.from, to: t.to, value: t.value },
        'alert transition',
      );
    }
    // Delivery records of series the state machine evicted (resolved long enough ago) go too.
    const live = new Set([...states.values()].flatMap((st) => [...st.instances.keys()]));
    for (const fp of notified.keys()) if (!live.has(fp)) notified.delete(fp);
  }

  /**
   * evaluateSloRules counts every SLO's windows in one sloCountsMany call (the store reads each
   * level once for all of them) and advances each SLO's burn-rate conditions. An SLO whose last
   * evaluation still runs is left out of this one.
   */
  async function evaluateSloRules(
    entries: readonly { slo: Slo; rules: SloRule[] }[],
    at: number,
  ): Promise<void> {
    const due = entries.filter((e) => !running.has(`slo:${e.slo.name}`));
    if (due.length === 0) return;
    for (const e of due) running.add(`slo:${e.slo.name}`);
    const started = performance.now();
    let outcomes: EvaluationOutcome[][];
    try {
      if (!deps.slos) throw new Error('the store cannot count SLO requests (no sloCounts)');
      const evaluations = await evaluateSlos(
        deps.slos,
        { tenant: null },
        due.map((d) => d.slo),
        at - config.slo_defaults.query_offset,
      );
      outcomes = due.map(({ rules }, i) =>
        rules.map((r) => {
          const e = evaluations[i] as SloEvaluation;
          return {
            ok: true,
            series: [
              {
                labels: {},
                value: burnRuleValue(r.burn, e),
                samples: e.counts[r.burn.labels.short_window ?? '']?.total ?? 0,
              },
            ],
          };
        }),
      );
      for (const d of due)
        deps.metrics.evaluation(`slo:${d.slo.name}`, 'ok', (performance.now() - started) / 1000);
    } catch (err) {
      outcomes = due.map(({ rules }) => rules.map(() => ({ ok: false, error: (err as Error).message })));
      for (const d of due)
        deps.metrics.evaluation(`slo:${d.slo.name}`, 'error', (performance.now() - started) / 1000);
      deps.logger.warn({ slos: due.map((d) => d.slo.name), err }, 'SLO evaluation failed');
    } finally {
      for (const d of due) running.delete(`slo:${d.slo.name}`);
    }
    for (const [i, { rules }] of due.entries())
      for (const [j, r] of rules.entries()) {
        const state = states.get(r.id);
        const outcome = outcomes[i]?.[j];
        if (state && outcome) advance(r, state, outcome, at);
      }
  }

  const api: Alerter = {
    restore(events) {
      for (const e of events) {
        const rule = rulesById.get(e.rule_id);
        const st = states.get(e.rule_id);
        if (!rule || !st) continue;
        if (e.receiver) {
          if (e.last_notified !== null)
            notified.set(e.fingerprint, {
              ...(notified.get(e.fingerprint) ?? {}),
              [e.receiver]: e.last_notified / 1000,
            });
          continue;
        }
        if (e.state === 'inactive' || e.state === 'nodata' || e.state === 'error') {
          st.instances.delete(e.fingerprint);
          continue;
        }
        st.instances.set(e.fingerprint, {
          fingerprint: e.fingerprint,
          labels: e.labels,
          state: e.state,
          since: e.since / 1000,
          activeAt: (e.active_at ?? e.since) / 1000,
          firedAt:
            e.fired_at === undefined
              ? e.state === 'pending'
                ? null
                : e.since / 1000
              : e.fired_at === null
                ? null
                : e.fired_at / 1000,
          value: e.value,
          missingEvals: 0,
          lastNotified: null,
        });
      }
      const t = now();
      for (const st of states.values())
        for (const [fp, i] of st.instances)
          if (i.state === 'resolved' && t - i.since > RESOLVED_RETENTION_MS) st.instances.delete(fp);
      dispatcher.update(dispatchAlerts(), t);
      deps.metrics.setAlerts(api.alerts().map((a) => a.instance.state));
    },
    start() {
      started = true;
      schedule();
    },
    async evaluateGroup(group, at = now()) {
      // Rules of a group run side by side; a slow rule delays nobody else.
      await Promise.all(
        group.rules.map((r) => {
          const current = rulesById.get(r.id);
          return evaluate(current && current.kind !== 'slo_burn_rate' ? current : r, group, at);
        }),
      );
      dispatcher.update(dispatchAlerts(), at);
      deps.metrics.setAlerts(api.alerts().map((a) => a.instance.state));
    },
    async evaluateSlos(at = now()) {
      // Every SLO in one count: a statement per data level, not per SLO.
      await evaluateSloRules([...sloRules.values()], at);
      dispatcher.update(dispatchAlerts(), at);
      deps.metrics.setAlerts(api.alerts().map((a) => a.instance.state));
    },
    async dispatch(at = now()) {
      await dispatcher.tick(at);
    },
    reload(next) {
      config = next;
      index(config);
      const old = dispatcher;
      dispatcher = makeDispatcher(config);
      void old.close();
      dispatcher.update(dispatchAlerts(), now());
      if (started) schedule();
      deps.logger.info(
        { groups: config.groups.length, rules: rulesById.size, slos: config.slos.length },
        'alerting configuration loaded',
      );
    },
    setSilences(list) {
      silences = list;
      dispatcher.setSilences(list);
    },
    brokenReceivers() {
      return Object.fromEntries(dispatcher.stats().brokenReceivers);
    },
    alerts() {
      return [...states].flatMap(([ruleId, st]) =>
        [...st.instances.values()].map((instance) => ({ ruleId, instance })),
      );
    },
    config: () => config,
    async close() {
      for (const t of timers.splice(0)) clearInterval(t);
      await dispatcher.close();
    },
  };
  return api;
}
