import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { createClickHouse, identifier, migrate, raw, sql } from '@tapwire/clickhouse';
import { buildIngest, clickhouseWarehouse, type Ingest, ingestConfigSchema } from '@tapwire/ingest';
import {
  createKafkaClient,
  createKafkaEventSink,
  createKafkaShipper,
  ensureTopics,
  kafkaSource,
  type Shipper,
  topicSpecs,
} from '@tapwire/kafka';
import { createWriteFirstSink, type FileLog, openFileLog } from '@tapwire/log';
import { TOPICS } from '@tapwire/schema';
import type { EventSink, ShipperLog } from '@tapwire/stream';
import { createLogger } from '@tapwire/telemetry';
import type { Kafka } from 'kafkajs';
import { afterAll, describe, expect, it, vi } from 'vitest';
import { exampleAccessLog } from '../support/events.js';
import {
  deletePrefixedTopics,
  silentLogger,
  testClickHouseConfig,
  testKafkaConfig,
  uniqueName,
} from '../support/infra.js';
import { readTopics } from '../support/kafka-read.js';

// Issue #18, acceptance: a shipper fault between Kafka's acknowledgement and the save of the
// shipped position, end to end. The proxy's write path (FileLog + write-first sink) and the Kafka
// shipper send a batch Kafka acknowledged a second time, under new offsets; ingest, reading real
// Kafka into real ClickHouse, stores every event once, raw rows and rollups alike.

const MIGRATIONS = fileURLToPath(new URL('../../migrations', import.meta.url));
const kafka: Kafka = createKafkaClient(testKafkaConfig(), silentLogger, 'shipper-fault-test');
const logger = createLogger({ name: 'shipper-fault-it', level: 'silent' });
const databases: string[] = [];
const prefixes: string[] = [];
const dirs: string[] = [];
const cleanups: (() => Promise<void>)[] = [];

afterAll(async () => {
  for (const c of cleanups.reverse()) await c().catch(() => {});
  const root = createClickHouse(testClickHouseConfig('default'));
  for (const db of databases) await root.command(sql`DROP DATABASE IF EXISTS ${identifier(db)}`);
  await root.close();
  for (const p of prefixes) await deletePrefixedTopics(p);
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
});

/** Events per Kafka record: the events written make several rounds, so a fault can hit one in the middle. */
const BATCH = 250;
const EVENTS = 1500;
/** The position save that fails: the third, after Kafka acknowledged seqs 500..749. */
const FAULTY_COMMIT = 3;
const RESENT = { from: 500, to: 750 };

/** World is one test's topics, database and running ingest. */
interface World {
  prefix: string;
  dir: string;
  counts(): Promise<Record<string, number>>;
  identities(): Promise<{ id: string; source_id: string; source_seq: string }[]>;
  ingest: Ingest;
}

async function newWorld(): Promise<World> {
  const prefix = `${uniqueName('shipfault')}.`;
  prefixes.push(prefix);
  await ensureTopics(
    kafka,
    topicSpecs(
      { partitions: 3, replicationFactor: 1, retentionMs: 3_600_000, dlqRetentionMs: 3_600_000 },
      prefix,
    ),
  );
  const database = uniqueName('tapwire_shipfault');
  databases.push(database);
  await migrate(testClickHouseConfig(database), { dir: MIGRATIONS, lockSettleMs: 200 });
  const ch = createClickHouse(testClickHouseConfig(database));
  const dlq = createKafkaEventSink(
    { kafka, logger: silentLogger },
    {
      lingerMs: 10,
      maxBatchEvents: 500,
      maxBufferedEvents: 10_000,
      retryBackoffMs: 100,
      topicPrefix: prefix,
    },
  );
  const ingest = buildIngest(
    {
      source: kafkaSource({ kafka, logger: silentLogger }),
      warehouse: clickhouseWarehouse(ch),
      dlq,
      logger,
    },
    ingestConfigSchema.parse({
      groupId: uniqueName('tapwire-ingest-shipfault'),
      topicPrefix: prefix,
      flushIntervalMs: 200,
      admin: { port: 0 },
      retention: { enabled: false },
    }),
  );
  await ingest.start();
  cleanups.push(async () => {
    await ingest.close();
    await dlq.close(2000);
    await ch.close();
  });
  const dir = mkdtempSync(join(tmpdir(), 'tapwire-shipfault-'));
  dirs.push(dir);
  return {
    prefix,
    dir,
    ingest,
    async counts() {
      const [r] = await ch.query<Record<string, string>>(
        raw(`SELECT (SELECT count() FROM access_logs) AS raw, (SELECT uniqExact(id) FROM access_logs) AS ids,
               (SELECT uniqExact(source_id, source_seq) FROM access_logs) AS ledger,
               (SELECT countMerge(requests) FROM route_stats_1m) AS route_stats_1m,
               (SELECT sum(requests) FROM route_histogram_1m) AS route_histogram_1m,
               (SELECT sum(requests) FROM route_histogram_1h) AS route_histogram_1h`),
      );
      return Object.fromEntries(Object.entries(r ?? {}).map(([k, v]) => [k, Number(v)]));
    },
    identities: () =>
      ch.query(raw('SELECT id, source_id, toString(source_seq) AS source_seq FROM access_logs')),
  };
}

