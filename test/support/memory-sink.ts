import { CODECS, type EventByTopic, type TopicName } from '@tapwire/schema';
import { type EventSink, emptySinkStats, type SinkStats } from '@tapwire/stream';

/** MemorySink is an EventSink that keeps events in memory, validating each one as the consumer would. */
export interface MemorySink extends EventSink {
  readonly events: { topic: TopicName; event: unknown }[];
  readonly invalid: { topic: TopicName; reason: string }[];
  of<T extends TopicName>(topic: T): EventByTopic[T][];
}

/** createMemorySink builds a MemorySink for unit tests (a fake behind our own seam). */
export function createMemorySink(): MemorySink {
  const events: { topic: TopicName; event: unknown }[] = [];
  const invalid: { topic: TopicName; reason: string }[] = [];
  const stats: SinkStats = emptySinkStats();
  return {
    events,
    invalid,
    emit(topic, event) {
      const decoded = CODECS[topic].decode(JSON.stringify(event));
      if (!decoded.ok) {
        invalid.push({ topic, reason: decoded.reason });
        stats.invalid++;
        return false;
      }
      events.push({ topic, event: decoded.event });
      stats.accepted++;
      stats.delivered++;
      return true;
    },
    of<T extends TopicName>(topic: T) {
      return events.filter((e) => e.topic === topic).map((e) => e.event as EventByTopic[T]);
    },
    flush: async () => {},
    close: async () => {},
    stats: () => ({ ...stats }),
  };
}
