import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { createClickHouse, identifier, migrate, raw, sql } from '@tapwire/clickhouse';
import {
  type DuckDb,
  identifier as duckIdentifier,
  raw as duckRaw,
  sql as duckSql,
  openDuckDb,
} from '@tapwire/duckdb';
import {
  buildIngest,
  clickhouseWarehouse,
  createRetentionJob,
  duckdbWarehouse,
  ingestConfigSchema,
  replay,
  STREAMS,
  type Warehouse,
} from '@tapwire/ingest';
import { createLogEventSink, type FileLog, fileLogSource, openFileLog } from '@tapwire/log';
import { type AccessLogEvent, type DlqEvent, TOPICS } from '@tapwire/schema';
import { createLogger } from '@tapwire/telemetry';
import { afterAll, describe, expect, it, vi } from 'vitest';
import { exampleAccessLog, exampleSaturation, exampleSpan } from '../support/events.js';
import { silentLogger, testClickHouseConfig, uniqueName } from '../support/infra.js';

// The ingest pipeline reading the embedded log instead of Kafka: same code path (consumer group,
// offsets, batches, ledger, DLQ), into real ClickHouse and into the embedded DuckDB store.

const logger = createLogger({ name: 'embedded-log-it', level: 'silent' });
const MIGRATIONS = fileURLToPath(new URL('../../migrations', import.meta.url));
const databases: string[] = [];
const logs: FileLog[] = [];

type StoreKind = 'clickhouse' | 'duckdb';
const dbs: DuckDb[] = [];

/** Backend is one store under ingest: its warehouse, and how the test reads and truncates it. */
interface Backend {
  warehouse: Warehouse;
  /** Rows per raw table, distinct access-log ids, and the requests its rollups hold (DuckDB: the SLO counts). */
  counts(): Promise<Record<string, number>>;
  accessLogs(): Promise<Record<string, unknown>[]>;
  truncateAccessLogs(): Promise<void>;
}

const ACCESS_FIELDS =
  'id, status, duration_ms, route, trace_id, bytes_out, ts_us, cache, target, retries, ratelimit_limit, ratelimit_remaining';
const numbers = (r: Record<string, unknown> | undefined) =>
  Object.fromEntries(Object.entries(r ?? {}).map(([k, v]) => [k, Number(v)]));

async function backend(kind: StoreKind): Promise<Backend> {
  if (kind === 'duckdb') {
    const db = await openDuckDb({
      path: join(mkdtempSync(join(tmpdir(), 'tapwire-elog-db-')), 'tapwire.duckdb'),
    });
    dbs.push(db);
    return {
      warehouse: duckdbWarehouse(db),
      async counts() {
        const [r] = await db.query<Record<string, string>>(
          duckRaw(`SELECT (SELECT count(*) FROM access_logs) AS access_logs,
            (SELECT count(DISTINCT id) FROM access_logs) AS access_ids,
            (SELECT count(*) FROM spans) AS spans, (SELECT count(*) FROM saturation) AS saturation,
            (SELECT coalesce(sum(requests) FILTER (WHERE facet = 0), 0) FROM slo_counts_1h) AS slo_counts_1h,
            (SELECT coalesce(sum(requests), 0) FROM policy_stats_1h) AS policy_stats_1h,
            (SELECT coalesce(sum(rate_limited), 0) FROM policy_stats_1h) AS rate_limited,
            (SELECT coalesce(sum(len(target_addresses)), 0) FROM saturation) AS target_samples`),
        );
        return numbers(r);
      },
      accessLogs: () => db.query(duckRaw(`SELECT ${ACCESS_FIELDS} FROM access_logs`)),
      async truncateAccessLogs() {
        for (const t of [
          'access_logs',
          'slo_counts_1m',
          'slo_counts_1h',
          'policy_stats_1m',
          'policy_stats_1h',
        ])
          await db.run(duckSql`DELETE FROM ${duckIdentifier(t)}`);
      },
    };
  }
  const database = uniqueName('tapwire_embedded_log');
  databases.push(database);
  await migrate(testClickHouseConfig(database), { dir: MIGRATIONS, lockSettleMs: 200 });
  const ch = createClickHouse(testClickHouseConfig(database));
  return {
    warehouse: clickhouseWarehouse(ch),
    async counts() {
      const [r] = await ch.query<Record<string, string>>(
        raw(`SELECT (SELECT count() FROM access_logs) AS access_logs,
                (SELECT uniqExact(id) FROM access_logs) AS access_ids,
                (SELECT count() FROM spans) AS spans,
                (SELECT count() FROM saturation) AS saturation,
                (SELECT countMerge(requests) FROM route_stats_1m) AS route_stats_1m,
                (SELECT sum(requests) FROM route_histogram_1h) AS route_histogram_1h,
                (SELECT sumIf(requests, facet = 0) FROM slo_counts_1h) AS slo_counts_1h,
                (SELECT sum(requests) FROM policy_stats_1h) AS policy_stats_1h,
                (SELECT sum(rate_limited) FROM policy_stats_1h) AS rate_limited,
                (SELECT sum(length(target_addresses)) FROM saturation) AS target_samples`),
      );
      return numbers(r);
    },
    accessLogs: () => ch.query(raw(`SELECT ${ACCESS_FIELDS} FROM access_logs`)),
    async truncateAccessLogs() {
      for (const t of [
        'access_logs',
        'route_stats_1m',
        'route_histogram_1m',
        'route_histogram_1h',
        'slo_counts_1m',
        'slo_counts_1h',
        'policy_stats_1m',
        'policy_stats_1h',
      ])
        await ch.command(sql`TRUNCATE TABLE ${identifier(t)}`);
    },
  };
}

