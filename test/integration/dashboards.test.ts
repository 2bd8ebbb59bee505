import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { GRAFANA_SQL } from '@tapwire/analytics';
import { type ClickHouse, createClickHouse, identifier, migrate, raw, sql } from '@tapwire/clickhouse';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DASHBOARDS, renderDashboard } from '../../scripts/dashboards.js';
import { dateTime, generateLogs, insertLogs, saturationRow } from '../support/analytics-seed.js';
import { testClickHouseConfig, uniqueName } from '../support/infra.js';

const MIGRATIONS = fileURLToPath(new URL('../../migrations', import.meta.url));
const NOW = Math.floor(Date.now() / 1000 / 60) * 60;
const FROM = NOW - 3600;
let database: string;
let ch: ClickHouse;

/** expand does what Grafana and the ClickHouse plugin do to a panel's SQL before sending it. */
function expand(text: string, vars: Record<string, string>): string {
  return text
    .replace(
      /\$__timeFilter\((\w+)\)/g,
      (_m, col: string) => `${col} >= toDateTime(${FROM}) AND ${col} <= toDateTime(${NOW})`,
    )
    .replace(/\$__interval_s/g, '60')
    .replace(
      /\$\{(\w+):singlequote\}/g,
      (_m, name: string) => `'${(vars[name] ?? '__all').replace(/'/g, "\\'")}'`,
    );
}

beforeAll(async () => {
  database = uniqueName('tapwire_dash');
  await migrate(testClickHouseConfig(database), { dir: MIGRATIONS, lockSettleMs: 200 });
  ch = createClickHouse(testClickHouseConfig(database));
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
    ),
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
      ...(d.templating?.list ?? []).map((v) => ({
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
