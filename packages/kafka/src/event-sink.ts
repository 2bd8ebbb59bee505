import { CODECS, type EventByTopic, type TopicName } from '@tapwire/schema';
import kafkajs, { type Kafka, type Producer } from 'kafkajs';
import type { KafkaLogger } from './client.js';
import { TapwireKafkaError } from './errors.js';

const { CompressionTypes, Partitioners } = kafkajs;

/** SinkStats are the counters an EventSink exposes on /metrics. */
export interface SinkStats {
  /** Events accepted by emit(). */
  accepted: number;
  /** Events acknowledged by the log. */
  delivered: number;
  /** Events refused because they failed validation. */
  invalid: number;
  /** Events dropped because the buffer was full. */
  dropped: number;
  /** Events waiting in memory. */
  buffered: number;
  /** Failed send attempts (each is retried). */
  sendErrors: number;
}

/**
 * EventSink is the seam producers write through: emit a validated event to a topic. emit never
 * throws and never waits on I/O; it returns false when the event was refused or dropped.
 */
export interface EventSink {
  emit<T extends TopicName>(topic: T, event: EventByTopic[T]): boolean;
  /** flush resolves once every event emitted before the call is acknowledged (or close began). */
  flush(): Promise<void>;
  /** close flushes within `deadlineMs` and releases connections; calling it twice is harmless. */
  close(deadlineMs?: number): Promise<void>;
  stats(): SinkStats;
}

/** KafkaEventSinkConfig bounds the sink's batching and memory. */
export interface KafkaEventSinkConfig {
  /** Longest an event waits in memory before its batch is sent, in ms. */
  readonly lingerMs: number;
  /** Most events sent in one produce request. */
  readonly maxBatchEvents: number;
  /** Most events held in memory; beyond it new events are dropped and counted. */
  readonly maxBufferedEvents: number;
  /** Delay before retrying a failed send, in ms; doubles up to 30 s. */
  readonly retryBackoffMs: number;
  /** Prefix prepended to every topic name (tests use it to isolate runs). */
  readonly topicPrefix?: string;
}

interface Pending {
  topic: string;
  key: string;
  value: string;
}

function keyOf(topic: TopicName, event: EventByTopic[TopicName]): string {
  if ('trace_id' in event) return event.trace_id;
  if ('fingerprint' in event) return event.fingerprint;
  if ('instance' in event) return event.instance;
  if (topic === 'tapwire.dlq.v1' && 'source_topic' in event)
    return `${event.source_topic}/${event.source_partition}`;
  return event.id;
}

/** createKafkaEventSink builds the Kafka EventSink: validated, keyed, batched by size or linger time. */
export function createKafkaEventSink(
  deps: { kafka: Kafka; logger: KafkaLogger },
  config: KafkaEventSinkConfig,
): EventSink {
  const producer: Producer = deps.kafka.producer({
    createPartitioner: Partitioners.DefaultPartitioner,
    allowAutoTopicCreation: false,
  });
  const prefix = config.topicPrefix ?? '';
  const stats: SinkStats = { accepted: 0, delivered: 0, invalid: 0, dropped: 0, buffered: 0, sendErrors: 0 };
  let buffer: Pending[] = [];
  let timer: NodeJS.Timeout | undefined;
  let inFlight: Promise<void> | undefined;
  let connected: Promise<void> | undefined;
  let backoffMs = 0;
  let closing = false;
  let closed: Promise<void> | undefined;
  let waiters: { upTo: number; resolve: () => void }[] = [];
  let sentSeq = 0; // events acknowledged, in emit order
  let queuedSeq = 0; // events ever queued

  function schedule(delayMs: number): void {
    if (timer || closing) return;
    timer = setTimeout(() => {
      timer = undefined;
      void pump();
    }, delayMs);
    timer.unref();
  }

  function settleWaiters(): void {
    const ready = waiters.filter((w) => w.upTo <= sentSeq);
    waiters = waiters.filter((w) => w.upTo > sentSeq);
    for (const w of ready) w.resolve();
  }

  async function sendOne(): Promise<void> {
    const batch = buffer.slice(0, config.maxBatchEvents);
    const byTopic = new Map<string, { key: string; value: string }[]>();
    for (const p of batch) {
      let list = byTopic.get(p.topic);
      if (!list) {
        list = [];
        byTopic.set(p.topic, list);
      }
      list.push({ key: p.key, value: p.value });
    }
    try {
      connected ??= producer.connect();
      await connected;
      await producer.sendBatch({
        acks: -1,
        compression: CompressionTypes.GZIP,
        topicMessages: [...byTopic].map(([topic, messages]) => ({ topic, messages })),
      });
      buffer = buffer.slice(batch.length);
      stats.delivered += batch.length;
      sentSeq += batch.length;
      backoffMs = 0;
      settleWaiters();
    } catch (err) {
      stats.sendErrors++;
      connected = undefined;
      backoffMs = Math.min(backoffMs === 0 ? config.retryBackoffMs : backoffMs * 2, 30_000);
      const error = new TapwireKafkaError('TAPWIRE_KAFKA_SEND_FAILED', (err as Error).message, err);
      deps.logger.warn({ code: error.code, err: error.message, retryInMs: backoffMs }, error.message);
      throw error;
    } finally {
      stats.buffered = buffer.length;
    }
  }

  function pump(): Promise<void> {
    if (inFlight) return inFlight;
    inFlight = (async () => {
      try {
        while (buffer.length > 0) await sendOne();
      } catch {
        if (!closing) schedule(backoffMs);
      } finally {
        inFlight = undefined;
      }
    })();
    return inFlight;
  }

  function emit<T extends TopicName>(topic: T, event: EventByTopic[T]): boolean {
    if (closing) {
      stats.dropped++;
      return false;
    }
    let value: string;
    try {
      value = (CODECS[topic].encode as (e: EventByTopic[T]) => string)(event);
    } catch (err) {
      stats.invalid++;
      deps.logger.warn({ topic, err: (err as Error).message }, 'refused an invalid event');
      return false;
    }
    if (buffer.length >= config.maxBufferedEvents) {
      stats.dropped++;
      return false;
    }
    buffer.push({ topic: prefix + topic, key: keyOf(topic, event), value });
    stats.accepted++;
    queuedSeq++;
    stats.buffered = buffer.length;
    if (buffer.length >= config.maxBatchEvents && backoffMs === 0) void pump();
    else schedule(backoffMs || config.lingerMs);
    return true;
  }

  function flush(): Promise<void> {
    if (sentSeq >= queuedSeq) return Promise.resolve();
    const done = new Promise<void>((resolve) => waiters.push({ upTo: queuedSeq, resolve }));
    if (timer) {
      clearTimeout(timer);
      timer = undefined;
    }
    void pump();
    return done;
  }

  function close(deadlineMs = 10_000): Promise<void> {
    closed ??= (async () => {
      const flushed = flush();
      closing = true;
      if (timer) clearTimeout(timer);
      let deadline: NodeJS.Timeout | undefined;
      await Promise.race([
        flushed,
        new Promise<void>((r) => {
          deadline = setTimeout(r, deadlineMs);
        }),
      ]);
      clearTimeout(deadline);
      if (buffer.length > 0) {
        stats.dropped += buffer.length;
        deps.logger.error({ dropped: buffer.length }, 'closing with undelivered events');
        buffer = [];
        stats.buffered = 0;
      }
      for (const w of waiters) w.resolve();
      waiters = [];
      await producer.disconnect().catch(() => {});
    })();
    return closed;
  }

  return { emit, flush, close, stats: () => ({ ...stats }) };
}
