import { z } from 'zod';

/**
 * The receiver formats, as the tests check them: Slack incoming webhooks with Block Kit, PagerDuty
 * Events API v2 and Alertmanager's version-4 webhook, as each vendor documents them.
 */

const text = (max: number) => z.string().min(1).max(max);

/** slackWebhookSchema is a Slack incoming-webhook body with Block Kit limits enforced. */
export const slackWebhookSchema = z.object({
  text: text(40_000),
  blocks: z
    .array(
      z.discriminatedUnion('type', [
        z.object({
          type: z.literal('header'),
          text: z.object({ type: z.literal('plain_text'), text: text(150), emoji: z.boolean().optional() }),
        }),
        z.object({
          type: z.literal('section'),
          text: z.object({ type: z.literal('mrkdwn'), text: text(3000) }),
        }),
        z.object({
          type: z.literal('context'),
          elements: z
            .array(z.object({ type: z.literal('mrkdwn'), text: text(3000) }))
            .min(1)
            .max(10),
        }),
        z.object({ type: z.literal('divider') }),
      ]),
    )
    .min(1)
    .max(50),
});

const isoTime = z.string().refine((s) => !Number.isNaN(Date.parse(s)), 'ISO 8601 time');

/** pagerDutyEventSchema is an Events API v2 enqueue body (trigger, acknowledge or resolve). */
export const pagerDutyEventSchema = z.discriminatedUnion('event_action', [
  z.object({
    routing_key: z.string().min(1),
    event_action: z.literal('trigger'),
    dedup_key: z.string().min(1).max(255),
    client: z.string().optional(),
    client_url: z.string().optional(),
    payload: z.object({
      summary: text(1024),
      source: text(255),
      severity: z.enum(['critical', 'error', 'warning', 'info']),
      timestamp: isoTime.optional(),
      component: z.string().optional(),
      group: z.string().optional(),
      class: z.string().optional(),
      custom_details: z.record(z.string(), z.unknown()).optional(),
    }),
    links: z.array(z.object({ href: z.string().min(1), text: z.string().optional() })).optional(),
    images: z
      .array(z.object({ src: z.string(), href: z.string().optional(), alt: z.string().optional() }))
      .optional(),
  }),
  z.object({
    routing_key: z.string().min(1),
    event_action: z.enum(['acknowledge', 'resolve']),
    dedup_key: z.string().min(1).max(255),
  }),
]);

const stringMap = z.record(z.string(), z.string());

/** alertmanagerV4Schema is Alertmanager's webhook message, version "4". */
export const alertmanagerV4Schema = z.object({
  version: z.literal('4'),
  groupKey: z.string().min(1),
  truncatedAlerts: z.number().int().min(0),
  status: z.enum(['firing', 'resolved']),
  receiver: z.string().min(1),
  groupLabels: stringMap,
  commonLabels: stringMap,
  commonAnnotations: stringMap,
  externalURL: z.string(),
  alerts: z.array(
    z.object({
      status: z.enum(['firing', 'resolved']),
      labels: stringMap,
      annotations: stringMap,
      startsAt: isoTime,
      endsAt: isoTime,
      generatorURL: z.string(),
      fingerprint: z.string().regex(/^[0-9a-f]{16}$/),
    }),
  ),
});