/** expected adds the rollups' request counts (which equal the access logs); the SLO counts are in both stores. */
function expected(
  kind: StoreKind,
  c: {
    access_logs: number;
    spans: number;
    saturation: number;
    rate_limited?: number;
    target_samples?: number;
  },
) {
  return {
    rate_limited: 0,
    target_samples: 0,
    ...c,
    access_ids: c.access_logs,
    slo_counts_1h: c.access_logs,
    policy_stats_1h: c.access_logs,
    ...(kind === 'clickhouse' ? { route_stats_1m: c.access_logs, route_histogram_1h: c.access_logs } : {}),
  };
}

async function world(kind: StoreKind) {
  const store = await backend(kind);
  const log = await openFileLog({ dir: mkdtempSync(join(tmpdir(), 'tapwire-elog-')), fsync: 'interval' });
  logs.push(log);
  const sinkConfig = { lingerMs: 10, maxBufferedEvents: 100_000, retryBackoffMs: 50 };
  const sink = createLogEventSink({ log, logger: silentLogger }, sinkConfig);
  const dlq = createLogEventSink({ log, logger: silentLogger }, sinkConfig);
  const config = ingestConfigSchema.parse({
    groupId: uniqueName('tapwire-ingest-elog'),
    flushIntervalMs: 200,
    admin: { port: 0 },
    retention: { enabled: false },
  });
  return { store, log, sink, dlq, config };
}

/** ingestOn builds ingest reading the world's embedded log into its store. */
function ingestOn(w: Awaited<ReturnType<typeof world>>) {
  return buildIngest(
    { source: fileLogSource(w.log, silentLogger), warehouse: w.store.warehouse, dlq: w.dlq, logger },
    w.config,
  );
}

afterAll(async () => {
  for (const l of logs) await l.close();
  for (const db of dbs) await db.close();
  const root = createClickHouse(testClickHouseConfig('default'));
  for (const db of databases) await root.command(sql`DROP DATABASE IF EXISTS ${identifier(db)}`);
  await root.close();
});

