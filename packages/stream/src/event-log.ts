import type { ConsumerHandlers, ConsumerRunner, ConsumerRunnerConfig } from './consumer-runner.js';
import type { EventSink } from './sink-types.js';
import type { TopicOffsets } from './topic-offsets.js';

/** StoredRecord is one record read back from a topic. */
export interface StoredRecord {
  readonly partition: number;
  readonly offset: string;
  readonly key: string;
  readonly value: Buffer | null;
}

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

/** EventLogSinkConfig is how a service's sink batches; the log decides how it delivers. */
export interface EventLogSinkConfig {
  readonly lingerMs: number;
  readonly maxBatchEvents: number;
  readonly maxBufferedEvents: number;
  readonly retryBackoffMs: number;
  readonly topicPrefix?: string;
  readonly validate?: boolean;
}

/** EventLog is the whole log seam: write (sinks), consume (groups, offsets) and read state topics back. */
export interface EventLog extends LogSource {
  sink(config: EventLogSinkConfig): EventSink;
  /** readToEnd reads a (state) topic from its oldest record to its current end. */
  readToEnd(topic: string): Promise<StoredRecord[]>;
}
