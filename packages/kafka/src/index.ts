export { createKafkaClient, type KafkaClient, type KafkaLogger, waitForKafka } from './client.js';
export {
  type ConsumedMessage,
  type ConsumerHandlers,
  type ConsumerRunner,
  type ConsumerRunnerConfig,
  createConsumerRunner,
  type PartitionBatch,
  type PartitionLag,
  type TopicPartitionOffset,
} from './consumer-runner.js';
export { KAFKA_ERRORS, type KafkaErrorCode, TapwireKafkaError } from './errors.js';
export {
  createEventEncoder,
  createKafkaEventSink,
  type EventEncoder,
  eventSinkOver,
  type KafkaEventSinkConfig,
} from './event-sink.js';
export { createTopicOffsets, type PartitionOffset, type TopicOffsets } from './offsets.js';
export { keyPartitioner, partitionForKey } from './partitioner.js';
export { planRange, type RangePlan, readRange } from './range.js';
export { readTopicToEnd, type StoredRecord } from './read-to-end.js';
export { createKafkaRecordSink, type RecordSinkConfig } from './record-sink.js';
export { readSilences } from './silences.js';
export { type EventSink, emptySinkStats, type RecordSink, type SinkStats } from './sink-types.js';
export { type EventLog, type EventLogSinkConfig, kafkaSource, type LogSource } from './source.js';
export {
  type DiskSpool,
  openDiskSpool,
  type SpoolBatch,
  type SpoolConfig,
  type SpoolRecord,
} from './spool.js';
export { createThreadedKafkaEventSink, type ThreadedSinkConfig } from './threaded-sink.js';
export { ensureTopics, type TopicBootstrapReport, type TopicSpec, topicSpecs } from './topics.js';
