import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { evaluateSlo, resolveSlo, sloDefaultsSchema, sloSchema } from '@tapwire/alerting';
import { createClickHouseStore, GRAFANA_SQL, latencyEdge } from '@tapwire/analytics';
import { type ClickHouse, createClickHouse, identifier, migrate, raw, sql } from '@tapwire/clickhouse';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DASHBOARDS, renderDashboard } from '../../scripts/dashboards.js';
import {
  dateTime,
  generateLogs,
  insertLogs,
  type SeedLog,
  type SeedSpan,
  saturationRow,
  spanRow,
} from '../support/analytics-seed.js';
import { testClickHouseConfig, uniqueName } from '../support/infra.js';

const MIGRATIONS = fileURLToPath(new URL('../../migrations', import.meta.url));
const SLOW_TRACE = '5'.repeat(32);
const FAST_TRACE = 'f'.repeat(32);

/** traceSpans is one request through the proxy (shop) into an app sending OTLP (users-app). */
function traceSpans(traceId: string, atS: number, durationUs: number): SeedSpan[] {
  const start = atS * 1_000_000;
  const base = { tenant: 'acme', traceId, status: 'UNSET' as const };
  const app = {
    ...base,
    service: 'users-app',
    resource: { 'service.version': '1.4.2' },
    scopeName: '@opentelemetry/instrumentation-http',
    scopeVersion: '0.52.0',
  };
  return [
    {
      ...base,
      spanId: 'a'.repeat(16),
      parentSpanId: '',
      name: 'GET /users/:id',
      kind: 'SERVER',
      service: 'shop',
      startUs: start,
      durationUs,
      attributes: { 'http.route': '/users/:id' },
    },
    {
      ...base,
      spanId: 'b'.repeat(16),
      parentSpanId: 'a'.repeat(16),
      name: 'GET /users/:id',
      kind: 'CLIENT',
      service: 'shop',
      startUs: start + 1_000,
      durationUs: durationUs - 2_000,
      attributes: {},
    },
    {
      ...app,
      spanId: 'c'.repeat(16),
      parentSpanId: 'b'.repeat(16),
      name: 'GET /users/{id}',
      kind: 'SERVER',
      startUs: start + 2_000,
      durationUs: durationUs - 5_000,
      status: 'ERROR',
      attributes: { 'http.route': '/users/{id}' },
      events: [{ time: start + 3_000, name: 'exception', attributes: { 'exception.message': 'boom' } }],
    },
    {
      ...app,
      spanId: 'd'.repeat(16),
      parentSpanId: 'c'.repeat(16),
      name: 'load user',
      kind: 'INTERNAL',
      startUs: start + 3_000,
      durationUs: 1_000,
      attributes: {},
    },
  ];
}
const NOW = Math.floor(Date.now() / 1000 / 60) * 60;
const FROM = NOW - 3600;
let database: string;
let ch: ClickHouse;

/** VARIABLE_DEFAULTS are the dashboards' text and custom variables at their default values. */
const VARIABLE_DEFAULTS: Record<string, string> = Object.fromEntries(
  Object.values(DASHBOARDS).flatMap((d) =>
    (d.templating?.list ?? [])
      .filter((v) => v.type === 'textbox' || v.type === 'custom')
      .map((v) => [v.name, String(v.current?.value ?? '')]),
  ),
);

/** expand does what Grafana and the ClickHouse plugin do to a panel's SQL before sending it. */
function expand(
  text: string,
  vars: Record<string, string>,
  time: { from: number; to: number; intervalS: number } = { from: FROM, to: NOW, intervalS: 60 },
): string {
  return text
    .replace(
      /\$__timeFilter\((\w+)\)/g,
      (_m, col: string) => `${col} >= toDateTime(${time.from}) AND ${col} <= toDateTime(${time.to})`,
    )
    .replace(/\$__fromTime/g, `toDateTime(${time.from})`)
    .replace(/\$__toTime/g, `toDateTime(${time.to})`)
    .replace(/\$__interval_s/g, String(time.intervalS))
    .replace(
      /\$\{(\w+):singlequote\}/g,
      (_m, name: string) =>
        `'${(vars[name] ?? VARIABLE_DEFAULTS[name] ?? '__all').replace(/\\/g, '\\\\').replace(/'/g, "\\'")}'`,
    );
}

