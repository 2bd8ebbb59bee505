export { createKafkaClient, type KafkaLogger, waitForKafka } from './client.js';
export { KAFKA_ERRORS, type KafkaErrorCode, TapwireKafkaError } from './errors.js';
export {
  createKafkaEventSink,
  type EventSink,
  type KafkaEventSinkConfig,
  type SinkStats,
} from './event-sink.js';
export {
  type DiskSpool,
  openDiskSpool,
  type SpoolBatch,
  type SpoolConfig,
  type SpoolRecord,
} from './spool.js';
export { ensureTopics, type TopicBootstrapReport, type TopicSpec, topicSpecs } from './topics.js';
