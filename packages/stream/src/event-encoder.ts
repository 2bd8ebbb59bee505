import { CODECS, type EmittedByTopic, type TopicName } from '@tapwire/schema';
import type { EventSink, RecordSink, SpoolRecord } from './sink-types.js';

/** SinkLogger is the part of a pino logger a sink reports refused events to. */
export interface SinkLogger {
  warn(obj: object, msg: string): void;
}

function keyOf(event: EmittedByTopic[TopicName]): string {
  if ('trace_id' in event) return event.trace_id;
  // Alert state is compacted per key: a series' state, and separately each receiver's delivery record.
  if ('fingerprint' in event)
    return event.receiver ? `${event.fingerprint}/${event.receiver}` : event.fingerprint;
  if ('instance' in event) return event.instance;
  if ('matchers' in event) return event.id;
  return `${event.source_topic}/${event.source_partition}`;
}

/** EventEncoder turns an event into the record a sink writes to the log, or an error message when it is invalid. */
export type EventEncoder = <T extends TopicName>(topic: T, event: EmittedByTopic[T]) => SpoolRecord | string;

/** createEventEncoder builds the one encoding every sink uses: key by trace id (or fingerprint, instance), JSON value. */
export function createEventEncoder(options: { validate?: boolean; topicPrefix?: string }): EventEncoder {
  const prefix = options.topicPrefix ?? '';
  const validate = options.validate ?? true;
  return (topic, event) => {
    let value: string;
    if (validate) {
      try {
        value = (CODECS[topic].encode as (e: typeof event) => string)(event);
      } catch (err) {
        return (err as Error).message;
      }
    } else {
      value = JSON.stringify(event);
    }
    return { topic: prefix + topic, key: keyOf(event), value };
  };
}

/** eventSinkOver wraps a RecordSink into an EventSink with the shared encoder. */
export function eventSinkOver(records: RecordSink, encode: EventEncoder, logger: SinkLogger): EventSink {
  let invalid = 0;
  return {
    emit(topic, event) {
      const record = encode(topic, event);
      if (typeof record === 'string') {
        invalid++;
        logger.warn({ topic, err: record }, 'refused an invalid event');
        return false;
      }
      return records.accept(record);
    },
    flush: () => records.flush(),
    close: (deadlineMs) => records.close(deadlineMs),
    stats: () => {
      const s = records.stats();
      return { ...s, invalid: s.invalid + invalid };
    },
  };
}
