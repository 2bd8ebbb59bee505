import { randomUUID } from 'node:crypto';
import type { Admin, Kafka } from 'kafkajs';

/** RawMessage is one message as it sits on a topic. */
export interface RawMessage {
  topic: string;
  key: string;
  value: Buffer;
}

/**
 * readTopics consumes topics from the beginning with a fresh consumer group until `done` says
 * enough arrived (or `timeoutMs` passes, which rejects with how many came).
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
            messages.push({
              topic: batch.topic,
              key: m.key?.toString() ?? '',
              value: m.value ?? Buffer.alloc(0),
            });
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

/** recordCount is how many records a topic holds: the sum of its partitions' high watermarks. */
export async function recordCount(admin: Admin, topic: string): Promise<number> {
  const offsets = await admin.fetchTopicOffsets(topic);
  return offsets.reduce((sum, p) => sum + Number(p.high) - Number(p.low), 0);
}
