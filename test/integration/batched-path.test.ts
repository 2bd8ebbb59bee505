import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { type ClickHouse, createClickHouse, identifier, migrate, raw, sql } from '@tapwire/clickhouse';
import { openEmission } from '@tapwire/emission';
import { kafkaBrokers } from '@tapwire/infra';
import { buildIngest, clickhouseWarehouse, type Ingest, ingestConfigSchema } from '@tapwire/ingest';
import {
  createKafkaClient,
  createKafkaEventSink,
  ensureTopics,
  kafkaSource,
  topicSpecs,
} from '@tapwire/kafka';
import { buildProxy, proxyConfigSchema } from '@tapwire/proxy';
import { accessLogCodec, TOPICS } from '@tapwire/schema';
import { encodeBatch } from '@tapwire/stream';
import { createLogger } from '@tapwire/telemetry';
import type { Admin, Kafka } from 'kafkajs';
import { Pool } from 'undici';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { exampleAccessLog } from '../support/events.js';
import {
  infraConfig,
  silentLogger,
  testClickHouseConfig,
  testKafkaConfig,
  uniqueName,
} from '../support/infra.js';
import { type RawMessage, readTopics, recordCount } from '../support/kafka-read.js';
import { startUpstream, type TestUpstream } from '../support/upstream.js';

/**
 * Issue #18 acceptance: redaction, per-source order, the DLQ and replay keep working over the
 * write-first path. Two proxies (each its own local log: two sources) ship batched records to
 * real Kafka; ingest stores them in ClickHouse; `tapwire replay --clear` rebuilds the same rows
 * and rollups from the batched records, and a replay without --clear adds nothing.
 */

const ROOT = fileURLToPath(new URL('../..', import.meta.url));
const MIGRATIONS = fileURLToPath(new URL('../../migrations', import.meta.url));
const PER_PROXY = 600;
const BATCH_EVENTS = 25;
const kafka: Kafka = createKafkaClient(testKafkaConfig(), silentLogger, 'batched-path-test');
const logger = createLogger({ name: 'batched-path-it', level: 'silent' });
const prefix = `${uniqueName('bp')}.`;
const database = uniqueName('tapwire_batched_path');
const home = mkdtempSync(join(tmpdir(), 'tapwire-batched-path-'));
let admin: Admin;
let ch: ClickHouse;
let up: TestUpstream;

/** Rows, ids, sources and ledger identities of a raw table. */
async function ledger(table: string): Promise<Record<string, number>> {
  const [r] = await ch.query<Record<string, string>>(
    sql`SELECT count() AS rows, uniqExact(id) AS ids, uniqExact(source_id) AS sources,
          uniqExact(source_id, source_seq) AS seqs FROM ${identifier(table)}`,
  );
  return Object.fromEntries(Object.entries(r ?? {}).map(([k, v]) => [k, Number(v)]));
}

/** What a user reads: per route and status, requests and exact latency quantiles from raw rows; the rollups' counts. */
async function answers(): Promise<unknown> {
  const rawRoutes = await ch.query(
    raw(`SELECT route, status, count() AS n, quantilesExact(0.5, 0.99)(duration_ms) AS q
         FROM access_logs GROUP BY route, status ORDER BY route, status`),
  );
  const [rolled] = await ch.query<Record<string, string>>(
    raw(`SELECT
           (SELECT countMerge(requests) FROM route_stats_1m) AS route_stats_1m,
           (SELECT sumMerge(errors_5xx) FROM route_stats_1m) AS errors_5xx,
           (SELECT sum(requests) FROM route_histogram_1m) AS route_histogram_1m,
           (SELECT sum(requests) FROM route_histogram_1h) AS route_histogram_1h,
           (SELECT countMerge(span_count) FROM trace_index) AS trace_index_spans`),
  );
  return {
    access_logs: await ledger('access_logs'),
    spans: await ledger('spans'),
    rawRoutes,
    rolled: Object.fromEntries(Object.entries(rolled ?? {}).map(([k, v]) => [k, Number(v)])),
  };
}

