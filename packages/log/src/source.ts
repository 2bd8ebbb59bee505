import {
  createEventEncoder,
  type EventSink,
  eventSinkOver,
  type KafkaLogger,
  type LogSource,
} from '@tapwire/kafka';
import { createLogConsumerRunner, createLogTopicOffsets } from './consumer-runner.js';
import type { FileLog } from './file-log.js';
import { createLogRecordSink, type LogRecordSinkConfig } from './record-sink.js';

/** fileLogSource reads consumer groups and offsets from the embedded log. */
export function fileLogSource(log: FileLog): LogSource {
  return {
    kind: 'embedded',
    runner: (config, handlers) => createLogConsumerRunner(log, config, handlers),
    offsets: async () => createLogTopicOffsets(log),
  };
}

/** createLogEventSink is the EventSink of a single-machine deployment: same encoding as Kafka's, written to the embedded log. */
export function createLogEventSink(
  deps: { log: FileLog; logger: KafkaLogger },
  config: LogRecordSinkConfig & { readonly topicPrefix?: string; readonly validate?: boolean },
): EventSink {
  return eventSinkOver(
    createLogRecordSink(deps.log, config),
    createEventEncoder({ validate: config.validate, topicPrefix: config.topicPrefix }),
    deps.logger,
  );
}
