import { fileURLToPath } from 'node:url';
import { type ClickHouse, createClickHouse, identifier, migrate, raw, sql } from '@tapwire/clickhouse';
import {
  clickhouseWarehouse,
  createRetentionJob,
  ingestConfigSchema,
  RETAINED_TABLES,
  STREAMS,
} from '@tapwire/ingest';
import { createLogger } from '@tapwire/telemetry';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { type ChdbServer, startChdb } from '../support/chdb.js';
import { exampleAccessLog } from '../support/events.js';
import { silentLogger, testClickHouseConfig, uniqueName } from '../support/infra.js';

/**
 * Retention on a server with a native TTL (ClickHouse 26.9, chdb-core behind the chdb HTTP shim):
 * the job sets each retained table's TTL from the configuration instead of dropping partitions,
 * once per change, and ClickHouse deletes what is older. The 18.16 path (dropping day partitions)
 * is tested in ingest.test.ts and partition-resurrection.test.ts.
 */

const MIGRATIONS = fileURLToPath(new URL('../../migrations', import.meta.url));
const logger = createLogger({ name: 'retention-ttl-it', level: 'silent' });
const DAY_MS = 86_400_000;
// The time column of each retained table: the one its toYYYYMMDD() partition key reads.
const TIME_COLUMN: Record<(typeof RETAINED_TABLES)[number], string> = {
  access_logs: 'ts',
  spans: 'ts',
  saturation: 'ts',
  trace_index: 'day',
  route_stats_1m: 'minute',
  route_histogram_1m: 'minute',
  route_histogram_1h: 'hour',
  slo_counts_1m: 'minute',
  slo_counts_1h: 'hour',
  policy_stats_1m: 'minute',
  policy_stats_1h: 'hour',
  saturation_1m: 'minute',
  upstream_saturation_1m: 'minute',
  dlq_events: 'ts',
  consumer_lag: 'ts',
  alert_history: 'ts',
};

let chdb: ChdbServer | undefined;
let ch: ClickHouse;
let database: string;

beforeAll(async () => {
  chdb = await startChdb();
  database = uniqueName('retention_ttl');
  const config = { ...testClickHouseConfig(database), url: chdb.url };
  await migrate(config, { dir: MIGRATIONS, logger: silentLogger, lockSettleMs: 200 });
  ch = createClickHouse(config);
}, 300_000);

afterAll(async () => {
  await ch?.close();
  await chdb?.stop();
});

/** insertAged writes one access log per age (in days before now); the views fill the rollups. */
async function insertAged(ages: readonly number[]): Promise<void> {
  const now = Date.now();
  await ch.insert(
    'access_logs',
    ages.map((d, i) =>
      STREAMS[0]!.toRow(exampleAccessLog({ ts: (now - d * DAY_MS) * 1000 }), 0, String(d * 100 + i)),
    ),
  );
}

/** requests counts the access logs a table holds: rows of the raw table, requests of a rollup. */
async function requests(): Promise<Record<string, number>> {
  const [r] = await ch.query<Record<string, string>>(
    raw(`SELECT
      (SELECT count() FROM access_logs) AS access_logs,
      (SELECT countMerge(requests) FROM route_stats_1m) AS route_stats_1m,
      (SELECT sum(requests) FROM route_histogram_1m) AS route_histogram_1m,
      (SELECT sum(requests) FROM route_histogram_1h) AS route_histogram_1h`),
  );
  return Object.fromEntries(Object.entries(r ?? {}).map(([k, v]) => [k, Number(v)]));
}

/** expire waits for the TTL mutations, then merges each table so its TTL applies now. */
async function expire(): Promise<void> {
  await vi.waitFor(
    async () => {
      const [m] = await ch.query<{ n: string }>(
        sql`SELECT count() AS n FROM system.mutations WHERE database = ${database} AND NOT is_done`,
      );
      expect(Number(m?.n)).toBe(0);
    },
    { timeout: 60_000, interval: 200 },
  );
  for (const table of ['access_logs', 'route_stats_1m', 'route_histogram_1m', 'route_histogram_1h'])
    await ch.command(sql`OPTIMIZE TABLE ${identifier(table)} FINAL`);
}

async function createTable(table: string): Promise<string> {
  const [r] = await ch.query<{ q: string }>(
    sql`SELECT create_table_query AS q FROM system.tables WHERE database = ${database} AND name = ${table}`,
  );
  return r?.q ?? '';
}