/** startProxy runs a proxy the way `tapwire proxy` does: a local log of its own, shipped in small batches. */
async function startProxy() {
  const config = proxyConfigSchema.parse({
    listen: { host: '127.0.0.1', port: 0 },
    admin: { host: '127.0.0.1', port: 0 },
    upstreams: [{ name: 'users', url: up.url, routes: ['/users/:id'], routePromoteHits: 1 }],
    emit: {
      logDir: mkdtempSync(join(home, 'proxy-log-')),
      maxBatchEvents: BATCH_EVENTS,
      lingerMs: 20,
      saturationIntervalMs: 3_600_000,
    },
  });
  const emission = await openEmission(
    { emit: config.emit, kafka: testKafkaConfig(), section: 'proxy' },
    logger,
    prefix,
  );
  const proxy = buildProxy({ sink: emission.sink, logger, emission: emission.stats }, config);
  const { proxyUrl } = await proxy.start();
  return {
    url: proxyUrl,
    async stop() {
      await proxy.close();
      await emission.close(10_000);
    },
  };
}

/** send makes `n` requests carrying secrets in the query, Authorization and Cookie; one in ten answers 503. */
async function send(url: string, n: number): Promise<number> {
  const pool = new Pool(url, { connections: 8 });
  let next = 0;
  let ok = 0;
  await Promise.all(
    Array.from({ length: 8 }, async () => {
      while (next < n) {
        const i = next++;
        const path = i % 10 === 0 ? `/users/${i}/status/503` : `/users/${i}`;
        const res = await pool.request({
          path: `${path}?api_key=CANARY_Q${i}&page=2`,
          method: 'GET',
          headers: { authorization: `Bearer CANARY_H${i}`, cookie: `sid=CANARY_C${i}` },
        });
        await res.body.dump();
        if (res.statusCode === (i % 10 === 0 ? 503 : 200)) ok++;
      }
    }),
  );
  await pool.close();
  return ok;
}

/**
 * inSourceOrder checks, partition by partition in offset order, that each source's events come
 * in sequence order without a gap (an event at or below the highest sequence seen is a resend and
 * must be the same event), and returns per source: partitions, records and events.
 */
function inSourceOrder(messages: RawMessage[]) {
  const seen = new Map<string, { partitions: Set<number>; records: Set<string>; values: string[] }>();
  const byOffset = (a: RawMessage, b: RawMessage) => {
    const d = BigInt(a.offset) - BigInt(b.offset);
    return d < 0n ? -1 : d > 0n ? 1 : 0;
  };
  for (const partition of new Set(messages.map((m) => m.partition))) {
    for (const m of messages.filter((x) => x.partition === partition).sort(byOffset)) {
      const s = seen.get(m.source!) ?? { partitions: new Set(), records: new Set(), values: [] };
      seen.set(m.source!, s);
      s.partitions.add(partition);
      s.records.add(`${partition}@${m.offset}`);
      const value = m.value.toString('utf8');
      const seq = Number(m.seq);
      if (seq < s.values.length) expect(value, `${m.source} seq ${seq} resent`).toBe(s.values[seq]);
      else if (seq === s.values.length) s.values.push(value);
      else
        throw new Error(`${m.source}: seq ${seq} at ${partition}@${m.offset} after ${s.values.length - 1}`);
    }
  }
  return new Map(
    [...seen].map(([source, s]) => [
      source,
      { partitions: s.partitions.size, records: s.records.size, events: s.values.length },
    ]),
  );
}

function tapwire(args: string[], config: string) {
  const r = spawnSync(
    process.execPath,
    ['--import', 'tsx', 'services/cli/src/main.ts', '-c', config, ...args],
    {
      cwd: ROOT,
      env: { ...process.env, TAPWIRE_TELEMETRY_LOG_LEVEL: 'warn' },
      encoding: 'utf8',
      timeout: 120_000,
    },
  );
  return { code: r.status, out: r.stdout, err: r.stderr };
}

