import { randomUUID } from 'node:crypto';
import { decodeBatch } from '@tapwire/stream';
import type { Admin, Kafka } from 'kafkajs';

/** RawMessage is one event as it sits on a topic: a single-event record, or one event of a batched record. */
export interface RawMessage {
  topic: string;
  /** The record key: a trace id (single-event records) or the source id (batched records). */
  key: string;
  value: Buffer;
  /** For an event of a batched record: its source and sequence number there. */
  source?: string;
  seq?: bigint;
  /** The record's partition and offset. */
  partition: number;
  offset: string;
}

/**
 * readTopics consumes topics from the beginning with a fresh consumer group until `done` says
 * enough arrived (or `timeoutMs` passes, which rejects with how many came). Batched records are
 * split into their events; a record that is neither a single event nor a valid batch fails the read.
 */
export async function readTopics(
  kafka: Kafka,
  topics: string[],
  done: (messages: RawMessage[]) => boolean,
  timeoutMs = 60_000,
): Promise<RawMessage[]> {
  const consumer = kafka.consumer({ groupId: `tapwire-test-${randomUUID()}`, maxWaitTimeInMs: 100 });
  const messages: RawMessage[] = [];
  await consumer.connect();
  try {
    await consumer.subscribe({ topics, fromBeginning: true });
    await new Promise<void>((resolve, reject) => {
      const timer = setTimeout(
        () => reject(new Error(`timed out after ${messages.length} messages`)),
        timeoutMs,
      );
      void consumer.run({
        eachBatch: async ({ batch }) => {
          for (const m of batch.messages) {
            const record = {
              topic: batch.topic,
              key: m.key?.toString() ?? '',
              partition: batch.partition,
              offset: m.offset,
            };
            const decoded = decodeBatch(m.headers, m.value);
            if (decoded.kind === 'invalid') {
              clearTimeout(timer);
              reject(new Error(`${batch.topic}@${m.offset}: ${decoded.reason}`));
              return;
            }
            if (decoded.kind === 'single') messages.push({ ...record, value: m.value ?? Buffer.alloc(0) });
            else {
              const { source, firstSeq, events } = decoded.batch;
              for (const [i, value] of events.entries())
                messages.push({ ...record, value, source, seq: firstSeq + BigInt(i) });
            }
          }
          if (done(messages)) {
            clearTimeout(timer);
            resolve();
          }
        },
      });
    });
  } finally {
    await consumer.disconnect();
  }
  return messages;
}

/** recordCount is how many records (not events: a batched record holds many) a topic holds: the sum of its partitions' high watermarks. */
export async function recordCount(admin: Admin, topic: string): Promise<number> {
  const offsets = await admin.fetchTopicOffsets(topic);
  return offsets.reduce((sum, p) => sum + Number(p.high) - Number(p.low), 0);
}
