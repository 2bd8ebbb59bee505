import { createHash } from 'node:crypto';
import { formatValue, truncate } from './format.js';
import { destinationId, postJson } from './http.js';
import { commonOf, groupStatus, type Notification, type Notifier } from './types.js';

/** PagerDutyReceiverConfig configures one PagerDuty Events API v2 integration. */
export interface PagerDutyReceiverConfig {
  readonly routingKey: string;
  readonly url: string;
  readonly sendResolved: boolean;
  /** per_group: one PagerDuty alert per aggregation group (Alertmanager); per_instance: one per alert. */
  readonly dedup: 'per_group' | 'per_instance';
  readonly timeoutMs: number;
}

const SEVERITIES = new Set(['critical', 'error', 'warning', 'info']);

/** pagerDutyDedupKey is stable for the life of a group (or instance): trigger and resolve share it. */
export function pagerDutyDedupKey(groupKey: string): string {
  return `tapwire:${createHash('sha256').update(groupKey).digest('hex')}`;
}

/** pagerDutyEvents builds the Events v2 bodies of a notification: one per group, or one per alert. */
export function pagerDutyEvents(n: Notification, config: PagerDutyReceiverConfig): Record<string, unknown>[] {
  const units =
    config.dedup === 'per_instance'
      ? n.alerts.map((a) => ({ key: `${n.groupKey}/${a.fingerprint}`, alerts: [a] }))
      : [{ key: n.groupKey, alerts: n.alerts }];
  return units.map(({ key, alerts }) => {
    const dedup_key = pagerDutyDedupKey(key);
    if (groupStatus(alerts) === 'resolved')
      return { routing_key: config.routingKey, event_action: 'resolve', dedup_key };
    const firing = alerts.filter((a) => a.status === 'firing');
    const first = firing[0] ?? alerts[0];
    const common = commonOf(alerts.map((a) => a.labels));
    const severity = SEVERITIES.has(common.severity ?? '') ? (common.severity as string) : 'error';
    const name = common.alertname ?? 'alert';
    const summary = first?.annotations.summary
      ? `[FIRING:${firing.length}] ${name}: ${first.annotations.summary}`
      : `[FIRING:${firing.length}] ${name}: ${formatValue(first?.value ?? 0, first?.unit ?? '')} vs threshold ${formatValue(first?.threshold ?? 0, first?.unit ?? '')}`;
    const links = [{ href: n.dashboardUrl, text: 'Grafana dashboard' }];
    if (first?.generatorUrl) links.push({ href: first.generatorUrl, text: 'API query' });
    if (first?.annotations.runbook_url) links.push({ href: first.annotations.runbook_url, text: 'Runbook' });
    return {
      routing_key: config.routingKey,
      event_action: 'trigger',
      dedup_key,
      client: 'Tapwire',
      client_url: n.externalUrl,
      payload: {
        summary: truncate(summary, 1024),
        source: common.service ?? first?.labels.service ?? 'tapwire',
        severity,
        timestamp: (first?.startsAt ?? new Date()).toISOString(),
        ...(common.route ? { component: common.route } : {}),
        ...(common.service ? { group: common.service } : {}),
        ...(common.kind ? { class: common.kind } : {}),
        custom_details: {
          num_firing: firing.length,
          num_resolved: alerts.length - firing.length,
          firing: firing.slice(0, 20).map((a) => ({
            labels: a.labels,
            value: a.value,
            threshold: a.threshold,
            unit: a.unit,
          })),
        },
      },
      links,
    };
  });
}

/** createPagerDutyNotifier sends Events API v2 trigger/resolve events (202 = accepted). */
export function createPagerDutyNotifier(receiver: string, config: PagerDutyReceiverConfig): Notifier {
  return {
    receiver,
    kind: 'pagerduty',
    destination: destinationId('pagerduty', `${config.url}|${config.routingKey}`),
    sendResolved: config.sendResolved,
    async send(n, signal) {
      for (const event of pagerDutyEvents(n, config)) {
        const result = await postJson(config.url, JSON.stringify(event), {
          signal: AbortSignal.any([signal, AbortSignal.timeout(config.timeoutMs)]),
        });
        if (!result.ok) return result;
      }
      return { ok: true, status: 202 };
    },
  };
}