describe.each(['clickhouse', 'duckdb'] as const)('ingest from the embedded log into %s', (kind) => {
  it('N events become exactly N rows field by field; invalid records go to the DLQ with reasons; a restart re-reads nothing twice', async () => {
    const w = await world(kind);
    const now = Date.now() * 1000;
    // Access logs version 2 carry the proxy's policy decisions; every fourth a refusal by rate limit.
    const accessLogs = Array.from({ length: 3000 }, (_, i) =>
      exampleAccessLog({
        ts: now - i * 1000,
        status: i % 10 === 0 ? 503 : 200,
        duration_ms: (i % 100) + 0.5,
        ...(i % 4 === 1 ? { cache: 'hit' as const, target: '10.0.0.1:8080', retries: 1 } : {}),
        ...(i % 4 === 3
          ? { status: 429, error_kind: 'rate_limited' as const, ratelimit_limit: 100, ratelimit_remaining: 0 }
          : {}),
      }),
    );
    for (const e of accessLogs) w.sink.emit(TOPICS.accessLogs, e);
    for (let i = 0; i < 1500; i++) w.sink.emit(TOPICS.spans, exampleSpan({ ts: now, start: now }));
    for (let i = 0; i < 50; i++)
      w.sink.emit(
        TOPICS.saturation,
        exampleSaturation({
          ts: now - i * 1_000_000,
          instance: `p${i % 2}`,
          targets:
            i % 2 === 0
              ? []
              : ['10.0.0.1:8080', '10.0.0.2:8080'].map((target) => ({
                  upstream: 'users',
                  target,
                  state: 'healthy' as const,
                  in_flight: 1,
                  consecutive_failures: 0,
                })),
        }),
      );
    await w.sink.flush();
    // Garbage written straight to the log, between valid neighbours.
    await w.log.append(TOPICS.accessLogs, [
      { key: null, value: 'not json' },
      { key: null, value: JSON.stringify({ ...exampleAccessLog(), v: 99 }) },
    ]);
    const late = exampleAccessLog({ ts: now });
    w.sink.emit(TOPICS.accessLogs, late);
    await w.sink.flush();

    let ingest = ingestOn(w);
    await ingest.start();
    const want = expected(kind, {
      access_logs: 3001,
      spans: 1500,
      saturation: 50,
      rate_limited: 750,
      target_samples: 50,
    });
    try {
      await vi.waitFor(async () => expect(await w.store.counts()).toEqual(want), {
        timeout: 60_000,
        interval: 250,
      });
      const rows = await w.store.accessLogs();
      const byId = new Map(rows.map((r) => [r.id as string, r]));
      for (const e of [...accessLogs, late] as AccessLogEvent[]) {
        expect(byId.get(e.id)).toEqual({
          id: e.id,
          status: e.status,
          duration_ms: e.duration_ms,
          route: e.route,
          trace_id: e.trace_id,
          bytes_out: String(e.bytes_out),
          ts_us: String(e.ts),
          cache: e.cache,
          target: e.target,
          retries: e.retries,
          ratelimit_limit: e.ratelimit_limit,
          ratelimit_remaining: e.ratelimit_remaining,
        });
      }
      await vi.waitFor(async () => expect(w.log.highWatermark(TOPICS.dlq)).toBe(2n));
      const dead = (await w.log.read(TOPICS.dlq, 0n)).map((r) => JSON.parse(r.value.toString()) as DlqEvent);
      expect(dead.map((d) => [d.source_topic, d.source_offset, d.reason.split(':')[0]])).toEqual([
        [TOPICS.accessLogs, '3000', 'not_json'],
        [TOPICS.accessLogs, '3001', 'unknown_version'],
      ]);
      // 4,551 events and the 2 DLQ records, which ingest projects into dlq_events like any topic
      // (read back from the log after their neighbours, they go in with the next tick).
      await vi.waitFor(() =>
        expect(ingest.pipeline.stats()).toMatchObject({ inserted: 4553, deadLettered: 2 }),
      );
    } finally {
      await ingest.close();
    }

    // The group committed where it stopped: a restarted ingest finds nothing new to insert.
    ingest = ingestOn(w);
    await ingest.start();
    w.sink.emit(TOPICS.accessLogs, exampleAccessLog({ ts: now }));
    await w.sink.flush();
    try {
      await vi.waitFor(async () => expect((await w.store.counts()).access_logs).toBe(3002), {
        timeout: 30_000,
        interval: 250,
      });
    } finally {
      await ingest.close();
    }
    expect(await w.store.counts()).toEqual(
      expected(kind, {
        access_logs: 3002,
        spans: 1500,
        saturation: 50,
        rate_limited: 750,
        target_samples: 50,
      }),
    );
  }, 120_000);

  it('replay from the embedded log after truncating restores the same counts', async () => {
    const w = await world(kind);
    const start = Date.now();
    for (let i = 0; i < 1000; i++)
      w.sink.emit(
        TOPICS.accessLogs,
        exampleAccessLog({ ts: (start - i * 1000) * 1000, status: i % 4 === 0 ? 500 : 200 }),
      );
    await w.sink.flush();
    const ingest = ingestOn(w);
    await ingest.start();
    await vi.waitFor(async () => expect((await w.store.counts()).access_logs).toBe(1000), {
      timeout: 60_000,
      interval: 250,
    });
    await ingest.close();
    const before = await w.store.counts();
    await w.store.truncateAccessLogs();
    expect((await w.store.counts()).access_logs).toBe(0);

    const summary = await replay(
      { source: fileLogSource(w.log, silentLogger), warehouse: w.store.warehouse, logger },
      w.config,
      {
        fromMs: start - 3_600_000,
        tables: ['access_logs'],
        clear: false,
      },
    );
    expect(summary).toMatchObject({ inserted: 1000, skippedDuplicates: 0, invalid: 0 });
    expect(summary.topics).toEqual([{ topic: TOPICS.accessLogs, table: 'access_logs', events: 1000 }]);
    expect(await w.store.counts()).toEqual(before);

    // --clear drops the days of the raw table and of its rollups (the SLO counts included) first,
    // then rebuilds them: the same counts again, nothing doubled.
    const cleared = await replay(
      { source: fileLogSource(w.log, silentLogger), warehouse: w.store.warehouse, logger },
      w.config,
      { fromMs: start - 3_600_000, tables: ['access_logs'], clear: true },
    );
    expect(cleared).toMatchObject({ inserted: 1000, skippedDuplicates: 0 });
    expect(cleared.clearedPartitions.some((p) => p.startsWith('slo_counts_1h/'))).toBe(true);
    expect(await w.store.counts()).toEqual(before);
  }, 120_000);
});

