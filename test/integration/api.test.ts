import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createServer, type Server } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { gunzipSync } from 'node:zlib';
import {
  type AnalyticsError,
  createClickHouseStore,
  type RedRow,
  type SeriesPoint,
} from '@tapwire/analytics';
import { type Api, apiConfigSchema, buildApi, hashToken } from '@tapwire/api';
import { type ClickHouse, createClickHouse, identifier, migrate, sql } from '@tapwire/clickhouse';
import { clickhouseConfigSchema } from '@tapwire/config';
import {
  createKafkaClient,
  createKafkaEventSink,
  ensureTopics,
  kafkaSource,
  topicSpecs,
} from '@tapwire/kafka';
import { TOPICS } from '@tapwire/schema';
import { readSilences } from '@tapwire/stream';
import { createLogger } from '@tapwire/telemetry';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  exactQuantile,
  generateLogs,
  insertLogs,
  mulberry32,
  type SeedLog,
  type SeedSample,
  type SeedSpan,
  saturationRow,
  spanRow,
  tenMinutesOfSamples,
} from '../support/analytics-seed.js';
import {
  deletePrefixedTopics,
  silentLogger,
  testClickHouseConfig,
  testKafkaConfig,
  uniqueName,
} from '../support/infra.js';

const MIGRATIONS = fileURLToPath(new URL('../../migrations', import.meta.url));
const logger = createLogger({ name: 'api-it', level: 'silent' });

// One fixed, minute-aligned hour in the past: every expected value is computed from the samples.
const FROM = Date.UTC(2026, 10, 20, 10, 0, 0) / 1000;
const TO = FROM + 3600;
const RANGE = `from=${new Date(FROM * 1000).toISOString()}&to=${new Date(TO * 1000).toISOString()}`;

const TOKENS = {
  acme: 'acme-read-token-0123456789',
  globex: 'globex-read-token-0123456789',
  all: 'all-tenants-token-0123456789',
  admin: 'acme-admin-token-0123456789',
};

const MIXES = [
  {
    tenant: 'acme',
    service: 'shop',
    route: '/users/:id',
    method: 'GET',
    count: 2400,
    medianMs: 40,
    sigma: 0.6,
    rate5xx: 0.03,
    rate4xx: 0.05,
    consumers: ['key-a', 'key-b', ''],
  },
  {
    tenant: 'acme',
    service: 'shop',
    route: '/orders',
    method: 'POST',
    count: 1500,
    medianMs: 120,
    sigma: 0.4,
    rate5xx: 0.1,
    rate4xx: 0.02,
    consumers: ['key-a', 'jwt-sub-7'],
  },
  {
    tenant: 'acme',
    service: 'billing',
    route: '/invoices',
    method: 'GET',
    count: 1200,
    medianMs: 15,
    sigma: 0.8,
    rate5xx: 0,
    rate4xx: 0.2,
    consumers: ['key-b'],
  },
  {
    tenant: 'globex',
    service: 'shop',
    route: '/users/:id',
    method: 'GET',
    count: 1000,
    medianMs: 400,
    sigma: 0.3,
    rate5xx: 0.5,
    rate4xx: 0,
    consumers: ['globex-key'],
  },
] as const;

let database: string;
let ch: ClickHouse;
let api: Api;
let logs: SeedLog[];
const queryErrors: { sql: string; error: AnalyticsError; serverCode?: number }[] = [];
const spans: SeedSpan[] = [];
const samples: SeedSample[] = [];

function auth(token: string) {
  return { authorization: `Bearer ${token}` };
}

async function get(url: string, token: string = TOKENS.acme, headers: Record<string, string> = {}) {
  const res = await api.app.inject({ method: 'GET', url, headers: { ...auth(token), ...headers } });
  return {
    status: res.statusCode,
    body:
      res.body.length > 0 && res.headers['content-type']?.toString().includes('json') ? res.json() : res.body,
    headers: res.headers,
  };
}

function within(actual: number, expected: number, relative: number) {
  expect(Math.abs(actual - expected) / expected, `${actual} vs exact ${expected}`).toBeLessThanOrEqual(
    relative,
  );
}

function group(filter: (l: SeedLog) => boolean) {
  const rows = logs.filter(filter);
  const sorted = rows.map((l) => l.durationMs).sort((a, b) => a - b);
  return {
    rows,
    n: rows.length,
    e5: rows.filter((l) => l.status >= 500).length,
    e4: rows.filter((l) => l.status >= 400 && l.status < 500).length,
    q: (p: number) => exactQuantile(sorted, p),
    bytesIn: rows.reduce((s, l) => s + l.bytesIn, 0),
  };
}

const silenceKafka = createKafkaClient(testKafkaConfig(), silentLogger, 'api-test');
const silencePrefix = `${uniqueName('apisil')}.`;
const silenceSink = createKafkaEventSink(
  { kafka: silenceKafka, logger: silentLogger },
  {
    lingerMs: 0,
    maxBatchEvents: 10,
    maxBufferedEvents: 1000,
    retryBackoffMs: 100,
    topicPrefix: silencePrefix,
  },
);
const kafkaSilences = {
  list: () => readSilences(kafkaSource({ kafka: silenceKafka, logger: silentLogger }), silencePrefix),
  async put(e: Parameters<typeof silenceSink.emit<typeof TOPICS.silences>>[1]) {
    silenceSink.emit(TOPICS.silences, e);
    await silenceSink.flush();
  },
};

async function newApi(
  over: Record<string, unknown> = {},
  chOver: Record<string, unknown> = {},
): Promise<Api> {
  const store = createClickHouseStore(
    createClickHouse(clickhouseConfigSchema.parse({ ...testClickHouseConfig(database), ...chOver })),
    {
      maxExecutionTimeS: 10,
      maxResultRows: 200_000,
      onQuery: (e) => {
        if (e.error)
          queryErrors.push({
            sql: e.sql,
            error: e.error,
            ...(e.serverCode !== undefined ? { serverCode: e.serverCode } : {}),
          });
      },
    },
  );
  return buildApi(
    { store, logger, silences: kafkaSilences },
    apiConfigSchema.parse({
      tokens: [
        { name: 'acme', sha256: hashToken(TOKENS.acme), tenant: 'acme', scopes: ['read'] },
        { name: 'globex', sha256: hashToken(TOKENS.globex), tenant: 'globex', scopes: ['read'] },
        { name: 'all', sha256: hashToken(TOKENS.all), tenant: '*', scopes: ['read', 'admin'] },
        { name: 'acme-admin', sha256: hashToken(TOKENS.admin), tenant: 'acme', scopes: ['read', 'admin'] },
      ],
      rateLimit: { max: 100_000, windowMs: 60_000 },
      ...over,
    }),
  );
}

