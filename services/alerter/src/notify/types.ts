/** AlertStatus is whether an alert in a notification is still firing or has resolved. */
export type AlertStatus = 'firing' | 'resolved';

/** NotifiedAlert is one alert instance as receivers see it (Alertmanager's alert shape plus value/threshold). */
export interface NotifiedAlert {
  readonly status: AlertStatus;
  /** Identifying labels, including alertname, rule_id and severity. */
  readonly labels: Readonly<Record<string, string>>;
  readonly annotations: Readonly<Record<string, string>>;
  readonly startsAt: Date;
  /** When it resolved; undefined while firing. */
  readonly endsAt: Date | undefined;
  /** 16 hex characters identifying the label set. */
  readonly fingerprint: string;
  readonly value: number;
  readonly threshold: number;
  /** Unit of value and threshold: ms, ratio, rps, or the saturation metric's own. */
  readonly unit: string;
  /** Link back to the question that fired it (the analytics API query). */
  readonly generatorUrl: string;
}

/** Notification is one aggregation group's message to one receiver. */
export interface Notification {
  readonly receiver: string;
  /** Alertmanager-style group key: route path + ":" + group labels; stable for the group's life. */
  readonly groupKey: string;
  readonly groupLabels: Readonly<Record<string, string>>;
  readonly alerts: readonly NotifiedAlert[];
  /** Link to the Grafana dashboard for the group. */
  readonly dashboardUrl: string;
  /** Base URL of the alerting UI / API, Alertmanager's externalURL. */
  readonly externalUrl: string;
  /** Same for every attempt of this notification, also after a restart; differs for any other (notificationKey). */
  readonly idempotencyKey: string;
}

/** DeliveryResult says how one attempt ended and whether trying again can help. */
export type DeliveryResult =
  | { readonly ok: true; readonly status: number }
  | {
      readonly ok: false;
      readonly retryable: boolean;
      /** Server-requested wait (Retry-After), in ms. */
      readonly retryAfterMs?: number;
      readonly status?: number;
      /** What went wrong, never containing the destination URL or key. */
      readonly reason: string;
    };

/**
 * Notifier sends one notification to one destination in one attempt; it never throws and never
 * logs the destination's URL or key. Retries, rate limits and backoff live in `deliver`.
 */
export interface Notifier {
  readonly receiver: string;
  readonly kind: 'slack' | 'pagerduty' | 'webhook';
  /** Stable, secret-free id of the destination (a hash), the rate-limit and broken-receiver key. */
  readonly destination: string;
  /** Whether resolved alerts are sent at all. */
  readonly sendResolved: boolean;
  send(notification: Notification, signal: AbortSignal): Promise<DeliveryResult>;
}

/** groupStatus is "firing" when any alert of the notification is firing. */
export function groupStatus(alerts: readonly NotifiedAlert[]): AlertStatus {
  return alerts.some((a) => a.status === 'firing') ? 'firing' : 'resolved';
}

/** commonOf returns the key/value pairs shared by every map (Alertmanager's commonLabels/commonAnnotations). */
export function commonOf(maps: readonly Readonly<Record<string, string>>[]): Record<string, string> {
  const [first, ...rest] = maps;
  if (!first) return {};
  const common: Record<string, string> = {};
  for (const [k, v] of Object.entries(first)) if (rest.every((m) => m[k] === v)) common[k] = v;
  return common;
}
