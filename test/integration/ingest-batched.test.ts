import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { createClickHouse, identifier, migrate, raw, sql } from '@tapwire/clickhouse';
import { type DuckDb, raw as duckRaw, openDuckDb } from '@tapwire/duckdb';
import {
  buildIngest,
  clickhouseWarehouse,
  duckdbWarehouse,
  type Ingest,
  ingestConfigSchema,
  type Warehouse,
} from '@tapwire/ingest';
import {
  createKafkaClient,
  createKafkaEventSink,
  ensureTopics,
  kafkaSource,
  topicSpecs,
} from '@tapwire/kafka';
import { type AccessLogEvent, accessLogCodec, TOPICS } from '@tapwire/schema';
import { type EventSink, encodeBatch, type LogSource } from '@tapwire/stream';
import { createLogger } from '@tapwire/telemetry';
import type { Admin, Kafka, Producer } from 'kafkajs';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { exampleAccessLog } from '../support/events.js';
import { silentLogger, testClickHouseConfig, testKafkaConfig, uniqueName } from '../support/infra.js';

// Ingest reading batched records (@tapwire/stream event-batch.ts, as a shipper produces them) mixed
// with single-event records, from real Kafka into real ClickHouse and into DuckDB: every event is
// stored once under its ledger identity, whatever is resent or re-read.

const MIGRATIONS = fileURLToPath(new URL('../../migrations', import.meta.url));
const kafka: Kafka = createKafkaClient(testKafkaConfig(), silentLogger, 'ingest-batched-test');
const logger = createLogger({
  name: 'ingest-batched-it',
  level: (process.env.TEST_LOG_LEVEL as 'silent') ?? 'silent',
});
const DAY_S = 86_400;
let admin: Admin;
let producer: Producer;
const databases: string[] = [];
const topics: string[] = [];
const dbs: DuckDb[] = [];
const sinks: EventSink[] = [];

type StoreKind = 'clickhouse' | 'duckdb';

interface Identity {
  id: string;
  source_id: string;
  source_seq: string;
  kafka_partition: number;
  kafka_offset: string;
}

interface DeadLetter {
  id: string;
  source_offset: string;
  source_index: number | null;
  reason: string;
  raw: string;
}

/** Store is one warehouse under ingest, and how the test reads it back. */
interface Store {
  warehouse: Warehouse;
  /** Access-log rows, distinct ids and distinct ledger identities; the requests each rollup holds. */
  counts(): Promise<Record<string, number>>;
  identities(): Promise<Identity[]>;
  deadLetters(): Promise<DeadLetter[]>;
}

const numbers = (r: Record<string, unknown> | undefined) =>
  Object.fromEntries(Object.entries(r ?? {}).map(([k, v]) => [k, Number(v)]));

