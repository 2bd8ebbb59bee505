import type { KafkaClient } from './client.js';

/** PartitionOffset is one partition's offset as a decimal string. */
export interface PartitionOffset {
  partition: number;
  offset: string;
}

/**
 * TopicOffsets answers the offset questions replay and lag need, without the caller touching
 * kafkajs: offsets by time, high watermarks, and presetting a fresh group's start offsets.
 */
export interface TopicOffsets {
  /** offsetsAt returns, per partition, the first offset whose timestamp is ≥ `ms` (the high watermark if none). */
  offsetsAt(topic: string, ms: number): Promise<PartitionOffset[]>;
  /** highWatermarks returns, per partition, the offset the next message will get. */
  highWatermarks(topic: string): Promise<PartitionOffset[]>;
  /** presetGroup commits start offsets for a consumer group that has no members yet. */
  presetGroup(groupId: string, topic: string, offsets: PartitionOffset[]): Promise<void>;
  deleteGroup(groupId: string): Promise<void>;
  close(): Promise<void>;
}

/** createTopicOffsets connects an admin client for offset queries. */
export async function createTopicOffsets(kafka: KafkaClient): Promise<TopicOffsets> {
  const admin = kafka.admin();
  await admin.connect();
  return {
    async offsetsAt(topic, ms) {
      const [byTime, high] = await Promise.all([
        admin.fetchTopicOffsetsByTimestamp(topic, ms),
        admin.fetchTopicOffsets(topic),
      ]);
      return byTime.map((o) => ({
        partition: o.partition,
        // Kafka answers -1 when no message is that recent: start at the end.
        offset: o.offset === '-1' ? (high.find((h) => h.partition === o.partition)?.high ?? '0') : o.offset,
      }));
    },
    async highWatermarks(topic) {
      return (await admin.fetchTopicOffsets(topic)).map((o) => ({ partition: o.partition, offset: o.high }));
    },
    presetGroup: (groupId, topic, offsets) => admin.setOffsets({ groupId, topic, partitions: offsets }),
    async deleteGroup(groupId) {
      await admin.deleteGroups([groupId]).catch(() => {});
    },
    close: () => admin.disconnect(),
  };
}
