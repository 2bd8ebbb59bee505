import { createEventEncoder, type EventSink, eventSinkOver } from '@tapwire/stream';
import type { Kafka } from 'kafkajs';
import type { KafkaLogger } from './client.js';
import { createKafkaRecordSink, type RecordSinkConfig } from './record-sink.js';

/** KafkaEventSinkConfig bounds the sink's batching and memory and says how events are encoded. */
export interface KafkaEventSinkConfig extends RecordSinkConfig {
  /** Prefix prepended to every topic name (tests use it to isolate runs). */
  readonly topicPrefix?: string;
  /** Validate every event against its schema before sending (default true; trusted producers may skip). */
  readonly validate?: boolean;
}

/**
 * createKafkaEventSink builds the Kafka EventSink of the low-volume producers (alerter, ingest's
 * DLQ, the API's silences): keyed, one record per event, batched by size or linger time in a
 * bounded memory buffer.
 */
export function createKafkaEventSink(
  deps: { kafka: Kafka; logger: KafkaLogger },
  config: KafkaEventSinkConfig,
): EventSink {
  return eventSinkOver(createKafkaRecordSink(deps, config), createEventEncoder(config), deps.logger);
}
