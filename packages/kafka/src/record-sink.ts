import type { RecordSink, SpoolRecord } from '@tapwire/stream';
import type { Kafka } from 'kafkajs';
import { createKafkaBatchProducer } from './batch-producer.js';
import type { KafkaLogger } from './client.js';
import { TapwireKafkaError } from './errors.js';

/** RecordSinkConfig bounds the sink's batching and memory. */
export interface RecordSinkConfig {
  /** Longest an event waits in memory before its batch is sent, in ms. */
  readonly lingerMs: number;
  /** Most events sent in one produce request. */
  readonly maxBatchEvents: number;
  /** Most events held in memory; beyond it events are dropped and counted. */
  readonly maxBufferedEvents: number;
  /** Delay before retrying a failed send, in ms; doubles up to 30 s. */
  readonly retryBackoffMs: number;
  /** Compression of produce requests (default gzip). */
  readonly compression?: 'gzip' | 'none';
}

/**
 * createKafkaRecordSink sends encoded records to Kafka, one record per event: batched by size or
 * linger time from a bounded memory buffer. It serves the services whose events are few and can
 * be derived again (the alerter's state, ingest's dead letters); the proxy writes its events to a
 * local log first and ships them in batched records instead (shipper.ts).
 *
 * Sends are idempotent: the producer has a broker-assigned id and numbers its batches per
 * partition, and a batch whose acknowledgement was lost is sent again — by kafkajs's retries or,
 * once those give up, by the sink after its backoff — as the very same records under the same
 * numbers, so the broker recognises it and keeps one copy. That is why a failed batch is pinned
 * and resent unchanged instead of being re-cut from a buffer that has grown meanwhile.
 */
export function createKafkaRecordSink(
  deps: { kafka: Kafka; logger: KafkaLogger },
  config: RecordSinkConfig,
): RecordSink {
  // The shipper's producer: idempotent, a new producer id after sequence errors (logged).
  const producer = createKafkaBatchProducer(deps, { compression: config.compression ?? 'gzip' });
  const counters = { accepted: 0, delivered: 0, invalid: 0, dropped: 0, sendErrors: 0 };
  // A FIFO as an array plus a head index: taking a batch is O(batch), not O(buffer).
  let buffer: SpoolRecord[] = [];
  let head = 0;
  // The memory batch being sent: resent exactly as it was until Kafka acknowledges it.
  let pinned: SpoolRecord[] | undefined;
  const buffered = () => buffer.length - head;
  let timer: NodeJS.Timeout | undefined;
  let inFlight: Promise<void> | undefined;
  let backoffMs = 0;
  let closing = false;
  let closed: Promise<void> | undefined;

  function schedule(delayMs: number): void {
    if (timer || closing) return;
    timer = setTimeout(() => {
      timer = undefined;
      void pump();
    }, delayMs);
    timer.unref();
  }

  async function send(records: readonly SpoolRecord[]): Promise<void> {
    try {
      await producer.send(
        records.map((r) => ({ topic: r.topic, key: r.key, value: Buffer.from(r.value), headers: {} })),
      );
      counters.delivered += records.length;
      backoffMs = 0;
    } catch (err) {
      counters.sendErrors++;
      backoffMs = Math.min(backoffMs === 0 ? config.retryBackoffMs : backoffMs * 2, 30_000);
      const error =
        err instanceof TapwireKafkaError
          ? err
          : new TapwireKafkaError('TAPWIRE_KAFKA_SEND_FAILED', (err as Error).message, err);
      deps.logger.warn({ code: error.code, err: error.message, retryInMs: backoffMs }, error.message);
      throw error;
    }
  }

  function pump(): Promise<void> {
    if (inFlight) return inFlight;
    if (buffered() === 0) return Promise.resolve();
    const run = (async () => {
      try {
        for (;;) {
          if (buffered() > 0) {
            const batch = pinned ?? buffer.slice(head, head + config.maxBatchEvents);
            pinned = batch;
            await send(batch);
            pinned = undefined;
            head += batch.length;
            if (head >= 4096 && head * 2 >= buffer.length) {
              buffer = buffer.slice(head);
              head = 0;
            }
          } else {
            break;
          }
        }
      } catch {
        if (!closing) schedule(backoffMs);
      }
    })();
    // Cleared only by the run that set it: a run that finished synchronously must not leave a
    // settled promise behind, or every later pump() would return it and nothing would be sent.
    inFlight = run;
    void run.finally(() => {
      if (inFlight === run) inFlight = undefined;
    });
    return run;
  }

  function accept(record: SpoolRecord): boolean {
    if (closing) {
      counters.dropped++;
      return false;
    }
    if (buffered() >= config.maxBufferedEvents) {
      counters.dropped++;
      return false;
    } else {
      buffer.push(record);
    }
    counters.accepted++;
    if (buffered() >= config.maxBatchEvents && backoffMs === 0) void pump();
    else schedule(backoffMs || config.lingerMs);
    return true;
  }

  async function flush(): Promise<void> {
    if (timer) {
      clearTimeout(timer);
      timer = undefined;
    }
    while (!closing && buffered() > 0) {
      await pump();
      if (backoffMs > 0) await new Promise((r) => setTimeout(r, backoffMs));
    }
  }

  function close(deadlineMs = 10_000): Promise<void> {
    closed ??= (async () => {
      let deadline: NodeJS.Timeout | undefined;
      const expired = new Promise<void>((r) => {
        deadline = setTimeout(r, deadlineMs);
      });
      await Promise.race([flush(), expired]);
      closing = true;
      clearTimeout(deadline);
      if (timer) clearTimeout(timer);
      await Promise.race([inFlight, expired]);
      if (buffered() > 0) {
        counters.dropped += buffered();
        deps.logger.error({ dropped: buffered() }, 'closing with undelivered events');
        buffer = [];
        head = 0;
        pinned = undefined;
      }
      await producer.close();
    })();
    return closed;
  }

  return {
    accept,
    flush,
    close,
    stats: () => ({
      ...counters,
      buffered: buffered(),
      bufferCapacity: config.maxBufferedEvents,
    }),
  };
}
