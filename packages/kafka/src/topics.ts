import type { KafkaConfig } from '@tapwire/config';
import { TOPICS } from '@tapwire/schema';
import kafkajs, { type Kafka } from 'kafkajs';
import { TapwireKafkaError } from './errors.js';

const { ConfigResourceTypes } = kafkajs;

/** TopicSpec is the desired shape of one topic. */
export interface TopicSpec {
  readonly topic: string;
  readonly partitions: number;
  readonly replicationFactor: number;
  readonly configs: Readonly<Record<string, string>>;
}

/** topicSpecs derives the desired topics from config: event topics delete by time, alert state is compacted. */
export function topicSpecs(config: KafkaConfig['topics'], prefix = ''): TopicSpec[] {
  const events = (topic: string, retentionMs: number): TopicSpec => ({
    topic: prefix + topic,
    partitions: config.partitions,
    replicationFactor: config.replicationFactor,
    // 4 MiB: oversized events must reach ingest to be dead-lettered (with room for base64 in the DLQ).
    configs: {
      'cleanup.policy': 'delete',
      'retention.ms': String(retentionMs),
      'max.message.bytes': '4194304',
    },
  });
  return [
    events(TOPICS.spans, config.retentionMs),
    events(TOPICS.accessLogs, config.retentionMs),
    events(TOPICS.saturation, config.retentionMs),
    events(TOPICS.dlq, config.dlqRetentionMs),
    // One partition: alert state is read whole by the single active alerter, and order per key
    // would hold anyway; compaction keeps the latest state of every fingerprint forever.
    {
      topic: prefix + TOPICS.alertState,
      partitions: 1,
      replicationFactor: config.replicationFactor,
      configs: { 'cleanup.policy': 'compact', 'min.compaction.lag.ms': '60000', 'segment.ms': '3600000' },
    },
    // Silences, keyed by id; expiring one re-emits it with ends_at = now.
    {
      topic: prefix + TOPICS.silences,
      partitions: 1,
      replicationFactor: config.replicationFactor,
      configs: { 'cleanup.policy': 'compact', 'min.compaction.lag.ms': '60000', 'segment.ms': '3600000' },
    },
  ];
}

/** TopicBootstrapReport says what ensureTopics changed. */
export interface TopicBootstrapReport {
  created: string[];
  partitionsIncreased: string[];
  configsUpdated: string[];
  unchanged: string[];
}

/**
 * ensureTopics creates missing topics, grows partition counts and aligns topic configs; running it
 * again changes nothing. Partitions are never reduced (Kafka cannot), and that is reported as unchanged.
 */
export async function ensureTopics(kafka: Kafka, specs: readonly TopicSpec[]): Promise<TopicBootstrapReport> {
  const admin = kafka.admin();
  const report: TopicBootstrapReport = {
    created: [],
    partitionsIncreased: [],
    configsUpdated: [],
    unchanged: [],
  };
  try {
    await admin.connect();
    const existing = new Set(await admin.listTopics());
    const missing = specs.filter((s) => !existing.has(s.topic));
    if (missing.length > 0) {
      await admin.createTopics({
        waitForLeaders: true,
        topics: missing.map((s) => ({
          topic: s.topic,
          numPartitions: s.partitions,
          replicationFactor: s.replicationFactor,
          configEntries: Object.entries(s.configs).map(([name, value]) => ({ name, value })),
        })),
      });
      // createTopics returns false (no error) when another process created a topic first.
      report.created.push(...missing.map((s) => s.topic));
    }
    const present = specs.filter((s) => existing.has(s.topic));
    if (present.length === 0) return report;
    const meta = await admin.fetchTopicMetadata({ topics: present.map((s) => s.topic) });
    const grow = present.filter((s) => {
      const t = meta.topics.find((m) => m.name === s.topic);
      return t !== undefined && t.partitions.length < s.partitions;
    });
    if (grow.length > 0) {
      await admin.createPartitions({
        topicPartitions: grow.map((s) => ({ topic: s.topic, count: s.partitions })),
      });
      report.partitionsIncreased.push(...grow.map((s) => s.topic));
    }
    const described = await admin.describeConfigs({
      includeSynonyms: false,
      resources: present.map((s) => ({
        type: ConfigResourceTypes.TOPIC,
        name: s.topic,
        configNames: Object.keys(s.configs),
      })),
    });
    const drift = present.filter((s) => {
      const r = described.resources.find((d) => d.resourceName === s.topic);
      return Object.entries(s.configs).some(
        ([name, value]) => r?.configEntries.find((e) => e.configName === name)?.configValue !== value,
      );
    });
    if (drift.length > 0) {
      // alterConfigs replaces a topic's dynamic configs: send the full desired set.
      await admin.alterConfigs({
        validateOnly: false,
        resources: drift.map((s) => ({
          type: ConfigResourceTypes.TOPIC,
          name: s.topic,
          configEntries: Object.entries(s.configs).map(([name, value]) => ({ name, value })),
        })),
      });
      report.configsUpdated.push(...drift.map((s) => s.topic));
    }
    const touched = new Set([...report.partitionsIncreased, ...report.configsUpdated]);
    report.unchanged.push(...present.filter((s) => !touched.has(s.topic)).map((s) => s.topic));
    return report;
  } catch (err) {
    throw new TapwireKafkaError('TAPWIRE_KAFKA_TOPIC_BOOTSTRAP_FAILED', (err as Error).message, err);
  } finally {
    await admin.disconnect().catch(() => {});
  }
}
