import {
  createEventEncoder,
  type EventSink,
  emptySinkStats,
  type SinkLogger,
  type SinkStats,
} from '@tapwire/stream';
import type { AppendRecord, FileLog } from './file-log.js';

/** WriteFirstLog is what the write-first sink needs of the log: synchronous appends. */
export type WriteFirstLog = Pick<FileLog, 'appendSync'>;

/** WriteFirstSinkOptions configures the write-first sink. */
export interface WriteFirstSinkOptions {
  /** Prepended to every topic name (default none). */
  readonly topicPrefix?: string;
  /** Validate each event against its schema before writing it (default true). */
  readonly validate?: boolean;
  readonly logger: SinkLogger;
  /** A failing log is reported at most once per this many ms, with the events dropped since the last line (default 10000). */
  readonly errorLogIntervalMs?: number;
}

/**
 * createWriteFirstSink writes events to the local log from the emitting thread: emit encodes and
 * queues; at the end of the synchronous run (a microtask) each topic's queued events are appended
 * with one appendSync, so the events a request emits together cost one write per topic and exist
 * on disk (page cache) before the thread moves on to other work. No memory buffer, no linger.
 *
 * flush writes what is queued before it returns (its promise is already settled): a caller that
 * must have its events on disk before its next step (the proxy, before the last byte of an
 * answer) calls it without awaiting.
 *
 * emit never throws: a failed append (disk full, directory gone) drops its events, counts them
 * (dropped, sendErrors), logs the cause at most once per errorLogIntervalMs, and the next emits
 * try again, so the sink recovers by itself once the cause is gone.
 */
export function createWriteFirstSink(log: WriteFirstLog, options: WriteFirstSinkOptions): EventSink {
  const encode = createEventEncoder({
    ...(options.validate === undefined ? {} : { validate: options.validate }),
    ...(options.topicPrefix === undefined ? {} : { topicPrefix: options.topicPrefix }),
  });
  const logger = options.logger;
  const logEveryMs = options.errorLogIntervalMs ?? 10_000;
  let queued = new Map<string, AppendRecord[]>();
  let scheduled = false;
  let closed = false;
  let accepted = 0;
  let delivered = 0;
  let invalid = 0;
  let dropped = 0;
  let sendErrors = 0;
  /** The log failed and no line has said it recovered yet. */
  let failing = false;
  let lastLineAt = Number.NEGATIVE_INFINITY;
  let droppedSinceLine = 0;

  function failed(topic: string, count: number, err: unknown): void {
    dropped += count;
    sendErrors++;
    droppedSinceLine += count;
    failing = true;
    const now = Date.now();
    if (now - lastLineAt < logEveryMs) return;
    lastLineAt = now;
    logger.warn(
      { err, topic, dropped: droppedSinceLine },
      'cannot write events to the local log; dropped them (dropped: since the last line)',
    );
    droppedSinceLine = 0;
  }

  function succeeded(): void {
    const now = Date.now();
    // Recovery is reported under the same limit, so a flapping disk cannot flood the log.
    if (now - lastLineAt < logEveryMs) return;
    failing = false;
    lastLineAt = now;
    logger.warn(
      { dropped: droppedSinceLine },
      'writing events to the local log again (dropped: since the last line)',
    );
    droppedSinceLine = 0;
  }

  function write(): void {
    scheduled = false;
    if (queued.size === 0) return;
    const batch = queued;
    queued = new Map();
    for (const [topic, records] of batch) {
      try {
        log.appendSync(topic, records);
        delivered += records.length;
        if (failing) succeeded();
      } catch (err) {
        failed(topic, records.length, err);
      }
    }
  }

  return {
    emit(topic, event) {
      if (closed) {
        dropped++;
        return false;
      }
      const record = encode(topic, event);
      if (typeof record === 'string') {
        invalid++;
        logger.warn({ topic, err: record }, 'refused an invalid event');
        return false;
      }
      accepted++;
      const list = queued.get(record.topic);
      if (list) list.push(record);
      else queued.set(record.topic, [record]);
      if (!scheduled) {
        scheduled = true;
        queueMicrotask(write);
      }
      return true;
    },
    async flush() {
      write();
    },
    async close() {
      if (closed) return;
      write();
      closed = true;
    },
    stats(): SinkStats {
      return { ...emptySinkStats(), accepted, delivered, invalid, dropped, sendErrors };
    },
  };
}