describe('retention on the embedded store', () => {
  it('drops whole days older than each table’s retention from DuckDB and records the run', async () => {
    const store = await backend('duckdb');
    const day = 86_400_000;
    const now = Date.now();
    const lines = [0, 5, 40].map((d, i) =>
      JSON.stringify(STREAMS[0]!.toRow(exampleAccessLog({ ts: (now - d * day) * 1000 }), 0, String(i))),
    );
    await store.warehouse.insert('access_logs', [`${lines.join('\n')}\n`]);
    const job = createRetentionJob(
      { warehouse: store.warehouse, logger, instance: 'test' },
      ingestConfigSchema.parse({ retention: { days: { access_logs: 30, spans: 3 } } }).retention,
    );
    const runs = await job.runOnce();
    const dayId = (ms: number) => new Date(ms).toISOString().slice(0, 10).replace(/-/g, '');
    expect(runs.find((r) => r.table === 'access_logs')).toEqual({
      table: 'access_logs',
      retentionDays: 30,
      dropped: [dayId(now - 40 * day)],
      error: '',
    });
    // Rollup tables exist only on ClickHouse: nothing to drop here, and no error.
    expect(runs.find((r) => r.table === 'route_stats_1m')).toMatchObject({ dropped: [], error: '' });
    expect((await store.counts()).access_logs).toBe(2);
    expect((await store.warehouse.storedSeqs('access_logs', 'partition:0', 0n)).sort()).toEqual(['0', '1']);
    const db = dbs[dbs.length - 1]!;
    const recorded = await db.query<{ table_name: string; dropped_partitions: string[] }>(
      duckSql`SELECT table_name, dropped_partitions FROM retention_runs WHERE table_name = ${'access_logs'}`,
    );
    expect(recorded).toEqual([{ table_name: 'access_logs', dropped_partitions: [dayId(now - 40 * day)] }]);
  });
});
