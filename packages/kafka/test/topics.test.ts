import { kafkaConfigSchema } from '@tapwire/config';
import { topicSpecs } from '@tapwire/kafka';
import { describe, expect, it } from 'vitest';

describe('topicSpecs', () => {
  it('derives every topic from config: event topics delete by time, alert state is compacted', () => {
    const topics = kafkaConfigSchema.parse({ topics: { partitions: 12, replicationFactor: 3 } }).topics;
    expect(topicSpecs(topics)).toEqual([
      {
        topic: 'tapwire.spans.v1',
        partitions: 12,
        replicationFactor: 3,
        configs: { 'cleanup.policy': 'delete', 'retention.ms': '604800000', 'max.message.bytes': '4194304' },
      },
      {
        topic: 'tapwire.access.v1',
        partitions: 12,
        replicationFactor: 3,
        configs: { 'cleanup.policy': 'delete', 'retention.ms': '604800000', 'max.message.bytes': '4194304' },
      },
      {
        topic: 'tapwire.saturation.v1',
        partitions: 12,
        replicationFactor: 3,
        configs: { 'cleanup.policy': 'delete', 'retention.ms': '604800000', 'max.message.bytes': '4194304' },
      },
      {
        topic: 'tapwire.dlq.v1',
        partitions: 12,
        replicationFactor: 3,
        configs: { 'cleanup.policy': 'delete', 'retention.ms': '2592000000', 'max.message.bytes': '4194304' },
      },
      {
        topic: 'tapwire.alert-state.v1',
        partitions: 1,
        replicationFactor: 3,
        configs: { 'cleanup.policy': 'compact', 'min.compaction.lag.ms': '60000', 'segment.ms': '3600000' },
      },
      {
        topic: 'tapwire.silences.v1',
        partitions: 1,
        replicationFactor: 3,
        configs: { 'cleanup.policy': 'compact', 'min.compaction.lag.ms': '60000', 'segment.ms': '3600000' },
      },
    ]);
  });
  it('prefixes topic names when asked', () => {
    const topics = kafkaConfigSchema.parse({}).topics;
    expect(topicSpecs(topics, 'x.').map((s) => s.topic)).toEqual([
      'x.tapwire.spans.v1',
      'x.tapwire.access.v1',
      'x.tapwire.saturation.v1',
      'x.tapwire.dlq.v1',
      'x.tapwire.alert-state.v1',
      'x.tapwire.silences.v1',
    ]);
  });
});