beforeAll(async () => {
  admin = kafka.admin();
  await admin.connect();
  await ensureTopics(
    kafka,
    topicSpecs(
      { partitions: 3, replicationFactor: 1, retentionMs: 3_600_000, dlqRetentionMs: 3_600_000 },
      prefix,
    ),
  );
  await migrate(testClickHouseConfig(database), { dir: MIGRATIONS, lockSettleMs: 200 });
  ch = createClickHouse(testClickHouseConfig(database));
  up = await startUpstream();
});

afterAll(async () => {
  await up?.close();
  const topics = (await admin.listTopics()).filter((t) => t.startsWith(prefix));
  await admin.deleteTopics({ topics }).catch(() => {});
  await admin.disconnect();
  await ch?.command(sql`DROP DATABASE IF EXISTS ${identifier(database)}`);
  await ch?.close();
  rmSync(home, { recursive: true, force: true });
});

describe('the write-first path keeps redaction, order, the DLQ and replay working', () => {
  it('two proxies’ batched records: stored once with no secret, each source in order on one partition; replay --clear rebuilds the same rows and rollups', async () => {
    const proxies = [await startProxy(), await startProxy()];
    const answered = await Promise.all(proxies.map((p) => send(p.url, PER_PROXY)));
    expect(answered).toEqual([PER_PROXY, PER_PROXY]);
    for (const p of proxies) await p.stop();
    // A third source's batch with an invalid event in the middle: the DLQ gets that one alone.
    const producer = kafka.producer();
    await producer.connect();
    const good = [exampleAccessLog({ ts: Date.now() * 1000 }), exampleAccessLog({ ts: Date.now() * 1000 })];
    const invalid = JSON.stringify({ ...exampleAccessLog(), status: 'two hundred' });
    const batch = encodeBatch({
      source: 'other-proxy',
      firstSeq: 0n,
      events: [accessLogCodec.encode(good[0]!), invalid, accessLogCodec.encode(good[1]!)].map((e) =>
        Buffer.from(e),
      ),
    });
    await producer.send({
      topic: prefix + TOPICS.accessLogs,
      messages: [{ key: batch.key, value: batch.value, headers: batch.headers }],
    });
    await producer.disconnect();
    const requests = 2 * PER_PROXY;
    const accessLogs = requests + 2;

    // Each proxy's events: one partition per source, in sequence order, in batches of at most BATCH_EVENTS.
    for (const [topic, perSource] of [
      [TOPICS.accessLogs, PER_PROXY],
      [TOPICS.spans, 2 * PER_PROXY],
    ] as const) {
      const messages = await readTopics(
        kafka,
        [prefix + topic],
        (got) => got.filter((m) => m.source !== 'other-proxy').length >= 2 * perSource,
      );
      const order = inSourceOrder(messages.filter((m) => m.source !== 'other-proxy'));
      process.stdout.write(`[batched-path] ${topic}: ${JSON.stringify([...order.values()])}\n`);
      expect([...order.values()].map((o) => [o.partitions, o.events])).toEqual([
        [1, perSource],
        [1, perSource],
      ]);
      for (const o of order.values()) expect(o.records).toBeGreaterThanOrEqual(perSource / BATCH_EVENTS);
    }

    const dlq = createKafkaEventSink(
      { kafka, logger: silentLogger },
      {
        lingerMs: 10,
        maxBatchEvents: 100,
        maxBufferedEvents: 1000,
        retryBackoffMs: 100,
        topicPrefix: prefix,
      },
    );
    const ingestConfig = {
      groupId: uniqueName('batched-path-ingest'),
      topicPrefix: prefix,
      flushIntervalMs: 200,
      admin: { port: 0 },
      retention: { enabled: false },
    };
    const ingest: Ingest = buildIngest(
      { source: kafkaSource({ kafka, logger }), warehouse: clickhouseWarehouse(ch), dlq, logger },
      ingestConfigSchema.parse(ingestConfig),
    );
    await ingest.start();
    let before: unknown;
    try {
      await vi.waitFor(
        async () => {
          const a = (await answers()) as { access_logs: unknown; spans: unknown; rolled: unknown };
          expect(a.access_logs).toEqual({ rows: accessLogs, ids: accessLogs, sources: 3, seqs: accessLogs });
          expect(a.spans).toEqual({ rows: 2 * requests, ids: 2 * requests, sources: 2, seqs: 2 * requests });
          expect(a.rolled).toEqual({
            route_stats_1m: accessLogs,
            errors_5xx: PER_PROXY / 5,
            route_histogram_1m: accessLogs,
            route_histogram_1h: accessLogs,
            trace_index_spans: 2 * requests,
          });
        },
        { timeout: 60_000, interval: 250 },
      );
      await vi.waitFor(async () => expect((await ledger('dlq_events')).rows).toBe(1), {
        timeout: 30_000,
        interval: 250,
      });
      before = await answers();
    } finally {
      await ingest.close();
      await dlq.close(5000);
    }
    const [dead] = await ch.query(
      raw('SELECT source_id, toString(source_seq) AS seq, source_index, reason FROM dlq_events'),
    );
    expect(dead).toMatchObject({ source_index: 1 });
    expect((dead as { reason: string }).reason).toMatch(/^invalid: /);

    // No secret anywhere in what was stored; the query keeps its other parameters.
    const stored = JSON.stringify([
      ...(await ch.query(raw('SELECT * FROM access_logs'))),
      ...(await ch.query(raw('SELECT * FROM spans'))),
    ]);
    expect(stored).not.toMatch(/CANARY/);
    const [redacted] = await ch.query<{ n: string }>(
      raw(`SELECT count() AS n FROM access_logs WHERE query = 'api_key=[REDACTED]&page=2'`),
    );
    expect(Number(redacted?.n)).toBe(requests);

    // Replay from the batched records: --clear drops today's partitions and rebuilds them.
    const config = join(home, 'tapwire.yaml');
    writeFileSync(
      config,
      `kafka: { brokers: [${kafkaBrokers(infraConfig()).join(', ')}] }
clickhouse: { url: ${testClickHouseConfig(database).url}, database: ${database} }
ingest: { groupId: ${ingestConfig.groupId}, topicPrefix: ${prefix} }
`,
    );
    const cleared = tapwire(
      ['replay', '--from', 'now-1h', '--tables', 'access_logs,spans', '--clear'],
      config,
    );
    process.stdout.write(`[batched-path] replay --clear: ${cleared.out}${cleared.err}\n`);
    expect(cleared.code).toBe(0);
    expect(cleared.out).toMatch(
      new RegExp(
        `^inserted ${accessLogs + 2 * requests}, already stored 0, invalid 1, cleared \\d+ partitions$`,
        'm',
      ),
    );
    expect(await answers()).toEqual(before);
    // Per topic it reports the records read: a batched record holds many events.
    for (const [table, topic] of [
      ['access_logs', TOPICS.accessLogs],
      ['spans', TOPICS.spans],
    ] as const) {
      const records = await recordCount(admin, prefix + topic);
      expect(records).toBeLessThan((await ledger(table)).rows! / 10);
      expect(cleared.out).toContain(`  ${table}\t${records} records from ${prefix + topic}\n`);
    }

    const again = tapwire(['replay', '--from', 'now-1h', '--tables', 'access_logs,spans'], config);
    expect(again.code).toBe(0);
    expect(again.out).toMatch(
      new RegExp(
        `^inserted 0, already stored ${accessLogs + 2 * requests}, invalid 1, cleared 0 partitions$`,
        'm',
      ),
    );
    expect(await answers()).toEqual(before);
    expect((await ledger('dlq_events')).rows).toBe(1);
  }, 240_000);
});
