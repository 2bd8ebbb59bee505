import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { type Alerter, buildAlerter, createAlerterMetrics } from '@tapwire/alerter';
import { type AlertingConfig, alertingConfigSchema, evaluateSlo } from '@tapwire/alerting';
import { createClickHouseStore, createDuckDbStore, type Store } from '@tapwire/analytics';
import { type ClickHouse, createClickHouse, identifier, migrate, sql } from '@tapwire/clickhouse';
import { type DuckDb, openDuckDb } from '@tapwire/duckdb';
import { createLogger } from '@tapwire/telemetry';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { alertmanagerV4Schema } from '../support/alert-formats.js';
import { insertLogsInBoth, type SeedLog } from '../support/analytics-seed.js';
import { silentLogger, testClickHouseConfig, uniqueName } from '../support/infra.js';
import { createMemorySink } from '../support/memory-sink.js';
import { startReceiver, type TestReceiver } from '../support/receiver.js';

const MIGRATIONS = fileURLToPath(new URL('../../migrations', import.meta.url));
const logger = createLogger({ name: 'slo-alerts-it', level: 'silent' });
// A whole minute in the past: the test plays the clock, every window ends here at the first evaluation.
const NOW = Date.UTC(2026, 10, 20, 12, 0, 0);
const NOW_S = NOW / 1000;
const MIN = 60;
const HOUR = 3600;
const DAY = 86_400;

/**
 * The seeded traffic, minute by minute (one row per request, spread over the minute):
 * - `wb` (the workbook example): 10 requests a minute for 3 days before NOW and 10 minutes after;
 *   during the 2 hours before NOW, one minute in five holds one 500 — 2 % of requests in every
 *   5-minute block, 20× a 0.1 % budget.
 * - `edge-above` / `edge-at`: 125 requests a minute during the hour before NOW, 19 / 18 of them
 *   500 — 15.2 % and exactly 14.4 % against a 1 % budget (an SLO that pages at 14.4 over 1h/5m).
 */
function seed(): SeedLog[] {
  const logs: SeedLog[] = [];
  const add = (service: string, minuteS: number, n: number, bad: number) => {
    for (let i = 0; i < n; i++)
      logs.push({
        tenant: 'default',
        tsUs: (minuteS + Math.floor((i * 60) / n)) * 1_000_000 + 1234,
        id: `${service}-${minuteS}-${i}`,
        traceId: `${minuteS.toString(16)}${i.toString(16).padStart(4, '0')}`.padStart(32, 'c'),
        service,
        route: '/checkout',
        method: 'POST',
        status: i < bad ? 500 : 200,
        durationMs: 20,
        consumer: '',
        bytesIn: 0,
        bytesOut: 10,
        errorKind: i < bad ? 'upstream_error' : 'none',
      });
  };
  for (let t = NOW_S - 3 * DAY; t < NOW_S + 10 * MIN; t += MIN)
    add('wb', t, 10, t >= NOW_S - 2 * HOUR && t < NOW_S && (t / MIN) % 5 === 0 ? 1 : 0);
  for (let t = NOW_S - HOUR; t < NOW_S; t += MIN) {
    add('edge-above', t, 125, 19);
    add('edge-at', t, 125, 18);
  }
  return logs;
}
const logs = seed();

function alertingFile(hookUrl: string): AlertingConfig {
  const edge = (service: string) => ({
    name: service,
    selector: { service },
    sli: { kind: 'availability' },
    objective: 99,
    burn_rate_alerts: {
      page: { windows: [{ long: '1h', short: '5m', factor: 14.4 }] },
      ticket: { windows: [] },
    },
  });
  return alertingConfigSchema.parse({
    route: { receiver: 'hook', group_by: ['alertname', 'slo'], group_wait: '0s', group_interval: '1s' },
    receivers: [{ name: 'hook', webhook: { url: `${hookUrl}/am` } }],
    slos: [
      {
        name: 'wb',
        selector: { service: 'wb' },
        sli: { kind: 'availability' },
        objective: 99.9,
        window: '28d',
      },
      edge('edge-above'),
      edge('edge-at'),
    ],
  });
}

/** rawCounts counts good and total requests of a service in [from, to) from the seeded rows. */
function rawCounts(service: string, from: number, to: number) {
  let good = 0;
  let total = 0;
  for (const l of logs) {
    const s = Math.floor(l.tsUs / 1_000_000);
    if (l.service !== service || s < from || s >= to) continue;
    total++;
    if (l.status < 500) good++;
  }
  return { good, total };
}

