import { adminListenerSchema } from '@tapwire/config';
import { z } from 'zod';

/** alerterConfigSchema configures the alerting worker (the rules themselves live in `rulesFile`). */
export const alerterConfigSchema = z
  .strictObject({
    rulesFile: z
      .string()
      .min(1)
      .default('alerting.yaml')
      .describe(
        'YAML file with rule groups, route, inhibit_rules and receivers; reloaded on change and on SIGHUP. Default: alerting.yaml.',
      ),
    admin: adminListenerSchema(9467),
    apiUrl: z
      .url()
      .default('http://127.0.0.1:8081')
      .describe('Analytics API base URL, linked from notifications.'),
    dashboardUrl: z
      .url()
      .default('http://127.0.0.1:3000/d/tapwire-route')
      .describe('Grafana dashboard linked from notifications.'),
    topicPrefix: z
      .string()
      .regex(/^[A-Za-z0-9._-]*$/)
      .default('')
      .describe('Prefix of the Kafka topic names (must match the other services’).'),
    silencePollMs: z
      .number()
      .int()
      .min(100)
      .max(600_000)
      .default(5000)
      .describe('How often silences are re-read from Kafka, in ms. Default: 5000.'),
    dispatchTickMs: z
      .number()
      .int()
      .min(50)
      .max(60_000)
      .default(1000)
      .describe('How often due notification groups are flushed, in ms. Default: 1000.'),
    retry: z
      .strictObject({
        maxAttempts: z
          .number()
          .int()
          .min(1)
          .max(100)
          .default(6)
          .describe('Attempts per notification. Default: 6.'),
        initialBackoffMs: z
          .number()
          .int()
          .min(1)
          .default(1000)
          .describe('First retry delay (doubles, with full jitter). Default: 1000.'),
        maxBackoffMs: z
          .number()
          .int()
          .min(1)
          .default(60_000)
          .describe('Longest retry delay. Default: 60000.'),
      })
      .prefault({}),
  })
  .prefault({});

/** AlerterConfig configures the alerting worker. */
export type AlerterConfig = z.infer<typeof alerterConfigSchema>;