async function store(kind: StoreKind): Promise<Store> {
  if (kind === 'duckdb') {
    const db = await openDuckDb({
      path: join(mkdtempSync(join(tmpdir(), 'tapwire-batched-')), 'tapwire.duckdb'),
    });
    dbs.push(db);
    return {
      warehouse: duckdbWarehouse(db),
      async counts() {
        const [r] = await db.query(
          duckRaw(`SELECT (SELECT count(*) FROM access_logs) AS raw, (SELECT count(DISTINCT id) FROM access_logs) AS ids,
            (SELECT count(DISTINCT (source_id, source_seq)) FROM access_logs) AS ledger,
            (SELECT coalesce(sum(requests), 0) FROM route_histogram_1m) AS route_histogram_1m,
            (SELECT coalesce(sum(requests), 0) FROM route_histogram_1h) AS route_histogram_1h`),
        );
        return numbers(r);
      },
      identities: () =>
        db.query<Identity>(
          duckRaw(
            'SELECT id, source_id, CAST(source_seq AS VARCHAR) AS source_seq, kafka_partition, CAST(kafka_offset AS VARCHAR) AS kafka_offset FROM access_logs',
          ),
        ),
      deadLetters: () =>
        db.query<DeadLetter>(
          duckRaw(
            'SELECT id, CAST(source_offset AS VARCHAR) AS source_offset, source_index, reason, raw_base64 AS raw FROM dlq_events ORDER BY source_offset, source_index',
          ),
        ),
    };
  }
  const database = uniqueName('tapwire_batched');
  databases.push(database);
  await migrate(testClickHouseConfig(database), { dir: MIGRATIONS, lockSettleMs: 200 });
  const ch = createClickHouse(testClickHouseConfig(database));
  return {
    warehouse: clickhouseWarehouse(ch),
    async counts() {
      const [r] = await ch.query(
        raw(`SELECT (SELECT count() FROM access_logs) AS raw, (SELECT uniqExact(id) FROM access_logs) AS ids,
               (SELECT uniqExact(source_id, source_seq) FROM access_logs) AS ledger,
               (SELECT countMerge(requests) FROM route_stats_1m) AS route_stats_1m,
               (SELECT sum(requests) FROM route_histogram_1m) AS route_histogram_1m,
               (SELECT sum(requests) FROM route_histogram_1h) AS route_histogram_1h`),
      );
      return numbers(r);
    },
    identities: () =>
      ch.query<Identity>(
        raw(
          'SELECT id, source_id, toString(source_seq) AS source_seq, kafka_partition, toString(kafka_offset) AS kafka_offset FROM access_logs',
        ),
      ),
    deadLetters: () =>
      ch.query<DeadLetter>(
        raw(
          'SELECT id, toString(source_offset) AS source_offset, source_index, reason, raw_base64 AS raw FROM dlq_events ORDER BY source_offset, source_index',
        ),
      ),
  };
}

/** exactly is what the counts read when `n` access logs are each stored once. */
function exactly(kind: StoreKind, n: number): Record<string, number> {
  const rollups = { route_histogram_1m: n, route_histogram_1h: n };
  return { raw: n, ids: n, ledger: n, ...(kind === 'clickhouse' ? { route_stats_1m: n } : {}), ...rollups };
}

/**
 * expectExactly waits until the store holds `n` access logs once each, raw and rollups (ClickHouse
 * shows a raw part a moment before its views have it; a count never reached, or passed, still fails).
 */
async function expectExactly(kind: StoreKind, s: Store, n: number): Promise<void> {
  await vi.waitFor(async () => expect(await s.counts()).toEqual(exactly(kind, n)), {
    timeout: 60_000,
    interval: 250,
  });
}

interface World {
  kind: StoreKind;
  prefix: string;
  store: Store;
  groupId: string;
}

async function newWorld(kind: StoreKind): Promise<World> {
  const prefix = `${uniqueName('b')}.`;
  const specs = topicSpecs(
    { partitions: 3, replicationFactor: 1, retentionMs: 3_600_000, dlqRetentionMs: 3_600_000 },
    prefix,
  );
  topics.push(...specs.map((s) => s.topic));
  await ensureTopics(kafka, specs);
  return { kind, prefix, store: await store(kind), groupId: uniqueName('tapwire-ingest-batched') };
}

/** ingestFor builds ingest for the world; `source` and `warehouse` replace Kafka's and the store's (fault wrappers). */
function ingestFor(w: World, over: { source?: LogSource; warehouse?: Warehouse } = {}): Ingest {
  const dlq = createKafkaEventSink(
    { kafka, logger: silentLogger },
    {
      lingerMs: 10,
      maxBatchEvents: 500,
      maxBufferedEvents: 10_000,
      retryBackoffMs: 100,
      topicPrefix: w.prefix,
    },
  );
  sinks.push(dlq);
  return buildIngest(
    {
      source: over.source ?? kafkaSource({ kafka, logger }),
      warehouse: over.warehouse ?? w.store.warehouse,
      dlq,
      logger,
    },
    ingestConfigSchema.parse({
      groupId: w.groupId,
      topicPrefix: w.prefix,
      flushIntervalMs: 200,
      admin: { port: 0 },
      retention: { enabled: false },
      retryBackoffMs: 200,
      maxRetryBackoffMs: 2000,
      shutdownGraceMs: 2000,
    }),
  );
}