function jobWith(days: Record<string, number>) {
  return createRetentionJob(
    { warehouse: clickhouseWarehouse(ch), logger, instance: 'ttl-test' },
    ingestConfigSchema.parse({ retention: { days } }).retention,
  );
}

describe('retention on ClickHouse 26.9: native TTL', () => {
  it('sets every retained table’s TTL from the configuration, once, and ClickHouse deletes the older rows', async () => {
    await insertAged([40, 20, 10, 5, 1]);
    expect(await requests()).toEqual({
      access_logs: 5,
      route_stats_1m: 5,
      route_histogram_1m: 5,
      route_histogram_1h: 5,
    });
    const job = jobWith({ access_logs: 7, route_stats_1m: 3 });
    const days = (table: string) => ({ access_logs: 7, route_stats_1m: 3 })[table] ?? 30;
    const runs = await job.runOnce();
    expect(runs).toEqual(
      RETAINED_TABLES.map((table) => ({
        table,
        retentionDays: days(table),
        dropped: [],
        error: '',
        ttl: 'set',
      })),
    );
    for (const table of RETAINED_TABLES) {
      const created = await createTable(table);
      expect(created, table).toContain(`TTL ${TIME_COLUMN[table]} + toIntervalDay(${days(table)})`);
      expect(created, table).toMatch(/SETTINGS .*ttl_only_drop_parts = 1/);
      expect(created, table).toMatch(/SETTINGS .*materialize_ttl_recalculate_only = 1/);
    }
    // Nothing changed in the configuration: nothing to alter.
    const [before] = await ch.query<{ n: string }>(
      sql`SELECT count() AS n FROM system.mutations WHERE database = ${database}`,
    );
    expect((await job.runOnce()).map((r) => r.ttl)).toEqual(RETAINED_TABLES.map(() => 'unchanged'));
    const [after] = await ch.query<{ n: string }>(
      sql`SELECT count() AS n FROM system.mutations WHERE database = ${database}`,
    );
    expect(after?.n).toBe(before?.n);

    await expire();
    expect(await requests()).toEqual({
      access_logs: 2, // 5 and 1 days old
      route_stats_1m: 1, // 1 day old
      route_histogram_1m: 4, // 30 days: only the 40-day-old one goes
      route_histogram_1h: 4,
    });
    // Each run is recorded, with no partitions dropped by the job.
    const recorded = await ch.query<{ table_name: string; n: string; dropped: string; errors: string }>(
      raw(`SELECT table_name, count() AS n, sum(length(dropped_partitions)) AS dropped, countIf(error != '') AS errors
           FROM retention_runs GROUP BY table_name ORDER BY table_name`),
    );
    // (chdb writes 64-bit integers as JSON numbers, a server as strings.)
    expect(recorded.map((r) => [r.table_name, Number(r.n), Number(r.dropped), Number(r.errors)])).toEqual(
      [...RETAINED_TABLES].sort().map((table) => [table, 2, 0, 0]),
    );
    expect(job.state()).toMatchObject({ droppedPartitions: 0, failures: 0 });
  });

  it('re-applies a changed retention, and a longer one keeps rows written under the shorter one', async () => {
    // Rows 20 and 10 days old written while the TTL is 7 days carry that TTL in their parts; TTL
    // merges are held so they are still there when the retention grows to 30 days.
    await ch.command(sql`SYSTEM STOP TTL MERGES access_logs`);
    await insertAged([40, 20, 10]);
    const runs = await jobWith({ access_logs: 30, route_stats_1m: 3 }).runOnce();
    expect(runs.filter((r) => r.ttl === 'set').map((r) => r.table)).toEqual(['access_logs']);
    expect(await createTable('access_logs')).toContain('TTL ts + toIntervalDay(30)');
    await ch.command(sql`SYSTEM START TTL MERGES access_logs`);
    await expire();
    expect(await requests()).toEqual({
      access_logs: 4, // 20, 10, 5 and 1 days old
      route_stats_1m: 1,
      route_histogram_1m: 6, // 20 and 10 twice each, 5, 1
      route_histogram_1h: 6,
    });
  });
});

describe('retention on 18.16: no TTL', () => {
  it('the warehouse has no native TTL there, so the job drops partitions (ingest.test.ts)', async () => {
    const on18 = createClickHouse(testClickHouseConfig('default'));
    try {
      expect(await clickhouseWarehouse(on18).expireAfter('access_logs', 7)).toBe('unsupported');
    } finally {
      await on18.close();
    }
  });
});
