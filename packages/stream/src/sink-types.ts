import type { EventByTopic, TopicName } from '@tapwire/schema';

/**
 * SpoolRecord is one encoded event: its topic, partition key and JSON value — what every sink
 * carries, whichever log it is written to (the name is the Kafka sink's disk spool's, which held it first).
 */
export interface SpoolRecord {
  topic: string;
  key: string;
  value: string;
}

/** SinkStats are the counters an EventSink exposes on /metrics. */
export interface SinkStats {
  /** Events accepted by emit() (into memory or the spool). */
  accepted: number;
  /** Events acknowledged by the log. */
  delivered: number;
  /** Events refused because they failed validation. */
  invalid: number;
  /** Events dropped because memory and spool were full (or the sink was closed). */
  dropped: number;
  /** Events waiting in memory now. */
  buffered: number;
  /** Memory capacity, in events. */
  bufferCapacity: number;
  /** Events ever written to the disk spool. */
  spooled: number;
  /** Bytes in the disk spool now. */
  spoolBytes: number;
  /** Disk spool capacity, in bytes (0 without a spool). */
  spoolCapacityBytes: number;
  /** Failed send attempts (each is retried). */
  sendErrors: number;
}

/**
 * EventSink is the seam producers write through: emit a validated event to a topic. emit never
 * throws and never waits on I/O; it returns false when the event was refused or dropped.
 */
export interface EventSink {
  emit<T extends TopicName>(topic: T, event: EventByTopic[T]): boolean;
  /** flush resolves once memory and spool are empty (everything emitted so far is acknowledged). */
  flush(): Promise<void>;
  /**
   * close stops accepting events, tries to deliver for up to `deadlineMs`, then moves what is left
   * in memory to the disk spool (kept for the next start); calling it twice is harmless.
   */
  close(deadlineMs?: number): Promise<void>;
  stats(): SinkStats;
}

/** RecordSink accepts already-encoded records; the EventSink implementations are built on it. */
export interface RecordSink {
  /** accept queues a record in memory or the spool; false when it was dropped (counted). */
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
    spooled: 0,
    spoolBytes: 0,
    spoolCapacityBytes: 0,
    sendErrors: 0,
  };
}
