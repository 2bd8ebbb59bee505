import type { Store } from '@tapwire/analytics';
import {
  accessLogRow,
  generateLogs,
  type SeedLog,
  type SeedSample,
  type SeedSpan,
  saturationRow,
  spanRow,
  tenMinutesOfSamples,
} from './analytics-seed.js';

/**
 * The store contract suite's world (test/integration/store-contract.test.ts): the seeded rows,
 * the window they fall in, and the battery of Store calls every store must answer alike. The
 * ClickHouse dialect check (test/dialect) runs the same seed and battery, so a call added here is
 * checked on ClickHouse 26.9 too.
 */

export const FROM = Date.UTC(2026, 10, 21, 10, 0, 0) / 1000;
export const TO = FROM + 3600;
export const RANGE = { from: FROM, to: TO };

export const MIXES = [
  {
    tenant: 'acme',
    service: 'shop',
    route: '/users/:id',
    method: 'GET',
    count: 2000,
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
    count: 1200,
    medianMs: 120,
    sigma: 0.4,
    rate5xx: 0.1,
    rate4xx: 0.02,
    consumers: ['key-a', "o'brien"],
  },
  {
    tenant: 'acme',
    service: 'billing',
    route: '/invoices',
    method: 'GET',
    count: 900,
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
    count: 800,
    medianMs: 400,
    sigma: 0.3,
    rate5xx: 0.5,
    rate4xx: 0,
    consumers: ['globex-key'],
  },
] as const;

// Rows as ingest writes them: `ts` in epoch seconds.
const tsOf = (us: number) => Math.floor(us / 1_000_000);
export const logs: SeedLog[] = generateLogs(MIXES, FROM, 3600, 11);
export const spans: SeedSpan[] = [];
export const samples: SeedSample[] = [];
export const NOW = Math.floor(Date.now() / 1000);

/** seedRows returns the rows to insert, per table, and fills `spans` and `samples` (once). */
export function seedRows(): Record<string, Record<string, unknown>[]> {
  spans.length = 0;
  samples.length = 0;
  for (const [t, tenant] of ['acme', 'acme', 'globex'].entries()) {
    const traceId = `${t}`.repeat(32);
    const start = (FROM + 600 + t * 60) * 1_000_000 + 123;
    spans.push(
      {
        tenant,
        traceId,
        spanId: `${t}`.padStart(16, 'a'),
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
        spanId: `${t}`.padStart(16, 'b'),
        parentSpanId: `${t}`.padStart(16, 'a'),
        name: 'GET',
        kind: 'CLIENT',
        service: 'shop',
        startUs: start + 2_000,
        durationUs: 45_000,
        status: t === 1 ? 'ERROR' : 'OK',
        attributes: { 'server.address': 'users.internal', 'http.response.status_code': '200' },
      },
    );
  }
  samples.push(...tenMinutesOfSamples(FROM));
  const dlq = (id: string, offset: number, atS: number, reason: string) => ({
    tenant: 'acme',
    ts: atS,
    ts_us: atS * 1_000_000,
    id,
    source_topic: 'tapwire.access.v1',
    source_partition: 0,
    source_offset: offset,
    reason,
    raw_base64: '',
    consumer_group: 'tapwire-ingest',
    kafka_partition: 0,
    kafka_offset: offset,
  });
  const lag = (atS: number, partition: number, value: number) => ({
    ts: atS,
    consumer_group: 'tapwire-ingest',
    topic: 'tapwire.access.v1',
    partition,
    high_watermark: 1000 + value,
    consumed: 1000,
    lag: value,
    instance: 'ingest-1',
  });
  const alert = (tenant: string, fp: string, state: string, atS: number, receiver = '') => ({
    tenant,
    ts: atS,
    ts_us: atS * 1_000_000,
    id: `${fp}-${state}-${atS}-${receiver}`,
    rule_id: 'p99-high',
    fingerprint: fp,
    label_keys: ['alertname', 'route'],
    label_values: ['P99High', `/${fp}`],
    state,
    value: 900,
    has_value: state === 'resolved' ? 0 : 1,
    threshold: 500,
    since_us: atS * 1_000_000,
    active_at_us: atS * 1_000_000,
    fired_at_us: state === 'firing' ? atS * 1_000_000 : 0,
    last_notified_us: receiver ? atS * 1_000_000 : 0,
    receiver,
    kafka_partition: 0,
    kafka_offset: atS,
  });
  return {
    access_logs: logs.map((l, i) => ({ ...accessLogRow(l, i), ts: tsOf(l.tsUs) })),
    spans: spans.map((s, i) => ({ ...spanRow(s, i), ts: tsOf(s.startUs) })),
    saturation: samples.map((s, i) => ({ ...saturationRow(s, i), ts: s.tsS })),
    dlq_events: [
      dlq('d1', 5, FROM + 300, 'not JSON'),
      dlq('d2', 9, FROM + 360, 'unknown version 9'),
      dlq('d3', 12, FROM + 7200, 'outside the window'),
    ],
    consumer_lag: [lag(FROM + 60, 0, 50), lag(FROM + 120, 0, 7), lag(FROM + 120, 1, 0)],
    alert_history: [
      alert('acme', 'aaaaaaaaaaaaaaa1', 'pending', NOW - 120),
      alert('acme', 'aaaaaaaaaaaaaaa1', 'firing', NOW - 60),
      alert('acme', 'aaaaaaaaaaaaaaa1', 'firing', NOW - 59, 'chat'),
      alert('acme', 'aaaaaaaaaaaaaaa2', 'firing', NOW - 7200),
      alert('acme', 'aaaaaaaaaaaaaaa2', 'resolved', NOW - 3600),
      alert('acme', 'aaaaaaaaaaaaaaa3', 'resolved', NOW - 300),
      alert('globex', 'bbbbbbbbbbbbbbb1', 'firing', NOW - 30),
    ],
  };
}

