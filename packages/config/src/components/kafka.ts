import { z } from 'zod';

const DAY_MS = 86_400_000;

/** kafkaConfigSchema configures the connection to Kafka and how Tapwire's topics are created. */
export const kafkaConfigSchema = z
  .strictObject({
    brokers: z
      .array(z.string().regex(/^[^\s:]+:\d{1,5}$/, 'must be host:port'))
      .min(1)
      .default(['127.0.0.1:9092'])
      .describe('Bootstrap brokers as host:port; comma-separated in the env var. Default: 127.0.0.1:9092.'),
    clientId: z
      .string()
      .min(1)
      .max(128)
      .default('tapwire')
      .describe('Kafka client.id prefix. Default: tapwire.'),
    connectionTimeoutMs: z
      .number()
      .int()
      .positive()
      .default(3000)
      .describe('TCP connect timeout per broker, in ms. Default: 3000.'),
    requestTimeoutMs: z
      .number()
      .int()
      .positive()
      .default(30_000)
      .describe('Timeout of one Kafka request, in ms. Default: 30000.'),
    ssl: z.boolean().default(false).describe('Connect with TLS. Default: false.'),
    sasl: z
      .strictObject({
        mechanism: z.enum(['plain', 'scram-sha-256', 'scram-sha-512']).describe('SASL mechanism.'),
        username: z.string().min(1).describe('SASL user name.'),
        password: z.string().min(1).describe('SASL password. Never logged.'),
      })
      .optional()
      .describe('SASL authentication; omit for none.'),
    topics: z
      .strictObject({
        partitions: z
          .number()
          .int()
          .min(1)
          .max(1000)
          .default(6)
          .describe('Partitions of each event topic; ingest scales up to this many consumers. Default: 6.'),
        replicationFactor: z
          .number()
          .int()
          .min(1)
          .max(7)
          .default(1)
          .describe('Replication factor of every topic; use 3 in production. Default: 1.'),
        retentionMs: z
          .number()
          .int()
          .min(60_000)
          .default(7 * DAY_MS)
          .describe(
            'How long event topics keep data (the replay horizon), in ms. Default: 604800000 (7 days).',
          ),
        dlqRetentionMs: z
          .number()
          .int()
          .min(60_000)
          .default(30 * DAY_MS)
          .describe('How long the DLQ topic keeps rejected messages, in ms. Default: 2592000000 (30 days).'),
      })
      .prefault({})
      .describe('Topic creation settings used by `tapwire topics` and at start.'),
  })
  .prefault({});

/** KafkaConfig configures the Kafka connection and topic bootstrap. */
export type KafkaConfig = z.infer<typeof kafkaConfigSchema>;
