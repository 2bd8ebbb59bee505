import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { createClickHouseStore, createDuckDbStore, type Store } from '@tapwire/analytics';
import { type Api, apiConfigSchema, buildApi, type SloStatus } from '@tapwire/api';
import { type ClickHouse, createClickHouse, identifier, migrate, sql } from '@tapwire/clickhouse';
import { hashToken } from '@tapwire/config';
import { type DuckDb, openDuckDb } from '@tapwire/duckdb';
import { createLogger } from '@tapwire/telemetry';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { insertLogsInBoth, type SeedLog } from '../support/analytics-seed.js';
import { silentLogger, testClickHouseConfig, uniqueName } from '../support/infra.js';

/**
 * GET /v1/slos and GET /v1/slos/{name} on both stores: every figure equals what this test computes
 * from the rows it inserted, to the last request; tenancy, 404, 401 and 400 as a user meets them.
 */

const MIGRATIONS = fileURLToPath(new URL('../../migrations', import.meta.url));
const logger = createLogger({ name: 'api-slos-it', level: 'silent' });
// A whole minute in the past; the API's clock is 17 s after it (the windows end at the minute).
const NOW = Date.UTC(2026, 10, 25, 12, 0, 0);
const NOW_S = NOW / 1000;
const MIN = 60;
const HOUR = 3600;
const DAY = 86_400;

const TOKENS = {
  acme: 'acme-slo-token-0123456789',
  globex: 'globex-slo-token-0123456789',
  all: 'all-slo-0123456789',
};

/** Durations of the latency SLO's requests: 98 ms is under the 1 % edge below 100 ms (98.89), 99.5 is not. */
const DURATIONS = [20, 50, 98, 99.5, 150, 20, 50, 98, 20, 400];

/**
 * The seeded traffic (one row per request, at the second `(i·60)/n` of its minute, plus 0.25 s):
 * - checkout (no tenant in its SLO): acme 7 requests a minute over the 3 days before NOW and
 *   5 minutes after, one 500 in minutes divisible by 3 (one 503 and one 429 in those by 7) during
 *   the 6 hours before NOW; globex 3 a minute over the day before NOW, one 500 every 10th minute.
 * - search (acme): 10 requests a minute over the 6 hours before NOW, durations from DURATIONS.
 * - billing (globex): 2 requests a minute over the hour before NOW, all 200.
 */
function seed(): SeedLog[] {
  const logs: SeedLog[] = [];
  const add = (
    tenant: string,
    service: string,
    minuteS: number,
    statuses: number[],
    durations?: number[],
  ) => {
    for (const [i, status] of statuses.entries())
      logs.push({
        tenant,
        tsUs: (minuteS + Math.floor((i * 60) / statuses.length)) * 1_000_000 + 250_000,
        id: `${tenant}-${service}-${minuteS}-${i}`,
        traceId: `${minuteS.toString(16)}${i.toString(16).padStart(4, '0')}`.padStart(32, tenant[0] ?? 'e'),
        service,
        route: '/pay',
        method: 'POST',
        status,
        durationMs: durations?.[i] ?? 30,
        consumer: '',
        bytesIn: 0,
        bytesOut: 10,
        errorKind: status >= 500 ? 'upstream_error' : 'none',
      });
  };
  for (let t = NOW_S - 3 * DAY; t < NOW_S + 5 * MIN; t += MIN) {
    const m = t / MIN;
    const burning = t >= NOW_S - 6 * HOUR && t < NOW_S;
    const statuses = [200, 200, 200, 200, 201, 200, 200];
    if (burning && m % 3 === 0) statuses[0] = 500;
    if (burning && m % 7 === 0) {
      statuses[1] = 503;
      statuses[2] = 429;
    }
    add('acme', 'checkout', t, statuses);
  }
  for (let t = NOW_S - DAY; t < NOW_S; t += MIN)
    add('globex', 'checkout', t, [(t / MIN) % 10 === 0 ? 500 : 200, 200, 200]);
  for (let t = NOW_S - 6 * HOUR; t < NOW_S; t += MIN)
    add(
      'acme',
      'search',
      t,
      DURATIONS.map(() => 200),
      DURATIONS,
    );
  for (let t = NOW_S - HOUR; t < NOW_S; t += MIN) add('globex', 'billing', t, [200, 200]);
  return logs;
}
const logs = seed();

