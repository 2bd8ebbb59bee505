import { z } from 'zod';

/**
 * logConfigSchema selects where events are logged: Kafka (the distributed deployment), or the
 * embedded log, a directory of segment files owned by one `tapwire start` process.
 */
export const logConfigSchema = z
  .strictObject({
    kind: z
      .enum(['auto', 'kafka', 'embedded'])
      .default('auto')
      .describe(
        'Where events are logged: kafka, embedded (a local directory; only `tapwire start` runs on it, every service in one process), or auto: `tapwire start` and `replay` use embedded unless a `kafka` setting is given; separate services use kafka. Default: auto.',
      ),
    dir: z
      .string()
      .min(1)
      .default('.tapwire/data/log')
      .describe('Directory of the embedded log. Default: .tapwire/data/log.'),
    fsync: z
      .enum(['always', 'interval', 'never'])
      .default('interval')
      .describe(
        'When the embedded log forces writes to disk: always (every append), interval, or never (the OS decides). A killed process loses nothing either way; this is about power loss. Default: interval.',
      ),
    fsyncIntervalMs: z
      .number()
      .int()
      .min(10)
      .max(60_000)
      .default(1000)
      .describe('With fsync interval: how often, in ms. Default: 1000.'),
    segmentBytes: z
      .number()
      .int()
      .min(64 * 1024)
      .max(1024 * 1024 * 1024)
      .default(64 * 1024 * 1024)
      .describe('Size at which a segment file is closed and a new one started. Default: 67108864 (64 MiB).'),
    retentionHours: z
      .number()
      .int()
      .min(1)
      .max(87_600)
      .default(168)
      .describe(
        'Event topics keep closed segments this long; alert state and silences are kept. Default: 168 (7 days).',
      ),
    retentionBytes: z
      .number()
      .int()
      .min(0)
      .default(0)
      .describe(
        'Most bytes each event topic keeps (oldest closed segments go first); 0 for no limit. Default: 0.',
      ),
  })
  .prefault({});

/** LogConfig is the validated `log` section. */
export type LogConfig = z.infer<typeof logConfigSchema>;