const exactly = (n: number) => ({
  raw: n,
  ids: n,
  ledger: n,
  route_stats_1m: n,
  route_histogram_1m: n,
  route_histogram_1h: n,
});

/**
 * faultyCommits is the FileLog as a shipper sees it (ShipperLog), except that the position save
 * number `at` does not happen: `fail` throws after saving nothing; `hang` never returns, as when
 * the process dies right there (`release` then fails it, to let the abandoned shipper stop).
 */
function faultyCommits(log: FileLog, at: number, how: 'fail' | 'hang') {
  let commits = 0;
  let release: (err: Error) => void = () => {};
  let reachedNow: () => void = () => {};
  const reached = new Promise<void>((resolve) => {
    reachedNow = resolve;
  });
  const shipperLog: ShipperLog = {
    id: log.id,
    topics: () => log.topics(),
    read: (topic, offset, maxBytes) => log.read(topic, offset, maxBytes),
    highWatermark: (topic) => log.highWatermark(topic),
    lowWatermark: (topic) => log.lowWatermark(topic),
    segments: (topic) => log.segments(topic),
    deleteBelow: (topic, offset) => log.deleteBelow(topic, offset),
    committed: (group) => log.committed(group),
    sync: () => log.sync?.() ?? Promise.resolve(),
    waitForAppend: (topics, ms, signal) => log.waitForAppend(topics, ms, signal),
    async commit(group, offsets) {
      if (++commits !== at) return log.commit(group, offsets);
      reachedNow();
      if (how === 'fail') throw new Error('injected: the position save failed after Kafka acknowledged');
      return new Promise<void>((_, reject) => {
        release = reject;
      });
    },
  };
  return { shipperLog, reached, release: (err: Error) => release(err) };
}

function ship(log: ShipperLog): Shipper {
  const shipper = createKafkaShipper({ kafka, logger: silentLogger }, log, {
    maxBatchEvents: BATCH,
    lingerMs: 20,
    retryBackoffMs: 50,
    // A save after every acknowledged batch (the default saves at most once a second), so the
    // fault lands between one batch's acknowledgement and its own save.
    savePositionEveryMs: 0,
  });
  shipper.start();
  return shipper;
}

/** writeAccessLogs writes `n` access logs through the proxy's write path and returns their ids. */
function writeAccessLogs(sink: EventSink, n: number): string[] {
  const now = Date.now() * 1000;
  const ids: string[] = [];
  for (let i = 0; i < n; i++) {
    const e = exampleAccessLog({ ts: now - i * 1000, status: i % 5 === 0 ? 503 : 200 });
    expect(sink.emit(TOPICS.accessLogs, e)).toBe(true);
    ids.push(e.id);
  }
  return ids;
}

/** seqsOnKafka reads the access-log topic until `events` events arrived and counts how often each seq of `source` came. */
async function seqsOnKafka(w: World, source: string, events: number): Promise<Map<number, number>> {
  const messages = await readTopics(kafka, [w.prefix + TOPICS.accessLogs], (m) => m.length >= events);
  expect(messages).toHaveLength(events);
  const seen = new Map<number, number>();
  for (const m of messages) {
    expect(m.source).toBe(source);
    seen.set(Number(m.seq), (seen.get(Number(m.seq)) ?? 0) + 1);
  }
  return seen;
}

/** expectSentTwice checks that exactly seqs [from, to) of 0..total-1 are on Kafka twice and every other once. */
function expectSentTwice(seen: Map<number, number>, total: number, from: number, to: number): void {
  const twice = [...seen].filter(([, n]) => n === 2).map(([s]) => s);
  expect(twice.sort((a, b) => a - b)).toEqual(Array.from({ length: to - from }, (_, i) => from + i));
  expect(seen.size).toBe(total);
  expect([...seen.values()].every((n) => n === 1 || n === 2)).toBe(true);
}