beforeAll(async () => {
  database = uniqueName('tapwire_api');
  await migrate(testClickHouseConfig(database), { dir: MIGRATIONS, lockSettleMs: 200 });
  ch = createClickHouse(testClickHouseConfig(database));
  logs = generateLogs(MIXES, FROM, 3600);
  await insertLogs(ch, logs);

  // Two traces per tenant: a SERVER span with a CLIENT child; acme's first trace also has a grandchild.
  const rand = mulberry32(7);
  for (const tenant of ['acme', 'globex']) {
    for (let t = 0; t < 2; t++) {
      const traceId = (tenant === 'acme' ? 'a' : 'b').repeat(30) + String(t).padStart(2, '0');
      const start = (FROM + 600 + t * 60) * 1_000_000 + Math.floor(rand() * 1000);
      spans.push(
        {
          tenant,
          traceId,
          spanId: `${t}`.padStart(16, '1'),
          parentSpanId: '',
          name: 'GET /users/:id',
          kind: 'SERVER',
          service: 'shop',
          startUs: start,
          durationUs: 50_000,
          status: 'OK',
          attributes: { 'http.route': '/users/:id' },
        },
        {
          tenant,
          traceId,
          spanId: `${t}`.padStart(16, '2'),
          parentSpanId: `${t}`.padStart(16, '1'),
          name: 'GET',
          kind: 'CLIENT',
          service: 'shop',
          startUs: start + 2_000,
          durationUs: 45_000,
          status: 'OK',
          attributes: { 'server.address': 'users.internal' },
        },
      );
      if (tenant === 'acme' && t === 0)
        spans.push({
          tenant,
          traceId,
          spanId: '3333333333333333',
          parentSpanId: `${t}`.padStart(16, '2'),
          name: 'db.query',
          kind: 'CLIENT',
          service: 'users-db',
          startUs: start + 5_000,
          durationUs: 30_000,
          status: 'ERROR',
          attributes: {},
        });
    }
  }
  await ch.insert(
    'spans',
    spans.map((s, i) => spanRow(s, i)),
  );

  // Ten minutes of one-second saturation samples for one acme and one globex instance.
  samples.push(...tenMinutesOfSamples(FROM));
  await ch.insert(
    'saturation',
    samples.map((s, i) => saturationRow(s, i)),
  );
  await ch.insert('dlq_events', [
    {
      tenant: 'acme',
      ts: '2026-11-20 10:05:00',
      ts_us: (FROM + 300) * 1_000_000,
      id: 'd1',
      source_topic: 'tapwire.access.v1',
      source_partition: 0,
      source_offset: 5,
      reason: 'not JSON',
      raw_base64: '',
      consumer_group: 'tapwire-ingest',
      kafka_partition: 0,
      kafka_offset: 1,
    },
    {
      tenant: 'acme',
      ts: '2026-11-20 10:06:00',
      ts_us: (FROM + 360) * 1_000_000,
      id: 'd2',
      source_topic: 'tapwire.access.v1',
      source_partition: 0,
      source_offset: 9,
      reason: 'unknown version 9',
      raw_base64: '',
      consumer_group: 'tapwire-ingest',
      kafka_partition: 0,
      kafka_offset: 2,
    },
    {
      tenant: 'globex',
      ts: '2026-11-20 10:07:00',
      ts_us: (FROM + 420) * 1_000_000,
      id: 'd3',
      source_topic: 'tapwire.spans.v1',
      source_partition: 1,
      source_offset: 3,
      reason: 'schema',
      raw_base64: '',
      consumer_group: 'tapwire-ingest',
      kafka_partition: 0,
      kafka_offset: 3,
    },
  ]);
  await ch.insert('consumer_lag', [
    {
      ts: '2026-11-20 10:10:00',
      consumer_group: 'tapwire-ingest',
      topic: 'tapwire.access.v1',
      partition: 0,
      high_watermark: 1000,
      consumed: 900,
      lag: 100,
      instance: 'i1',
    },
    {
      ts: '2026-11-20 10:11:00',
      consumer_group: 'tapwire-ingest',
      topic: 'tapwire.access.v1',
      partition: 0,
      high_watermark: 1100,
      consumed: 1090,
      lag: 10,
      instance: 'i1',
    },
  ]);
  await ensureTopics(
    silenceKafka,
    topicSpecs(
      { partitions: 1, replicationFactor: 1, retentionMs: 3_600_000, dlqRetentionMs: 3_600_000 },
      silencePrefix,
    ),
  );
  api = await newApi();
}, 120_000);

afterAll(async () => {
  await api?.app.close();
  await silenceSink.close(5000);
  await deletePrefixedTopics(silencePrefix);
  await ch?.command(sql`DROP DATABASE IF EXISTS ${identifier(database)}`);
  await ch?.close();
});

