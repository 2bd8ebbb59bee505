export type {
  ConsumedMessage,
  ConsumerHandlers,
  ConsumerRunner,
  ConsumerRunnerConfig,
  PartitionBatch,
  PartitionLag,
  TopicPartitionOffset,
} from './consumer-runner.js';
export {
  BATCH_FORMAT,
  BATCH_HEADERS,
  BATCH_VERSION,
  type DecodedRecord,
  decodeBatch,
  type EncodedBatch,
  type EventBatch,
  encodeBatch,
  type RecordHeaders,
  SOURCE_ID,
} from './event-batch.js';
export { createEventEncoder, type EventEncoder, eventSinkOver, type SinkLogger } from './event-encoder.js';
export type { EventLog, EventLogSinkConfig, LogSource, StoredRecord } from './event-log.js';
export type { LocalRecord, LocalSegment, ShipperLog } from './local-log.js';
export { planRange, type RangePlan, readRange } from './range.js';
export { readSilences } from './silences.js';
export {
  type EventSink,
  emptySinkStats,
  type RecordSink,
  type SinkStats,
  type SpoolRecord,
} from './sink-types.js';
export type { PartitionOffset, TopicOffsets } from './topic-offsets.js';
