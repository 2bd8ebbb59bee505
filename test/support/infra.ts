import { randomBytes } from 'node:crypto';
import {
  type ClickHouseConfig,
  clickhouseConfigSchema,
  type InfraConfig,
  infraConfigSchema,
  type KafkaConfig,
  kafkaConfigSchema,
  loadConfig,
} from '@tapwire/config';
import { clickhouseUrl, kafkaBrokers } from '@tapwire/infra';
import { z } from 'zod';

/** infraConfig reads the same TAPWIRE_INFRA_* settings `tapwire infra up` uses. */
export function infraConfig(): InfraConfig {
  return loadConfig(z.object({ infra: infraConfigSchema }), {}).infra;
}

/** uniqueName returns a name no other test run uses: prefix + random hex. */
export function uniqueName(prefix: string): string {
  return `${prefix}_${randomBytes(5).toString('hex')}`;
}

/** testKafkaConfig points at the broker test/infra runs. */
export function testKafkaConfig(over: Record<string, unknown> = {}): KafkaConfig {
  return kafkaConfigSchema.parse({ brokers: kafkaBrokers(infraConfig()), clientId: 'tapwire-test', ...over });
}

/** testClickHouseConfig points at the ClickHouse test/infra runs, with its own database. */
export function testClickHouseConfig(database: string): ClickHouseConfig {
  return clickhouseConfigSchema.parse({ url: clickhouseUrl(infraConfig()), database });
}

/** silentLogger satisfies the logger interfaces of our packages without printing. */
export const silentLogger = {
  error() {},
  warn() {},
  info() {},
  debug() {},
};

/** deletePrefixedTopics removes every topic a test created under its unique prefix (best effort). */
export async function deletePrefixedTopics(prefix: string): Promise<void> {
  const { createKafkaClient } = await import('@tapwire/kafka');
  const admin = createKafkaClient(testKafkaConfig(), silentLogger, 'test-cleanup').admin();
  await admin.connect();
  try {
    const topics = (await admin.listTopics()).filter((t) => t.startsWith(prefix));
    if (topics.length > 0) await admin.deleteTopics({ topics }).catch(() => undefined);
  } finally {
    await admin.disconnect();
  }
}