/**
 * The SLO dashboard's traffic, in its own tenant: 26 hours before SLO_NOW and 10 minutes after,
 * a few requests a minute on three routes at scattered seconds, cycling through good, 4xx, 5xx,
 * 429 and durations of 3.5 to 602.5 ms (never on a histogram edge), over three consumers.
 */
const SLO_NOW = Date.UTC(2026, 10, 20, 12, 37, 0) / 1000;
function sloSeed(): SeedLog[] {
  const statuses = [200, 201, 500, 200, 503, 429, 200, 404, 502, 200, 200, 204];
  const routes = [
    { service: 'pay', route: '/charge', method: 'POST', per: 4, base: 2 },
    { service: 'pay', route: '/refund', method: 'GET', per: 3, base: 1 },
    { service: 'ship', route: '/track', method: 'GET', per: 1, base: 2 },
  ];
  const logs: SeedLog[] = [];
  for (let t = SLO_NOW - 26 * 3600, k = 0; t < SLO_NOW + 600; t += 60, k++)
    for (const [r, x] of routes.entries())
      for (let j = 0; j < x.base + (k % x.per); j++) {
        const status = statuses[(k * 5 + j * 7 + r) % statuses.length] ?? 200;
        logs.push({
          tenant: 'slo',
          tsUs: (t + ((j * 17 + k) % 60)) * 1_000_000 + 5,
          id: `slo-${r}-${k}-${j}`,
          traceId: `${r}${k}x${j}`.padStart(32, '0'),
          service: x.service,
          route: x.route,
          method: x.method,
          status,
          durationMs: 3.5 + ((k * 37 + j * 101 + r * 13) % 600),
          consumer: ['c1', 'c2', 'c3'][(k + j + r) % 3] ?? '',
          bytesIn: 0,
          bytesOut: 10,
          errorKind: status >= 500 ? 'upstream_error' : 'none',
        });
      }
  return logs;
}
const sloLogs = sloSeed();

