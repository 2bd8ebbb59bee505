import { type ChildProcess, spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { type ClickHouse, createClickHouse, identifier, migrate, raw, sql } from '@tapwire/clickhouse';
import { clickhouseDown, clickhouseUp } from '@tapwire/infra';
import {
  buildIngest,
  clickhouseWarehouse,
  createRetentionJob,
  type Ingest,
  ingestConfigSchema,
  replay,
  STREAMS,
} from '@tapwire/ingest';
import {
  createKafkaClient,
  createKafkaEventSink,
  ensureTopics,
  kafkaSource,
  topicSpecs,
} from '@tapwire/kafka';
import { type AccessLogEvent, type AccessLogEventV1, TOPICS } from '@tapwire/schema';
import type { EventSink } from '@tapwire/stream';
import { createLogger } from '@tapwire/telemetry';
import type { Admin, Kafka, Producer } from 'kafkajs';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { exampleAccessLog, exampleSaturation, exampleSpan, exampleSpanV1 } from '../support/events.js';
import {
  infraConfig,
  silentLogger,
  testClickHouseConfig,
  testKafkaConfig,
  uniqueName,
} from '../support/infra.js';

const ROOT = fileURLToPath(new URL('../..', import.meta.url));
const MIGRATIONS = fileURLToPath(new URL('../../migrations', import.meta.url));
const kafka: Kafka = createKafkaClient(testKafkaConfig(), silentLogger, 'ingest-test');
const logger = createLogger({
  name: 'ingest-it',
  level: (process.env.TEST_LOG_LEVEL as 'silent') ?? 'silent',
});
let admin: Admin;
let producer: Producer;
const databases: string[] = [];
const topics: string[] = [];

interface World {
  prefix: string;
  database: string;
  ch: ClickHouse;
  sink: EventSink;
}

async function newWorld(): Promise<World> {
  const prefix = `${uniqueName('i')}.`;
  const database = uniqueName('tapwire_ingest');
  databases.push(database);
  const specs = topicSpecs(
    { partitions: 3, replicationFactor: 1, retentionMs: 3_600_000, dlqRetentionMs: 3_600_000 },
    prefix,
  );
  topics.push(...specs.map((s) => s.topic));
  await ensureTopics(kafka, specs);
  await migrate(testClickHouseConfig(database), { dir: MIGRATIONS, lockSettleMs: 200 });
  const ch = createClickHouse(testClickHouseConfig(database));
  const sink = createKafkaEventSink(
    { kafka, logger: silentLogger },
    {
      lingerMs: 10,
      maxBatchEvents: 1000,
      maxBufferedEvents: 100_000,
      retryBackoffMs: 100,
      topicPrefix: prefix,
    },
  );
  return { prefix, database, ch, sink };
}

function ingestFor(w: World, over: Record<string, unknown> = {}): Ingest {
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
  return buildIngest(
    { source: kafkaSource({ kafka, logger }), warehouse: clickhouseWarehouse(w.ch), dlq, logger },
    ingestConfigSchema.parse({
      groupId: uniqueName('tapwire-ingest-test'),
      topicPrefix: w.prefix,
      flushIntervalMs: 200,
      admin: { port: 0 },
      retention: { enabled: false },
      retryBackoffMs: 200,
      maxRetryBackoffMs: 2000,
      ...over,
    }),
  );
}

// The proxy's policy decisions a round trip carries (access logs version 2); the first is none,
// what a version-1 log is upgraded to.
const POLICY_CASES: Partial<AccessLogEvent>[] = [
  {},
  { cache: 'hit', target: '10.0.0.1:8080', ratelimit_limit: 1000, ratelimit_remaining: 998 },
  { cache: 'miss', target: '10.0.0.2:8080', retries: 2 },
  {
    status: 429,
    error_kind: 'rate_limited',
    cache: '',
    ratelimit_limit: 4_294_967_295,
    ratelimit_remaining: 0,
  },
];

/** accessLogV1 is an access log as a proxy before version 2 wrote it. */
function accessLogV1(e: AccessLogEvent): AccessLogEventV1 {
  const { cache: _c, target: _t, retries: _r, ratelimit_limit: _l, ratelimit_remaining: _rr, ...v1 } = e;
  return { ...v1, v: 1, error_kind: e.error_kind as AccessLogEventV1['error_kind'] };
}

async function count(ch: ClickHouse, table: string): Promise<{ n: number; ids: number }> {
  const [r] = await ch.query<{ n: string; ids: string }>(
    sql`SELECT count() AS n, uniqExact(id) AS ids FROM ${identifier(table)}`,
  );
  return { n: Number(r?.n), ids: Number(r?.ids) };
}

/** rollupRequests counts the requests each access-log rollup holds. */
async function rollupRequests(ch: ClickHouse): Promise<Record<string, number>> {
  const [r] = await ch.query<Record<string, string>>(
    raw(`SELECT
           (SELECT countMerge(requests) FROM route_stats_1m) AS route_stats_1m,
           (SELECT sum(requests) FROM route_histogram_1m) AS route_histogram_1m,
           (SELECT sum(requests) FROM route_histogram_1h) AS route_histogram_1h,
           (SELECT sumIf(requests, facet = 0) FROM slo_counts_1m) AS slo_counts_1m,
           (SELECT sumIf(requests, facet = 0) FROM slo_counts_1h) AS slo_counts_1h,
           (SELECT sum(requests) FROM policy_stats_1m) AS policy_stats_1m,
           (SELECT sum(requests) FROM policy_stats_1h) AS policy_stats_1h`),
  );
  return Object.fromEntries(Object.entries(r ?? {}).map(([k, v]) => [k, Number(v)]));
}

/**
 * expectRollupsAt waits until every rollup holds exactly `n` requests. ClickHouse makes the raw
 * part visible before it has pushed the block to the materialized views, so a raw count can be
 * complete a moment before the rollups are; an exact count that is never reached (a lost or
 * doubled block) still fails.
 */
async function expectRollupsAt(ch: ClickHouse, n: number): Promise<void> {
  const want = {
    route_stats_1m: n,
    route_histogram_1m: n,
    route_histogram_1h: n,
    slo_counts_1m: n,
    slo_counts_1h: n,
    policy_stats_1m: n,
    policy_stats_1h: n,
  };
  await vi.waitFor(async () => expect(await rollupRequests(ch)).toEqual(want), {
    timeout: 30_000,
    interval: 250,
  });
}

beforeAll(async () => {
  admin = kafka.admin();
  await admin.connect();
  producer = kafka.producer();
  await producer.connect();
});
afterAll(async () => {
  await producer.disconnect();
  await admin.deleteTopics({ topics }).catch(() => {});
  await admin.disconnect();
  const root = createClickHouse(testClickHouseConfig('default'));
  for (const db of databases) await root.command(sql`DROP DATABASE IF EXISTS ${identifier(db)}`);
  await root.close();
});

describe('ingest: Kafka → ClickHouse', () => {
  it('N events produced become exactly N rows per table, field by field', async () => {
    const w = await newWorld();
    const now = Date.now() * 1000;
    // A quarter from a proxy before version 2 (ingest upgrades them: no policy decided anything);
    // the others with the proxy's policy decisions: cache, target, retries, rate limit.
    const logs = Array.from({ length: 3000 }, (_, i) =>
      exampleAccessLog({
        ts: now - i * 1000,
        status: i % 10 === 0 ? 503 : 200,
        duration_ms: (i % 100) + 0.5,
        ...POLICY_CASES[i % 4],
      }),
    );
    const sent = logs.map((e, i) => (i % 4 === 0 ? accessLogV1(e) : e));
    // The proxy writes version 1 (ingest upgrades it); apps' OTLP spans arrive as version 2.
    const spans = Array.from({ length: 1500 }, (_, i) =>
      i % 2 === 0
        ? exampleSpanV1({ ts: now, start: now })
        : exampleSpan({
            ts: now,
            start: now,
            resource: { 'service.version': `1.${i}`, 'host.name': 'web-1' },
            scope_name: 'io.opentelemetry.http',
            scope_version: '2.1.0',
            events: [{ time: now + i, name: 'retry', attributes: { attempt: '2' } }],
            links: [{ trace_id: 'ab'.repeat(16), span_id: 'cd'.repeat(8), attributes: {} }],
          }),
    );
    const samples = Array.from({ length: 50 }, (_, i) =>
      exampleSaturation({
        ts: now - i * 1_000_000,
        instance: `p${i % 2}`,
        targets:
          i % 2 === 0
            ? []
            : [
                {
                  upstream: 'users',
                  target: '10.0.0.1:8080',
                  state: 'healthy',
                  in_flight: 2,
                  consecutive_failures: 0,
                },
                {
                  upstream: 'users',
                  target: '10.0.0.2:8080',
                  state: 'ejected',
                  in_flight: 0,
                  consecutive_failures: i,
                },
              ],
      }),
    );
    for (const e of sent) w.sink.emit(TOPICS.accessLogs, e);
    for (const e of spans) w.sink.emit(TOPICS.spans, e);
    for (const e of samples) w.sink.emit(TOPICS.saturation, e);
    await w.sink.flush();

    const ingest = ingestFor(w, { lagSampleIntervalMs: 1000 });
    await ingest.start();
    try {
      await vi.waitFor(async () => expect((await count(w.ch, 'access_logs')).n).toBe(3000), {
        timeout: 60_000,
        interval: 250,
      });
      await vi.waitFor(async () => expect((await count(w.ch, 'spans')).n).toBe(1500), {
        timeout: 30_000,
        interval: 250,
      });
      await vi.waitFor(async () => expect((await count(w.ch, 'saturation')).n).toBe(50), {
        timeout: 30_000,
        interval: 250,
      });
      expect(await count(w.ch, 'access_logs')).toEqual({ n: 3000, ids: 3000 });
      await expectRollupsAt(w.ch, 3000);

      const rows = await w.ch.query<Record<string, unknown>>(raw('SELECT * FROM access_logs'));
      const byId = new Map(rows.map((r) => [r.id as string, r]));
      for (const e of logs) {
        const r = byId.get(e.id)!;
        const back: AccessLogEvent = {
          v: 2,
          id: r.id as string,
          ts: Number(r.ts_us),
          tenant: r.tenant as string,
          trace_id: r.trace_id as string,
          span_id: r.span_id as string,
          service: r.service as string,
          upstream: r.upstream as string,
          route: r.route as string,
          method: r.method as AccessLogEvent['method'],
          status: r.status as number,
          duration_ms: r.duration_ms as number,
          upstream_ms: r.upstream_ms as number,
          bytes_in: Number(r.bytes_in),
          bytes_out: Number(r.bytes_out),
          consumer: r.consumer as string,
          client_address: r.client_address as string,
          server_address: r.server_address as string,
          user_agent: r.user_agent as string,
          path: r.path as string,
          query: r.query as string,
          error_kind: r.error_kind as AccessLogEvent['error_kind'],
          cache: r.cache as AccessLogEvent['cache'],
          target: r.target as string,
          retries: Number(r.retries),
          ratelimit_limit: Number(r.ratelimit_limit),
          ratelimit_remaining: Number(r.ratelimit_remaining),
        };
        expect(back).toEqual(e);
        expect(r.ts).toBe(
          new Date(Math.floor(e.ts / 1e6) * 1000).toISOString().replace('T', ' ').slice(0, 19),
        );
      }
      const spanRows = await w.ch.query<{
        id: string;
        attr_keys: string[];
        attr_values: string[];
        duration_us: string;
        resource_keys: string[];
        resource_values: string[];
        scope_name: string;
        scope_version: string;
        events_json: string;
        links_json: string;
      }>(
        raw(
          'SELECT id, attr_keys, attr_values, duration_us, resource_keys, resource_values, scope_name, scope_version, events_json, links_json FROM spans',
        ),
      );
      const spanById = new Map(spanRows.map((r) => [r.id, r]));
      for (const s of spans) {
        const r = spanById.get(s.id)!;
        expect(Object.fromEntries(r.attr_keys.map((k, i) => [k, r.attr_values[i]]))).toEqual(s.attributes);
        expect(Number(r.duration_us)).toBe(s.duration);
        const v2 = s.v === 2 ? s : { resource: {}, scope_name: '', scope_version: '', events: [], links: [] };
        expect({
          resource: Object.fromEntries(r.resource_keys.map((k, i) => [k, r.resource_values[i]])),
          scope_name: r.scope_name,
          scope_version: r.scope_version,
          events: JSON.parse(r.events_json),
          links: JSON.parse(r.links_json),
        }).toEqual({
          resource: v2.resource,
          scope_name: v2.scope_name,
          scope_version: v2.scope_version,
          events: v2.events,
          links: v2.links,
        });
      }
      // Saturation targets as parallel arrays; samples without targets hold empty ones.
      const targetRows = await w.ch.query<Record<string, unknown[]> & { id: string }>(
        raw(
          'SELECT id, target_upstreams, target_addresses, target_states, target_in_flight, target_consecutive_failures FROM saturation',
        ),
      );
      const targetsById = new Map(targetRows.map((r) => [r.id, r]));
      for (const e of samples) {
        const r = targetsById.get(e.id)!;
        expect(
          r.target_upstreams!.map((upstream, k) => ({
            upstream,
            target: r.target_addresses![k],
            state: r.target_states![k],
            in_flight: r.target_in_flight![k],
            consecutive_failures: r.target_consecutive_failures![k],
          })),
        ).toEqual(e.targets);
      }
      // The policy rollups count every decision once.
      const [policy] = await w.ch.query<Record<string, string>>(
        raw(`SELECT sum(requests) AS requests, sum(cache_hits) AS hits, sum(cache_misses) AS misses,
          sum(cache_stale) AS stale, sum(rate_limited) AS rate_limited, sum(retries) AS retries FROM policy_stats_1h`),
      );
      expect(policy).toEqual({
        requests: '3000',
        hits: '750',
        misses: '750',
        stale: '0',
        rate_limited: '750',
        retries: '1500',
      });
      await vi.waitFor(() =>
        expect(ingest.pipeline.stats()).toMatchObject({
          inserted: 4550,
          deadLettered: 0,
          clickhouseUp: true,
        }),
      );
      // Lag is on /metrics and, for dashboards, in the consumer_lag table.
      const metrics = await (await fetch(`${await adminUrl(ingest)}/metrics`)).text();
      expect(metrics).toMatch(
        /^tapwire_ingest_consumer_lag\{topic="[^"]+tapwire\.access\.v1",partition="\d"\} 0$/m,
      );
      // The server's version and what ingest uses of it: nothing beyond the portable SQL on 18.16.
      expect(metrics).toMatch(
        /^tapwire_ingest_clickhouse_info\{version="18\.16\.1",query_params="0",ttl="0"\} 1$/m,
      );
      expect(await (await fetch(`${await adminUrl(ingest)}/readyz`)).json()).toMatchObject({
        status: 'ready',
        store: { kind: 'clickhouse', ok: true, version: '18.16.1', queryParams: false, ttl: false },
      });
      await vi.waitFor(
        async () => {
          const lagRows = await w.ch.query<{ topic: string; lag: string }>(
            raw(
              "SELECT topic, lag FROM consumer_lag WHERE topic LIKE '%tapwire.access.v1' ORDER BY ts DESC LIMIT 1 BY topic, partition",
            ),
          );
          expect(lagRows.length).toBe(3);
          expect(lagRows.every((r) => r.lag === '0')).toBe(true);
        },
        { timeout: 10_000, interval: 500 },
      );
    } finally {
      await ingest.close();
      await w.sink.close();
    }
    // Stopped, nothing arrives late in a rollup: still exactly one count per request.
    expect(await rollupRequests(w.ch)).toEqual({
      route_stats_1m: 3000,
      route_histogram_1m: 3000,
      route_histogram_1h: 3000,
      slo_counts_1m: 3000,
      slo_counts_1h: 3000,
      policy_stats_1m: 3000,
      policy_stats_1h: 3000,
    });
  });

  it('dead-letters garbage, truncated JSON, wrong types, unknown versions and oversized messages; neighbours land', async () => {
    const w = await newWorld();
    const good = Array.from({ length: 6 }, () => exampleAccessLog({ ts: Date.now() * 1000 }));
    const bad: [string, string | Buffer][] = [
      ['not_json', 'garbage'],
      ['not_json', '{"v":1,"id":"abc'],
      ['invalid', JSON.stringify({ ...exampleAccessLog(), status: 'two hundred' })],
      ['unknown_version', JSON.stringify({ ...exampleAccessLog(), v: 7 })],
      ['too_large', JSON.stringify({ ...exampleAccessLog(), user_agent: 'x'.repeat(1_100_000) })],
    ];
    const messages = [
      good[0],
      bad[0],
      good[1],
      bad[1],
      good[2],
      bad[2],
      good[3],
      bad[3],
      good[4],
      bad[4],
      good[5],
    ].map((m) => ({
      key: 'same-partition',
      value: Array.isArray(m) ? m[1] : JSON.stringify(m),
    }));
    await producer.send({ topic: w.prefix + TOPICS.accessLogs, messages });
    const ingest = ingestFor(w);
    await ingest.start();
    try {
      await vi.waitFor(async () => expect((await count(w.ch, 'access_logs')).n).toBe(6), {
        timeout: 60_000,
        interval: 250,
      });
      await vi.waitFor(async () => expect((await count(w.ch, 'dlq_events')).n).toBe(5), {
        timeout: 30_000,
        interval: 250,
      });
      const ids = (await w.ch.query<{ id: string }>(raw('SELECT id FROM access_logs')))
        .map((r) => r.id)
        .sort();
      expect(ids).toEqual(good.map((g) => g.id).sort());
      const dlq = await w.ch.query<{
        reason: string;
        source_topic: string;
        source_offset: string;
        raw_base64: string;
        consumer_group: string;
      }>(
        raw(
          'SELECT reason, source_topic, toString(source_offset) AS source_offset, raw_base64, consumer_group FROM dlq_events ORDER BY source_offset',
        ),
      );
      expect(dlq.map((d) => d.source_offset)).toEqual(['1', '3', '5', '7', '9']);
      expect(dlq.map((d) => d.reason.split(':')[0])).toEqual(bad.map((b) => b[0]));
      expect(dlq[2]?.reason).toMatch(/^invalid: status: /);
      expect(dlq[3]?.reason).toBe('unknown_version: v: unknown access_log version 7 (known: 1, 2)');
      expect(Buffer.from(dlq[0]!.raw_base64, 'base64').toString()).toBe('garbage');
      expect(dlq.every((d) => d.source_topic === w.prefix + TOPICS.accessLogs)).toBe(true);
      expect(ingest.pipeline.stats().deadLettered).toBe(5);
      const metrics = await (await fetch(`${await adminUrl(ingest)}/metrics`)).text();
      expect(metrics).toMatch(
        new RegExp(
          `tapwire_ingest_events_total\\{topic="${w.prefix.replace('.', '\\.')}tapwire\\.access\\.v1",outcome="dead_lettered"\\} 5`,
        ),
      );
    } finally {
      await ingest.close();
      await w.sink.close();
    }
  });

  // A server stopping mid-insert: the first access-log insert is stored (with one rollup's view
  // detached for it when `detached` is set, as when the server stops between pushing two views),
  // then fails as if the answer were lost. Through our ClickHouse interface, on the real server.
  it.each([
    { lostAnswer: 'stored whole, answer lost', detached: undefined, repairs: 0 },
    { lostAnswer: 'stored in raw and some rollups only', detached: 'route_stats_1m_mv', repairs: 1 },
  ])(
    'an insert $lostAnswer is not inserted twice, and every rollup ends exact',
    async ({ detached, repairs }) => {
      const w = await newWorld();
      let lost = 0;
      const ch: ClickHouse = {
        ...w.ch,
        async insertNdjson(table, body, options) {
          if (table !== 'access_logs' || lost > 0) return w.ch.insertNdjson(table, body, options);
          // Rows of the body: NDJSON, one per line.
          lost =
            body
              .map((piece) => Buffer.from(piece).toString('utf8'))
              .join('')
              .split('\n').length - 1;
          if (detached) await w.ch.command(sql`DETACH TABLE ${identifier(detached)}`);
          try {
            await w.ch.insertNdjson(table, body, options);
          } finally {
            if (detached) await w.ch.command(sql`ATTACH TABLE ${identifier(detached)}`);
          }
          throw new Error('socket hang up');
        },
      };
      const now = Date.now() * 1000;
      for (let i = 0; i < 500; i++)
        w.sink.emit(
          TOPICS.accessLogs,
          exampleAccessLog({ ts: now - i * 1000, status: i % 5 === 0 ? 502 : 200 }),
        );
      await w.sink.flush();
      const ingest = ingestFor({ ...w, ch });
      await ingest.start();
      try {
        // The retry (after its backoff) finds the lost insert's rows stored and skips them.
        await vi.waitFor(
          () => {
            expect(lost).toBeGreaterThan(0);
            expect(ingest.pipeline.stats()).toMatchObject({
              insertFailures: 1,
              skippedDuplicates: lost,
              rollupRepairs: repairs,
              rollupMismatches: 0,
            });
          },
          { timeout: 30_000, interval: 100 },
        );
        await expectRollupsAt(w.ch, 500);
        expect(await count(w.ch, 'access_logs')).toEqual({ n: 500, ids: 500 });
        const [errors] = await w.ch.query<{ e5: string }>(
          raw('SELECT sumMerge(errors_5xx) AS e5 FROM route_stats_1m'),
        );
        expect(Number(errors?.e5)).toBe(100);
        const metrics = await (await fetch(`${await adminUrl(ingest)}/metrics`)).text();
        const repaired = 'tapwire_ingest_rollup_checks_total{table="route_stats_1m",outcome="repaired"} 1';
        expect(metrics.includes(repaired)).toBe(repairs === 1);
        // The repair's temporary view and table are gone.
        const [left] = await w.ch.query<{ n: string }>(
          sql`SELECT count() AS n FROM system.tables WHERE database = ${w.database} AND name LIKE 'tapwire_repair_%'`,
        );
        expect(Number(left?.n)).toBe(0);
      } finally {
        await ingest.close();
      }
      expect(await rollupRequests(w.ch)).toEqual({
        route_stats_1m: 500,
        route_histogram_1m: 500,
        route_histogram_1h: 500,
        slo_counts_1m: 500,
        slo_counts_1h: 500,
        policy_stats_1m: 500,
        policy_stats_1h: 500,
      });
    },
  );

  it('ClickHouse stopped mid-stream for 30 s: consumption pauses, nothing is lost or duplicated', async () => {
    const w = await newWorld();
    const ingest = ingestFor(w);
    await ingest.start();
    const url = await adminUrl(ingest);
    let produced = 0;
    let producing = true;
    const producerLoop = (async () => {
      while (producing) {
        for (let i = 0; i < 20; i++)
          w.sink.emit(TOPICS.accessLogs, exampleAccessLog({ ts: Date.now() * 1000 }));
        produced += 20;
        await new Promise((r) => setTimeout(r, 100));
      }
    })();
    const cfg = infraConfig();
    try {
      await new Promise((r) => setTimeout(r, 3000));
      await clickhouseDown(cfg, () => {});
      await vi.waitFor(async () => expect((await fetch(`${url}/readyz`)).status).toBe(503), {
        timeout: 20_000,
        interval: 250,
      });
      await new Promise((r) => setTimeout(r, 30_000));
      await clickhouseUp(cfg, () => {});
    } finally {
      producing = false;
      await producerLoop;
      await clickhouseUp(cfg, () => {});
    }
    await w.sink.flush();
    try {
      await vi.waitFor(async () => expect((await count(w.ch, 'access_logs')).n).toBe(produced), {
        timeout: 90_000,
        interval: 500,
      });
      expect(await count(w.ch, 'access_logs')).toEqual({ n: produced, ids: produced });
      await expectRollupsAt(w.ch, produced);
      expect((await fetch(`${url}/readyz`)).status).toBe(200);
      expect(ingest.pipeline.stats().insertFailures).toBeGreaterThan(0);
    } finally {
      await ingest.close();
      await w.sink.close();
    }
    // Stopped, nothing arrives late in a rollup: still exactly one count per request.
    expect(await rollupRequests(w.ch)).toEqual({
      route_stats_1m: produced,
      route_histogram_1m: produced,
      route_histogram_1h: produced,
      slo_counts_1m: produced,
      slo_counts_1h: produced,
      policy_stats_1m: produced,
      policy_stats_1h: produced,
    });
  }, 180_000);

  it('a consumer SIGKILLed mid-stream and restarted loses nothing and inserts nothing twice', async () => {
    const w = await newWorld();
    const env = {
      ...process.env,
      TAPWIRE_KAFKA_BROKERS: testKafkaConfig().brokers.join(','),
      TAPWIRE_CLICKHOUSE_URL: testClickHouseConfig(w.database).url,
      TAPWIRE_CLICKHOUSE_DATABASE: w.database,
      TAPWIRE_INGEST_TOPIC_PREFIX: w.prefix,
      TAPWIRE_INGEST_GROUP_ID: uniqueName('tapwire-ingest-kill'),
      TAPWIRE_INGEST_FLUSH_INTERVAL_MS: '100',
      TAPWIRE_INGEST_ADMIN_PORT: '0',
      TAPWIRE_INGEST_RETENTION_ENABLED: 'false',
      TAPWIRE_TELEMETRY_LOG_LEVEL: 'warn',
    };
    const start = (): ChildProcess =>
      spawn(process.execPath, ['--import', 'tsx', 'services/ingest/src/main.ts'], {
        cwd: ROOT,
        env,
        stdio: ['ignore', 'ignore', 'inherit'],
      });
    let produced = 0;
    let producing = true;
    const producerLoop = (async () => {
      while (producing) {
        for (let i = 0; i < 50; i++)
          w.sink.emit(TOPICS.accessLogs, exampleAccessLog({ ts: Date.now() * 1000 }));
        produced += 50;
        await new Promise((r) => setTimeout(r, 20));
      }
    })();
    let child = start();
    try {
      await vi.waitFor(async () => expect((await count(w.ch, 'access_logs')).n).toBeGreaterThan(500), {
        timeout: 60_000,
        interval: 100,
      });
      for (let kill = 0; kill < 3; kill++) {
        child.kill('SIGKILL');
        await new Promise((r) => child.once('exit', r));
        child = start();
        await new Promise((r) => setTimeout(r, 2500));
      }
    } finally {
      producing = false;
      await producerLoop;
    }
    await w.sink.flush();
    try {
      await vi.waitFor(async () => expect((await count(w.ch, 'access_logs')).n).toBe(produced), {
        timeout: 90_000,
        interval: 500,
      });
      expect(await count(w.ch, 'access_logs')).toEqual({ n: produced, ids: produced });
      await expectRollupsAt(w.ch, produced);
    } finally {
      child.kill('SIGTERM');
      await new Promise((r) => child.once('exit', r));
      await w.sink.close();
    }
    // Stopped, nothing arrives late in a rollup: still exactly one count per request.
    expect(await rollupRequests(w.ch)).toEqual({
      route_stats_1m: produced,
      route_histogram_1m: produced,
      route_histogram_1h: produced,
      slo_counts_1m: produced,
      slo_counts_1h: produced,
      policy_stats_1m: produced,
      policy_stats_1h: produced,
    });
  }, 240_000);
});

describe('replay and retention', () => {
  async function summaryOf(ch: ClickHouse) {
    const [raw] = await ch.query<Record<string, unknown>>(
      sql`SELECT count() AS n, countIf(status >= 500) AS e5, quantilesExact(0.5, 0.9, 0.99)(duration_ms) AS q FROM access_logs`,
    );
    const [roll] = await ch.query<Record<string, unknown>>(
      sql`SELECT countMerge(requests) AS n, sumMerge(errors_5xx) AS e5, quantilesTDigestMerge(0.5, 0.9, 0.99)(latency_ms) AS q FROM route_stats_1m`,
    );
    return { raw, roll };
  }

  /**
   * expectRestored checks a replay against the summary before it: the raw table and the rollup's
   * counts exactly; the rollup's t-digest quantiles within 1% of the exact ones, as before the
   * replay — a t-digest depends on how the rows were split into inserts, which replay may split
   * differently (seen in one run of four: 497.512 for 497.506).
   */
  async function expectRestored(ch: ClickHouse, before: Awaited<ReturnType<typeof summaryOf>>) {
    const after = await summaryOf(ch);
    expect(after.raw).toEqual(before.raw);
    expect([after.roll?.n, after.roll?.e5]).toEqual([before.roll?.n, before.roll?.e5]);
    const exact = before.raw?.q as number[];
    const approx = (after.roll?.q ?? []) as number[];
    expect(approx.length).toBe(exact.length);
    for (const [i, q] of approx.entries()) expect(Math.abs(q - exact[i]!) / exact[i]!).toBeLessThan(0.01);
  }

  it('replay after truncating the tables restores the same counts and quantiles; with --clear, rerunning changes nothing', async () => {
    const w = await newWorld();
    const now = Date.now();
    const events = Array.from({ length: 2000 }, (_, i) =>
      exampleAccessLog({
        ts: (now - (i % 600) * 1000) * 1000,
        status: i % 7 === 0 ? 500 : 200,
        duration_ms: 1 + ((i * 37) % 997),
      }),
    );
    for (const e of events) w.sink.emit(TOPICS.accessLogs, e);
    await w.sink.flush();
    const ingest = ingestFor(w);
    await ingest.start();
    await vi.waitFor(async () => expect((await count(w.ch, 'access_logs')).n).toBe(2000), {
      timeout: 60_000,
      interval: 250,
    });
    await ingest.close();
    const before = await summaryOf(w.ch);
    expect(before.raw?.n).toBe('2000');
    // The rollup agrees with the raw table: counts exactly, quantiles (t-digest) within 1%.
    expect(before.roll?.n).toBe(before.raw?.n);
    expect(before.roll?.e5).toBe(before.raw?.e5);
    const exact = before.raw?.q as number[];
    const approx = (before.roll?.q ?? []) as number[];
    for (const [i, q] of approx.entries()) expect(Math.abs(q - exact[i]!) / exact[i]!).toBeLessThan(0.01);

    await w.ch.command(raw('TRUNCATE TABLE access_logs'));
    await w.ch.command(raw('TRUNCATE TABLE route_stats_1m'));
    expect((await count(w.ch, 'access_logs')).n).toBe(0);

    const config = ingestConfigSchema.parse({
      topicPrefix: w.prefix,
      groupId: uniqueName('g'),
      flushIntervalMs: 200,
    });
    let progress = 0;
    const summary = await replay(
      { source: kafkaSource({ kafka, logger }), warehouse: clickhouseWarehouse(w.ch), logger },
      config,
      {
        fromMs: now - 3_600_000,
        tables: ['access_logs'],
        clear: false,
        onProgress: (done) => {
          progress = done;
        },
      },
    );
    expect(summary).toMatchObject({ inserted: 2000, skippedDuplicates: 0, invalid: 0 });
    expect(summary.topics).toEqual([
      { topic: w.prefix + TOPICS.accessLogs, table: 'access_logs', events: 2000 },
    ]);
    expect(progress).toBe(2000);
    await expectRestored(w.ch, before);

    const again = await replay(
      { source: kafkaSource({ kafka, logger }), warehouse: clickhouseWarehouse(w.ch), logger },
      config,
      {
        fromMs: now - 3_600_000,
        tables: ['access_logs'],
        clear: false,
      },
    );
    expect(again).toMatchObject({ inserted: 0, skippedDuplicates: 2000 });
    await expectRestored(w.ch, before);

    const cleared = await replay(
      { source: kafkaSource({ kafka, logger }), warehouse: clickhouseWarehouse(w.ch), logger },
      config,
      {
        fromMs: now - 3_600_000,
        tables: ['access_logs'],
        clear: true,
      },
    );
    expect(cleared.clearedPartitions.length).toBeGreaterThan(0);
    expect(cleared.clearedPartitions.some((p) => p.startsWith('route_stats_1m/'))).toBe(true);
    expect(cleared.inserted).toBe(2000);
    await expectRestored(w.ch, before);
    // --clear rebuilt every rollup of the days it cleared, the SLO counts included: each request
    // once per facet, per exact status as in the raw rows.
    expect(cleared.clearedPartitions.some((p) => p.startsWith('slo_counts_1h/'))).toBe(true);
    expect(await rollupRequests(w.ch)).toEqual({
      route_stats_1m: 2000,
      route_histogram_1m: 2000,
      route_histogram_1h: 2000,
      slo_counts_1m: 2000,
      slo_counts_1h: 2000,
      policy_stats_1m: 2000,
      policy_stats_1h: 2000,
    });
    const facets = await w.ch.query<{ f: number; n: string }>(
      raw(`SELECT toUInt16(facet) AS f, toString(sum(requests)) AS n FROM slo_counts_1m GROUP BY f
           UNION ALL SELECT toUInt16(10 + facet) AS f, toString(sum(requests)) AS n FROM slo_counts_1h GROUP BY f`),
    );
    expect(facets.map((r) => [Number(r.f), r.n]).sort((a, b) => Number(a[0]) - Number(b[0]))).toEqual(
      [0, 1, 10, 11, 12].map((f) => [f, '2000']),
    );
    const rawByStatus = await w.ch.query<{ s: number; n: string }>(
      raw('SELECT toInt32(status) AS s, toString(count()) AS n FROM access_logs GROUP BY s ORDER BY s'),
    );
    expect(rawByStatus.map((r) => r.s)).toEqual([200, 500]);
    expect(
      await w.ch.query(
        raw(
          'SELECT toInt32(value) AS s, toString(sum(requests)) AS n FROM slo_counts_1h WHERE facet = 0 GROUP BY s ORDER BY s',
        ),
      ),
    ).toEqual(rawByStatus);
    await w.sink.close();
  }, 120_000);

  it('retention drops day partitions older than each table’s retention and records the run', async () => {
    const w = await newWorld();
    const day = 86_400_000;
    const now = Date.now();
    const ages = [0, 5, 40];
    const rows = ages.map((d, i) =>
      STREAMS[0]!.toRow(exampleAccessLog({ ts: (now - d * day) * 1000 }), 0, String(i)),
    );
    await w.ch.insert('access_logs', rows);
    const job = createRetentionJob(
      { warehouse: clickhouseWarehouse(w.ch), logger, instance: 'test' },
      ingestConfigSchema.parse({ retention: { days: { access_logs: 30, route_stats_1m: 3 } } }).retention,
    );
    const runs = await job.runOnce();
    const dayId = (ms: number) => new Date(ms).toISOString().slice(0, 10).replace(/-/g, '');
    expect(runs.find((r) => r.table === 'access_logs')).toEqual({
      table: 'access_logs',
      retentionDays: 30,
      dropped: [dayId(now - 40 * day)],
      error: '',
    });
    expect(runs.find((r) => r.table === 'route_stats_1m')?.dropped).toEqual([
      dayId(now - 40 * day),
      dayId(now - 5 * day),
    ]);
    expect((await count(w.ch, 'access_logs')).n).toBe(2);
    const recorded = await w.ch.query<{ table_name: string; dropped_partitions: string[] }>(
      raw(
        "SELECT table_name, dropped_partitions FROM retention_runs WHERE table_name IN ('access_logs', 'route_stats_1m') ORDER BY table_name",
      ),
    );
    expect(recorded).toEqual([
      { table_name: 'access_logs', dropped_partitions: [dayId(now - 40 * day)] },
      { table_name: 'route_stats_1m', dropped_partitions: [dayId(now - 40 * day), dayId(now - 5 * day)] },
    ]);
    // The latency histograms, SLO counts and policy rollups keep the default 30 days: only the
    // 40-day-old partition goes.
    for (const table of [
      'route_histogram_1m',
      'route_histogram_1h',
      'slo_counts_1m',
      'slo_counts_1h',
      'policy_stats_1m',
      'policy_stats_1h',
    ])
      expect(runs.find((r) => r.table === table)?.dropped, table).toEqual([dayId(now - 40 * day)]);
    expect(job.state()).toMatchObject({ droppedPartitions: 9, failures: 0 });
    await w.sink.close();
  });
});

async function adminUrl(ingest: Ingest): Promise<string> {
  const address = ingest.admin.app.server.address();
  if (!address || typeof address === 'string') throw new Error('admin not listening');
  return `http://127.0.0.1:${address.port}`;
}
