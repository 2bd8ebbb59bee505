import { cpSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import {
  type ClickHouse,
  createClickHouse,
  identifier,
  migrate,
  raw,
  readMigrations,
  sql,
  TapwireClickHouseError,
} from '@tapwire/clickhouse';
import { afterAll, afterEach, describe, expect, it } from 'vitest';
import { testClickHouseConfig, uniqueName } from '../support/infra.js';

const MIGRATIONS = fileURLToPath(new URL('../../migrations', import.meta.url));
const FAST_LOCK = { lockSettleMs: 300 };

const EXPECTED_TABLES = [
  'access_logs',
  'alert_history',
  'consumer_lag',
  'dlq_events',
  'policy_stats_1h',
  'policy_stats_1h_mv',
  'policy_stats_1m',
  'policy_stats_1m_mv',
  'retention_runs',
  'route_histogram_1h',
  'route_histogram_1h_mv',
  'route_histogram_1m',
  'route_histogram_1m_mv',
  'route_stats_1m',
  'route_stats_1m_mv',
  'saturation',
  'saturation_1m',
  'saturation_1m_mv',
  'schema_migrations',
  'schema_migrations_lock',
  'slo_counts_1h',
  'slo_counts_1h_mv',
  'slo_counts_1m',
  'slo_counts_1m_mv',
  'spans',
  'trace_index',
  'trace_index_mv',
  'upstream_saturation_1m',
  'upstream_saturation_1m_mv',
];

const admin = createClickHouse(testClickHouseConfig('default'));
const databases: string[] = [];
const dirs: string[] = [];

function newDatabase(): string {
  const db = uniqueName('tapwire_mig');
  databases.push(db);
  return db;
}

function copyOfMigrations(): string {
  const dir = mkdtempSync(join(tmpdir(), 'tapwire-migrations-'));
  cpSync(MIGRATIONS, dir, { recursive: true });
  dirs.push(dir);
  return dir;
}

async function tablesOf(db: string): Promise<string[]> {
  const rows = await admin.query<{ name: string }>(
    sql`SELECT name FROM system.tables WHERE database = ${db} ORDER BY name`,
  );
  return rows.map((r) => r.name);
}

afterAll(async () => {
  for (const db of databases) await admin.command(sql`DROP DATABASE IF EXISTS ${identifier(db)}`);
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
  await admin.close();
});

describe('tapwire migrate', () => {
  it('creates every table and view from zero, then a second run is a no-op', async () => {
    const db = newDatabase();
    const cfg = testClickHouseConfig(db);
    const first = await migrate(cfg, { dir: MIGRATIONS, ...FAST_LOCK });
    expect(first.applied.map((a) => `${a.version}_${a.name}`)).toEqual([
      '1_raw_tables',
      '2_trace_index',
      '3_route_stats_1m',
      '4_saturation_1m',
      '5_pipeline_tables',
      '6_saturation_dropped',
      '7_route_histograms',
      '8_alert_history',
      '9_source_ledger',
      '10_slo_counts',
      '11_span_v2',
      '12_policy_decisions',
    ]);
    expect(first.alreadyApplied).toBe(0);
    expect(await tablesOf(db)).toEqual(EXPECTED_TABLES);

    const second = await migrate(cfg, { dir: MIGRATIONS, ...FAST_LOCK });
    expect(second).toEqual({ database: db, applied: [], alreadyApplied: 12 });
    expect(await tablesOf(db)).toEqual(EXPECTED_TABLES);

    const ch = createClickHouse(cfg);
    const ledger = await ch.query<{ version: number; name: string; checksum: string }>(
      raw('SELECT version, name, checksum FROM schema_migrations ORDER BY version'),
    );
    await ch.close();
    expect(ledger).toEqual(
      readMigrations(MIGRATIONS).map((m) => ({ version: m.version, name: m.name, checksum: m.checksum })),
    );
  });

  it('runs safely from two processes at once: each migration applied exactly once', async () => {
    const db = newDatabase();
    const cfg = testClickHouseConfig(db);
    const [a, b] = await Promise.all([
      migrate(cfg, { dir: MIGRATIONS, ...FAST_LOCK }),
      migrate(cfg, { dir: MIGRATIONS, ...FAST_LOCK }),
    ]);
    expect([a.applied.length, b.applied.length].sort((x, y) => x - y)).toEqual([0, 12]);
    const ch = createClickHouse(cfg);
    const ledger = await ch.query<{ n: string }>(raw('SELECT count() AS n FROM schema_migrations'));
    await ch.close();
    expect(ledger).toEqual([{ n: '12' }]);
    expect(await tablesOf(db)).toEqual(EXPECTED_TABLES);
  });

  it('re-runs an ADD COLUMN migration whose ALTER landed but whose ledger row did not (crash in between)', async () => {
    const db = newDatabase();
    const cfg = testClickHouseConfig(db);
    await migrate(cfg, { dir: MIGRATIONS, ...FAST_LOCK });
    const ch = createClickHouse(cfg);
    // What a crash after the ALTER of 0006 leaves behind: the column exists, the ledger forgot it.
    await ch.command(raw('ALTER TABLE schema_migrations DELETE WHERE version >= 6'));
    for (let i = 0; i < 50; i++) {
      const [left] = await ch.query<{ n: string }>(
        raw('SELECT count() AS n FROM schema_migrations WHERE version >= 6'),
      );
      if (left?.n === '0') break;
      await new Promise((r) => setTimeout(r, 100));
    }
    const rerun = await migrate(cfg, { dir: MIGRATIONS, ...FAST_LOCK });
    expect(rerun.applied.map((a) => a.version)).toEqual([6, 7, 8, 9, 10, 11, 12]);
    const columns = await ch.query<{ name: string }>(
      sql`SELECT name FROM system.columns WHERE database = ${db} AND table = 'saturation' AND name = 'producer_dropped_events'`,
    );
    await ch.close();
    expect(columns).toEqual([{ name: 'producer_dropped_events' }]);
  });

  it('gives rows stored before 0009 the ledger identity of a single-event record (partition, offset)', async () => {
    const db = newDatabase();
    const cfg = testClickHouseConfig(db);
    const dir = copyOfMigrations();
    rmSync(join(dir, '0009_source_ledger.sql'));
    rmSync(join(dir, '0010_slo_counts.sql'));
    rmSync(join(dir, '0011_span_v2.sql'));
    rmSync(join(dir, '0012_policy_decisions.sql'));
    await migrate(cfg, { dir, ...FAST_LOCK });
    const ch = createClickHouse(cfg);
    try {
      const old = (id: string, partition: number, offset: number) => ({
        tenant: 'acme',
        ts: 1_795_651_200,
        ts_us: 1_795_651_200_000_000,
        id,
        source_topic: 'tapwire.access.v1',
        source_partition: 0,
        source_offset: 9,
        reason: 'not_json: x',
        raw_base64: '',
        consumer_group: 'g',
        kafka_partition: partition,
        kafka_offset: offset,
      });
      await ch.insert('dlq_events', [old('a', 2, 17), old('b', 0, 3)]);
      const report = await migrate(cfg, { dir: MIGRATIONS, ...FAST_LOCK });
      expect(report.applied.map((a) => a.name)).toEqual([
        'source_ledger',
        'slo_counts',
        'span_v2',
        'policy_decisions',
      ]);
      await ch.insert('dlq_events', [
        { ...old('c', 1, 5), source_id: 'proxy-a', source_seq: 41, source_index: 3 },
      ]);
      const rows = await ch.query(
        raw('SELECT id, source_id, toString(source_seq) AS seq, source_index FROM dlq_events ORDER BY id'),
      );
      expect(rows).toEqual([
        { id: 'a', source_id: 'partition:2', seq: '17', source_index: null },
        { id: 'b', source_id: 'partition:0', seq: '3', source_index: null },
        { id: 'c', source_id: 'proxy-a', seq: '41', source_index: 3 },
      ]);
      // Every raw table has the ledger columns.
      const columns = await ch.query<{ table: string; n: string }>(
        sql`SELECT table, toString(count()) AS n FROM system.columns WHERE database = ${db} AND name IN ('source_id', 'source_seq') GROUP BY table ORDER BY table`,
      );
      expect(columns).toEqual(
        ['access_logs', 'alert_history', 'dlq_events', 'saturation', 'spans'].map((table) => ({
          table,
          n: '2',
        })),
      );
    } finally {
      await ch.close();
    }
  });

  it('gives spans stored before 0011 an empty resource, scope, events and links', async () => {
    const db = newDatabase();
    const cfg = testClickHouseConfig(db);
    const dir = copyOfMigrations();
    rmSync(join(dir, '0011_span_v2.sql'));
    rmSync(join(dir, '0012_policy_decisions.sql'));
    await migrate(cfg, { dir, ...FAST_LOCK });
    const ch = createClickHouse(cfg);
    try {
      await ch.insert('spans', [
        {
          tenant: 'acme',
          ts: 1_795_651_200,
          ts_us: 1_795_651_200_000_000,
          id: 'old',
          trace_id: 'ab'.repeat(16),
          span_id: 'cd'.repeat(8),
          parent_span_id: '',
          name: 'GET /a',
          kind: 'SERVER',
          service: 'svc',
          duration_us: 5,
          status: 'UNSET',
          status_message: '',
          attr_keys: ['k'],
          attr_values: ['v'],
          kafka_partition: 0,
          kafka_offset: 1,
          source_id: 'partition:0',
          source_seq: 1,
        },
      ]);
      const report = await migrate(cfg, { dir: MIGRATIONS, ...FAST_LOCK });
      expect(report.applied.map((a) => a.name)).toEqual(['span_v2', 'policy_decisions']);
      const rows = await ch.query(
        raw(
          'SELECT id, attr_keys, resource_keys, resource_values, scope_name, scope_version, events_json, links_json FROM spans',
        ),
      );
      expect(rows).toEqual([
        {
          id: 'old',
          attr_keys: ['k'],
          resource_keys: [],
          resource_values: [],
          scope_name: '',
          scope_version: '',
          events_json: '[]',
          links_json: '[]',
        },
      ]);
    } finally {
      await ch.close();
    }
  });

  it('gives access logs stored before 0012 no policy decision and saturation samples no targets', async () => {
    const db = newDatabase();
    const cfg = testClickHouseConfig(db);
    const dir = copyOfMigrations();
    rmSync(join(dir, '0012_policy_decisions.sql'));
    await migrate(cfg, { dir, ...FAST_LOCK });
    const ch = createClickHouse(cfg);
    try {
      const event = { tenant: 'acme', ts: 1_795_651_200, ts_us: 1_795_651_200_000_000, id: 'old' };
      await ch.insert('access_logs', [{ ...event, route: '/a', status: 200, error_kind: 'none' }]);
      await ch.insert('saturation', [{ ...event, instance: 'p1' }]);
      const report = await migrate(cfg, { dir: MIGRATIONS, ...FAST_LOCK });
      expect(report.applied.map((a) => a.name)).toEqual(['policy_decisions']);
      expect(
        await ch.query(
          raw('SELECT id, cache, target, retries, ratelimit_limit, ratelimit_remaining FROM access_logs'),
        ),
      ).toEqual([
        { id: 'old', cache: '', target: '', retries: 0, ratelimit_limit: 0, ratelimit_remaining: 0 },
      ]);
      expect(
        await ch.query(
          raw(
            'SELECT id, instance, target_upstreams, target_addresses, target_states, target_in_flight, target_consecutive_failures FROM saturation',
          ),
        ),
      ).toEqual([
        {
          id: 'old',
          instance: 'p1',
          target_upstreams: [],
          target_addresses: [],
          target_states: [],
          target_in_flight: [],
          target_consecutive_failures: [],
        },
      ]);
    } finally {
      await ch.close();
    }
  });

  it('refuses to run when a landed migration was edited, naming the file', async () => {
    const db = newDatabase();
    const cfg = testClickHouseConfig(db);
    const dir = copyOfMigrations();
    await migrate(cfg, { dir, ...FAST_LOCK });
    const file = join(dir, '0003_route_stats_1m.sql');
    writeFileSync(file, `${readFileSync(file, 'utf8')}\n-- a harmless-looking edit\n`);
    writeFileSync(join(dir, '0099_new.sql'), 'CREATE TABLE IF NOT EXISTS later (x UInt8) ENGINE = Memory;\n');
    const err = await migrate(cfg, { dir, ...FAST_LOCK }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(TapwireClickHouseError);
    expect(err).toMatchObject({ code: 'TAPWIRE_CH_MIGRATION_CHECKSUM_MISMATCH' });
    expect((err as Error).message).toMatch(
      /^a landed migration was edited: 0003_route_stats_1m\.sql changed after it was applied/,
    );
    expect(await tablesOf(db)).not.toContain('later');
  });

  it('refuses to run when an applied migration file is missing', async () => {
    const db = newDatabase();
    const cfg = testClickHouseConfig(db);
    const dir = copyOfMigrations();
    await migrate(cfg, { dir, ...FAST_LOCK });
    rmSync(join(dir, '0004_saturation_1m.sql'));
    await expect(migrate(cfg, { dir, ...FAST_LOCK })).rejects.toMatchObject({
      code: 'TAPWIRE_CH_MIGRATION_MISSING',
    });
  });

  it('stops at a failing statement, names it, records nothing for it, and resumes once fixed', async () => {
    const db = newDatabase();
    const cfg = testClickHouseConfig(db);
    const dir = copyOfMigrations();
    writeFileSync(
      join(dir, '0099_broken.sql'),
      'CREATE TABLE IF NOT EXISTS ok_part (x UInt8) ENGINE = Memory;\nCREATE TABLE IF NOT EXISTS bad (x NoSuchType) ENGINE = Memory;\n',
    );
    const err = await migrate(cfg, { dir, ...FAST_LOCK }).catch((e: unknown) => e);
    expect(err).toMatchObject({ code: 'TAPWIRE_CH_MIGRATION_FAILED' });
    expect((err as Error).message).toContain('0099_broken.sql statement 2: ');
    writeFileSync(
      join(dir, '0099_broken.sql'),
      'CREATE TABLE IF NOT EXISTS ok_part (x UInt8) ENGINE = Memory;\nCREATE TABLE IF NOT EXISTS bad (x UInt8) ENGINE = Memory;\n',
    );
    const report = await migrate(cfg, { dir, ...FAST_LOCK });
    expect(report.applied.map((a) => a.name)).toEqual(['broken']);
    expect(await tablesOf(db)).toEqual(expect.arrayContaining(['ok_part', 'bad']));
  });
});

describe('rollups filled by the materialized views', () => {
  const db = newDatabase();
  const cfg = testClickHouseConfig(db);
  let ch: ClickHouse;

  afterEach(async () => {
    for (const t of [
      'access_logs',
      'route_stats_1m',
      'spans',
      'trace_index',
      'saturation',
      'saturation_1m',
      'upstream_saturation_1m',
    ]) {
      await ch.command(sql`TRUNCATE TABLE ${identifier(t)}`);
    }
  });

  const base = {
    tenant: 'acme',
    id: '',
    trace_id: 'a'.repeat(32),
    span_id: 'b'.repeat(16),
    service: 'users-api',
    upstream: 'users',
    route: '/users/:id',
    method: 'GET',
    upstream_ms: 1,
    bytes_in: 10,
    bytes_out: 100,
    consumer: 'key_1',
    client_address: '127.0.0.1',
    server_address: 'api',
    user_agent: 'ua',
    path: '/users/1',
    query: '',
    error_kind: 'none',
    kafka_partition: 0,
    kafka_offset: 0,
  };
  const MINUTE = 1_795_651_200; // 2026-11-26T00:00:00Z

  it('counts access-log rows per minute with error classes, bytes and latency quantiles', async () => {
    await migrate(cfg, { dir: MIGRATIONS, ...FAST_LOCK });
    ch = createClickHouse(cfg);
    const rows = Array.from({ length: 1000 }, (_, i) => {
      const ts = MINUTE + (i % 60); // all in the first minute
      const status = i < 50 ? 503 : i < 150 ? 404 : 200;
      return {
        ...base,
        id: `evt-${i}`,
        ts,
        ts_us: ts * 1_000_000,
        status,
        duration_ms: i + 1,
        kafka_offset: i,
      };
    });
    rows.push({
      ...base,
      id: 'next-minute',
      ts: MINUTE + 60,
      ts_us: (MINUTE + 60) * 1e6,
      status: 200,
      duration_ms: 5,
      kafka_offset: 1000,
    });
    await ch.insert('access_logs', rows);

    const stats = await ch.query<Record<string, unknown>>(
      raw(`SELECT toUnixTimestamp(minute) AS minute, countMerge(requests) AS requests,
                  sumMerge(errors_5xx) AS e5, sumMerge(errors_4xx) AS e4,
                  sumMerge(bytes_out) AS bytes_out, maxMerge(duration_ms_max) AS max_ms,
                  quantilesTDigestMerge(0.5, 0.99)(latency_ms) AS q
           FROM route_stats_1m WHERE tenant = 'acme' GROUP BY minute ORDER BY minute`),
    );
    expect(stats).toHaveLength(2);
    expect(stats[0]).toMatchObject({
      minute: MINUTE,
      requests: '1000',
      e5: '50',
      e4: '100',
      bytes_out: '100000',
      max_ms: 1000,
    });
    const [p50, p99] = (stats[0]?.q ?? []) as number[];
    expect(Math.abs(p50! - 500.5) / 500.5).toBeLessThan(0.01);
    expect(Math.abs(p99! - 990.01) / 990.01).toBeLessThan(0.01);
    expect(stats[1]).toMatchObject({ minute: MINUTE + 60, requests: '1', e5: '0', e4: '0' });
  });

  it('indexes spans by trace id and rolls up saturation per instance and per upstream', async () => {
    await migrate(cfg, { dir: MIGRATIONS, ...FAST_LOCK });
    ch ??= createClickHouse(cfg);
    const span = (id: string, service: string, start: number, dur: number) => ({
      tenant: 'acme',
      ts: Math.floor(start / 1e6),
      ts_us: start,
      id,
      trace_id: 'c'.repeat(32),
      span_id: id.padEnd(16, '0'),
      parent_span_id: '',
      name: 'GET /x',
      kind: 'SERVER',
      service,
      duration_us: dur,
      status: 'UNSET',
      status_message: '',
      attr_keys: ['k'],
      attr_values: ['v'],
      kafka_partition: 0,
      kafka_offset: 0,
    });
    const t0 = MINUTE * 1_000_000;
    await ch.insert('spans', [span('1', 'edge', t0, 5000), span('2', 'users', t0 + 1000, 3000)]);
    const trace = await ch.query<Record<string, unknown>>(
      raw(`SELECT trace_id, minMerge(start_us) AS s, maxMerge(end_us) AS e, countMerge(span_count) AS n,
                  arraySort(groupUniqArrayMerge(services)) AS services
           FROM trace_index WHERE tenant = 'acme' AND trace_id = '${'c'.repeat(32)}' GROUP BY trace_id`),
    );
    expect(trace).toEqual([
      { trace_id: 'c'.repeat(32), s: String(t0), e: String(t0 + 5000), n: '2', services: ['edge', 'users'] },
    ]);

    const sample = (i: number, inFlight: number[]) => ({
      tenant: 'acme',
      ts: MINUTE + i,
      ts_us: (MINUTE + i) * 1e6,
      id: `s-${i}`,
      service: 'tapwire-proxy',
      instance: 'p1',
      interval_ms: 1000,
      upstream_names: ['users', 'orders'],
      upstream_in_flight: inFlight,
      upstream_concurrency_limit: [100, 50],
      upstream_pool_size: [10, 5],
      upstream_pool_busy: [2, 1],
      upstream_pool_pending: [0, 0],
      event_loop_utilization: 0.1 * (i + 1),
      event_loop_delay_ms: i,
      heap_used_bytes: 1000 + i,
      heap_limit_bytes: 4000,
      rss_bytes: 5000,
      cpu_ratio: 0.5,
      producer_buffer_events: i,
      producer_buffer_capacity: 100,
      spool_bytes: 0,
      spool_capacity_bytes: 1000,
      kafka_partition: 0,
      kafka_offset: i,
    });
    await ch.insert('saturation', [sample(0, [4, 1]), sample(1, [8, 3])]);
    const proc = await ch.query<Record<string, unknown>>(
      raw(`SELECT countMerge(samples) AS n, round(avgMerge(event_loop_utilization_avg), 3) AS elu,
                  maxMerge(heap_used_bytes_max) AS heap FROM saturation_1m WHERE instance = 'p1'`),
    );
    expect(proc).toEqual([{ n: '2', elu: 0.15, heap: '1001' }]);
    const ups = await ch.query<Record<string, unknown>>(
      raw(`SELECT upstream, countMerge(samples) AS n, avgMerge(in_flight_avg) AS avg_in_flight,
                  maxMerge(in_flight_max) AS max_in_flight, maxMerge(concurrency_limit_max) AS lim
           FROM upstream_saturation_1m WHERE instance = 'p1' GROUP BY upstream ORDER BY upstream`),
    );
    expect(ups).toEqual([
      { upstream: 'orders', n: '2', avg_in_flight: 2, max_in_flight: 3, lim: 50 },
      { upstream: 'users', n: '2', avg_in_flight: 6, max_in_flight: 8, lim: 100 },
    ]);
  });
});
