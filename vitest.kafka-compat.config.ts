import { existsSync } from 'node:fs';
import { defineConfig } from 'vitest/config';
import { alias, integrationTest } from './vitest.config.js';

/**
 * KAFKA_COMPAT_FILES are the integration files `.ci/run` runs a second time, on Kafka 3.9.x, after
 * the whole suite ran on the default 4.x (`npm run test:kafka-compat` against a 3.9 broker). Each
 * is here for Kafka calls or broker behaviour the others do not cover. The budget is about 6
 * minutes for the step (measured: 271 s of tests, 309 s with the broker switches, on the 2-core CI
 * machine). A new test that touches Kafka in a new way goes here, with its reason.
 */
export const KAFKA_COMPAT_FILES = [
  // Topic admin (createTopics, createPartitions, describeConfigs, alterConfigs, fetchTopicMetadata);
  // the record sink's idempotent producer, resends and producer-id reset after sequence errors.
  'test/integration/kafka.test.ts',
  // The proxy's shipper: batches from the local log through the idempotent batch producer.
  'test/integration/shipper.test.ts',
  // Exactly-once across a lost acknowledgement and a restart between acknowledge and save.
  'test/integration/shipper-fault-exactly-once.test.ts',
  // The proxy's own records on Kafka (single-event and raw-socket edge cases).
  'test/integration/proxy.test.ts',
  // Ingest's consumer group: join, commitOffsets, and fetchOffsets when restarted mid-batch.
  'test/integration/ingest-batched.test.ts',
  // Replay: offsets by timestamp (fetchTopicOffsetsByTimestamp), setOffsets on a fresh group, deleteGroups.
  'test/integration/batched-path.test.ts',
  // Silences stored on Kafka, read to the end (fetchTopicOffsets, a throwaway group deleted after).
  'test/integration/api.test.ts',
  // The compacted alert-state topic, read back after a restart.
  'test/integration/alerter.test.ts',
  // `tapwire start` on Kafka: topics created by the CLI, every service in one process.
  'test/integration/start.test.ts',
  // `tapwire start` SIGKILLed under load and restarted: its consumer group member rejoins after the
  // dead one's session expires, its producer gets a new id, and nothing is lost or stored twice.
  'test/integration/kill-under-load.test.ts',
  // The broker stopped for 60 s and started again: producers and consumers reconnect on their own.
  'test/integration/kafka-outage.test.ts',
];

for (const file of KAFKA_COMPAT_FILES) {
  if (!existsSync(file)) throw new Error(`vitest.kafka-compat.config.ts lists ${file}, which does not exist`);
}

export default defineConfig({
  resolve: { alias },
  test: { name: 'kafka-compat', include: KAFKA_COMPAT_FILES, ...integrationTest },
});