async function expectStoredOnce(w: World, source: string, ids: string[]): Promise<void> {
  await vi.waitFor(async () => expect(await w.counts()).toEqual(exactly(ids.length)), {
    timeout: 60_000,
    interval: 250,
  });
  const rows = await w.identities();
  expect(new Set(rows.map((r) => r.id))).toEqual(new Set(ids));
  expect(new Set(rows.map((r) => r.source_id))).toEqual(new Set([source]));
  expect(rows.map((r) => Number(r.source_seq)).sort((a, b) => a - b)).toEqual(ids.map((_, i) => i));
}

describe('shipper fault between Kafka’s acknowledgement and the position save, into ClickHouse', () => {
  it('the save fails once: the shipper sends the acknowledged batch again; ingest stores every event once, raw and rollups', async () => {
    const w = await newWorld();
    const log = await openFileLog({ dir: w.dir, fsync: 'interval' });
    cleanups.push(() => log.close());
    const fault = faultyCommits(log, FAULTY_COMMIT, 'fail');
    const shipper = ship(fault.shipperLog);
    cleanups.push(() => shipper.stop(1000));
    const sink = createWriteFirstSink(log, { topicPrefix: w.prefix, logger: silentLogger });

    const ids = writeAccessLogs(sink, EVENTS);
    await fault.reached;
    await vi.waitFor(() => expect(shipper.stats()).toMatchObject({ unshippedEvents: 0, commitErrors: 1 }), {
      timeout: 30_000,
      interval: 50,
    });
    const onKafka = EVENTS + (RESENT.to - RESENT.from);
    expect(shipper.stats().shippedEvents).toBe(onKafka);
    expectSentTwice(await seqsOnKafka(w, log.id, onKafka), EVENTS, RESENT.from, RESENT.to);

    await expectStoredOnce(w, log.id, ids);
    await vi.waitFor(() =>
      expect(w.ingest.pipeline.stats()).toMatchObject({
        inserted: EVENTS,
        skippedDuplicates: RESENT.to - RESENT.from,
        deadLettered: 0,
      }),
    );
  });

  it('the process dies after Kafka acknowledged, before the save: a new shipper on the same directory sends the batch again; every event stored once', async () => {
    const w = await newWorld();
    const log = await openFileLog({ dir: w.dir, fsync: 'interval' });
    const fault = faultyCommits(log, FAULTY_COMMIT, 'hang');
    const dead = ship(fault.shipperLog);
    cleanups.push(async () => {
      fault.release(new Error('the test is over'));
      await dead.stop(100);
    });
    const sink = createWriteFirstSink(log, { topicPrefix: w.prefix, logger: silentLogger });
    const ids = writeAccessLogs(sink, EVENTS);
    await fault.reached;
    // The "process" is gone: the shipper stays stuck in its save, the log is closed, nothing is saved.
    expect(dead.stats().shippedEvents).toBe(RESENT.to);
    await sink.close();
    await log.close();

    const reopened = await openFileLog({ dir: w.dir, fsync: 'interval' });
    cleanups.push(() => reopened.close());
    expect(reopened.id).toBe(log.id);
    expect(reopened.committed('shipper')).toEqual(
      new Map([[w.prefix + TOPICS.accessLogs, BigInt(RESENT.from)]]),
    );
    const shipper = ship(reopened);
    cleanups.push(() => shipper.stop(1000));
    // The restarted proxy writes on: its events follow under the next seqs.
    const more = writeAccessLogs(
      createWriteFirstSink(reopened, { topicPrefix: w.prefix, logger: silentLogger }),
      300,
    );
    const total = EVENTS + more.length;
    await vi.waitFor(
      () => expect(shipper.stats()).toMatchObject({ unshippedEvents: 0, shippedEvents: total - RESENT.from }),
      {
        timeout: 30_000,
        interval: 50,
      },
    );
    const onKafka = total + (RESENT.to - RESENT.from);
    expectSentTwice(await seqsOnKafka(w, log.id, onKafka), total, RESENT.from, RESENT.to);

    await expectStoredOnce(w, log.id, [...ids, ...more]);
    await vi.waitFor(() =>
      expect(w.ingest.pipeline.stats()).toMatchObject({
        inserted: total,
        skippedDuplicates: RESENT.to - RESENT.from,
        deadLettered: 0,
      }),
    );
  });
});
