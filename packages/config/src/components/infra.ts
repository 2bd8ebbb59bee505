import { z } from 'zod';

const port = z.number().int().min(1).max(65_535);

/** DEFAULT_KAFKA_VERSION is the broker `tapwire infra up` runs with no settings; docker-compose pins the same. */
export const DEFAULT_KAFKA_VERSION = '4.4.0';

// 4.x is the current major; 3.9.x is the last 3.x line (ZooKeeper and KRaft), still tested in CI.
const KAFKA_VERSION_PATTERN = /^(?:4\.\d+|3\.9)\.\d+$/;

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
      .regex(
        KAFKA_VERSION_PATTERN,
        'must be an Apache Kafka 4.x or 3.9.x release, such as 4.4.0 or 3.9.1 (older lines are not tested with Tapwire)',
      )
      .default(DEFAULT_KAFKA_VERSION)
      .describe(
        `Apache Kafka version resolved from Maven Central (org.apache.kafka:kafka_2.13): a 4.x or 3.9.x release. Default: ${DEFAULT_KAFKA_VERSION}.`,
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
