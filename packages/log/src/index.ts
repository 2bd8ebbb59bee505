export { createLogConsumerRunner, createLogTopicOffsets } from './consumer-runner.js';
export { LogError, type LogErrorCode } from './errors.js';
export {
  type AppendRecord,
  type FileLog,
  type FileLogOptions,
  type FsyncPolicy,
  type LogRecord,
  openFileLog,
} from './file-log.js';
export { createLogEventSink, fileLogSource, type LogEventSinkConfig } from './source.js';
export {
  createWriteFirstSink,
  type WriteFirstLog,
  type WriteFirstSinkOptions,
} from './write-first-sink.js';