/** The 1 % histogram edge at or below 100 ms: 1.01^462. */
const EDGE_100 = 1.01 ** 462;

const ALERTING_YAML = `
route: { receiver: hook }
receivers:
  - name: hook
    webhook: { url: "http://127.0.0.1:9/unused" }
slos:
  - name: checkout-availability
    description: Payments succeed
    selector: { service: checkout }
    sli: { kind: availability, bad_statuses: [5xx], ignored_statuses: [429] }
    objective: 99
    window: 28d
    labels: { team: payments }
  - name: search-latency
    selector: { tenant: acme, service: search }
    sli: { kind: latency, threshold_ms: 100 }
    objective: 95
    window: 7d
  - name: billing-availability
    selector: { tenant: globex, service: billing }
    sli: { kind: availability }
    objective: 99.9
`;

/** counts are the good and total requests of [from, to) computed from the seeded rows. */
function counts(
  keep: (l: SeedLog) => boolean,
  good: (l: SeedLog) => boolean,
  from: number,
  to: number,
): { good: number; total: number } {
  let g = 0;
  let total = 0;
  for (const l of logs) {
    const s = Math.floor(l.tsUs / 1_000_000);
    if (s < from || s >= to || !keep(l)) continue;
    total++;
    if (good(l)) g++;
  }
  return { good: g, total };
}

const checkout = (tenant?: string) => (l: SeedLog) =>
  l.service === 'checkout' && l.status !== 429 && (tenant === undefined || l.tenant === tenant);
const notServerError = (l: SeedLog) => l.status < 500;

/** expectedBudget is the error budget of an objective of (100 − 100/k) %: 1/k of the requests may be bad. */
function expectedBudget(c: { good: number; total: number }, k: number) {
  const bad = c.total - c.good;
  return {
    total: c.total / k,
    spent: bad,
    remaining: (c.total - bad * k) / k,
    remaining_pct: c.total === 0 ? 100 : ((c.total - bad * k) * 100) / c.total,
  };
}
const expectedBurn = (c: { good: number; total: number }, k: number) =>
  c.total === 0 ? 0 : ((c.total - c.good) * k) / c.total;

const WINDOWS = { '5m': 5 * MIN, '30m': 30 * MIN, '1h': HOUR, '6h': 6 * HOUR, '1d': DAY, '3d': 3 * DAY };

let database: string;
let ch: ClickHouse;
let duck: DuckDb;
let dir: string;
const apis: Record<'clickhouse' | 'duckdb', Api> = {} as never;
const stores: Store[] = [];

beforeAll(async () => {
  database = uniqueName('tapwire_api_slos');
  await migrate(testClickHouseConfig(database), { dir: MIGRATIONS, logger: silentLogger, lockSettleMs: 200 });
  ch = createClickHouse(testClickHouseConfig(database));
  dir = mkdtempSync(join(tmpdir(), 'tapwire-api-slos-'));
  duck = await openDuckDb({ path: join(dir, 'tapwire.duckdb') });
  await insertLogsInBoth(ch, duck, logs);
  const file = join(dir, 'alerting.yaml');
  writeFileSync(file, ALERTING_YAML);
  const limits = { maxExecutionTimeS: 20, maxResultRows: 100_000 };
  const config = apiConfigSchema.parse({
    alertingFile: file,
    // Every answer computed afresh: the test checks the Store's counts, not the cache.
    cacheTtlMs: 0,
    tokens: [
      { name: 'acme', sha256: hashToken(TOKENS.acme), tenant: 'acme' },
      { name: 'globex', sha256: hashToken(TOKENS.globex), tenant: 'globex' },
      { name: 'all', sha256: hashToken(TOKENS.all), tenant: '*' },
    ],
  });
  const clickhouse = createClickHouseStore(ch, limits);
  const duckdb = createDuckDbStore(duck, limits);
  stores.push(clickhouse, duckdb);
  const now = () => NOW + 17_000;
  apis.clickhouse = await buildApi({ store: clickhouse, logger, now }, config);
  apis.duckdb = await buildApi({ store: duckdb, logger, now }, config);
}, 300_000);

