import kafkajs, { type Kafka, type Producer } from 'kafkajs';
import type { KafkaLogger } from './client.js';
import { TapwireKafkaError } from './errors.js';
import { keyPartitioner } from './partitioner.js';

const { CompressionTypes } = kafkajs;

/** Attempts kafkajs makes within one send before the caller's own backoff takes over. */
const PRODUCER_RETRIES = 5;

/** OutgoingRecord is one Kafka record to produce. */
export interface OutgoingRecord {
  readonly topic: string;
  readonly key: string;
  readonly value: Buffer;
  readonly headers: Readonly<Record<string, string>>;
}

/**
 * BatchProducer sends records to Kafka in one request: `send` resolves once Kafka acknowledged
 * every record (acks from all in-sync replicas) and rejects with TAPWIRE_KAFKA_SEND_FAILED
 * otherwise. A caller that resends after a rejection must resend the very same records.
 */
export interface BatchProducer {
  send(records: readonly OutgoingRecord[]): Promise<void>;
  /** close disconnects; a send in flight fails, later sends reject. Idempotent. */
  close(): Promise<void>;
}

// The broker answers these when its record of the producer id or sequence no longer matches
// this producer's (state expired on an older broker, or a resend that differs from what was
// written): every resend under the same id gets the same answer, only a new id gets past them.
const SEQUENCE_ERRORS = new Set([
  'OUT_OF_ORDER_SEQUENCE_NUMBER',
  'UNKNOWN_PRODUCER_ID',
  'INVALID_PRODUCER_EPOCH',
  'INVALID_PRODUCER_ID_MAPPING',
]);

/** isSequenceError tells a broker refusal only a new producer id gets past. */
function isSequenceError(err: unknown): boolean {
  for (let e = err as { type?: unknown; cause?: unknown } | undefined; e; e = e.cause as typeof e) {
    if (typeof e.type === 'string' && SEQUENCE_ERRORS.has(e.type)) return true;
    if (e.cause === e) break;
  }
  return false;
}

/**
 * createKafkaBatchProducer wraps an idempotent kafkajs producer (acks all, one request in flight,
 * no topic auto-creation, Tapwire's key partitioner). The broker numbers each partition's batches
 * per producer id, so a resend of a batch whose acknowledgement was lost — by kafkajs's own
 * retries or by the caller after a rejection — is recognised and kept once, provided it carries
 * the same records. When the broker no longer knows the producer id (sequence errors), no resend
 * under that id can succeed: a new producer id is started and a warning logged, and the resend
 * that follows may be written twice (ingest stores each (source, seq) once).
 */
export function createKafkaBatchProducer(
  deps: { kafka: Kafka; logger: KafkaLogger },
  options: { compression: 'gzip' | 'none' },
): BatchProducer {
  const newProducer = (): Producer =>
    deps.kafka.producer({
      createPartitioner: keyPartitioner,
      allowAutoTopicCreation: false,
      idempotent: true,
      maxInFlightRequests: 1,
      // Finite, unlike kafkajs's idempotent default (forever): after these the caller backs off
      // and resends the same records, and can be stopped meanwhile.
      retry: { retries: PRODUCER_RETRIES },
    });
  const compression = options.compression === 'gzip' ? CompressionTypes.GZIP : CompressionTypes.None;
  let producer = newProducer();
  let connected: Promise<void> | undefined;
  let closed: Promise<void> | undefined;
  // kafkajs cannot cancel a send (its connect alone retries for seconds when no broker answers):
  // close() fails the send in flight at once, and kafkajs's attempt ends on its own.
  let abort!: (err: Error) => void;
  const aborted = new Promise<never>((_, reject) => {
    abort = reject;
  });
  aborted.catch(() => {});

  async function sendBatch(records: readonly OutgoingRecord[]): Promise<void> {
    const byTopic = new Map<string, OutgoingRecord[]>();
    for (const r of records) {
      let list = byTopic.get(r.topic);
      if (!list) {
        list = [];
        byTopic.set(r.topic, list);
      }
      list.push(r);
    }
    connected ??= producer.connect();
    await connected;
    await producer.sendBatch({
      acks: -1,
      compression,
      topicMessages: [...byTopic].map(([topic, messages]) => ({ topic, messages })),
    });
  }

  return {
    async send(records) {
      if (closed) throw new TapwireKafkaError('TAPWIRE_KAFKA_SEND_FAILED', 'the producer is closed');
      try {
        await Promise.race([sendBatch(records), aborted]);
      } catch (err) {
        connected = undefined;
        if (isSequenceError(err) && !closed) {
          deps.logger.warn(
            { code: 'TAPWIRE_KAFKA_PRODUCER_RESET', err: (err as Error).message },
            'Kafka no longer knows the producer id; starting a new one (the batch being resent may be written twice)',
          );
          const old = producer;
          producer = newProducer();
          void old.disconnect().catch(() => {});
        }
        throw new TapwireKafkaError('TAPWIRE_KAFKA_SEND_FAILED', (err as Error).message, err);
      }
    },
    close() {
      if (!closed) {
        abort(new Error('the producer is closed'));
        closed = producer.disconnect().catch(() => {});
      }
      return closed;
    },
  };
}