beforeAll(async () => {
  database = uniqueName('tapwire_dash');
  await migrate(testClickHouseConfig(database), { dir: MIGRATIONS, lockSettleMs: 200 });
  ch = createClickHouse(testClickHouseConfig(database));
  // The proxy's policy decisions on shop's requests: cache hit, miss, stale and bypass in turn,
  // a quota of 100 per consumer, every tenth refused by it, every seventh an auth failure.
  const policy = (l: SeedLog, i: number): SeedLog =>
    l.service !== 'shop'
      ? l
      : {
          ...l,
          cache: (['hit', 'miss', 'stale', 'bypass'] as const)[i % 4],
          ratelimitLimit: 100,
          ratelimitRemaining: i % 100,
          ...(i % 10 === 0 ? { status: 429, errorKind: 'rate_limited' } : {}),
          ...(i % 7 === 0
            ? { status: 401, errorKind: (['auth_missing', 'auth_invalid'] as const)[i % 2] }
            : {}),
        };
  await insertLogs(
    ch,
    generateLogs(
      [
        {
          tenant: 'acme',
          service: 'shop',
          route: '/users/:id',
          method: 'GET',
          count: 600,
          medianMs: 40,
          sigma: 0.5,
          rate5xx: 0.05,
          rate4xx: 0.05,
          consumers: ['key-a', 'key-b'],
        },
        {
          tenant: 'acme',
          service: 'billing',
          route: '/invoices',
          method: 'POST',
          count: 300,
          medianMs: 90,
          sigma: 0.4,
          rate5xx: 0.02,
          rate4xx: 0,
          consumers: ['key-a'],
        },
      ],
      FROM,
      3600,
    ).map(policy),
  );
  await insertLogs(ch, sloLogs);
  await ch.insert(
    'spans',
    [...traceSpans(SLOW_TRACE, NOW - 600, 90_000), ...traceSpans(FAST_TRACE, NOW - 900, 20_000)].map((x, i) =>
      spanRow(x, i),
    ),
  );
  // An app's retried export: the same spans again, in another part, before any merge.
  await ch.insert(
    'spans',
    traceSpans(FAST_TRACE, NOW - 900, 20_000).map((x, i) => spanRow(x, 100 + i)),
  );
  const samples = Array.from({ length: 120 }, (_, i) =>
    saturationRow(
      {
        tenant: 'acme',
        service: 'shop',
        instance: 'proxy-1',
        upstream: 'users',
        tsS: FROM + i * 30,
        inFlight: i % 7,
        limit: 64,
        poolSize: 8,
        poolBusy: i % 4,
        elu: 0.3,
        heapUsed: 60_000_000,
        spoolBytes: i * 10,
        dropped: i,
        targets: [
          { upstream: 'users', target: '10.0.0.1:80', state: 'healthy', inFlight: i % 3, failures: 0 },
          {
            upstream: 'users',
            target: '10.0.0.2:80',
            state: i % 40 < 30 ? 'healthy' : 'ejected',
            inFlight: 0,
            failures: i % 40 < 30 ? 0 : 5,
          },
        ],
      },
      i,
    ),
  );
  await ch.insert('saturation', samples);
  await ch.insert('consumer_lag', [
    {
      ts: dateTime(NOW - 60),
      consumer_group: 'tapwire-ingest',
      topic: 'tapwire.access.v1',
      partition: 0,
      high_watermark: 100,
      consumed: 90,
      lag: 10,
      instance: 'i',
    },
  ]);
  await ch.insert('dlq_events', [
    {
      tenant: 'acme',
      ts: dateTime(NOW - 120),
      ts_us: (NOW - 120) * 1e6,
      id: 'd',
      source_topic: 'tapwire.access.v1',
      source_partition: 0,
      source_offset: 1,
      reason: 'not JSON',
      raw_base64: '',
      consumer_group: 'g',
      kafka_partition: 0,
      kafka_offset: 1,
    },
  ]);
  const alert = (state: string, t: number, receiver = '') => ({
    tenant: 'acme',
    ts: dateTime(t),
    ts_us: t * 1e6,
    id: `${state}${t}${receiver}`,
    rule_id: 'p99',
    fingerprint: '0123456789abcdef',
    label_keys: ['alertname'],
    label_values: ['P99High'],
    state,
    value: 1,
    has_value: 1,
    threshold: 1,
    since_us: t * 1e6,
    active_at_us: t * 1e6,
    fired_at_us: 0,
    last_notified_us: 0,
    receiver,
    kafka_partition: 0,
    kafka_offset: t,
  });
  await ch.insert('alert_history', [
    alert('pending', NOW - 900),
    alert('firing', NOW - 600),
    alert('firing', NOW - 599, 'chat'),
    alert('resolved', NOW - 300),
  ]);
}, 120_000);

afterAll(async () => {
  await ch?.command(sql`DROP DATABASE IF EXISTS ${identifier(database)}`);
  await ch?.close();
});

describe('Grafana dashboards', () => {
  it('the committed JSON is what scripts/dashboards.ts generates (run `npm run dashboards`)', () => {
    for (const [file, d] of Object.entries(DASHBOARDS)) {
      const committed = readFileSync(
        fileURLToPath(new URL(`../../dashboards/${file}`, import.meta.url)),
        'utf8',
      );
      expect(committed, file).toBe(renderDashboard(d));
    }
  });

  it('every panel and variable query runs on ClickHouse with the macros expanded and returns rows', async () => {
    const settings: Record<string, string>[] = [
      {},
      { tenant: 'acme', service: 'shop', route: '/users/:id', consumer: 'key-a' },
    ];
    const queries = Object.values(DASHBOARDS).flatMap((d) => [
      ...(d.templating?.list ?? [])
        .filter((v) => v.type === 'query')
        .map((v) => ({
          where: `${d.uid} variable ${v.name}`,
          text: String(v.query),
        })),
      ...(d.panels ?? []).flatMap((p) =>
        ('targets' in p ? (p.targets ?? []) : []).map((t) => ({
          where: `${d.uid} / ${p.title}`,
          text: String((t as { rawSql: string }).rawSql),
        })),
      ),
    ]);
    expect(queries.length).toBeGreaterThanOrEqual(Object.keys(GRAFANA_SQL).length);
    for (const q of queries) {
      for (const vars of settings) {
        const rows = await ch.query(raw(expand(q.text, vars)));
        expect(rows.length, `${q.where} with ${JSON.stringify(vars)}`).toBeGreaterThan(0);
      }
    }
  }, 120_000);
});

