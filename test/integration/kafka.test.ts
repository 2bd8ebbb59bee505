import { randomUUID } from 'node:crypto';
import {
  createKafkaClient,
  createKafkaEventSink,
  ensureTopics,
  type TopicSpec,
  topicSpecs,
} from '@tapwire/kafka';
import { accessLogCodec, spanCodec, TOPICS } from '@tapwire/schema';
import kafkajs, { type Admin, type ISocketFactory, type Kafka } from 'kafkajs';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { exampleAccessLog, exampleSpan } from '../support/events.js';
import { silentLogger, testKafkaConfig, uniqueName } from '../support/infra.js';
import { readTopics, recordCount } from '../support/kafka-read.js';
import { produceFaults } from '../support/produce-faults.js';

const config = testKafkaConfig();
const kafka: Kafka = createKafkaClient(config, silentLogger, 'test');
let admin: Admin;
const created: string[] = [];

beforeAll(async () => {
  admin = kafka.admin();
  await admin.connect();
});
afterAll(async () => {
  if (created.length > 0) await admin.deleteTopics({ topics: created }).catch(() => {});
  await admin.disconnect();
});

/** faultyClient is a Kafka client whose connections go through a fault-injecting socket factory. */
function faultyClient(socketFactory: ISocketFactory): Kafka {
  return new kafkajs.Kafka({
    clientId: 'tapwire-test-faulty',
    brokers: config.brokers,
    socketFactory,
    logLevel: kafkajs.logLevel.NOTHING,
  });
}

async function topicConfig(topic: string, names: string[]): Promise<Record<string, string>> {
  const res = await admin.describeConfigs({
    includeSynonyms: false,
    resources: [{ type: 2, name: topic, configNames: names }],
  });
  return Object.fromEntries(
    (res.resources[0]?.configEntries ?? []).map((e) => [e.configName, e.configValue]),
  );
}

describe('ensureTopics', () => {
  it('creates every topic with its partitions, retention and compaction, idempotently', async () => {
    const prefix = `${uniqueName('t')}.`;
    const specs = topicSpecs(
      { partitions: 3, replicationFactor: 1, retentionMs: 3_600_000, dlqRetentionMs: 7_200_000 },
      prefix,
    );
    created.push(...specs.map((s) => s.topic));

    const first = await ensureTopics(kafka, specs);
    expect(first.created.sort()).toEqual(
      Object.values(TOPICS)
        .map((t) => prefix + t)
        .sort(),
    );

    const meta = await admin.fetchTopicMetadata({ topics: specs.map((s) => s.topic) });
    const partitions = Object.fromEntries(
      meta.topics.map((t) => [t.name.slice(prefix.length), t.partitions.length]),
    );
    expect(partitions).toEqual({
      'tapwire.spans.v1': 3,
      'tapwire.access.v1': 3,
      'tapwire.saturation.v1': 3,
      'tapwire.dlq.v1': 3,
      'tapwire.alert-state.v1': 1,
      'tapwire.silences.v1': 1,
    });
    expect(await topicConfig(prefix + TOPICS.accessLogs, ['cleanup.policy', 'retention.ms'])).toEqual({
      'cleanup.policy': 'delete',
      'retention.ms': '3600000',
    });
    expect(await topicConfig(prefix + TOPICS.dlq, ['retention.ms'])).toEqual({ 'retention.ms': '7200000' });
    expect(await topicConfig(prefix + TOPICS.alertState, ['cleanup.policy'])).toEqual({
      'cleanup.policy': 'compact',
    });

    const second = await ensureTopics(kafka, specs);
    expect(second).toEqual({
      created: [],
      partitionsIncreased: [],
      configsUpdated: [],
      unchanged: specs.map((s) => s.topic),
    });
  });

  it('grows partitions and realigns drifted retention, never shrinking', async () => {
    const prefix = `${uniqueName('t')}.`;
    const small = topicSpecs(
      { partitions: 1, replicationFactor: 1, retentionMs: 3_600_000, dlqRetentionMs: 3_600_000 },
      prefix,
    );
    created.push(...small.map((s) => s.topic));
    await ensureTopics(kafka, small);
    const bigger: TopicSpec[] = topicSpecs(
      { partitions: 4, replicationFactor: 1, retentionMs: 86_400_000, dlqRetentionMs: 3_600_000 },
      prefix,
    );
    const report = await ensureTopics(kafka, bigger);
    const spans = prefix + TOPICS.spans;
    expect(report.partitionsIncreased).toContain(spans);
    expect(report.configsUpdated).toContain(spans);
    expect(report.configsUpdated).not.toContain(prefix + TOPICS.dlq);
    const meta = await admin.fetchTopicMetadata({ topics: [spans] });
    expect(meta.topics[0]?.partitions).toHaveLength(4);
    // The broker applies config changes through its metadata log, so the new value shows shortly after.
    await vi.waitFor(
      async () => expect(await topicConfig(spans, ['retention.ms'])).toEqual({ 'retention.ms': '86400000' }),
      {
        timeout: 10_000,
        interval: 200,
      },
    );

    const shrink = await ensureTopics(kafka, small);
    expect(shrink.partitionsIncreased).toEqual([]);
    expect((await admin.fetchTopicMetadata({ topics: [spans] })).topics[0]?.partitions).toHaveLength(4);
  });
});