describe('RED overview', () => {
  for (const source of ['raw', 'rollup_1m', 'rollup_1h'] as const) {
    it(`per route (${source}): counts and error rates exact, p50/p90/p99 within 1%`, async () => {
      const res = await get(`/v1/overview?${RANGE}&group_by=route&sort=rate&source=${source}`);
      expect(res.status).toBe(200);
      expect(res.body.source).toBe(source);
      expect(res.body.rows.map((r: { route: string }) => r.route)).toEqual([
        '/users/:id',
        '/orders',
        '/invoices',
      ]);
      for (const row of res.body.rows) {
        const g = group(
          (l) =>
            l.tenant === 'acme' &&
            l.service === row.service &&
            l.route === row.route &&
            l.method === row.method,
        );
        expect(row.tenant).toBe('acme');
        expect(row.requests).toBe(g.n);
        expect(row.errors_5xx).toBe(g.e5);
        expect(row.errors_4xx).toBe(g.e4);
        expect(row.error_rate_5xx).toBe(g.e5 / g.n);
        expect(row.error_rate_4xx).toBe(g.e4 / g.n);
        expect(row.rate_rps).toBe(g.n / 3600);
        expect(row.bytes_in).toBe(g.bytesIn);
        within(row.latency_ms.p50, g.q(0.5), 0.01);
        within(row.latency_ms.p90, g.q(0.9), 0.01);
        within(row.latency_ms.p95, g.q(0.95), 0.01);
        within(row.latency_ms.p99, g.q(0.99), 0.01);
      }
    });
  }

  it('per service, sorted by p99, paginated', async () => {
    const first = await get(`/v1/overview?${RANGE}&sort=p99&limit=1`);
    expect(first.status).toBe(200);
    expect(first.body.rows).toHaveLength(1);
    expect(first.body.has_more).toBe(true);
    const second = await get(`/v1/overview?${RANGE}&sort=p99&limit=1&offset=1`);
    expect(second.body.has_more).toBe(false);
    const shop = group((l) => l.tenant === 'acme' && l.service === 'shop');
    const billing = group((l) => l.tenant === 'acme' && l.service === 'billing');
    const [slow, fast] = shop.q(0.99) > billing.q(0.99) ? ['shop', 'billing'] : ['billing', 'shop'];
    expect(first.body.rows[0].service).toBe(slow);
    expect(second.body.rows[0].service).toBe(fast);
    expect(first.body.rows[0].requests + second.body.rows[0].requests).toBe(shop.n + billing.n);
  });

  it('raw and rollup give the same answer on the same data', async () => {
    const raw = (await get(`/v1/overview?${RANGE}&group_by=route&source=raw`)).body.rows;
    const rollup = (await get(`/v1/overview?${RANGE}&group_by=route&source=rollup_1m`)).body.rows;
    const hourly = (await get(`/v1/overview?${RANGE}&group_by=route&source=rollup_1h`)).body.rows;
    expect(hourly).toEqual(rollup);
    expect(rollup.map((r: { route: string }) => r.route)).toEqual(raw.map((r: { route: string }) => r.route));
    raw.forEach((r: RedRow, i: number) => {
      const o: RedRow = rollup[i];
      for (const k of ['requests', 'errors_5xx', 'errors_4xx', 'bytes_in', 'bytes_out'] as const)
        expect(o[k]).toBe(r[k]);
      // Both paths read the same latency histogram: identical quantiles, not merely close ones.
      expect(o.latency_ms).toEqual(r.latency_ms);
    });
  });

  it('filters by consumer and status class (raw path) exactly', async () => {
    const res = await get(`/v1/overview?${RANGE}&consumer=key-a&status_class=5xx`);
    expect(res.body.source).toBe('raw');
    const g = group((l) => l.tenant === 'acme' && l.consumer === 'key-a' && l.status >= 500);
    expect(res.body.rows.reduce((s: number, r: { requests: number }) => s + r.requests, 0)).toBe(g.n);
    expect(res.body.rows.every((r: { error_rate_5xx: number }) => r.error_rate_5xx === 1)).toBe(true);
  });

  it('refuses source=rollup when a filter needs raw rows, naming the field', async () => {
    const res = await get(`/v1/overview?${RANGE}&consumer=key-a&source=rollup`);
    expect(res.status).toBe(400);
    expect(res.body.error.fields[0].field).toBe('querystring.source');
  });
});

describe('series', () => {
  it('every step counts exactly; raw and rollup agree; exemplars are real requests nearest the quantile', async () => {
    const url = `/v1/series?${RANGE}&service=shop&route=/users/:id&step=5m&quantiles=0.5,0.9,0.99`;
    const raw = (await get(`${url}&source=raw`)).body;
    const rollup = (await get(`${url}&source=rollup`)).body;
    expect(raw.points).toHaveLength(12);
    expect(rollup.source).toBe('rollup_1m');
    const route = logs.filter((l) => l.tenant === 'acme' && l.route === '/users/:id');
    raw.points.forEach((p: SeriesPoint, i: number) => {
      expect(p.t).toBe(FROM + i * 300);
      const inStep = route.filter((l) => l.tsUs >= p.t * 1e6 && l.tsUs < (p.t + 300) * 1e6);
      expect(p.requests).toBe(inStep.length);
      expect(p.errors_5xx).toBe(inStep.filter((l) => l.status >= 500).length);
      expect(p.rate_rps).toBe(inStep.length / 300);
      const r: SeriesPoint = rollup.points[i];
      expect(r.requests).toBe(p.requests);
      expect(r.errors_4xx).toBe(p.errors_4xx);
      for (const key of ['p50', 'p90', 'p99']) {
        const q = p.latency_ms[key] ?? Number.NaN;
        expect(r.latency_ms[key]).toBe(q);
        const ex = p.exemplars[key]?.[0] ?? { trace_id: 'missing', duration_ms: Number.NaN };
        const seeded = inStep.find((l) => l.traceId === ex.trace_id);
        expect(seeded, `exemplar ${ex.trace_id} is a seeded request of this step`).toBeDefined();
        expect(ex.duration_ms).toBe(seeded?.durationMs);
        const closest = Math.min(...inStep.map((l) => Math.abs(l.durationMs - q)));
        expect(Math.abs(ex.duration_ms - q)).toBeCloseTo(closest, 6);
      }
    });
  });

  it('hourly steps come from the hourly rollup and equal raw rows', async () => {
    const url = `/v1/series?${RANGE}&service=shop&step=1h&quantiles=0.5,0.9,0.95,0.99`;
    const raw = (await get(`${url}&source=raw`)).body;
    const auto = (await get(url)).body;
    expect(auto.source).toBe('rollup_1h');
    expect(
      auto.points.map((p: SeriesPoint) => [p.requests, p.errors_5xx, p.errors_4xx, p.latency_ms]),
    ).toEqual(raw.points.map((p: SeriesPoint) => [p.requests, p.errors_5xx, p.errors_4xx, p.latency_ms]));
    expect(auto.points[0].requests).toBe(group((l) => l.tenant === 'acme' && l.service === 'shop').n);
  });

  it('fills empty steps with zeros and null latency', async () => {
    const later = `from=${new Date((TO + 3600) * 1000).toISOString()}&to=${new Date((TO + 7200) * 1000).toISOString()}`;
    const res = await get(`/v1/series?${later}&step=10m`);
    expect(res.status).toBe(200);
    expect(res.body.points).toHaveLength(6);
    expect(res.body.points[0]).toMatchObject({
      requests: 0,
      rate_rps: 0,
      latency_ms: { p50: null },
      exemplars: {},
    });
  });

  it('bounds points per series and the window, naming the field', async () => {
    const tooMany = await get(`/v1/series?from=now-24h&to=now&step=1s`);
    expect(tooMany.status).toBe(400);
    expect(tooMany.body.error.fields[0].field).toBe('querystring.step');
    const tooLong = await get(`/v1/series?from=now-90d&to=now&step=1d`);
    expect(tooLong.status).toBe(400);
    expect(tooLong.body.error.fields[0].field).toBe('querystring.from');
    const badQuantile = await get(`/v1/series?${RANGE}&quantiles=0.5,0.42`);
    expect(badQuantile.status).toBe(400);
    expect(badQuantile.body.error.message).toContain('querystring.quantiles');
  });
});

