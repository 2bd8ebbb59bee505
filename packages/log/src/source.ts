import {
  createEventEncoder,
  type EventLog,
  type EventSink,
  eventSinkOver,
  type SinkLogger,
  type StoredRecord,
} from '@tapwire/stream';
import { createLogConsumerRunner, createLogTopicOffsets } from './consumer-runner.js';
import type { FileLog } from './file-log.js';
import { createLogRecordSink, type LogRecordSinkConfig } from './record-sink.js';

/** createLogEventSink is the EventSink of a single-machine deployment: same encoding as Kafka's, written to the embedded log. */
export function createLogEventSink(
  deps: { log: FileLog; logger: SinkLogger },
  config: LogRecordSinkConfig & { readonly topicPrefix?: string; readonly validate?: boolean },
): EventSink {
  return eventSinkOver(
    createLogRecordSink(deps.log, config),
    createEventEncoder({
      ...(config.validate === undefined ? {} : { validate: config.validate }),
      ...(config.topicPrefix === undefined ? {} : { topicPrefix: config.topicPrefix }),
    }),
    deps.logger,
  );
}

/** fileLogSource is the EventLog seam over the embedded log: sinks, consumer groups, offsets, state reads. */
export function fileLogSource(log: FileLog, logger: SinkLogger): EventLog {
  return {
    kind: 'embedded',
    runner: (config, handlers) => createLogConsumerRunner(log, config, handlers),
    offsets: async () => createLogTopicOffsets(log),
    sink: (config) => createLogEventSink({ log, logger }, config),
    async readToEnd(topic) {
      const end = log.highWatermark(topic);
      const out: StoredRecord[] = [];
      for (let from = log.lowWatermark(topic); from < end; ) {
        const batch = await log.read(topic, from, 4 * 1024 * 1024);
        if (batch.length === 0) break;
        for (const r of batch) {
          if (r.offset >= end) break;
          out.push({
            partition: 0,
            offset: r.offset.toString(),
            key: r.key?.toString() ?? '',
            value: r.value,
          });
        }
        from = batch.at(-1)!.offset + 1n;
      }
      return out;
    },
  };
}