let database: string;
let ch: ClickHouse;
let duck: DuckDb;
let duckDir: string;
let hook: TestReceiver;
const stores: Record<'clickhouse' | 'duckdb', Store> = {} as never;
const alerters: Alerter[] = [];

beforeAll(async () => {
  database = uniqueName('tapwire_slo_alerts');
  await migrate(testClickHouseConfig(database), { dir: MIGRATIONS, logger: silentLogger, lockSettleMs: 200 });
  ch = createClickHouse(testClickHouseConfig(database));
  duckDir = mkdtempSync(join(tmpdir(), 'tapwire-slo-alerts-'));
  duck = await openDuckDb({ path: join(duckDir, 'tapwire.duckdb') });
  await insertLogsInBoth(ch, duck, logs);
  const limits = { maxExecutionTimeS: 20, maxResultRows: 100_000 };
  stores.clickhouse = createClickHouseStore(ch, limits);
  stores.duckdb = createDuckDbStore(duck, limits);
  hook = await startReceiver({ status: 200, body: '' });
}, 300_000);

afterAll(async () => {
  await Promise.all(alerters.map((a) => a.close()));
  await ch?.command(sql`DROP DATABASE IF EXISTS ${identifier(database)}`).catch(() => {});
  await stores.clickhouse?.close();
  await duck?.close();
  if (duckDir) rmSync(duckDir, { recursive: true, force: true });
  await hook?.close();
});

describe.each(['clickhouse', 'duckdb'] as const)('SLOs on the %s store', (name) => {
  it('budget and burn rates equal those computed from the raw rows, to the last request', async () => {
    const wb = alertingFile(hook.url).slos[0];
    if (!wb) throw new Error('no SLO');
    const e = await evaluateSlo(stores[name], { tenant: null }, wb, NOW);
    for (const [w, seconds] of Object.entries({
      '5m': 5 * MIN,
      '30m': 30 * MIN,
      '1h': HOUR,
      '6h': 6 * HOUR,
      '1d': DAY,
      '3d': 3 * DAY,
      '28d': 28 * DAY,
    })) {
      const raw = rawCounts('wb', NOW_S - seconds, NOW_S);
      expect(e.counts[w], w).toEqual(raw);
      expect(e.burn_rates[w], w).toBe(((raw.total - raw.good) * 1000) / raw.total);
    }
    expect(e.burn_rates).toMatchObject({ '5m': 20, '30m': 20, '1h': 20, '6h': 20 / 3, '3d': 40 / 72 });
    expect(e.budget).toEqual({
      total: 43.2,
      spent: 24,
      remaining: 19.2,
      remaining_pct: (19_200 * 100) / 43_200,
    });
  });

  it('the alerts the math says fire at the first evaluation, notify the webhook and resolve when the short window recovers', async () => {
    hook.requests.length = 0;
    const clock = { t: NOW };
    const alerter = buildAlerter(
      {
        store: stores[name],
        slos: stores[name],
        sink: createMemorySink(),
        logger,
        metrics: createAlerterMetrics(),
        now: () => clock.t,
      },
      alertingFile(hook.url),
      {
        apiUrl: 'http://api.test',
        dashboardUrl: 'http://grafana.test/d/x',
        dispatchTickMs: 1000,
        retry: { maxAttempts: 2, initialBackoffMs: 1, maxBackoffMs: 2 },
      },
    );
    alerters.push(alerter);
    const step = async (at: number) => {
      clock.t = at;
      await alerter.evaluateSlos(at);
      await alerter.dispatch(at);
    };
    const firing = () =>
      alerter
        .alerts()
        .filter((a) => a.instance.state === 'firing')
        .map((a) => a.ruleId)
        .sort();
    await step(NOW);
    expect(firing()).toEqual(['slo:edge-above:page:1h/5m', 'slo:wb:page:1h/5m', 'slo:wb:page:6h/30m']);
    const bodies = () => hook.requests.map((r) => alertmanagerV4Schema.parse(JSON.parse(r.body)));
    expect(
      bodies()
        .map((b) => `${b.groupLabels.slo}:${b.alerts.map((a) => a.labels.long_window).sort()}`)
        .sort(),
    ).toEqual(['edge-above:1h', 'wb:1h,6h']);
    // A minute later the 5m window of wb holds no bad minute: its 1h/5m page resolves (the 1h still burns).
    await step(NOW + MIN * 1000);
    expect(firing()).toContain('slo:wb:page:6h/30m');
    expect(firing()).not.toContain('slo:wb:page:1h/5m');
    expect(
      bodies()
        .at(-1)
        ?.alerts.find((a) => a.labels.long_window === '1h')?.status,
    ).toBe('resolved');
  });
});