afterAll(async () => {
  await Promise.all(Object.values(apis).map((a) => a.app.close()));
  await ch?.command(sql`DROP DATABASE IF EXISTS ${identifier(database)}`).catch(() => {});
  await stores[0]?.close();
  await duck?.close();
  if (dir) rmSync(dir, { recursive: true, force: true });
});

describe.each(['clickhouse', 'duckdb'] as const)('GET /v1/slos on the %s store', (name) => {
  const get = async (url: string, token?: string) => {
    const res = await apis[name].app.inject({
      method: 'GET',
      url,
      headers: token ? { authorization: `Bearer ${token}` } : {},
    });
    return { status: res.statusCode, body: res.json() };
  };

  it('budget and burn rates of every SLO equal those computed from the raw rows, to the last request', async () => {
    const res = await get('/v1/slos', TOKENS.acme);
    expect(res.status).toBe(200);
    const slos = res.body.slos as SloStatus[];
    // acme sees its own SLO and the one naming no tenant, not globex's.
    expect(slos.map((s) => s.name)).toEqual(['checkout-availability', 'search-latency']);

    const [co, search] = slos;
    const whole = counts(checkout('acme'), notServerError, NOW_S - 28 * DAY, NOW_S);
    expect(co).toMatchObject({
      description: 'Payments succeed',
      selector: { service: 'checkout' },
      labels: { team: 'payments' },
      objective: 99,
      window: '28d',
      at: NOW_S,
      sli: {
        kind: 'availability',
        good: whole.good,
        total: whole.total,
        value_pct: (whole.good * 100) / whole.total,
        bad_statuses: ['5xx'],
        ignored_statuses: [429],
      },
      budget: expectedBudget(whole, 100),
      alerts: [],
    });
    // The 6 burning hours hold one 500 in every third minute and one 503 every seventh.
    expect(whole.total - whole.good).toBe(120 + 52);
    for (const [w, seconds] of Object.entries(WINDOWS))
      expect(co?.burn_rates[w], w).toBe(
        expectedBurn(counts(checkout('acme'), notServerError, NOW_S - seconds, NOW_S), 100),
      );
    expect(Object.keys(co?.burn_rates ?? {}).slice(0, 7)).toEqual([
      '5m',
      '30m',
      '1h',
      '6h',
      '1d',
      '3d',
      '28d',
    ]);

    const fast = (l: SeedLog) => l.durationMs <= EDGE_100;
    const searchOf = (l: SeedLog) => l.service === 'search';
    const week = counts(searchOf, fast, NOW_S - 7 * DAY, NOW_S);
    expect(week).toEqual({ good: 360 * 7, total: 3600 });
    expect(search).toMatchObject({
      selector: { tenant: 'acme', service: 'search' },
      sli: { kind: 'latency', good: week.good, total: week.total, threshold_ms_declared: 100 },
      budget: expectedBudget(week, 20),
    });
    expect(search?.sli.threshold_ms).toBeCloseTo(EDGE_100, 9);
    for (const [w, seconds] of Object.entries(WINDOWS))
      expect(search?.burn_rates[w], w).toBe(expectedBurn(counts(searchOf, fast, NOW_S - seconds, NOW_S), 20));
  });

  it('counts only the token’s tenant; an all-tenant token counts every tenant the selector allows', async () => {
    const globex = (await get('/v1/slos', TOKENS.globex)).body.slos as SloStatus[];
    expect(globex.map((s) => s.name)).toEqual(['checkout-availability', 'billing-availability']);
    const g = counts(checkout('globex'), notServerError, NOW_S - 28 * DAY, NOW_S);
    expect(g).toEqual({ good: 1440 * 3 - 144, total: 1440 * 3 });
    expect(globex[0]?.sli).toMatchObject(g);
    expect(globex[0]?.budget).toEqual(expectedBudget(g, 100));
    expect(globex[1]?.sli).toMatchObject({ good: 120, total: 120 });
    expect(globex[1]?.budget.remaining_pct).toBe(100);

    const all = (await get('/v1/slos', TOKENS.all)).body.slos as SloStatus[];
    expect(all.map((s) => s.name)).toEqual([
      'checkout-availability',
      'search-latency',
      'billing-availability',
    ]);
    const both = counts(checkout(), notServerError, NOW_S - 28 * DAY, NOW_S);
    expect(all[0]?.sli).toMatchObject(both);
    expect(all[0]?.burn_rates['1d']).toBe(
      expectedBurn(counts(checkout(), notServerError, NOW_S - DAY, NOW_S), 100),
    );
    // tenant= narrows an all-tenant token as it does everywhere; a tenant token may not widen.
    const narrowed = (await get('/v1/slos?tenant=globex', TOKENS.all)).body.slos as SloStatus[];
    expect(narrowed.map((s) => s.name)).toEqual(['checkout-availability', 'billing-availability']);
    expect(narrowed[0]?.sli).toMatchObject(g);
    expect((await get('/v1/slos?tenant=globex', TOKENS.acme)).status).toBe(403);
    // Another tenant's SLO is not found, as if it did not exist.
    const hidden = await get('/v1/slos/billing-availability', TOKENS.acme);
    expect(hidden.status).toBe(404);
  });

  it('the series holds budget remaining and burn rate per step, each equal to the raw rows', async () => {
    const from = new Date((NOW_S - 2 * HOUR) * 1000).toISOString();
    const to = new Date((NOW_S + 30) * 1000).toISOString();
    const res = await get(
      `/v1/slos/checkout-availability?from=${from}&to=${to}&step=1h&burn_window=30m`,
      TOKENS.acme,
    );
    expect(res.status).toBe(200);
    expect(res.body).toMatchObject({ name: 'checkout-availability', at: NOW_S });
    expect(res.body.series).toMatchObject({
      from: NOW_S - 2 * HOUR,
      to: NOW_S,
      step: HOUR,
      burn_window: '30m',
    });
    const points = res.body.series.points as { at: number; budget: unknown; burn_rate: number }[];
    expect(points.map((p) => p.at)).toEqual([NOW_S - 2 * HOUR, NOW_S - HOUR, NOW_S]);
    for (const p of points) {
      expect(p.budget, String(p.at)).toEqual(
        expectedBudget(counts(checkout('acme'), notServerError, p.at - 28 * DAY, p.at), 100),
      );
      expect(p.burn_rate, String(p.at)).toBe(
        expectedBurn(counts(checkout('acme'), notServerError, p.at - 30 * MIN, p.at), 100),
      );
    }
    // Without step: the last 24 h by default, in 96 steps of 15 minutes (97 step ends).
    const fallback = await get('/v1/slos/search-latency', TOKENS.acme);
    expect(fallback.status).toBe(200);
    expect(fallback.body.series).toMatchObject({ step: 15 * MIN, burn_window: '1h' });
    expect(fallback.body.series.points).toHaveLength(97);
  });

  it('404 naming an unknown SLO, 401 without a token, 400 naming the bad parameter', async () => {
    const unknown = await get('/v1/slos/nope', TOKENS.acme);
    expect(unknown.status).toBe(404);
    expect(unknown.body.error).toMatchObject({
      code: 'TAPWIRE_API_NOT_FOUND',
      message: 'no SLO named "nope"',
    });
    for (const url of ['/v1/slos', '/v1/slos/checkout-availability']) {
      const none = await get(url);
      expect(none.status, url).toBe(401);
      expect(none.body.error.code).toBe('TAPWIRE_API_UNAUTHORIZED');
    }
    const bad = async (query: string) => {
      const res = await get(`/v1/slos/checkout-availability?${query}`, TOKENS.acme);
      expect(res.status, query).toBe(400);
      return res.body.error.fields.map((f: { field: string }) => f.field);
    };
    expect(await bad('step=90s')).toEqual(['querystring.step']);
    expect(await bad('from=now-7d&step=1m')).toEqual(['querystring.step']);
    expect(await bad('from=yesterday')).toEqual(['querystring.from']);
    expect(await bad('burn_window=0m')).toEqual(['querystring.burn_window']);
    expect(await bad('from=now&to=now-1h')).toEqual(['querystring.to']);
    expect(await bad('window=1h')).toEqual(['querystring']);
  });
});
