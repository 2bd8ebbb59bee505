import type { RecordSink, SpoolRecord } from '@tapwire/stream';
import kafkajs, { type Kafka, type Producer } from 'kafkajs';
import { isSequenceError } from './batch-producer.js';
import type { KafkaLogger } from './client.js';
import { TapwireKafkaError } from './errors.js';
import { keyPartitioner } from './partitioner.js';

const { CompressionTypes } = kafkajs;

/** Attempts kafkajs makes within one send before the sink's own backoff takes over. */
const PRODUCER_RETRIES = 5;

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
  const newProducer = (): Producer =>
    deps.kafka.producer({
      createPartitioner: keyPartitioner,
      allowAutoTopicCreation: false,
      idempotent: true,
      maxInFlightRequests: 1,
      // Finite, unlike kafkajs's idempotent default (forever): after these the sink takes over
      // with its own backoff and the counters, resending the same pinned batch.
      retry: { retries: PRODUCER_RETRIES },
    });
  let producer = newProducer();
  const compression = config.compression === 'none' ? CompressionTypes.None : CompressionTypes.GZIP;
  const counters = { accepted: 0, delivered: 0, invalid: 0, dropped: 0, sendErrors: 0 };
  // A FIFO as an array plus a head index: taking a batch is O(batch), not O(buffer).
  let buffer: SpoolRecord[] = [];
  let head = 0;
  // The memory batch being sent: resent exactly as it was until Kafka acknowledges it.
  let pinned: SpoolRecord[] | undefined;
  const buffered = () => buffer.length - head;
  let timer: NodeJS.Timeout | undefined;
  let inFlight: Promise<void> | undefined;
  let connected: Promise<void> | undefined;
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
    const byTopic = new Map<string, { key: string; value: string }[]>();
    for (const r of records) {
      let list = byTopic.get(r.topic);
      if (!list) {
        list = [];
        byTopic.set(r.topic, list);
      }
      list.push({ key: r.key, value: r.value });
    }
    try {
      connected ??= producer.connect();
      await connected;
      await producer.sendBatch({
        acks: -1,
        compression,
        topicMessages: [...byTopic].map(([topic, messages]) => ({ topic, messages })),
      });
      counters.delivered += records.length;
      backoffMs = 0;
    } catch (err) {
      counters.sendErrors++;
      connected = undefined;
      if (isSequenceError(err)) {
        // Resending under a new id cannot be recognised as a duplicate: this batch may be kept
        // twice if an earlier attempt was written. The alternative is never delivering again.
        deps.logger.warn(
          { code: 'TAPWIRE_KAFKA_PRODUCER_RESET', err: (err as Error).message },
          'Kafka no longer knows the producer id; starting a new one (the batch being resent may be written twice)',
        );
        const old = producer;
        producer = newProducer();
        void old.disconnect().catch(() => {});
      }
      backoffMs = Math.min(backoffMs === 0 ? config.retryBackoffMs : backoffMs * 2, 30_000);
      const error = new TapwireKafkaError('TAPWIRE_KAFKA_SEND_FAILED', (err as Error).message, err);
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
      await producer.disconnect().catch(() => {});
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
