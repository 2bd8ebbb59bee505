import { adminListenerSchema } from '@tapwire/config';
import { z } from 'zod';

/** RETAINED_TABLES are the tables the retention job may drop day partitions of. */
export const RETAINED_TABLES = [
  'access_logs',
  'spans',
  'saturation',
  'trace_index',
  'route_stats_1m',
  'route_histogram_1m',
  'route_histogram_1h',
  'slo_counts_1m',
  'slo_counts_1h',
  'policy_stats_1m',
  'policy_stats_1h',
  'saturation_1m',
  'upstream_saturation_1m',
  'dlq_events',
  'consumer_lag',
  'alert_history',
] as const;

/** ingestConfigSchema configures the Kafka → ClickHouse projection. */
export const ingestConfigSchema = z
  .strictObject({
    groupId: z
      .string()
      .min(1)
      .max(128)
      .default('tapwire-ingest')
      .describe('Kafka consumer group. Default: tapwire-ingest.'),
    topicPrefix: z
      .string()
      .regex(/^[A-Za-z0-9._-]*$/)
      .default('')
      .describe('Prefix of the topic names read (must match the producers’). Default: empty.'),
    maxBatchRows: z
      .number()
      .int()
      .min(1)
      .max(1_000_000)
      .default(50_000)
      .describe(
        'Rows buffered before an insert is started, across tables; rows arriving during an insert wait for the next full batch or tick. Default: 50000.',
      ),
    flushIntervalMs: z
      .number()
      .int()
      .min(10)
      .max(60_000)
      .default(1000)
      .describe(
        'Longest a row waits before its insert, in ms (about one insert per second per table). Default: 1000.',
      ),
    maxBufferedRows: z
      .number()
      .int()
      .min(1)
      .default(80_000)
      .describe(
        'Rows held in memory before consumption pauses (e.g. while ClickHouse is down). Default: 80000.',
      ),
    retryBackoffMs: z
      .number()
      .int()
      .min(10)
      .default(500)
      .describe('First retry delay after a failed insert, in ms; doubles with jitter. Default: 500.'),
    maxRetryBackoffMs: z
      .number()
      .int()
      .min(100)
      .default(30_000)
      .describe('Longest retry delay, in ms. Default: 30000.'),
    admin: adminListenerSchema(9465),
    lagSampleIntervalMs: z
      .number()
      .int()
      .min(1000)
      .default(15_000)
      .describe('How often consumer lag is written to the consumer_lag table, in ms. Default: 15000.'),
    retention: z
      .strictObject({
        enabled: z.boolean().default(true).describe('Run the retention job. Default: true.'),
        intervalMs: z
          .number()
          .int()
          .min(60_000)
          .default(3_600_000)
          .describe('How often it runs, in ms. Default: 3600000.'),
        days: z
          .partialRecord(z.enum(RETAINED_TABLES), z.number().int().min(1).max(36_500))
          .default({})
          .describe('Days kept per table; a table not listed uses defaultDays.'),
        defaultDays: z
          .number()
          .int()
          .min(1)
          .max(36_500)
          .default(30)
          .describe('Days kept by default. Default: 30.'),
      })
      .prefault({}),
    heapLimitMb: z
      .number()
      .int()
      .min(0)
      .max(65_536)
      .default(160)
      .describe(
        'Old-generation heap cap of the ingest worker thread, in MiB; V8 then collects garbage before growing (peak RSS ≈ this + 100). 0: run on the main thread, uncapped. Default: 160.',
      ),
    shutdownGraceMs: z
      .number()
      .int()
      .min(0)
      .default(15_000)
      .describe(
        'On SIGTERM: longest wait to insert and commit what is buffered, in ms; the process exits at most 10 s after this, whatever Kafka and ClickHouse do. Default: 15000.',
      ),
  })
  .prefault({});

/** IngestConfig is the validated ingest configuration. */
export type IngestConfig = z.infer<typeof ingestConfigSchema>;
