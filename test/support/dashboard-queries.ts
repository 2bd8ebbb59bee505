import { type ClickHouse, raw } from '@tapwire/clickhouse';
import { DASHBOARDS } from '../../scripts/dashboards.js';
import { dateTime, generateLogs, insertLogs, saturationRow } from './analytics-seed.js';

/**
 * The Grafana dashboards' queries as Grafana sends them, and rows for them to find: shared by the
 * dashboards test (every query returns rows on 18.16) and the ClickHouse dialect check (every
 * query gives the same answer on ClickHouse 26.9), so a panel added to dashboards/ is checked by both.
 */

/** DashboardQuery is one panel's or variable's SQL, with the macros still in it. */
export interface DashboardQuery {
  readonly where: string;
  readonly text: string;
}

/** DASHBOARD_VARIABLE_SETTINGS are the variable values each query runs with: all "All", and one of each. */
export const DASHBOARD_VARIABLE_SETTINGS: readonly Record<string, string>[] = [
  {},
  { tenant: 'acme', service: 'shop', route: '/users/:id', consumer: 'key-a' },
];

/** dashboardQueries lists every panel target and template variable query of every dashboard. */
export function dashboardQueries(): DashboardQuery[] {
  return Object.values(DASHBOARDS).flatMap((d) => [
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
}

/** expandMacros does what Grafana and the ClickHouse plugin do to a panel's SQL before sending it. */
export function expandMacros(
  text: string,
  vars: Record<string, string>,
  window: { from: number; to: number },
): string {
  return text
    .replace(
      /\$__timeFilter\((\w+)\)/g,
      (_m, col: string) => `${col} >= toDateTime(${window.from}) AND ${col} <= toDateTime(${window.to})`,
    )
    .replace(/\$__interval_s/g, '60')
    .replace(
      /\$\{(\w+):singlequote\}/g,
      (_m, name: string) => `'${(vars[name] ?? '__all').replace(/'/g, "\\'")}'`,
    );
}

/** runDashboardQueries sends every query with every variable setting; returns the row count of each. */
export async function runDashboardQueries(
  ch: ClickHouse,
  window: { from: number; to: number },
): Promise<{ where: string; vars: Record<string, string>; rows: number }[]> {
  const out: { where: string; vars: Record<string, string>; rows: number }[] = [];
  for (const q of dashboardQueries()) {
    for (const vars of DASHBOARD_VARIABLE_SETTINGS) {
      const rows = await ch.query(raw(expandMacros(q.text, vars, window)));
      out.push({ where: q.where, vars, rows: rows.length });
    }
  }
  return out;
}

/** seedDashboards writes an hour of traffic, saturation, lag, dead letters and alerts ending at `window.to`. */
export async function seedDashboards(ch: ClickHouse, window: { from: number; to: number }): Promise<void> {
  const { from: FROM, to: NOW } = window;
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
      NOW - FROM,
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
}