describe('the trace panel', () => {
  const panelSql = () => {
    const panel = DASHBOARDS['route-drilldown.json']!.panels!.find((p) => p.title === 'Trace')!;
    return String((('targets' in panel ? panel.targets : []) as { rawSql: string }[])[0]!.rawSql);
  };

  it("shows a trace across services: the proxy's spans and the app's OTLP spans, with their parents, each once though the app sent them twice", async () => {
    const rows = await ch.query(raw(expand(panelSql(), { trace_id: FAST_TRACE })));
    const start = (NOW - 900) * 1_000_000;
    expect(rows).toEqual([
      {
        traceID: FAST_TRACE,
        spanID: 'a'.repeat(16),
        parentSpanID: '',
        serviceName: 'shop',
        operationName: 'GET /users/:id',
        startTime: start / 1000,
        duration: 20,
        kind: 'SERVER',
        statusCode: 'UNSET',
        statusMessage: '',
        instrumentationLibraryName: '',
        instrumentationLibraryVersion: '',
      },
      expect.objectContaining({
        spanID: 'b'.repeat(16),
        parentSpanID: 'a'.repeat(16),
        serviceName: 'shop',
        kind: 'CLIENT',
      }),
      {
        traceID: FAST_TRACE,
        spanID: 'c'.repeat(16),
        parentSpanID: 'b'.repeat(16),
        serviceName: 'users-app',
        operationName: 'GET /users/{id}',
        startTime: (start + 2_000) / 1000,
        duration: 15,
        kind: 'SERVER',
        statusCode: 'ERROR',
        statusMessage: '',
        instrumentationLibraryName: '@opentelemetry/instrumentation-http',
        instrumentationLibraryVersion: '0.52.0',
      },
      expect.objectContaining({
        spanID: 'd'.repeat(16),
        parentSpanID: 'c'.repeat(16),
        serviceName: 'users-app',
        kind: 'INTERNAL',
      }),
    ]);
  });

  it('without a trace id shows the slowest request of the route in the window', async () => {
    const settings: Record<string, string>[] = [{}, { tenant: 'acme', service: 'shop', route: '/users/:id' }];
    for (const vars of settings) {
      const rows = await ch.query<{ traceID: string }>(raw(expand(panelSql(), vars)));
      expect(rows.map((r) => r.traceID)).toEqual(Array(4).fill(SLOW_TRACE));
    }
    const none = await ch.query(raw(expand(panelSql(), { route: '/invoices' })));
    expect(none).toEqual([]);
  });
});

/** SloCase is an SLO as the dashboard's variables and as the alerting file declare it. */
interface SloCase {
  name: string;
  vars: Record<string, string>;
  slo: Record<string, unknown>;
  /** good says whether a raw request is good, null when the SLI leaves it out. */
  good: (l: SeedLog) => boolean | null;
  selector: (l: SeedLog) => boolean;
}