const encoded = (e: AccessLogEvent | string) =>
  Buffer.from(typeof e === 'string' ? e : accessLogCodec.encode(e));

/** sendBatch produces one batched record of `events`, the first at `firstSeq` of `source`; resolves its offset. */
async function sendBatch(
  w: World,
  source: string,
  firstSeq: number,
  events: readonly (AccessLogEvent | string)[],
  headers: Record<string, string> = {},
): Promise<string> {
  const record = encodeBatch({ source, firstSeq: BigInt(firstSeq), events: events.map(encoded) });
  const [meta] = await producer.send({
    topic: w.prefix + TOPICS.accessLogs,
    messages: [{ key: record.key, value: record.value, headers: { ...record.headers, ...headers } }],
  });
  return meta!.baseOffset!;
}

/** sendSingles produces each event as a single-event record (the format of earlier releases). */
async function sendSingles(w: World, events: readonly AccessLogEvent[]): Promise<void> {
  await producer.send({
    topic: w.prefix + TOPICS.accessLogs,
    messages: events.map((e, i) => ({ key: `single-${i}`, value: encoded(e) })),
  });
}

/** commitless wraps a log source so its runners never commit: a process killed after inserting, before committing. */
function commitless(source: LogSource): LogSource {
  return {
    ...source,
    runner(config, handlers) {
      const runner = source.runner(config, handlers);
      return new Proxy(runner, {
        get: (target, p) => (p === 'commit' ? async () => {} : Reflect.get(target, p)),
      });
    },
  };
}

const accessLogs = (n: number, tsUs = Date.now() * 1000) =>
  Array.from({ length: n }, (_, i) =>
    exampleAccessLog({ ts: tsUs - i * 1000, status: i % 4 === 0 ? 503 : 200 }),
  );

beforeAll(async () => {
  admin = kafka.admin();
  await admin.connect();
  producer = kafka.producer();
  await producer.connect();
});

afterAll(async () => {
  for (const s of sinks) await s.close(2000).catch(() => {});
  await producer.disconnect();
  await admin.deleteTopics({ topics }).catch(() => {});
  await admin.disconnect();
  for (const db of dbs) await db.close();
  const root = createClickHouse(testClickHouseConfig('default'));
  for (const db of databases) await root.command(sql`DROP DATABASE IF EXISTS ${identifier(db)}`);
  await root.close();
});