describe('saturation, consumers, traces, logs, pipeline', () => {
  it('saturation per instance and upstream from raw and rollup agree with the samples', async () => {
    const url = `/v1/saturation?${RANGE}&step=5m`;
    for (const source of ['raw', 'rollup']) {
      const res = await get(`${url}&source=${source}`);
      expect(res.status).toBe(200);
      expect(res.body.instances.map((s: { instance: string }) => s.instance)).toEqual(['proxy-1']);
      const points = res.body.instances[0].points;
      expect(points).toHaveLength(2);
      expect(points[0]).toMatchObject({
        t: FROM,
        samples: 300,
        heap_used_bytes_max: 50_000_000 + 299_000,
        spool_bytes_max: 29_900,
      });
      expect(points[1].event_loop_utilization_max).toBe(0.99);
      const up = res.body.upstreams[0];
      expect(up).toMatchObject({ instance: 'proxy-1', upstream: 'users' });
      expect(up.points[0]).toMatchObject({
        samples: 300,
        in_flight_max: 9,
        concurrency_limit: 100,
        pool_size_max: 8,
        pool_busy_max: 4,
      });
      expect(up.points[0].in_flight_avg).toBeCloseTo(4.5, 6);
    }
  });

  it('per-consumer usage counts exactly', async () => {
    const res = await get(`/v1/consumers?${RANGE}&sort=rate`);
    expect(res.status).toBe(200);
    const expected = ['key-a', 'key-b', 'jwt-sub-7']
      .map((c) => ({ c, g: group((l) => l.tenant === 'acme' && l.consumer === c) }))
      .sort((a, b) => b.g.n - a.g.n);
    expect(res.body.rows.map((r: { consumer: string }) => r.consumer)).toEqual(expected.map((e) => e.c));
    for (const row of res.body.rows) {
      const g = expected.find((e) => e.c === row.consumer)!.g;
      expect(row.requests).toBe(g.n);
      expect(row.errors_5xx).toBe(g.e5);
      within(row.latency_ms.p99, g.q(0.99), 0.01);
    }
  });

  it('trace lookup returns the spans as a tree with offsets', async () => {
    const traceId = `${'a'.repeat(30)}00`;
    const res = await get(`/v1/traces/${traceId}`);
    expect(res.status).toBe(200);
    expect(res.body).toMatchObject({
      trace_id: traceId,
      tenant: 'acme',
      span_count: 3,
      duration_us: 50_000,
      services: ['shop', 'users-db'],
    });
    const [root] = res.body.roots;
    expect(root).toMatchObject({
      kind: 'SERVER',
      offset_us: 0,
      duration_us: 50_000,
      attributes: { 'http.route': '/users/:id' },
    });
    // Span version 2 fields, empty for the proxy's own spans.
    expect(root).toMatchObject({ resource: {}, scope: { name: '', version: '' }, events: [], links: [] });
    expect(root.children[0]).toMatchObject({ kind: 'CLIENT', offset_us: 2000 });
    expect(root.children[0].children[0]).toMatchObject({
      name: 'db.query',
      offset_us: 5000,
      status: 'ERROR',
    });
    expect((await get(`/v1/traces/${'c'.repeat(32)}`)).status).toBe(404);
  });

  it('recent traces: newest first, filtered by minimum duration and status', async () => {
    const res = await get(`/v1/traces?${RANGE}&route=/orders&min_duration_ms=200&status=503&limit=5`);
    expect(res.status).toBe(200);
    const expected = logs
      .filter((l) => l.tenant === 'acme' && l.route === '/orders' && l.durationMs >= 200 && l.status === 503)
      .sort((a, b) => b.tsUs - a.tsUs || (b.id < a.id ? -1 : 1))
      .slice(0, 5);
    expect(res.body.traces.map((t: { trace_id: string }) => t.trace_id)).toEqual(
      expected.map((l) => l.traceId),
    );
  });

  it('log search walks every matching row once, newest first, by cursor', async () => {
    const expected = logs
      .filter((l) => l.tenant === 'acme' && l.service === 'billing' && l.status === 404)
      .sort((a, b) => b.tsUs - a.tsUs || (b.id < a.id ? -1 : 1));
    const seen: string[] = [];
    let cursor: string | null = null;
    do {
      const res: Awaited<ReturnType<typeof get>> = await get(
        `/v1/logs?${RANGE}&service=billing&status=404&limit=37${cursor ? `&cursor=${cursor}` : ''}`,
      );
      expect(res.status).toBe(200);
      seen.push(...res.body.rows.map((r: { id: string }) => r.id));
      cursor = res.body.next_cursor;
    } while (cursor);
    expect(seen).toEqual(expected.map((l) => l.id));
    // A path prefix (with LIKE wildcards and unicode that must match literally).
    const orders = await get(`/v1/logs?${RANGE}&path_prefix=/ord&status=503&limit=1000`);
    expect(orders.body.rows.length).toBe(
      logs.filter((l) => l.tenant === 'acme' && l.route === '/orders' && l.status === 503).length,
    );
    for (const prefix of ['/%', '/_sers', '/ü']) {
      const none = await get(`/v1/logs?${RANGE}&path_prefix=${encodeURIComponent(prefix)}`);
      expect(none.status, prefix).toBe(200);
      expect(none.body.rows, prefix).toEqual([]);
    }
    const bad = await get(`/v1/logs?${RANGE}&cursor=not-a-cursor`);
    expect(bad.status).toBe(400);
    expect(bad.body.error.fields[0].field).toBe('querystring.cursor');
  });

  const ACME_DLQ = {
    source_topic: 'tapwire.access.v1',
    events: 2,
    rate_per_s: 2 / 3600,
    last_reason: 'unknown version 9',
  };

  it('pipeline health needs the admin scope; a tenant admin token sees its tenant figures and no topic lag', async () => {
    expect((await get(`/v1/pipeline?${RANGE}`)).status).toBe(403);
    const res = await get(`/v1/pipeline?${RANGE}`, TOKENS.admin);
    expect(res.status).toBe(200);
    // Topic high-watermarks count every tenant's events: never shown to a tenant's token.
    expect(res.body.lag).toEqual([]);
    expect(res.body.dlq).toEqual([ACME_DLQ]);
    expect(res.body.proxies).toHaveLength(1);
    expect(res.body.proxies[0]).toMatchObject({
      tenant: 'acme',
      instance: 'proxy-1',
      dropped_events: 299,
      spool_fill_ratio_max: 0.0599,
    });
  });

  it('pipeline health for an all-tenant admin token: topic lag and every tenant, or one tenant without lag', async () => {
    const res = await get(`/v1/pipeline?${RANGE}`, TOKENS.all);
    expect(res.status).toBe(200);
    expect(res.body.lag).toEqual([
      {
        consumer_group: 'tapwire-ingest',
        topic: 'tapwire.access.v1',
        partition: 0,
        lag: 10,
        high_watermark: 1100,
        sampled_at: FROM + 660,
      },
    ]);
    expect(res.body.dlq).toEqual([
      ACME_DLQ,
      { source_topic: 'tapwire.spans.v1', events: 1, rate_per_s: 1 / 3600, last_reason: 'schema' },
    ]);
    expect(res.body.proxies.map((p: { tenant: string }) => p.tenant)).toEqual(['acme', 'globex']);
    const narrowed = await get(`/v1/pipeline?${RANGE}&tenant=acme`, TOKENS.all);
    expect(narrowed.body.lag).toEqual([]);
    expect(narrowed.body.dlq).toEqual([ACME_DLQ]);
    expect(narrowed.body.proxies.map((p: { tenant: string }) => p.tenant)).toEqual(['acme']);
  });
});

