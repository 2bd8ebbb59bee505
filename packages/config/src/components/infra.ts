import { z } from 'zod';

const port = z.number().int().min(1).max(65_535);

/** infraConfigSchema configures the local Kafka and ClickHouse that `tapwire infra` runs for development and tests. */
export const infraConfigSchema = z
  .strictObject({
    dir: z
      .string()
      .min(1)
      .default('.tapwire/infra')
      .describe(
        'Folder for the servers’ data, logs, configs and pid files (relative to the working directory). Default: .tapwire/infra.',
      ),
    kafkaVersion: z
      .string()
      .regex(/^3\.9\.\d+$/, 'must be a 3.9.x version (kafkajs 2.2.4 needs the protocol versions 4.x removed)')
      .default('3.9.1')
      .describe(
        'Apache Kafka version resolved from Maven Central (org.apache.kafka:kafka_2.13). Default: 3.9.1.',
      ),
    kafkaLibsDir: z
      .string()
      .default('')
      .describe('Where the broker jars are cached. Empty: ~/.cache/tapwire/kafka-<version>. Default: empty.'),
    kafkaPort: port.default(9092).describe('Kafka PLAINTEXT listener port on 127.0.0.1. Default: 9092.'),
    kafkaControllerPort: port
      .default(9093)
      .describe('Kafka KRaft controller port on 127.0.0.1. Default: 9093.'),
    kafkaHeapMb: z
      .number()
      .int()
      .min(256)
      .max(16_384)
      .default(768)
      .describe('Broker JVM heap, in MiB. Default: 768.'),
    clickhouseHttpPort: port.default(8123).describe('ClickHouse HTTP port on 127.0.0.1. Default: 8123.'),
    clickhouseTcpPort: port.default(9000).describe('ClickHouse native TCP port on 127.0.0.1. Default: 9000.'),
    clickhouseServerBin: z
      .string()
      .min(1)
      .default('clickhouse-server')
      .describe(
        'ClickHouse server executable (Debian package clickhouse-server). Default: clickhouse-server.',
      ),
    startTimeoutS: z
      .number()
      .int()
      .min(5)
      .max(900)
      .default(120)
      .describe('How long `infra up` waits for each server to answer, in seconds. Default: 120.'),
  })
  .prefault({});

/** InfraConfig configures the local development servers. */
export type InfraConfig = z.infer<typeof infraConfigSchema>;
