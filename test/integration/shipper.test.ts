import { randomUUID } from 'node:crypto';
import { Socket } from 'node:net';
import {
  createKafkaClient,
  createKafkaShipper,
  ensureTopics,
  type Shipper,
  type ShipperConfig,
  topicSpecs,
} from '@tapwire/kafka';
import { TOPICS } from '@tapwire/schema';
import { decodeBatch } from '@tapwire/stream';
import kafkajs, { type Admin, type IHeaders, type ISocketFactory, type Kafka } from 'kafkajs';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import {
  createMemoryShipperLog,
  type MemoryShipperLog,
} from '../../packages/kafka/test/memory-shipper-log.js';
import { exampleAccessLog } from '../support/events.js';
import { silentLogger, testKafkaConfig, uniqueName } from '../support/infra.js';
import { recordCount } from '../support/kafka-read.js';
import { produceFaults } from '../support/produce-faults.js';

// The shipper against the real broker, over an in-memory local log: what a consumer (ingest)
// finds on the topic is the contract — one record per batch, headers naming source and first
// seq, and a resend after a lost position save carrying the same seqs under new offsets.

const config = testKafkaConfig();
const kafka: Kafka = createKafkaClient(config, silentLogger, 'test');
let admin: Admin;
const created: string[] = [];
const running: Shipper[] = [];

beforeAll(async () => {
  admin = kafka.admin();
  await admin.connect();
});
afterAll(async () => {
  await Promise.all(running.map((s) => s.stop(1000)));
  if (created.length > 0) await admin.deleteTopics({ topics: created }).catch(() => {});
  await admin.disconnect();
});

/** accessTopic creates a fresh access-log topic (3 partitions) under a unique prefix and returns the prefix. */
async function accessTopic(): Promise<string> {
  const prefix = `${uniqueName('ship')}.`;
  const specs = topicSpecs(
    { partitions: 3, replicationFactor: 1, retentionMs: 3_600_000, dlqRetentionMs: 3_600_000 },
    prefix,
  ).filter((s) => s.topic === prefix + TOPICS.accessLogs);
  await ensureTopics(kafka, specs);
  created.push(prefix + TOPICS.accessLogs);
  return prefix;
}

function faultyClient(socketFactory: ISocketFactory): Kafka {
  return new kafkajs.Kafka({
    clientId: 'tapwire-test-faulty',
    brokers: config.brokers,
    socketFactory,
    logLevel: kafkajs.logLevel.NOTHING,
  });
}

function ship(
  log: MemoryShipperLog,
  prefix: string,
  over: ShipperConfig = {},
  client = kafka,
  warn?: string[],
) {
  const logger = warn ? { ...silentLogger, warn: (_: object, msg: string) => warn.push(msg) } : silentLogger;
  const shipper = createKafkaShipper({ kafka: client, logger }, log, {
    topicPrefix: prefix,
    lingerMs: 10,
    retryBackoffMs: 50,
    ...over,
  });
  running.push(shipper);
  shipper.start();
  return shipper;
}

interface ShippedRecord {
  partition: number;
  offset: string;
  key: string;
  source: string;
  firstSeq: bigint;
  count: string;
  headers: Record<string, string>;
  events: string[];
}