describe('alert signals (one query per rule)', () => {
  const store = () =>
    createClickHouseStore(createClickHouse(testClickHouseConfig(database)), {
      maxExecutionTimeS: 10,
      maxResultRows: 10_000,
    });

  it('latency quantile, error rate and request rate per series match the samples', async () => {
    const s = store();
    try {
      const range = { from: FROM, to: TO };
      const p99 = await s.signal(
        { tenant: 'acme' },
        { kind: 'latency_quantile', quantile: 0.99, range, filters: { service: 'shop' }, groupBy: ['route'] },
      );
      expect(p99.series.map((x) => x.labels.route).sort()).toEqual(['/orders', '/users/:id']);
      for (const x of p99.series) {
        const g = group((l) => l.tenant === 'acme' && l.service === 'shop' && l.route === x.labels.route);
        expect(x.samples).toBe(g.n);
        within(x.value, g.q(0.99), 0.01);
      }
      const errors = await s.signal(
        { tenant: 'acme' },
        { kind: 'error_rate', range, filters: {}, groupBy: ['service'] },
      );
      for (const x of errors.series) {
        const g = group((l) => l.tenant === 'acme' && l.service === x.labels.service);
        expect(x.value).toBe(g.e5 / g.n);
      }
      const rate = await s.signal(
        { tenant: null },
        { kind: 'request_rate', range, filters: {}, groupBy: [] },
      );
      expect(rate.series).toEqual([{ labels: {}, value: logs.length / 3600, samples: logs.length }]);
      const sat = await s.signal(
        { tenant: 'acme' },
        {
          kind: 'saturation',
          metric: 'upstream_in_flight_ratio',
          range,
          filters: {},
          groupBy: ['instance', 'upstream'],
        },
      );
      expect(sat.series).toEqual([
        { labels: { instance: 'proxy-1', upstream: 'users' }, value: 0.09, samples: 600 },
      ]);
      await expect(
        s.signal({ tenant: null }, { kind: 'error_rate', range, filters: {}, groupBy: ['instance'] }),
      ).rejects.toMatchObject({
        code: 'TAPWIRE_ANALYTICS_INVALID_QUERY',
      });
    } finally {
      await s.close();
    }
  });
});

