import type { KafkaClient, KafkaLogger } from './client.js';
import {
  type ConsumerHandlers,
  type ConsumerRunner,
  type ConsumerRunnerConfig,
  createConsumerRunner,
} from './consumer-runner.js';
import { createTopicOffsets, type TopicOffsets } from './offsets.js';

/**
 * LogSource is where consumers read events from: Kafka, or the embedded log of a single-machine
 * deployment. Ingest and replay see only this seam: consumer groups with explicit commits, and
 * offsets by time.
 */
export interface LogSource {
  readonly kind: 'kafka' | 'embedded';
  runner(config: ConsumerRunnerConfig, handlers: ConsumerHandlers): ConsumerRunner;
  offsets(): Promise<TopicOffsets>;
}

/** kafkaSource reads from Kafka. */
export function kafkaSource(deps: { kafka: KafkaClient; logger: KafkaLogger }): LogSource {
  return {
    kind: 'kafka',
    runner: (config, handlers) => createConsumerRunner(deps, config, handlers),
    offsets: () => createTopicOffsets(deps.kafka),
  };
}
