import {
  type AlertingConfig,
  type Matcher,
  matches,
  parseMatcher,
  type Route,
  SLO_INHIBIT_RULE,
} from '@tapwire/alerting';
import type { Logger } from '@tapwire/telemetry';
import { notificationKey } from './notification-key.js';
import { type DeliveryOutcome, deliver, type RetryPolicy } from './notify/deliver.js';
import type { RateLimiter } from './notify/rate-limiter.js';
import type { RegisteredNotifier } from './notify/registry.js';
import type { Notification, NotifiedAlert } from './notify/types.js';

/**
 * Alertmanager's notification pipeline for Tapwire's alerts: route each alert through the route
 * tree, aggregate per (route, group labels), flush a group after group_wait, then every
 * group_interval when something changed, or after repeat_interval; silences and inhibition
 * apply at flush time. What each receiver was sent is kept per alert (`notified`), which is what
 * the alerter persists, so a restart neither repeats a firing message nor loses a resolve.
 */

/** DispatchAlert is one alert series as the dispatcher sees it. */
export interface DispatchAlert extends Omit<NotifiedAlert, 'status'> {
  readonly status: 'firing' | 'resolved';
  /** When the current episode began firing (startsAt) and, if resolved, when (endsAt), ms. */
  readonly firedAt: number;
  /** receiver name → when a notification with this alert in its current status was delivered (ms). */
  readonly notified: Readonly<Record<string, number>>;
  /** The rule's own receivers, when it names them (they replace the route tree). */
  readonly receivers?: readonly string[];
}

/** Silence mutes alerts matching all its matchers between startsAt and endsAt (ms). */
export interface Silence {
  readonly id: string;
  readonly matchers: readonly string[];
  readonly startsAt: number;
  readonly endsAt: number;
  readonly createdBy: string;
  readonly comment: string;
}

/** Delivered reports a notification that reached a receiver. */
export interface Delivered {
  readonly receiver: string;
  readonly groupKey: string;
  readonly fingerprints: readonly string[];
  readonly at: number;
}

/** DispatcherStats counts what the dispatcher did, for /metrics. */
export interface DispatcherStats {
  readonly notifications: Map<string, number>;
  readonly brokenReceivers: Map<string, string>;
  readonly groups: number;
}

interface ResolvedRoute {
  readonly id: string;
  readonly receiver: string;
  readonly groupBy: readonly string[] | 'all';
  readonly groupWaitMs: number;
  readonly groupIntervalMs: number;
  readonly repeatIntervalMs: number;
}

interface Group {
  readonly key: string;
  readonly route: ResolvedRoute;
  readonly labels: Record<string, string>;
  alerts: Map<string, DispatchAlert>;
  nextFlushAt: number;
  flushing: Promise<void> | undefined;
}

const DEFAULTS = { groupWaitMs: 30_000, groupIntervalMs: 300_000, repeatIntervalMs: 4 * 3_600_000 };

function labelString(labels: Readonly<Record<string, string>>): string {
  return `{${Object.keys(labels)
    .sort()
    .map((k) => `${k}=${JSON.stringify(labels[k])}`)
    .join(', ')}}`;
}

/** routesFor returns the routes an alert goes to: Alertmanager's depth-first match with `continue`. */
function routesFor(
  route: Route,
  parent: Omit<ResolvedRoute, 'id'>,
  path: string,
  labels: Readonly<Record<string, string>>,
  parsed: Map<Route, Matcher[]>,
): ResolvedRoute[] {
  const here: Omit<ResolvedRoute, 'id'> = {
    receiver: route.receiver ?? parent.receiver,
    groupBy: route.group_by ? (route.group_by.includes('...') ? 'all' : route.group_by) : parent.groupBy,
    groupWaitMs: route.group_wait ?? parent.groupWaitMs,
    groupIntervalMs: route.group_interval ?? parent.groupIntervalMs,
    repeatIntervalMs: route.repeat_interval ?? parent.repeatIntervalMs,
  };
  const out: ResolvedRoute[] = [];
  for (const [i, child] of route.routes.entries()) {
    const ms = parsed.get(child) ?? [];
    if (!ms.every((m) => matches(m, labels))) continue;
    out.push(
      ...routesFor(
        child,
        here,
        `${path}/${i}${labelString(Object.fromEntries(ms.map((m) => [m.name, m.value])))}`,
        labels,
        parsed,
      ),
    );
    if (!child.continue) break;
  }
  return out.length > 0 ? out : [{ ...here, id: path }];
}