describe.each(['clickhouse', 'duckdb'] as const)('ingest of batched records into %s', (kind) => {
  it('batched and single-event records mixed: every event stored once, under its source and sequence', async () => {
    const w = await newWorld(kind);
    const a = accessLogs(50);
    const b = accessLogs(30);
    const singles = accessLogs(20);
    const offsets = new Map<string, string>();
    for (let i = 0; i < 5; i++) {
      offsets.set(`proxy-a/${i * 10}`, await sendBatch(w, 'proxy-a', i * 10, a.slice(i * 10, i * 10 + 10)));
      if (i < 3) await sendBatch(w, 'proxy-b', 1000 + i * 10, b.slice(i * 10, i * 10 + 10));
      await sendSingles(w, singles.slice(i * 4, i * 4 + 4));
    }
    const ingest = ingestFor(w);
    await ingest.start();
    try {
      await expectExactly(kind, w.store, 100);
      const rows = new Map((await w.store.identities()).map((r) => [r.id, r]));
      a.forEach((e, i) => {
        const r = rows.get(e.id);
        expect(r).toMatchObject({ source_id: 'proxy-a', source_seq: String(i) });
        expect(r?.kafka_offset).toBe(offsets.get(`proxy-a/${i - (i % 10)}`));
      });
      for (const [i, e] of b.entries())
        expect(rows.get(e.id)).toMatchObject({ source_id: 'proxy-b', source_seq: String(1000 + i) });
      for (const e of singles) {
        const r = rows.get(e.id)!;
        expect(r.source_id).toBe(`partition:${r.kafka_partition}`);
        expect(r.source_seq).toBe(r.kafka_offset);
      }
      await vi.waitFor(() =>
        expect(ingest.pipeline.stats()).toMatchObject({
          inserted: 100,
          skippedDuplicates: 0,
          deadLettered: 0,
        }),
      );
    } finally {
      await ingest.close();
    }
    expect(await w.store.counts()).toEqual(exactly(kind, 100));
  });

  it('a resent batch (same sequences, new offsets) and one that overlaps and extends (10..25 after 10..20) are stored once, raw and rollups', async () => {
    const w = await newWorld(kind);
    const events = accessLogs(40);
    await sendBatch(w, 'proxy-r', 0, events.slice(0, 10));
    await sendBatch(w, 'proxy-r', 10, events.slice(10, 21));
    // The shipper saved no position after Kafka acknowledged 10..20: it sends them again.
    await sendBatch(w, 'proxy-r', 10, events.slice(10, 21));
    const ingest = ingestFor(w);
    await ingest.start();
    try {
      await expectExactly(kind, w.store, 21);
      // After those are stored: a resend that overlaps them and goes on.
      await sendBatch(w, 'proxy-r', 10, events.slice(10, 26));
      await expectExactly(kind, w.store, 26);
      await sendSingles(w, accessLogs(3));
      await sendBatch(w, 'proxy-r', 26, events.slice(26, 40));
      await expectExactly(kind, w.store, 43);
      await vi.waitFor(() =>
        expect(ingest.pipeline.stats()).toMatchObject({
          inserted: 43,
          skippedDuplicates: 22,
          deadLettered: 0,
        }),
      );
    } finally {
      await ingest.close();
    }
    expect(await w.store.counts()).toEqual(exactly(kind, 43));
    const seqs = (await w.store.identities())
      .filter((r) => r.source_id === 'proxy-r')
      .map((r) => Number(r.source_seq))
      .sort((x, y) => x - y);
    expect(seqs).toEqual(Array.from({ length: 40 }, (_, i) => i));
  });

  it('ingest stopped after inserting and before committing, then restarted: nothing is stored twice', async () => {
    const w = await newWorld(kind);
    const events = accessLogs(50);
    for (let i = 0; i < 30; i += 10) await sendBatch(w, 'proxy-k', i, events.slice(i, i + 10));
    await sendSingles(w, accessLogs(10));
    const first = ingestFor(w, { source: commitless(kafkaSource({ kafka, logger })) });
    await first.start();
    try {
      await expectExactly(kind, w.store, 40);
    } finally {
      await first.close();
    }
    for (let i = 30; i < 50; i += 10) await sendBatch(w, 'proxy-k', i, events.slice(i, i + 10));
    await sendSingles(w, accessLogs(5));
    // The same group, with nothing committed: everything is read again.
    const second = ingestFor(w);
    await second.start();
    try {
      await expectExactly(kind, w.store, 65);
      await vi.waitFor(() =>
        expect(second.pipeline.stats()).toMatchObject({ inserted: 25, skippedDuplicates: 40 }),
      );
    } finally {
      await second.close();
    }
    expect(await w.store.counts()).toEqual(exactly(kind, 65));
  });

  it('a batch over two days whose first day was stored and second was not when ingest stopped: restarted, no loss and no duplicate', async () => {
    const w = await newWorld(kind);
    const midnight = Math.floor(Date.now() / 1000 / DAY_S) * DAY_S;
    // Ten events in the last minute of yesterday, ten in the first of today.
    const events = Array.from({ length: 20 }, (_, i) =>
      exampleAccessLog({ ts: (midnight - 60 + (i < 10 ? i : 60 + i)) * 1_000_000 }),
    );
    let hung = 0;
    // A process that stops mid-flush: the second day's insert never completes (nor is stored).
    const stopsOnSecondDay: Warehouse = {
      ...w.store.warehouse,
      insert(table, body) {
        const firstRow = JSON.parse(Buffer.from(body[0]!).toString('utf8').split('\n')[0]!) as { ts: number };
        if (table === 'access_logs' && firstRow.ts >= midnight) {
          hung++;
          return new Promise<void>(() => {});
        }
        return w.store.warehouse.insert(table, body);
      },
    };
    await sendBatch(w, 'proxy-d', 500, events);
    const first = ingestFor(w, { warehouse: stopsOnSecondDay });
    await first.start();
    try {
      await vi.waitFor(() => expect(hung).toBe(1), { timeout: 60_000, interval: 100 });
      expect((await w.store.counts()).raw).toBe(10);
    } finally {
      await first.close();
    }
    const second = ingestFor(w);
    await second.start();
    try {
      await expectExactly(kind, w.store, 20);
      await vi.waitFor(() =>
        expect(second.pipeline.stats()).toMatchObject({ inserted: 10, skippedDuplicates: 10 }),
      );
    } finally {
      await second.close();
    }
    expect(await w.store.counts()).toEqual(exactly(kind, 20));
    const seqs = (await w.store.identities()).map((r) => Number(r.source_seq)).sort((x, y) => x - y);
    expect(seqs).toEqual(Array.from({ length: 20 }, (_, i) => 500 + i));
  });

  it('an invalid event in a batch goes to the DLQ alone with its index, the rest are stored; a record that is not a valid batch goes whole', async () => {
    const w = await newWorld(kind);
    const good = accessLogs(3);
    const notJson = '{"v":1,"id":"abc';
    const wrongType = JSON.stringify({ ...exampleAccessLog(), status: 'two hundred' });
    const batchOffset = await sendBatch(w, 'proxy-x', 0, [good[0]!, notJson, good[1]!, wrongType, good[2]!]);
    const countOffset = await sendBatch(w, 'proxy-x', 5, accessLogs(2), { 'tapwire-count': '3' });
    const versionOffset = await sendBatch(w, 'proxy-x', 7, accessLogs(2), { 'tapwire-format-version': '9' });
    const ingest = ingestFor(w);
    await ingest.start();
    try {
      await expectExactly(kind, w.store, 3);
      await vi.waitFor(async () => expect(await w.store.deadLetters()).toHaveLength(4), {
        timeout: 60_000,
        interval: 250,
      });
      const dead = await w.store.deadLetters();
      const topic = (w.prefix + TOPICS.accessLogs).replace(/[^A-Za-z0-9]/g, '_');
      const records = await w.store.identities();
      const partition = records[0]!.kafka_partition;
      expect(dead.map((d) => ({ ...d, reason: d.reason.split(':')[0] }))).toEqual([
        {
          id: `dlq_${topic}_${partition}_${batchOffset}_1`,
          source_offset: batchOffset,
          source_index: 1,
          reason: 'not_json',
          raw: Buffer.from(notJson).toString('base64'),
        },
        {
          id: `dlq_${topic}_${partition}_${batchOffset}_3`,
          source_offset: batchOffset,
          source_index: 3,
          reason: 'invalid',
          raw: Buffer.from(wrongType).toString('base64'),
        },
        expect.objectContaining({ source_offset: countOffset, source_index: null, reason: 'invalid_batch' }),
        expect.objectContaining({
          source_offset: versionOffset,
          source_index: null,
          reason: 'invalid_batch',
        }),
      ]);
      expect(dead[2]?.reason).toBe('invalid_batch: batch holds 2 lines, its count header says 3');
      expect(dead[3]?.reason).toBe('invalid_batch: unsupported ndjson-batch version "9"');
      expect(records.map((r) => [r.id, r.source_seq]).sort()).toEqual(
        [
          [good[0]!.id, '0'],
          [good[1]!.id, '2'],
          [good[2]!.id, '4'],
        ].sort(),
      );
      await vi.waitFor(() => expect(ingest.pipeline.stats()).toMatchObject({ deadLettered: 4 }));
    } finally {
      await ingest.close();
    }
  });
});
