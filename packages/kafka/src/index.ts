export {
  type BatchProducer,
  createKafkaBatchProducer,
  type OutgoingRecord,
} from './batch-producer.js';
export { createKafkaClient, type KafkaClient, type KafkaLogger, waitForKafka } from './client.js';
export { createConsumerRunner } from './consumer-runner.js';
export { KAFKA_ERRORS, type KafkaErrorCode, TapwireKafkaError } from './errors.js';
export { createKafkaEventSink, type KafkaEventSinkConfig } from './kafka-event-sink.js';
export { kafkaSource } from './kafka-source.js';
export { createTopicOffsets } from './kafka-topic-offsets.js';
export { keyPartitioner, partitionForKey } from './partitioner.js';
export { readTopicToEnd } from './read-to-end.js';
export { createKafkaRecordSink, type RecordSinkConfig } from './record-sink.js';
export {
  createKafkaShipper,
  createLogShipper,
  SHIPPER_DEFAULTS,
  SHIPPER_GROUP,
  type Shipper,
  type ShipperConfig,
  type ShipperStats,
} from './shipper.js';
export { ensureTopics, type TopicBootstrapReport, type TopicSpec, topicSpecs } from './topics.js';