describe('Kafka EventSink', () => {
  const prefix = `${uniqueName('s')}.`;

  beforeAll(async () => {
    const specs = topicSpecs(
      { partitions: 3, replicationFactor: 1, retentionMs: 3_600_000, dlqRetentionMs: 3_600_000 },
      prefix,
    );
    created.push(...specs.map((s) => s.topic));
    await ensureTopics(kafka, specs);
  });

  it('delivers emitted events to a consumer group, keyed by trace id, exactly as emitted', async () => {
    const sink = createKafkaEventSink(
      { kafka, logger: silentLogger },
      {
        lingerMs: 20,
        maxBatchEvents: 50,
        maxBufferedEvents: 10_000,
        retryBackoffMs: 100,
        topicPrefix: prefix,
      },
    );
    const spans = Array.from({ length: 120 }, () => exampleSpan());
    const logs = Array.from({ length: 30 }, () => exampleAccessLog());
    for (const s of spans) expect(sink.emit(TOPICS.spans, s)).toBe(true);
    for (const l of logs) expect(sink.emit(TOPICS.accessLogs, l)).toBe(true);
    await sink.flush();
    expect(sink.stats()).toMatchObject({
      accepted: 150,
      delivered: 150,
      buffered: 0,
      dropped: 0,
      invalid: 0,
    });
    await sink.close();

    const consumer = kafka.consumer({ groupId: `tapwire-test-${randomUUID()}` });
    await consumer.connect();
    await consumer.subscribe({
      topics: [prefix + TOPICS.spans, prefix + TOPICS.accessLogs],
      fromBeginning: true,
    });
    const got = { spans: [] as unknown[], logs: [] as unknown[], keysMatch: true };
    await new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error('timed out waiting for 150 messages')), 60_000);
      void consumer.run({
        eachMessage: async ({ topic, message }) => {
          const isSpan = topic === prefix + TOPICS.spans;
          const decoded = (isSpan ? spanCodec : accessLogCodec).decode(message.value ?? Buffer.alloc(0));
          if (!decoded.ok) throw new Error(decoded.reason);
          if (message.key?.toString() !== decoded.event.trace_id) got.keysMatch = false;
          (isSpan ? got.spans : got.logs).push(decoded.event);
          if (got.spans.length + got.logs.length === 150) {
            clearTimeout(timer);
            resolve();
          }
        },
      });
    });
    await consumer.disconnect();
    const byId = (a: unknown, b: unknown) => ((a as { id: string }).id < (b as { id: string }).id ? -1 : 1);
    expect(got.spans.sort(byId)).toEqual([...spans].sort(byId));
    expect(got.logs.sort(byId)).toEqual([...logs].sort(byId));
    expect(got.keysMatch).toBe(true);
  });

  it('refuses an invalid event without throwing and counts it', async () => {
    const sink = createKafkaEventSink(
      { kafka, logger: silentLogger },
      { lingerMs: 20, maxBatchEvents: 50, maxBufferedEvents: 10, retryBackoffMs: 100, topicPrefix: prefix },
    );
    expect(sink.emit(TOPICS.spans, exampleSpan({ duration: -1 }))).toBe(false);
    expect(sink.stats()).toMatchObject({ accepted: 0, invalid: 1 });
    await sink.close();
  });

  it('drops and counts events beyond its buffer while Kafka is unreachable, and never throws', async () => {
    const dead = createKafkaClient(
      testKafkaConfig({ brokers: ['127.0.0.1:1'], connectionTimeoutMs: 200 }),
      silentLogger,
    );
    const sink = createKafkaEventSink(
      { kafka: dead, logger: silentLogger },
      { lingerMs: 10, maxBatchEvents: 5, maxBufferedEvents: 20, retryBackoffMs: 50, topicPrefix: prefix },
    );
    let accepted = 0;
    for (let i = 0; i < 50; i++) if (sink.emit(TOPICS.spans, exampleSpan())) accepted++;
    expect(accepted).toBe(20);
    expect(sink.stats()).toMatchObject({ accepted: 20, dropped: 30, buffered: 20 });
    await sink.close(300);
    expect(sink.stats().dropped).toBe(50);
  });

  it('writes a batch once when its acknowledgement is lost and it is sent again', async () => {
    // Eight lost acks: more than kafkajs's own five retries, so the sink's resend after backoff
    // is exercised as well as kafkajs's. The broker writes every attempt it receives; only the
    // idempotent producer (same producer id and sequence on every resend) makes it keep one.
    const lost = produceFaults({ lostAcks: 8 });
    const lossy = faultyClient(lost.socketFactory);
    const topic = prefix + TOPICS.accessLogs;
    const before = await recordCount(admin, topic);
    const sink = createKafkaEventSink(
      { kafka: lossy, logger: silentLogger },
      { lingerMs: 10, maxBatchEvents: 100, maxBufferedEvents: 1000, retryBackoffMs: 50, topicPrefix: prefix },
    );
    const events = Array.from({ length: 40 }, () => exampleAccessLog());
    for (const e of events.slice(0, 20)) expect(sink.emit(TOPICS.accessLogs, e)).toBe(true);
    // The rest arrive while the first batch is failing: its resend must not take them along.
    await vi.waitFor(() => expect(lost.injected()).toBeGreaterThan(0), { timeout: 10_000, interval: 5 });
    for (const e of events.slice(20)) expect(sink.emit(TOPICS.accessLogs, e)).toBe(true);
    await sink.flush();
    expect(lost.injected()).toBe(8);
    expect(sink.stats()).toMatchObject({ accepted: 40, delivered: 40, dropped: 0, sendErrors: 1 });
    await sink.close();
    expect((await recordCount(admin, topic)) - before).toBe(40);
    const back = await readTopics(kafka, [topic], (m) => m.length >= before + 40);
    const ids = new Set(events.map((e) => e.id));
    const found = back.map((m) => (JSON.parse(m.value.toString()) as { id: string }).id);
    expect(found.filter((id) => ids.has(id)).sort()).toEqual([...ids].sort());
  });

  it('keeps delivering after its topic is deleted and re-created, without duplicates', async () => {
    // The broker forgets the producer's sequence numbers with the partition: the idempotent
    // producer must still be able to write to the new one.
    const own = `${uniqueName('r')}.`;
    const spec = topicSpecs(
      { partitions: 1, replicationFactor: 1, retentionMs: 3_600_000, dlqRetentionMs: 3_600_000 },
      own,
    ).filter((t) => t.topic === own + TOPICS.accessLogs);
    created.push(own + TOPICS.accessLogs);
    await ensureTopics(kafka, spec);
    const sink = createKafkaEventSink(
      { kafka, logger: silentLogger },
      { lingerMs: 10, maxBatchEvents: 100, maxBufferedEvents: 1000, retryBackoffMs: 50, topicPrefix: own },
    );
    for (let i = 0; i < 5; i++) sink.emit(TOPICS.accessLogs, exampleAccessLog());
    await sink.flush();
    await admin.deleteTopics({ topics: [own + TOPICS.accessLogs] });
    await vi.waitFor(
      async () => {
        const fresh = await ensureTopics(kafka, spec);
        expect(fresh.created).toEqual([own + TOPICS.accessLogs]);
      },
      { timeout: 30_000, interval: 500 },
    );
    for (let i = 0; i < 7; i++) expect(sink.emit(TOPICS.accessLogs, exampleAccessLog())).toBe(true);
    await vi.waitFor(() => expect(sink.stats().delivered).toBe(12), { timeout: 30_000, interval: 50 });
    await sink.close();
    expect(await recordCount(admin, own + TOPICS.accessLogs)).toBe(7);
  });

  it('starts a new producer id when the broker refuses its sequence numbers, and keeps delivering', async () => {
    // Without a new id every resend is refused the same way and nothing is delivered again.
    const faults = produceFaults({ refuseFirstProducer: true });
    const logged: string[] = [];
    const sink = createKafkaEventSink(
      {
        kafka: faultyClient(faults.socketFactory),
        logger: { ...silentLogger, warn: (_o, msg) => logged.push(msg) },
      },
      { lingerMs: 10, maxBatchEvents: 100, maxBufferedEvents: 1000, retryBackoffMs: 50, topicPrefix: prefix },
    );
    for (let i = 0; i < 10; i++) expect(sink.emit(TOPICS.spans, exampleSpan())).toBe(true);
    await vi.waitFor(() => expect(sink.stats().delivered).toBe(10), { timeout: 10_000, interval: 20 });
    for (let i = 0; i < 10; i++) expect(sink.emit(TOPICS.spans, exampleSpan())).toBe(true);
    await vi.waitFor(() => expect(sink.stats().delivered).toBe(20), { timeout: 10_000, interval: 20 });
    expect(faults.injected()).toBe(1);
    expect(sink.stats()).toMatchObject({ delivered: 20, sendErrors: 1, dropped: 0 });
    expect(logged.filter((m) => m.startsWith('Kafka no longer knows the producer id'))).toHaveLength(1);
    await sink.close();
  });

  it('keeps sending after a linger timer fires on an empty buffer (regression: a stale in-flight promise stopped all sends)', async () => {
    const sink = createKafkaEventSink(
      { kafka, logger: silentLogger },
      { lingerMs: 30, maxBatchEvents: 10, maxBufferedEvents: 1000, retryBackoffMs: 50, topicPrefix: prefix },
    );
    // Ten events fill a batch and are sent at once; the linger timer set by the first one then
    // fires on an empty buffer.
    for (let i = 0; i < 10; i++) sink.emit(TOPICS.spans, exampleSpan());
    await new Promise((r) => setTimeout(r, 150));
    for (let i = 0; i < 5; i++) sink.emit(TOPICS.spans, exampleSpan());
    await vi.waitFor(() => expect(sink.stats().delivered).toBe(15), { timeout: 5000, interval: 50 });
    expect(sink.stats().buffered).toBe(0);
    await sink.close();
  });
});
