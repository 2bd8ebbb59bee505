import type { EventLog, EventLogSinkConfig, EventSink, SinkLogger, StoredRecord } from '@tapwire/stream';
import { createLogConsumerRunner, createLogTopicOffsets } from './consumer-runner.js';
import type { FileLog } from './file-log.js';
import { createWriteFirstSink } from './write-first-sink.js';

/** LogEventSinkConfig is a service's sink config; the write-first sink uses its encoding fields (it has no linger, batch or buffer). */
export type LogEventSinkConfig = Partial<EventLogSinkConfig> & { readonly errorLogIntervalMs?: number };

/** createLogEventSink is the EventSink of a single-machine deployment: the write-first sink over the embedded log. */
export function createLogEventSink(
  deps: { log: FileLog; logger: SinkLogger },
  config: LogEventSinkConfig = {},
): EventSink {
  return createWriteFirstSink(deps.log, {
    logger: deps.logger,
    ...(config.validate === undefined ? {} : { validate: config.validate }),
    ...(config.topicPrefix === undefined ? {} : { topicPrefix: config.topicPrefix }),
    ...(config.errorLogIntervalMs === undefined ? {} : { errorLogIntervalMs: config.errorLogIntervalMs }),
  });
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
