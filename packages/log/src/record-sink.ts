import { emptySinkStats, type RecordSink, type SinkStats, type SpoolRecord } from '@tapwire/stream';
import type { FileLog } from './file-log.js';

/** LogRecordSinkConfig bounds the batching and memory of a sink writing to the embedded log. */
export interface LogRecordSinkConfig {
  /** Longest a record waits in memory before it is appended, in ms. */
  readonly lingerMs: number;
  /** Most records held in memory; beyond it records are dropped and counted. */
  readonly maxBufferedEvents: number;
  /** Delay before retrying a failed append (a full disk), in ms; doubles up to 30 s. */
  readonly retryBackoffMs: number;
}

/**
 * createLogRecordSink appends records to the embedded log: batched per linger from a bounded
 * memory buffer, one append per topic, in order. A record counts as delivered once the log has
 * written it (a killed process keeps it; the log's fsync policy covers power loss).
 */
export function createLogRecordSink(log: FileLog, config: LogRecordSinkConfig): RecordSink {
  const stats: SinkStats = { ...emptySinkStats(), bufferCapacity: config.maxBufferedEvents };
  let buffer: SpoolRecord[] = [];
  let timer: NodeJS.Timeout | undefined;
  let running: Promise<void> | undefined;
  let backoff = config.retryBackoffMs;
  let closed = false;

  async function drain(): Promise<void> {
    while (buffer.length > 0) {
      const batch = buffer;
      buffer = [];
      const byTopic = new Map<string, SpoolRecord[]>();
      for (const r of batch) {
        const list = byTopic.get(r.topic);
        if (list) list.push(r);
        else byTopic.set(r.topic, [r]);
      }
      const failed: SpoolRecord[] = [];
      for (const [topic, records] of byTopic) {
        try {
          await log.append(topic, records);
          stats.delivered += records.length;
        } catch {
          stats.sendErrors++;
          failed.push(...records);
        }
      }
      if (failed.length > 0) {
        // Keep order: what failed goes back in front of what arrived meanwhile.
        buffer = [...failed, ...buffer];
        stats.buffered = buffer.length;
        await new Promise((r) => setTimeout(r, backoff));
        backoff = Math.min(backoff * 2, 30_000);
      } else {
        backoff = config.retryBackoffMs;
      }
      stats.buffered = buffer.length;
    }
  }

  function run(): Promise<void> {
    running ??= drain().finally(() => {
      running = undefined;
    });
    return running;
  }

  function schedule(): void {
    if (timer) return;
    timer = setTimeout(() => {
      timer = undefined;
      void run();
    }, config.lingerMs);
    timer.unref();
  }

  return {
    accept(record) {
      if (closed || buffer.length >= config.maxBufferedEvents) {
        stats.dropped++;
        return false;
      }
      buffer.push(record);
      stats.accepted++;
      stats.buffered = buffer.length;
      schedule();
      return true;
    },
    async flush() {
      while (buffer.length > 0 || running) await run();
    },
    async close(deadlineMs = 10_000) {
      closed = true;
      if (timer) clearTimeout(timer);
      await Promise.race([this.flush(), new Promise((r) => setTimeout(r, deadlineMs).unref())]);
      stats.dropped += buffer.length;
      buffer = [];
      stats.buffered = 0;
    },
    stats: () => ({ ...stats }),
  };
}