const bucketOf = (ms: number) => Math.ceil(Math.log(Math.max(ms, 0.001)) / Math.log(1.01));
const SLO_CASES: SloCase[] = [
  {
    name: 'availability of one route, 429 ignored',
    vars: {
      tenant: 'slo',
      service: 'pay',
      route: '/charge',
      method: 'POST',
      sli: 'availability',
      objective: '99.5',
      window: '86400',
      bad_statuses: '5xx',
      ignored_statuses: '429',
    },
    slo: {
      selector: { tenant: 'slo', service: 'pay', route: '/charge', method: 'POST' },
      sli: { kind: 'availability', bad_statuses: ['5xx'], ignored_statuses: [429] },
      objective: 99.5,
      window: '1d',
    },
    good: (l) => (l.status === 429 ? null : l.status < 500),
    selector: (l) => l.service === 'pay' && l.route === '/charge' && l.method === 'POST',
  },
  {
    name: 'latency of one consumer (hours, then raw minutes)',
    vars: {
      tenant: 'slo',
      consumer: 'c1',
      sli: 'latency',
      threshold_ms: '250',
      objective: '99',
      window: '86400',
    },
    slo: {
      selector: { tenant: 'slo', consumer: 'c1' },
      sli: { kind: 'latency', threshold_ms: 250 },
      objective: 99,
      window: '1d',
    },
    good: (l) => bucketOf(l.durationMs) <= latencyEdge(250).maxBucket,
    selector: (l) => l.consumer === 'c1',
  },
  {
    name: 'availability of a service, codes and classes bad, 7d',
    vars: {
      tenant: 'slo',
      service: 'pay',
      sli: 'availability',
      objective: '99.9',
      window: '604800',
      bad_statuses: '503, 4XX',
    },
    slo: {
      selector: { tenant: 'slo', service: 'pay' },
      sli: { kind: 'availability', bad_statuses: [503, '4xx'] },
      objective: 99.9,
      window: '7d',
    },
    good: (l) => !(l.status === 503 || Math.floor(l.status / 100) === 4),
    selector: (l) => l.service === 'pay',
  },
  {
    name: 'latency of a tenant, 28d',
    vars: { tenant: 'slo', sli: 'latency', threshold_ms: '100', objective: '95', window: '2419200' },
    slo: {
      selector: { tenant: 'slo' },
      sli: { kind: 'latency', threshold_ms: 100 },
      objective: 95,
      window: '28d',
    },
    good: (l) => bucketOf(l.durationMs) <= latencyEdge(100).maxBucket,
    selector: () => true,
  },
  {
    name: 'availability of one consumer',
    vars: { tenant: 'slo', consumer: 'c2', sli: 'availability', objective: '98', window: '86400' },
    slo: {
      selector: { tenant: 'slo', consumer: 'c2' },
      sli: { kind: 'availability' },
      objective: 98,
      window: '1d',
    },
    good: (l) => l.status < 500,
    selector: (l) => l.consumer === 'c2',
  },
];

/** rawSlo counts the good and total requests of [from, to) from the seeded rows. */
function rawSlo(c: SloCase, from: number, to: number): { good: number; total: number } {
  let good = 0;
  let total = 0;
  for (const l of sloLogs) {
    const s = Math.floor(l.tsUs / 1_000_000);
    if (s < from || s >= to || !c.selector(l)) continue;
    const g = c.good(l);
    if (g === null) continue;
    total++;
    if (g) good++;
  }
  return { good, total };
}

const BURN_WINDOWS = { '5m': 300, '30m': 1800, '1h': 3600, '6h': 21_600, '1d': 86_400, '3d': 259_200 };

