import { z } from 'zod';
import { uniqueNames } from './fields.js';

const httpUrl = z.url({ protocol: /^https?$/ });
const timeoutMs = z
  .number()
  .int()
  .min(100)
  .max(120_000)
  .default(10_000)
  .describe('Timeout of one POST, in ms. Default: 10000.');

/** receiverSchema is one receiver: a name and exactly one of slack, pagerduty or webhook. */
export const receiverSchema = z
  .strictObject({
    name: z.string().regex(/^[A-Za-z0-9_.-]{1,64}$/, 'must be 1-64 letters, digits, "_", "." or "-"'),
    slack: z
      .strictObject({
        webhookUrl: httpUrl.describe('Slack incoming-webhook URL (a secret: never logged).'),
        sendResolved: z.boolean().default(true).describe('Also post resolved messages. Default: true.'),
        maxAlertsListed: z
          .number()
          .int()
          .min(1)
          .max(45)
          .default(10)
          .describe('Alerts listed per message. Default: 10.'),
        ratePerSecond: z
          .number()
          .positive()
          .max(100)
          .default(1)
          .describe('Messages per second to this webhook. Default: 1.'),
        timeoutMs,
      })
      .optional(),
    pagerduty: z
      .strictObject({
        routingKey: z
          .string()
          .min(1)
          .max(128)
          .describe('Events API v2 integration (routing) key (a secret: never logged).'),
        url: httpUrl.default('https://events.pagerduty.com/v2/enqueue').describe('Events API endpoint.'),
        sendResolved: z.boolean().default(true),
        dedup: z
          .enum(['per_group', 'per_instance'])
          .default('per_group')
          .describe('One PagerDuty alert per group or per alert.'),
        ratePerSecond: z
          .number()
          .positive()
          .max(100)
          .default(2)
          .describe('Events per second to this key. Default: 2.'),
        timeoutMs,
      })
      .optional(),
    webhook: z
      .strictObject({
        url: httpUrl.describe('Endpoint receiving Alertmanager v4 JSON (a secret: never logged).'),
        sendResolved: z.boolean().default(true),
        maxAlerts: z.number().int().min(0).default(0).describe('Most alerts per body (0 = all).'),
        hmacSecret: z
          .string()
          .min(16)
          .optional()
          .describe('Signs each body: X-Tapwire-Signature: sha256=<hex>.'),
        ratePerSecond: z.number().positive().max(1000).default(10),
        timeoutMs,
      })
      .optional(),
  })
  .superRefine((r, ctx) => {
    const kinds = [r.slack, r.pagerduty, r.webhook].filter(Boolean).length;
    if (kinds !== 1)
      ctx.addIssue({ code: 'custom', message: 'needs exactly one of slack, pagerduty or webhook' });
  });

/** ReceiverConfig is one validated receiver. */
export type ReceiverConfig = z.infer<typeof receiverSchema>;

/** receiversSchema is the receiver list; names must be unique. */
export const receiversSchema = z.array(receiverSchema).superRefine(uniqueNames('receiver'));