/** Dispatcher groups alerts and sends notifications; `update` after each evaluation, `tick` often. */
export interface Dispatcher {
  update(alerts: readonly DispatchAlert[], now: number): void;
  setSilences(silences: readonly Silence[]): void;
  /** tick flushes every group that is due; resolves when those flushes finished. */
  tick(now: number): Promise<void>;
  stats(): DispatcherStats;
  close(): Promise<void>;
}

/** createDispatcher builds the pipeline from validated config and the receivers' notifiers. */
export function createDispatcher(
  deps: {
    notifiers: ReadonlyMap<string, RegisteredNotifier>;
    limiter: RateLimiter;
    policy: RetryPolicy;
    logger: Logger;
    onDelivered: (d: Delivered) => void;
    onOutcome?: (receiver: string, outcome: DeliveryOutcome) => void;
    now?: () => number;
  },
  config: { alerting: AlertingConfig; externalUrl: string; dashboardUrl: string },
): Dispatcher {
  const parsed = new Map<Route, Matcher[]>();
  const index = (r: Route) => {
    parsed.set(r, r.matchers.map(parseMatcher));
    for (const c of r.routes) index(c);
  };
  index(config.alerting.route);
  // Built in with SLOs: a page of an SLO mutes its ticket (the workbook's two severities of one burn).
  const inhibitRules =
    config.alerting.slos.length > 0
      ? [...config.alerting.inhibit_rules, SLO_INHIBIT_RULE]
      : config.alerting.inhibit_rules;
  const inhibitions = inhibitRules.map((r) => ({
    source: r.source_matchers.map(parseMatcher),
    target: r.target_matchers.map(parseMatcher),
    equal: r.equal,
  }));
  const rootDefaults: Omit<ResolvedRoute, 'id'> = {
    receiver: config.alerting.route.receiver ?? '',
    groupBy: [],
    ...DEFAULTS,
  };
  // Grouping settings of the root route, used for rules that name their receivers.
  const root = config.alerting.route;
  const rootOverrides = {
    groupBy: root.group_by
      ? root.group_by.includes('...')
        ? ('all' as const)
        : root.group_by
      : rootDefaults.groupBy,
    groupWaitMs: root.group_wait ?? DEFAULTS.groupWaitMs,
    groupIntervalMs: root.group_interval ?? DEFAULTS.groupIntervalMs,
    repeatIntervalMs: root.repeat_interval ?? DEFAULTS.repeatIntervalMs,
  };
  const groups = new Map<string, Group>();
  let silences: { silence: Silence; matchers: Matcher[] }[] = [];
  const notifications = new Map<string, number>();
  const brokenReceivers = new Map<string, string>();
  const stopping = new AbortController();
  let firing: DispatchAlert[] = [];

  const silenced = (a: DispatchAlert, now: number) =>
    silences.some(
      (s) =>
        s.silence.startsAt <= now && now < s.silence.endsAt && s.matchers.every((m) => matches(m, a.labels)),
    );
  const inhibited = (a: DispatchAlert) =>
    inhibitions.some(
      (rule) =>
        rule.target.every((m) => matches(m, a.labels)) &&
        firing.some(
          (src) =>
            src.fingerprint !== a.fingerprint &&
            rule.source.every((m) => matches(m, src.labels)) &&
            !rule.target.every((m) => matches(m, src.labels)) &&
            rule.equal.every((l) => (src.labels[l] ?? '') === (a.labels[l] ?? '')),
        ),
    );

  async function flush(g: Group, now: number): Promise<void> {
    const receiver = g.route.receiver;
    const pending = [...g.alerts.values()].filter((a) => !silenced(a, now) && !inhibited(a));
    const sentAt = (a: DispatchAlert) => a.notified[receiver];
    // New: firing alerts not yet announced in this episode, and resolves of alerts that were
    // announced (one that resolved before its first message is never mentioned, as in Alertmanager).
    const fresh = pending.filter((a) => {
      const sent = sentAt(a);
      if (a.status === 'firing') return (sent ?? -1) < a.firedAt;
      return sent !== undefined && sent < (a.endsAt?.getTime() ?? 0);
    });
    const firingNow = pending.filter((a) => a.status === 'firing');
    const lastSent = Math.min(...firingNow.map((a) => sentAt(a) ?? -1));
    const repeat = firingNow.length > 0 && lastSent >= 0 && now - lastSent >= g.route.repeatIntervalMs;
    g.nextFlushAt = now + g.route.groupIntervalMs;
    for (const a of pending)
      if (a.status === 'resolved' && !fresh.includes(a)) g.alerts.delete(a.fingerprint);
    if (fresh.length === 0 && !repeat) {
      if (g.alerts.size === 0) groups.delete(g.key);
      return;
    }
    const registered = deps.notifiers.get(receiver);
    if (!registered) return;
    // A message holds every firing alert of the group, plus the resolves not yet sent.
    const alerts = pending.filter((a) => a.status === 'firing' || fresh.includes(a));
    const notification: Notification = {
      receiver,
      groupKey: g.key,
      groupLabels: g.labels,
      alerts: alerts.map((a) => ({ ...a })),
      dashboardUrl: config.dashboardUrl,
      externalUrl: config.externalUrl,
      idempotencyKey: notificationKey(receiver, g.key, alerts),
    };
    const outcome = await deliver(registered.notifier, notification, {
      limiter: deps.limiter,
      policy: deps.policy,
      signal: stopping.signal,
    });
    const key = `${receiver}|${outcome.outcome}`;
    notifications.set(key, (notifications.get(key) ?? 0) + 1);
    deps.onOutcome?.(receiver, outcome);
    if (outcome.outcome === 'rejected') {
      brokenReceivers.set(receiver, outcome.reason);
      deps.logger.error(
        { receiver, reason: outcome.reason, attempts: outcome.attempts },
        'receiver rejected the notification; fix its configuration',
      );
      return;
    }
    if (outcome.outcome === 'failed') {
      deps.logger.warn(
        { receiver, reason: outcome.reason, attempts: outcome.attempts },
        'notification not delivered; retrying at the next group interval',
      );
      return;
    }
    brokenReceivers.delete(receiver);
    const at = deps.now?.() ?? Date.now();
    deps.onDelivered({ receiver, groupKey: g.key, fingerprints: alerts.map((a) => a.fingerprint), at });
    for (const a of alerts) {
      const updated = { ...a, notified: { ...a.notified, [receiver]: at } };
      if (updated.status === 'resolved') g.alerts.delete(a.fingerprint);
      else g.alerts.set(a.fingerprint, updated);
    }
    if (g.alerts.size === 0) groups.delete(g.key);
  }

  return {
    update(alerts, now) {
      firing = alerts.filter((a) => a.status === 'firing');
      const seen = new Set<string>();
      for (const a of alerts) {
        const routes = a.receivers?.length
          ? a.receivers.map((receiver) => ({
              ...rootDefaults,
              ...rootOverrides,
              receiver,
              id: `{rule}/${receiver}`,
            }))
          : routesFor(config.alerting.route, rootDefaults, '{}', a.labels, parsed);
        for (const route of routes) {
          const labels =
            route.groupBy === 'all'
              ? { ...a.labels }
              : Object.fromEntries(route.groupBy.map((l) => [l, a.labels[l] ?? '']));
          const key = `${route.id}:${labelString(labels)}`;
          seen.add(`${key}\u0000${a.fingerprint}`);
          let g = groups.get(key);
          if (!g) {
            g = {
              key,
              route,
              labels,
              alerts: new Map(),
              nextFlushAt: now + route.groupWaitMs,
              flushing: undefined,
            };
            groups.set(key, g);
          }
          // Keep the newest delivery time per receiver, whether the caller or this dispatcher saw it.
          const notified: Record<string, number> = { ...(g.alerts.get(a.fingerprint)?.notified ?? {}) };
          for (const [r, t] of Object.entries(a.notified)) if ((notified[r] ?? -1) < t) notified[r] = t;
          g.alerts.set(a.fingerprint, { ...a, notified });
        }
      }
      // Alerts that left (resolved and delivered, or evicted) leave their groups.
      for (const [key, g] of groups) {
        for (const fp of [...g.alerts.keys()]) if (!seen.has(`${key}\u0000${fp}`)) g.alerts.delete(fp);
        if (g.alerts.size === 0 && !g.flushing) groups.delete(key);
      }
    },
    setSilences(list) {
      silences = list.map((s) => ({ silence: s, matchers: s.matchers.map(parseMatcher) }));
    },
    async tick(now) {
      const due = [...groups.values()].filter(
        (g) => !g.flushing && g.nextFlushAt <= now && g.alerts.size > 0,
      );
      await Promise.all(
        due.map((g) => {
          g.flushing = flush(g, now)
            .catch((err) => deps.logger.error({ err, group: g.key }, 'flush failed'))
            .finally(() => {
              g.flushing = undefined;
            });
          return g.flushing;
        }),
      );
    },
    stats: () => ({ notifications, brokenReceivers, groups: groups.size }),
    async close() {
      stopping.abort();
      await Promise.all([...groups.values()].map((g) => g.flushing));
    },
  };
}
