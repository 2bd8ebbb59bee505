import type { ReceiverConfig } from '@tapwire/alerting';
import { createPagerDutyNotifier } from './pagerduty.js';
import { createSlackNotifier } from './slack.js';
import type { Notifier } from './types.js';
import { createWebhookNotifier } from './webhook.js';

/** RegisteredNotifier is a notifier with its destination's send rate. */
export interface RegisteredNotifier {
  readonly notifier: Notifier;
  readonly ratePerSecond: number;
}

/** buildNotifiers turns validated receivers into notifiers, keyed by receiver name. */
export function buildNotifiers(receivers: readonly ReceiverConfig[]): Map<string, RegisteredNotifier> {
  const out = new Map<string, RegisteredNotifier>();
  for (const r of receivers) {
    if (r.slack)
      out.set(r.name, {
        notifier: createSlackNotifier(r.name, r.slack),
        ratePerSecond: r.slack.ratePerSecond,
      });
    else if (r.pagerduty)
      out.set(r.name, {
        notifier: createPagerDutyNotifier(r.name, r.pagerduty),
        ratePerSecond: r.pagerduty.ratePerSecond,
      });
    else if (r.webhook)
      out.set(r.name, {
        notifier: createWebhookNotifier(r.name, { ...r.webhook, hmacSecret: r.webhook.hmacSecret }),
        ratePerSecond: r.webhook.ratePerSecond,
      });
  }
  return out;
}