/** readRecords reads a topic from the beginning until `count` records arrived, decoding each batch. */
async function readRecords(topic: string, count: number): Promise<ShippedRecord[]> {
  const consumer = kafka.consumer({ groupId: `tapwire-test-${randomUUID()}`, maxWaitTimeInMs: 100 });
  const out: ShippedRecord[] = [];
  await consumer.connect();
  try {
    await consumer.subscribe({ topics: [topic], fromBeginning: true });
    await new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`timed out after ${out.length} records`)), 60_000);
      void consumer.run({
        eachBatch: async ({ batch }) => {
          for (const m of batch.messages) {
            const decoded = decodeBatch(m.headers as IHeaders, m.value);
            if (decoded.kind !== 'batch') throw new Error(`not a batch: ${JSON.stringify(decoded)}`);
            out.push({
              partition: batch.partition,
              offset: m.offset,
              key: m.key?.toString() ?? '',
              source: decoded.batch.source,
              firstSeq: decoded.batch.firstSeq,
              count: m.headers?.['tapwire-count']?.toString() ?? '',
              headers: Object.fromEntries(
                Object.entries(m.headers ?? {}).map(([k, v]) => [k, v?.toString() ?? '']),
              ),
              events: decoded.batch.events.map((e) => e.toString()),
            });
          }
          if (out.length >= count) {
            clearTimeout(timer);
            resolve();
          }
        },
      });
    });
  } finally {
    await consumer.disconnect();
  }
  return out.sort((a, b) => a.partition - b.partition || Number(BigInt(a.offset) - BigInt(b.offset)));
}

const accessLogs = (n: number) => Array.from({ length: n }, () => JSON.stringify(exampleAccessLog()));