export const acme = { tenant: 'acme' };
export const everyone = { tenant: null };
export const noFilters = {};

/** Call is one Store question of the battery both stores must answer alike. */
export type Call = { name: string; run: (s: Store) => Promise<unknown> };

/** CALLS is the battery of Store questions every store must answer alike (the dialect check runs it too). */
export const CALLS: Call[] = [
  ...(['service', 'route'] as const).flatMap((groupBy) =>
    (['p99', 'p50', 'errors', 'error_rate', 'rate', 'bytes'] as const).map((sort) => ({
      name: `overview by ${groupBy} sorted by ${sort}`,
      run: (s: Store) =>
        s.overview(everyone, {
          range: RANGE,
          filters: noFilters,
          groupBy,
          sort,
          order: 'desc',
          limit: 50,
          offset: 0,
          source: 'auto',
        }),
    })),
  ),
  {
    name: 'series, 5-minute steps, every quantile',
    run: (s) =>
      s.series(everyone, {
        range: RANGE,
        stepS: 300,
        filters: { service: 'shop' },
        quantiles: [0.5, 0.9, 0.95, 0.99],
        source: 'raw',
      }),
  },
  {
    name: 'series by status class over 10 s steps',
    run: (s) =>
      s.series(acme, {
        range: { from: FROM + 60, to: FROM + 360 },
        stepS: 10,
        filters: { statusClass: '4xx' },
        quantiles: [0.9],
        source: 'auto',
      }),
  },
  {
    name: 'saturation, 1-minute steps',
    run: (s) => s.saturation(everyone, { range: RANGE, stepS: 60, source: 'auto' }),
  },
  {
    name: 'consumers by p99',
    run: (s) =>
      s.consumers(everyone, {
        range: RANGE,
        filters: noFilters,
        sort: 'p99',
        order: 'asc',
        limit: 3,
        offset: 1,
      }),
  },
  { name: 'trace', run: (s) => s.trace(everyone, { traceId: '0'.repeat(32) }) },
  {
    name: 'recent traces',
    run: (s) => s.recentTraces(everyone, { range: RANGE, filters: { method: 'POST' }, limit: 20 }),
  },
  {
    name: 'log page',
    run: (s) =>
      s.logs(acme, {
        range: RANGE,
        filters: { service: 'billing' },
        errorKind: 'none',
        minDurationMs: 20,
        limit: 50,
      }),
  },
  { name: 'pipeline', run: (s) => s.pipeline(everyone, { range: RANGE }) },
  ...(['latency_quantile', 'error_rate', 'request_rate'] as const).map((kind) => ({
    name: `signal ${kind} by tenant and service`,
    run: (s: Store) =>
      s.signal(everyone, { kind, quantile: 0.9, range: RANGE, filters: {}, groupBy: ['tenant', 'service'] }),
  })),
  {
    name: 'signal heap ratio',
    run: (s) =>
      s.signal(everyone, {
        kind: 'saturation',
        metric: 'heap_used_ratio',
        range: RANGE,
        filters: {},
        groupBy: ['instance'],
      }),
  },
  { name: 'alerts', run: (s) => s.alerts(everyone, { now: NOW }) },
  {
    name: 'alert history',
    run: (s) => s.alertHistory(everyone, { range: { from: 0, to: NOW + 1 }, limit: 100 }),
  },
];
