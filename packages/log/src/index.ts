export { createLogConsumerRunner, createLogTopicOffsets } from './consumer-runner.js';
export {
  type AppendRecord,
  type FileLog,
  type FileLogOptions,
  type FsyncPolicy,
  LogError,
  type LogRecord,
  openFileLog,
} from './file-log.js';
export { createLogRecordSink, type LogRecordSinkConfig } from './record-sink.js';
export { createLogEventSink, fileLogSource } from './source.js';