describe('Kafka shipper', () => {
  it('ships N events as ceil(N / maxBatchEvents) records with the batch headers, every event once and in order', async () => {
    const prefix = await accessTopic();
    const log = createMemoryShipperLog({ id: `proxy-${randomUUID()}` });
    const values = accessLogs(2500);
    log.append(TOPICS.accessLogs, values);
    const shipper = ship(log, prefix, { maxBatchEvents: 1000 });
    await vi.waitFor(() => expect(shipper.stats().shippedEvents).toBe(2500), {
      timeout: 30_000,
      interval: 20,
    });
    await shipper.stop(5000);

    const topic = prefix + TOPICS.accessLogs;
    expect(await recordCount(admin, topic)).toBe(3);
    const records = await readRecords(topic, 3);
    expect(new Set(records.map((r) => r.partition)).size).toBe(1);
    expect(records.map((r) => r.headers)).toEqual(
      [
        ['0', '1000'],
        ['1000', '1000'],
        ['2000', '500'],
      ].map(([firstSeq, count]) => ({
        'tapwire-format': 'ndjson-batch',
        'tapwire-format-version': '1',
        'tapwire-source': log.id,
        'tapwire-first-seq': firstSeq,
        'tapwire-count': count,
      })),
    );
    expect(records.every((r) => r.key === log.id)).toBe(true);
    expect(records.flatMap((r) => r.events)).toEqual(values);
    expect(log.committed('shipper')).toEqual(new Map([[TOPICS.accessLogs, 2500n]]));
    expect(shipper.stats()).toMatchObject({ shippedBatches: 3, unshippedEvents: 0, sendErrors: 0 });
  });

  it('sends the same seqs again under new offsets when its position save fails after Kafka acknowledged', async () => {
    const prefix = await accessTopic();
    const log = createMemoryShipperLog({ id: `proxy-${randomUUID()}` });
    const values = accessLogs(300);
    log.append(TOPICS.accessLogs, values);
    log.failCommits(1);
    const shipper = ship(log, prefix, { maxBatchEvents: 1000 });
    await vi.waitFor(() => expect(log.commits).toHaveLength(1), { timeout: 30_000, interval: 20 });
    await shipper.stop(5000);

    const records = await readRecords(prefix + TOPICS.accessLogs, 2);
    expect(records.map((r) => [r.source, r.firstSeq, r.count])).toEqual([
      [log.id, 0n, '300'],
      [log.id, 0n, '300'],
    ]);
    expect(records[0]!.partition).toBe(records[1]!.partition);
    expect(BigInt(records[1]!.offset)).toBeGreaterThan(BigInt(records[0]!.offset));
    expect(records[0]!.events).toEqual(values);
    expect(records[1]!.events).toEqual(values);
    expect(log.committed('shipper')).toEqual(new Map([[TOPICS.accessLogs, 300n]]));
    expect(shipper.stats()).toMatchObject({ shippedEvents: 600, commitErrors: 1, unshippedEvents: 0 });
  });

  it('writes a batch once when Kafka’s acknowledgement is lost and the batch is sent again', async () => {
    // Eight lost acks: more than kafkajs's own five retries, so the shipper's resend after its
    // backoff is exercised too. Only the idempotent producer's unchanged resends keep one copy.
    const prefix = await accessTopic();
    const lost = produceFaults({ lostAcks: 8 });
    const log = createMemoryShipperLog({ id: `proxy-${randomUUID()}` });
    const values = accessLogs(50);
    log.append(TOPICS.accessLogs, values.slice(0, 20));
    const shipper = ship(log, prefix, { maxBatchEvents: 20 }, faultyClient(lost.socketFactory));
    // The rest arrive while the first batch is failing: its resends must not take them along.
    await vi.waitFor(() => expect(lost.injected()).toBeGreaterThan(0), { timeout: 10_000, interval: 5 });
    log.append(TOPICS.accessLogs, values.slice(20));
    await vi.waitFor(() => expect(shipper.stats().shippedEvents).toBe(50), { timeout: 60_000, interval: 20 });
    await shipper.stop(5000);
    expect(lost.injected()).toBe(8);
    expect(shipper.stats().sendErrors).toBeGreaterThan(0);

    const topic = prefix + TOPICS.accessLogs;
    expect(await recordCount(admin, topic)).toBe(3);
    const records = await readRecords(topic, 3);
    expect(records.map((r) => [r.firstSeq, r.count])).toEqual([
      [0n, '20'],
      [20n, '20'],
      [40n, '10'],
    ]);
    expect(records.flatMap((r) => r.events)).toEqual(values);
  });

  it('starts a new producer id when the broker refuses its sequence numbers, resending the same seqs', async () => {
    const prefix = await accessTopic();
    const faults = produceFaults({ refuseFirstProducer: true });
    const warnings: string[] = [];
    const log = createMemoryShipperLog({ id: `proxy-${randomUUID()}` });
    const values = accessLogs(10);
    log.append(TOPICS.accessLogs, values);
    const shipper = ship(log, prefix, {}, faultyClient(faults.socketFactory), warnings);
    await vi.waitFor(() => expect(shipper.stats().shippedEvents).toBe(10), { timeout: 30_000, interval: 20 });
    log.append(TOPICS.accessLogs, values);
    await vi.waitFor(() => expect(shipper.stats().shippedEvents).toBe(20), { timeout: 30_000, interval: 20 });
    await shipper.stop(5000);
    expect(faults.injected()).toBe(1);
    expect(warnings.filter((m) => m.startsWith('Kafka no longer knows the producer id'))).toHaveLength(1);

    // The refused batch was written before the refusal: it is there twice, with the same seqs.
    const records = await readRecords(prefix + TOPICS.accessLogs, 3);
    expect(records.map((r) => [r.firstSeq, r.count])).toEqual([
      [0n, '10'],
      [0n, '10'],
      [10n, '10'],
    ]);
  });

  it('stops at its deadline while no broker answers, keeping every event for the next start', {
    timeout: 30_000,
  }, async () => {
    // Connections that never complete, under a 10-minute connection timeout: kafkajs's send would
    // hang far past the test's timeout, so only the shipper cutting it short lets stop() return.
    const silent = new kafkajs.Kafka({
      clientId: 'tapwire-test-silent',
      brokers: config.brokers,
      connectionTimeout: 600_000,
      socketFactory: () => new Socket(),
      logLevel: kafkajs.logLevel.NOTHING,
    });
    const log = createMemoryShipperLog({ id: `proxy-${randomUUID()}` });
    log.append(TOPICS.accessLogs, accessLogs(5));
    const shipper = ship(log, 'unused.', {}, silent);
    await new Promise((r) => setTimeout(r, 200));
    await shipper.stop(300);
    expect(log.committed('shipper')).toEqual(new Map());
    expect(shipper.stats()).toMatchObject({ shippedEvents: 0, unshippedEvents: 5, connected: false });
  });
});
