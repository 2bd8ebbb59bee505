import { createHmac } from 'node:crypto';
import { destinationId, postJson } from './http.js';
import { commonOf, groupStatus, type Notification, type Notifier } from './types.js';

/** WebhookReceiverConfig configures one generic webhook (Alertmanager v4 body). */
export interface WebhookReceiverConfig {
  readonly url: string;
  readonly sendResolved: boolean;
  /** Most alerts in one body; the rest are counted in truncatedAlerts (0 = all). */
  readonly maxAlerts: number;
  /** When set, the body is signed: `X-Tapwire-Signature: sha256=<hex HMAC-SHA256 of the body>`. */
  readonly hmacSecret: string | undefined;
  readonly timeoutMs: number;
}

/** Alertmanager shows the zero time as the end of alerts that are still firing. */
const ZERO_TIME = '0001-01-01T00:00:00Z';

/** alertmanagerV4Body builds Alertmanager's version-4 webhook message for a notification. */
export function alertmanagerV4Body(n: Notification, maxAlerts: number): Record<string, unknown> {
  const alerts = maxAlerts > 0 ? n.alerts.slice(0, maxAlerts) : n.alerts;
  return {
    version: '4',
    groupKey: n.groupKey,
    truncatedAlerts: n.alerts.length - alerts.length,
    status: groupStatus(n.alerts),
    receiver: n.receiver,
    groupLabels: n.groupLabels,
    commonLabels: commonOf(n.alerts.map((a) => a.labels)),
    commonAnnotations: commonOf(n.alerts.map((a) => a.annotations)),
    externalURL: n.externalUrl,
    alerts: alerts.map((a) => ({
      status: a.status,
      labels: a.labels,
      annotations: a.annotations,
      startsAt: a.startsAt.toISOString(),
      endsAt: a.endsAt ? a.endsAt.toISOString() : ZERO_TIME,
      generatorURL: a.generatorUrl,
      fingerprint: a.fingerprint,
      // Extra fields (consumers ignore what they do not know).
      value: a.value,
      threshold: a.threshold,
    })),
  };
}

/** signBody returns the signature header value of a body. */
export function signBody(secret: string, body: string): string {
  return `sha256=${createHmac('sha256', secret).update(body).digest('hex')}`;
}

/** createWebhookNotifier posts Alertmanager v4 JSON, signed when a secret is configured. */
export function createWebhookNotifier(receiver: string, config: WebhookReceiverConfig): Notifier {
  return {
    receiver,
    kind: 'webhook',
    destination: destinationId('webhook', config.url),
    sendResolved: config.sendResolved,
    send(n, signal) {
      const body = JSON.stringify(alertmanagerV4Body(n, config.maxAlerts));
      const headers: Record<string, string> = {
        'idempotency-key': n.idempotencyKey,
      };
      if (config.hmacSecret) headers['x-tapwire-signature'] = signBody(config.hmacSecret, body);
      return postJson(config.url, body, {
        headers,
        signal: AbortSignal.any([signal, AbortSignal.timeout(config.timeoutMs)]),
      });
    },
  };
}