describe('alerts, rules and silences', () => {
  const at = (s: number) => new Date(s * 1000).toISOString().slice(0, 19).replace('T', ' ');
  const row = (tenant: string, fp: string, state: string, tsS: number, receiver = '') => ({
    tenant,
    ts: at(tsS),
    ts_us: tsS * 1_000_000,
    id: `${fp}-${state}-${tsS}-${receiver}`,
    rule_id: 'p99-high',
    fingerprint: fp,
    label_keys: ['alertname', 'route'],
    label_values: ['P99High', `/${fp}`],
    state,
    value: 900,
    has_value: 1,
    threshold: 500,
    since_us: tsS * 1_000_000,
    active_at_us: tsS * 1_000_000,
    fired_at_us: state === 'firing' ? tsS * 1_000_000 : 0,
    last_notified_us: receiver ? tsS * 1_000_000 : 0,
    receiver,
    kafka_partition: 0,
    kafka_offset: tsS,
  });

  it('lists current alerts and history per tenant, and rules without receivers', async () => {
    const now = Math.floor(Date.now() / 1000);
    await ch.insert('alert_history', [
      row('acme', 'aaaaaaaaaaaaaaa1', 'pending', now - 120),
      row('acme', 'aaaaaaaaaaaaaaa1', 'firing', now - 60),
      row('acme', 'aaaaaaaaaaaaaaa1', 'firing', now - 59, 'chat'),
      row('acme', 'aaaaaaaaaaaaaaa2', 'firing', now - 7200),
      row('acme', 'aaaaaaaaaaaaaaa2', 'resolved', now - 3600),
      row('globex', 'bbbbbbbbbbbbbbb1', 'firing', now - 30),
    ]);
    const alerts = await get('/v1/alerts');
    expect(alerts.status).toBe(200);
    expect(
      alerts.body.alerts.map((a: { fingerprint: string; state: string }) => [a.fingerprint, a.state]),
    ).toEqual([['aaaaaaaaaaaaaaa1', 'firing']]);
    expect(alerts.body.alerts[0]).toMatchObject({
      labels: { alertname: 'P99High', route: '/aaaaaaaaaaaaaaa1' },
      value: 900,
      threshold: 500,
      fired_at_us: (now - 60) * 1_000_000,
    });
    expect((await get('/v1/alerts', TOKENS.all)).body.alerts).toHaveLength(2);
    const history = await get('/v1/alerts/history?from=now-3h&limit=10');
    expect(
      history.body.events.map((e: { state: string; receiver: string | null }) => [e.state, e.receiver]),
    ).toEqual([
      ['firing', 'chat'],
      ['firing', null],
      ['pending', null],
      ['resolved', null],
      ['firing', null],
    ]);
    const dir = mkdtempSync(join(tmpdir(), 'tapwire-rules-'));
    const file = join(dir, 'alerting.yaml');
    writeFileSync(
      file,
      `groups:\n  - name: latency\n    rules:\n      - { id: p99-high, alert: P99High, kind: latency_quantile, quantile: 0.99, threshold: 500, for: 1m }\nroute: { receiver: chat }\nreceivers:\n  - { name: chat, slack: { webhookUrl: "https://hooks.slack.com/services/T/B/SECRET" } }\n`,
    );
    const withRules = await newApi({ alertingFile: file });
    try {
      const rules = await withRules.app.inject({
        method: 'GET',
        url: '/v1/rules',
        headers: auth(TOKENS.acme),
      });
      expect(rules.statusCode).toBe(200);
      expect(rules.json().groups[0]).toMatchObject({
        name: 'latency',
        interval_ms: 15_000,
        rules: [{ id: 'p99-high', for: 60_000, threshold: 500 }],
      });
      expect(rules.body).not.toContain('SECRET');
    } finally {
      await withRules.app.close();
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('silences: admin scope only, tenant tokens silence only their tenant, stored on Kafka, expire on DELETE', async () => {
    const kafka = createKafkaClient(testKafkaConfig(), silentLogger, 'api-silences');
    const prefix = `${uniqueName('sil')}.`;
    await ensureTopics(
      kafka,
      topicSpecs(
        { partitions: 1, replicationFactor: 1, retentionMs: 3_600_000, dlqRetentionMs: 3_600_000 },
        prefix,
      ),
    );
    const sink = createKafkaEventSink(
      { kafka, logger: silentLogger },
      { lingerMs: 0, maxBatchEvents: 10, maxBufferedEvents: 100, retryBackoffMs: 100, topicPrefix: prefix },
    );
    const silences = {
      list: () => readSilences(kafkaSource({ kafka, logger: silentLogger }), prefix),
      async put(e: Parameters<typeof sink.emit<typeof TOPICS.silences>>[1]) {
        sink.emit(TOPICS.silences, e);
        await sink.flush();
      },
    };
    const store = createClickHouseStore(createClickHouse(testClickHouseConfig(database)));
    const app = await buildApi(
      { store, logger, silences },
      apiConfigSchema.parse({
        tokens: [
          { name: 'acme', sha256: hashToken(TOKENS.acme), tenant: 'acme', scopes: ['read'] },
          { name: 'acme-admin', sha256: hashToken(TOKENS.admin), tenant: 'acme', scopes: ['read', 'admin'] },
          { name: 'all', sha256: hashToken(TOKENS.all), tenant: '*', scopes: ['read', 'admin'] },
        ],
      }),
    );
    try {
      const post = (token: string, body: unknown) =>
        app.app.inject({
          method: 'POST',
          url: '/v1/silences',
          headers: auth(token),
          payload: body as Record<string, unknown>,
        });
      expect(
        (await post(TOKENS.acme, { matchers: ['route="/a"'], duration: '1h', comment: 'deploy' })).statusCode,
      ).toBe(403);
      const bad = await post(TOKENS.admin, { matchers: ['route=/a'], comment: 'x' });
      expect(bad.statusCode).toBe(400);
      expect(bad.json().error.fields.map((f: { field: string }) => f.field)).toEqual(
        expect.arrayContaining(['body.matchers.0', 'body.ends_at']),
      );
      const created = await post(TOKENS.admin, {
        matchers: ['route="/a"'],
        duration: '2h',
        comment: 'deploy',
      });
      expect(created.statusCode).toBe(201);
      expect(created.json()).toMatchObject({
        matchers: ['route="/a"', 'tenant="acme"'],
        created_by: 'acme-admin',
        state: 'active',
        tenant: 'acme',
      });
      const other = await post(TOKENS.all, {
        matchers: ['service="billing"'],
        duration: '30m',
        comment: 'maintenance',
      });
      const list = await app.app.inject({ method: 'GET', url: '/v1/silences', headers: auth(TOKENS.admin) });
      expect(list.json().silences.map((x: { id: string }) => x.id)).toEqual([created.json().id]);
      expect(
        (await app.app.inject({ method: 'GET', url: '/v1/silences', headers: auth(TOKENS.all) })).json()
          .silences,
      ).toHaveLength(2);
      expect(
        (
          await app.app.inject({
            method: 'DELETE',
            url: `/v1/silences/${other.json().id}`,
            headers: auth(TOKENS.admin),
          })
        ).statusCode,
      ).toBe(404);
      const expired = await app.app.inject({
        method: 'DELETE',
        url: `/v1/silences/${created.json().id}`,
        headers: auth(TOKENS.admin),
      });
      expect(expired.statusCode).toBe(200);
      expect(expired.json().state).toBe('expired');
      expect(
        (await readSilences(kafkaSource({ kafka, logger: silentLogger }), prefix)).find(
          (x) => x.id === created.json().id,
        )?.ends_at,
      ).toBeLessThanOrEqual(Date.now() * 1000);
    } finally {
      await app.app.close();
      await sink.close(5000);
      await store.close();
      await deletePrefixedTopics(prefix);
    }
  }, 60_000);
});

describe('auth and tenancy', () => {
  const ENDPOINTS = [
    `/v1/overview?${RANGE}`,
    `/v1/overview?${RANGE}&group_by=route`,
    `/v1/series?${RANGE}&step=10m`,
    `/v1/saturation?${RANGE}&step=10m`,
    `/v1/consumers?${RANGE}`,
    `/v1/traces?${RANGE}&limit=50`,
    `/v1/logs?${RANGE}&limit=200`,
    `/v1/pipeline?${RANGE}`,
    '/v1/alerts',
    '/v1/alerts/history?from=now-3h',
  ];

  it('401 without a token or with a bad one, on every endpoint', async () => {
    for (const url of [...ENDPOINTS, `/v1/traces/${'a'.repeat(30)}00`]) {
      const none = await api.app.inject({ method: 'GET', url });
      expect(none.statusCode, url).toBe(401);
      expect(none.headers['www-authenticate']).toBe('Bearer');
      expect(none.json().error.code).toBe('TAPWIRE_API_UNAUTHORIZED');
      expect((await get(url, 'wrong-token')).status, url).toBe(401);
    }
  });

  it("a tenant's token never sees another tenant's rows, on every endpoint", async () => {
    const tenantsIn = (body: unknown): Set<string> => {
      const found = new Set<string>();
      JSON.stringify(body, (k, v) => {
        if (k === 'tenant' && typeof v === 'string') found.add(v);
        return v;
      });
      return found;
    };
    for (const url of ENDPOINTS) {
      const token = url.startsWith('/v1/pipeline') ? TOKENS.admin : TOKENS.globex;
      const res = await get(url, token);
      expect(res.status, url).toBe(200);
      const expectTenant = url.startsWith('/v1/pipeline') ? 'acme' : 'globex';
      expect(
        [...tenantsIn(res.body)].every((t) => t === expectTenant),
        url,
      ).toBe(true);
      const all = await get(url, TOKENS.all);
      if (url.startsWith('/v1/series')) {
        // A series carries no tenant column: its totals must be globex's alone, and all tenants' for "*".
        const total = (body: { points: { requests: number }[] }) =>
          body.points.reduce((s, p) => s + p.requests, 0);
        expect(total(res.body)).toBe(logs.filter((l) => l.tenant === 'globex').length);
        expect(total(all.body)).toBe(logs.length);
      } else if (!url.startsWith('/v1/pipeline') && !url.includes('consumers')) {
        expect(tenantsIn(all.body).size, url).toBeGreaterThan(1);
      }
    }
    // globex's data never reaches acme: the globex trace is invisible, its consumer unknown.
    expect((await get(`/v1/traces/${'b'.repeat(30)}00`)).status).toBe(404);
    expect((await get(`/v1/traces/${'b'.repeat(30)}00`, TOKENS.globex)).status).toBe(200);
    const consumers = await get(`/v1/consumers?${RANGE}&consumer=globex-key`);
    expect(consumers.body.rows).toEqual([]);
    // Naming another tenant is refused, not silently widened.
    const other = await get(`/v1/overview?${RANGE}&tenant=globex`);
    expect(other.status).toBe(403);
    const allNarrowed = await get(`/v1/overview?${RANGE}&tenant=globex`, TOKENS.all);
    expect(allNarrowed.body.rows.map((r: { tenant: string }) => r.tenant)).toEqual(['globex']);
    expect(allNarrowed.body.rows[0].requests).toBe(1000);
  });
});

describe('serving', () => {
  it('ETag / 304, gzip, and the answer cache', async () => {
    const url = `/v1/overview?${RANGE}&group_by=route`;
    const first = await get(url);
    const etag = first.headers.etag as string;
    expect(etag).toMatch(/^"/);
    const again = await get(url, TOKENS.acme, { 'if-none-match': etag });
    expect(again.status).toBe(304);
    const gz = await api.app.inject({
      method: 'GET',
      url,
      headers: { ...auth(TOKENS.acme), 'accept-encoding': 'gzip' },
    });
    expect(gz.headers['content-encoding']).toBe('gzip');
    expect(JSON.parse(gunzipSync(gz.rawPayload).toString())).toEqual(first.body);
    const metrics = await api.metrics.registry.getSingleMetricAsString('tapwire_api_cache_lookups_total');
    expect(metrics).toMatch(/result="hit"} [1-9]/);
  });

  it('rate limits per token, and per address without a valid token, with 429 and Retry-After', async () => {
    const limited = await newApi({ rateLimit: { max: 3, unauthenticatedMax: 2, windowMs: 60_000 } });
    try {
      const statuses: number[] = [];
      const requests = [
        ...Array.from({ length: 5 }, () => auth(TOKENS.acme)),
        ...[{}, auth('wrong-token'), {}, auth('wrong-token')],
      ];
      for (const headers of requests) {
        const res = await limited.app.inject({ method: 'GET', url: `/v1/overview?${RANGE}`, headers });
        statuses.push(res.statusCode);
        if (res.statusCode === 429) {
          expect(res.json().error.code).toBe('TAPWIRE_API_RATE_LIMITED');
          expect(Number(res.headers['retry-after'])).toBeGreaterThan(0);
        }
      }
      // Requests without a valid token have their own budget, apart from the tokens'.
      expect(statuses).toEqual([200, 200, 200, 429, 429, 401, 401, 429, 429]);
      // Another token has its own budget, even from the address refused without one.
      const other = await limited.app.inject({
        method: 'GET',
        url: `/v1/overview?${RANGE}`,
        headers: auth(TOKENS.globex),
      });
      expect(other.statusCode).toBe(200);
    } finally {
      await limited.app.close();
    }
  });

  it('503 when ClickHouse is unreachable, 504 when it does not answer in time; /readyz says so', async () => {
    const down = await newApi({}, { url: 'http://127.0.0.1:9' });
    const silent: Server = createServer(() => {});
    await new Promise<void>((r) => silent.listen(0, '127.0.0.1', r));
    const port = (silent.address() as { port: number }).port;
    const slow = await newApi({}, { url: `http://127.0.0.1:${port}`, requestTimeoutMs: 500 });
    try {
      const unreachable = await down.app.inject({
        method: 'GET',
        url: `/v1/overview?${RANGE}`,
        headers: auth(TOKENS.acme),
      });
      expect(unreachable.statusCode).toBe(503);
      expect(unreachable.json().error.code).toBe('TAPWIRE_ANALYTICS_STORE_UNAVAILABLE');
      const notReady = await down.app.inject({ method: 'GET', url: '/readyz' });
      expect(notReady.statusCode).toBe(503);
      expect(notReady.json()).toEqual({ status: 'not ready', store: { kind: 'clickhouse', ok: false } });
      const timeout = await slow.app.inject({
        method: 'GET',
        url: `/v1/overview?${RANGE}`,
        headers: auth(TOKENS.acme),
      });
      expect(timeout.statusCode).toBe(504);
      expect(timeout.json().error.code).toBe('TAPWIRE_ANALYTICS_STORE_TIMEOUT');
      expect((await api.app.inject({ method: 'GET', url: '/readyz' })).statusCode).toBe(200);
    } finally {
      await down.app.close();
      await slow.app.close();
      silent.close();
    }
  });

  it('publishes OpenAPI at /openapi.json and a docs page', async () => {
    const doc = (await api.app.inject({ method: 'GET', url: '/openapi.json' })).json();
    expect(Object.keys(doc.paths).sort()).toEqual([
      '/v1/alerts',
      '/v1/alerts/history',
      '/v1/consumers',
      '/v1/logs',
      '/v1/overview',
      '/v1/pipeline',
      '/v1/rules',
      '/v1/saturation',
      '/v1/series',
      '/v1/silences',
      '/v1/silences/{id}',
      '/v1/slos',
      '/v1/slos/{name}',
      '/v1/traces',
      '/v1/traces/{traceId}',
    ]);
    expect(doc.paths['/v1/series'].get.parameters.map((p: { name: string }) => p.name)).toContain(
      'quantiles',
    );
    const docs = await api.app.inject({ method: 'GET', url: '/docs/' });
    expect(docs.statusCode).toBe(200);
    expect(docs.body).toContain('swagger');
  });
});

describe('fuzz', () => {
  it('5,000 random, oversized, unicode and SQL-injection requests: no 5xx, no ClickHouse syntax error', async () => {
    const rand = mulberry32(2026);
    const pick = <T>(xs: readonly T[]): T => xs[Math.floor(rand() * xs.length)]!;
    const nasty = [
      "'; DROP TABLE access_logs; --",
      "' OR 1=1 --",
      '\\',
      "\\'",
      '`',
      '"',
      '/*',
      '*/',
      '%00',
      '\u0000',
      '\n',
      'ё日本語🙂',
      '\u202e',
      'a'.repeat(5000),
      '-1',
      '1e309',
      'NaN',
      '0x10',
      '99999999999999999999',
      '',
      'now-',
      'now-1y',
      'now-99999999d',
      '2026-13-45T99:99:99Z',
      '1; SELECT 1',
      "') UNION ALL SELECT * FROM system.users --",
      `$\{jndi:ldap://x}`,
      '{{7*7}}',
    ];
    const valid: Record<string, readonly string[]> = {
      from: ['now-1h', 'now-24h', new Date(FROM * 1000).toISOString(), 'now-15m'],
      to: ['now', new Date(TO * 1000).toISOString()],
      step: ['1m', '5m', '30s', '1h', '60'],
      service: ['shop', 'billing'],
      route: ['/users/:id', '/orders'],
      method: ['GET', 'post'],
      consumer: ['key-a'],
      status_class: ['5xx', '2xx'],
      status: ['200', '503'],
      group_by: ['service', 'route'],
      sort: ['p99', 'errors', 'rate', 'error_rate'],
      order: ['asc', 'desc'],
      limit: ['1', '10', '1000'],
      offset: ['0', '5'],
      source: ['auto', 'raw', 'rollup'],
      quantiles: ['0.5', '0.5,0.99', '0.95'],
      min_duration_ms: ['0', '100.5'],
      error_kind: ['none', 'upstream_refused'],
      trace_id: ['a'.repeat(32)],
      tenant: ['acme', 'globex'],
      instance: ['proxy-1'],
      upstream: ['users'],
      cursor: ['WzE3NjM2MzI4MDAwMDAwMDAsImFiYyJd'],
      path_prefix: ['/users', '/ord'],
      state: ['firing', 'resolved'],
      rule_id: ['p99-high'],
      fingerprint: ['aaaaaaaaaaaaaaa1'],
    };
    const paths = [
      '/v1/overview',
      '/v1/series',
      '/v1/saturation',
      '/v1/consumers',
      '/v1/traces',
      '/v1/logs',
      '/v1/pipeline',
      '/v1/traces/',
      '/v1/alerts',
      '/v1/alerts/history',
      '/v1/rules',
      '/v1/silences',
    ];
    const keys = Object.keys(valid);
    const statuses = new Map<number, number>();
    const errorsBefore = queryErrors.length;
    for (let i = 0; i < 5000; i++) {
      const path = pick(paths);
      const params = new URLSearchParams();
      const n = Math.floor(rand() * 6);
      for (let j = 0; j < n; j++) {
        const key = rand() < 0.9 ? pick(keys) : pick(nasty);
        params.append(key, rand() < 0.6 ? pick(valid[key] ?? nasty) : pick(nasty));
      }
      const url =
        path === '/v1/traces/'
          ? `${path}${encodeURIComponent(rand() < 0.5 ? pick(nasty) : `${'a'.repeat(30)}00`)}`
          : `${path}?${params}`;
      const res = await api.app.inject({
        method: 'GET',
        url,
        headers: auth(pick([TOKENS.acme, TOKENS.all, TOKENS.admin])),
      });
      statuses.set(res.statusCode, (statuses.get(res.statusCode) ?? 0) + 1);
      expect(res.statusCode, `${url.slice(0, 200)} → ${res.body.slice(0, 300)}`).toBeLessThan(500);
      if (res.statusCode >= 400) expect(res.body, url.slice(0, 200)).toMatch(/^\{"error":\{"code":"TAPWIRE_/);
    }
    expect(queryErrors.slice(errorsBefore)).toEqual([]);
    // The fuzz exercised both accepted and refused requests.
    expect(statuses.get(200) ?? 0).toBeGreaterThan(500);
    expect(statuses.get(400) ?? 0).toBeGreaterThan(500);
  }, 600_000);
});