describe('Grafana SLO dashboard', () => {
  const slo = DASHBOARDS['slo.json'];
  const panelSql = (title: string) => {
    const p = slo?.panels?.find((x) => x.title === title);
    const t = p && 'targets' in p ? p.targets?.[0] : undefined;
    if (!t) throw new Error(`no panel ${title}`);
    return String((t as { rawSql: string }).rawSql);
  };
  // The dashboard's end is 17 s past a whole minute; the windows end at that minute (SLO_NOW).
  const time = { from: SLO_NOW - 3 * 3600 + 5, to: SLO_NOW + 17, intervalS: 1750 };
  const ends = [0, 1, 2, 3, 4, 5].map((i) => SLO_NOW - i * 1800).reverse();
  const near = (a: number, b: number) => Math.abs(a - b) <= 1e-9 * Math.max(1, Math.abs(b));

  it.each(SLO_CASES)('answers what the raw rows give, to the last request: $name', async (c) => {
    const objective = Number(c.vars.objective);
    const allowed = 1 - objective / 100;
    const windowS = Number(c.vars.window);
    const burn = (r: { good: number; total: number }) =>
      r.total === 0 ? 0 : (r.total - r.good) / r.total / allowed;
    const remaining = (r: { good: number; total: number }) =>
      r.total === 0 ? 100 : 100 * (1 - (r.total - r.good) / (r.total * allowed));
    const query = async (title: string) =>
      (await ch.query(raw(expand(panelSql(title), c.vars, time)))) as Record<string, unknown>[];
    const whole = rawSlo(c, SLO_NOW - windowS, SLO_NOW);
    expect(whole.total).toBeGreaterThan(100);
    expect(whole.good).toBeLessThan(whole.total);

    const [sli] = await query('SLI over the window');
    expect(near(Number(sli?.sli), (100 * whole.good) / whole.total), `SLI ${sli?.sli}`).toBe(true);
    const [budget] = await query('Error budget remaining');
    expect(
      near(Number(budget?.budget_remaining), remaining(whole)),
      `budget ${budget?.budget_remaining}`,
    ).toBe(true);
    const [now] = await query('Burn rates now (5m, 30m, 1h, 6h, 1d, 3d)');
    for (const [w, s] of Object.entries(BURN_WINDOWS)) {
      const want = burn(rawSlo(c, SLO_NOW - s, SLO_NOW));
      expect(near(Number(now?.[w]), want), `burn ${w}: ${now?.[w]} vs ${want}`).toBe(true);
    }

    const budgetSeries = await query('Error budget remaining over time');
    expect(budgetSeries.map((r) => Date.parse(`${r.time}Z`) / 1000)).toEqual(ends);
    budgetSeries.forEach((r, i) => {
      const end = ends[i] ?? 0;
      expect(
        near(Number(r.budget_remaining), remaining(rawSlo(c, end - windowS, end))),
        `budget at ${end}`,
      ).toBe(true);
    });
    const sliSeries = await query('SLI over the window, over time');
    expect(sliSeries.map((r) => Number(r.sli))).toSatisfy((xs: number[]) =>
      xs.every((x, i) => {
        const r = rawSlo(c, (ends[i] ?? 0) - windowS, ends[i] ?? 0);
        return near(x, (100 * r.good) / r.total);
      }),
    );
    const burnSeries = await query('Burn rates over time, with the page and ticket factors');
    const got = Object.fromEntries(
      burnSeries.map((r) => [`${Date.parse(`${r.time}Z`) / 1000} ${r.series}`, Number(r.burn_rate)]),
    );
    const want: Record<string, number> = {};
    for (const end of ends) {
      for (const [w, s] of Object.entries(BURN_WINDOWS)) {
        const r = rawSlo(c, end - s, end);
        // A window without a request has no row; its burn rate is 0 either way.
        if (r.total > 0) want[`${end} ${w}`] = burn(r);
      }
      want[`${end} page: 1h and 5m above`] = 14.4;
      want[`${end} page: 6h and 30m above`] = 6;
      want[`${end} ticket: 3d and 6h above`] = 1;
    }
    expect(Object.keys(got).sort()).toEqual(Object.keys(want).sort());
    for (const [k, v] of Object.entries(want))
      expect(near(got[k] ?? Number.NaN, v), `${k}: ${got[k]} vs ${v}`).toBe(true);

    // The dashboard and the API (the Store's evaluateSlo) agree.
    const declared = resolveSlo(sloSchema.parse({ name: 'case', ...c.slo }), sloDefaultsSchema.parse({}));
    const store = createClickHouseStore(ch, { maxExecutionTimeS: 20, maxResultRows: 100_000 });
    const e = await evaluateSlo(store, { tenant: null }, declared, SLO_NOW * 1000 + 17_000);
    expect(near(e.budget.remaining_pct, Number(budget?.budget_remaining))).toBe(true);
    for (const w of Object.keys(BURN_WINDOWS))
      expect(near(e.burn_rates[w] ?? -1, Number(now?.[w])), w).toBe(true);
  });
});
