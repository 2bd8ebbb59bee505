import type { TopicOffsets } from '@tapwire/stream';
import type { KafkaClient } from './client.js';

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
