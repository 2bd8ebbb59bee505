import { randomUUID } from 'node:crypto';
import type { StoredRecord } from '@tapwire/stream';
import type { Kafka } from 'kafkajs';

/**
 * readTopicToEnd reads a topic from its first retained offset up to the high watermarks taken
 * at the start (e.g. a compacted state topic at boot), in order per partition, with a throwaway
 * consumer group that is deleted afterwards.
 */
export async function readTopicToEnd(
  kafka: Kafka,
  topic: string,
  timeoutMs = 60_000,
): Promise<StoredRecord[]> {
  const admin = kafka.admin();
  await admin.connect();
  const groupId = `tapwire-read-${randomUUID()}`;
  try {
    const offsets = await admin.fetchTopicOffsets(topic);
    const remaining = new Map(
      offsets.filter((o) => BigInt(o.high) > BigInt(o.low)).map((o) => [o.partition, BigInt(o.high) - 1n]),
    );
    const records: StoredRecord[] = [];
    if (remaining.size === 0) return records;
    const consumer = kafka.consumer({ groupId, maxWaitTimeInMs: 100 });
    await consumer.connect();
    try {
      await consumer.subscribe({ topic, fromBeginning: true });
      await new Promise<void>((resolve, reject) => {
        const timer = setTimeout(
          () => reject(new Error(`reading ${topic} timed out after ${records.length} records`)),
          timeoutMs,
        );
        void consumer.run({
          autoCommit: false,
          eachBatch: async ({ batch }) => {
            const last = remaining.get(batch.partition);
            if (last === undefined) return;
            for (const m of batch.messages) {
              if (BigInt(m.offset) > last) break;
              records.push({
                partition: batch.partition,
                offset: m.offset,
                key: m.key?.toString() ?? '',
                value: m.value,
              });
            }
            const lastSeen = batch.messages.at(-1)?.offset;
            if (lastSeen !== undefined && BigInt(lastSeen) >= last) remaining.delete(batch.partition);
            if (remaining.size === 0) {
              clearTimeout(timer);
              resolve();
            }
          },
        });
      });
    } finally {
      await consumer.disconnect();
    }
    return records;
  } finally {
    await admin.deleteGroups([groupId]).catch(() => undefined);
    await admin.disconnect();
  }
}
