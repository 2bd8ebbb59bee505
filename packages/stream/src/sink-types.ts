import type { EmittedByTopic, TopicName } from '@tapwire/schema';

/** SpoolRecord is one encoded event: its topic, partition key and JSON value — what every sink carries, whichever log it is written to. */
export interface SpoolRecord {
  topic: string;
  key: string;
  value: string;
}

/** SinkStats are the counters an EventSink exposes on /metrics. */
export interface SinkStats {
  /** Events accepted by emit(). */
  accepted: number;
  /** Events acknowledged by the log. */
  delivered: number;
  /** Events refused because they failed validation. */
  invalid: number;
  /** Events dropped: memory full, the log unwritable, or the sink closed. */
  dropped: number;
  /** Events waiting in memory now. */
  buffered: number;
  /** Memory capacity, in events. */
  bufferCapacity: number;
  /** Failed send or write attempts. */
  sendErrors: number;
}

/**
 * EventSink is the seam producers write through: emit a validated event to a topic. emit never
 * throws and never waits on I/O; it returns false when the event was refused or dropped.
 */
export interface EventSink {
  emit<T extends TopicName>(topic: T, event: EmittedByTopic[T]): boolean;
  /** flush resolves once everything emitted so far is delivered (written, for a write-first sink). */
  flush(): Promise<void>;
  /**
   * close stops accepting events and tries to deliver for up to `deadlineMs`; what a write-first
   * sink wrote stays in its log for the next start. Calling it twice is harmless.
   */
  close(deadlineMs?: number): Promise<void>;
  stats(): SinkStats;
}

/** RecordSink accepts already-encoded records; the EventSink implementations are built on it. */
export interface RecordSink {
  /** accept queues a record; false when it was dropped (counted). */
  accept(record: SpoolRecord): boolean;
  flush(): Promise<void>;
  close(deadlineMs?: number): Promise<void>;
  stats(): SinkStats;
}

/** emptySinkStats returns all-zero counters (a sink that has done nothing yet). */
export function emptySinkStats(): SinkStats {
  return {
    accepted: 0,
    delivered: 0,
    invalid: 0,
    dropped: 0,
    buffered: 0,
    bufferCapacity: 0,
    sendErrors: 0,
  };
}
