import { spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { fileURLToPath } from 'node:url';
import { type ClickHouse, createClickHouse, identifier, migrate, sql } from '@tapwire/clickhouse';
import { clickhouseConfigSchema, infraConfigSchema } from '@tapwire/config';
import { clickhouseDown, clickhouseUp, clickhouseUrl } from '@tapwire/infra';
import {
  clickhouseWarehouse,
  createRetentionJob,
  ingestConfigSchema,
  replay,
  STREAMS,
} from '@tapwire/ingest';
import {
  createKafkaClient,
  createKafkaEventSink,
  ensureTopics,
  kafkaSource,
  topicSpecs,
} from '@tapwire/kafka';
import { TOPICS } from '@tapwire/schema';
import { createLogger } from '@tapwire/telemetry';
import type { Admin } from 'kafkajs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { exampleAccessLog } from '../support/events.js';
import { silentLogger, testKafkaConfig, uniqueName } from '../support/infra.js';

// A ClickHouse of this file's own: the test restarts it, and the shared one must never stop.
const infra = infraConfigSchema.parse({
  dir: '.tapwire/infra-ch-restart',
  clickhouseHttpPort: 18123,
  clickhouseTcpPort: 19000,
});
const ROOT = fileURLToPath(new URL('../..', import.meta.url));
const MIGRATIONS = fileURLToPath(new URL('../../migrations', import.meta.url));
const PID_FILE = join(resolve(infra.dir, 'clickhouse'), 'clickhouse.pid');
const DATABASE = uniqueName('tapwire_resurrect');
// The second test's database: a TRUNCATE between tests would itself leave parts a restart reloads.
const DATABASE_ABOVE = uniqueName('tapwire_above');
const ACCESS_TABLES = [
  'access_logs',
  'route_stats_1m',
  'route_histogram_1m',
  'route_histogram_1h',
  'slo_counts_1m',
  'slo_counts_1h',
  'policy_stats_1m',
  'policy_stats_1h',
];
const EVENTS = 3000;
const DAY_MS = 86_400_000;
const kafka = createKafkaClient(testKafkaConfig(), silentLogger, 'resurrect-test');
const chConfig = clickhouseConfigSchema.parse({ url: clickhouseUrl(infra), database: DATABASE });
const aboveConfig = clickhouseConfigSchema.parse({ url: clickhouseUrl(infra), database: DATABASE_ABOVE });
const logger = createLogger({ name: 'resurrect-it', level: 'silent' });
let admin: Admin;
let ch: ClickHouse;
let above: ClickHouse;
const topics: string[] = [];

const dayId = (ms: number) => new Date(ms).toISOString().slice(0, 10).replace(/-/g, '');

/** counts returns what a user of the API sees: raw rows, distinct ledger identities, and each rollup's requests. */
async function counts(db = ch): Promise<Record<string, number>> {
  const [r] = await db.query<Record<string, string>>(
    sql`SELECT
          (SELECT count() FROM access_logs) AS raw,
          (SELECT uniqExact(source_id, source_seq) FROM access_logs) AS ledger,
          (SELECT countMerge(requests) FROM route_stats_1m) AS route_stats_1m,
          (SELECT sum(requests) FROM route_histogram_1m) AS route_histogram_1m,
          (SELECT sum(requests) FROM route_histogram_1h) AS route_histogram_1h,
          (SELECT sumIf(requests, facet = 0) FROM slo_counts_1m) AS slo_counts_1m,
          (SELECT sumIf(requests, facet = 0) FROM slo_counts_1h) AS slo_counts_1h,
          (SELECT sum(requests) FROM policy_stats_1m) AS policy_stats_1m,
          (SELECT sum(requests) FROM policy_stats_1h) AS policy_stats_1h`,
  );
  return Object.fromEntries(Object.entries(r ?? {}).map(([k, v]) => [k, Number(v)]));
}

/** loadableRows counts, per table, the rows in parts a restart would load: inactive ones included. */
async function inactiveRows(): Promise<Record<string, number>> {
  const rows = await ch.query<{ table: string; n: string }>(
    sql`SELECT table, sum(rows) AS n FROM system.parts WHERE database = ${DATABASE} AND NOT active GROUP BY table`,
  );
  return Object.fromEntries(rows.map((r) => [r.table, Number(r.n)]));
}

/** mergeEverything merges each access table's parts, so their sources stay on disk as inactive parts. */
async function mergeEverything(db = ch): Promise<void> {
  for (const t of ACCESS_TABLES) await db.command(sql`OPTIMIZE TABLE ${identifier(t)} FINAL`);
}

/** produce writes `n` access logs (event time from `tsUs(i)`) to fresh topics and returns their prefix. */
async function produce(n: number, tsUs: (i: number) => number): Promise<string> {
  const prefix = `${uniqueName('r')}.`;
  const specs = topicSpecs(
    { partitions: 2, replicationFactor: 1, retentionMs: 3_600_000, dlqRetentionMs: 3_600_000 },
    prefix,
  );
  topics.push(...specs.map((s) => s.topic));
  await ensureTopics(kafka, specs);
  const sink = createKafkaEventSink(
    { kafka, logger: silentLogger },
    {
      lingerMs: 10,
      maxBatchEvents: 1000,
      maxBufferedEvents: 10_000,
      retryBackoffMs: 100,
      topicPrefix: prefix,
    },
  );
  for (let i = 0; i < n; i++) sink.emit(TOPICS.accessLogs, exampleAccessLog({ ts: tsUs(i) }));
  await sink.flush();
  await sink.close();
  return prefix;
}

/** replayer returns `tapwire replay [--clear] --from <an hour before now> --tables access_logs` into the database `db()`. */
function replayer(db: () => ClickHouse, prefix: string, now: number) {
  const config = ingestConfigSchema.parse({
    topicPrefix: prefix,
    groupId: uniqueName('g'),
    flushIntervalMs: 100,
    maxBatchRows: 500,
  });
  return (clear: boolean) =>
    replay(
      { source: kafkaSource({ kafka, logger: silentLogger }), warehouse: clickhouseWarehouse(db()), logger },
      config,
      { fromMs: now - 3_600_000, tables: ['access_logs'], clear },
    );
}

async function restart(signal: 'SIGTERM' | 'SIGKILL'): Promise<void> {
  await ch.close();
  await above.close();
  if (signal === 'SIGTERM') await clickhouseDown(infra, () => {});
  else {
    const pid = Number(readFileSync(PID_FILE, 'utf8').trim());
    process.kill(pid, 'SIGKILL');
    for (let i = 0; i < 300; i++) {
      try {
        process.kill(pid, 0);
      } catch {
        break;
      }
      await sleep(100);
    }
  }
  await clickhouseUp(infra, () => {});
  ch = createClickHouse(chConfig);
  above = createClickHouse(aboveConfig);
}

beforeAll(async () => {
  await clickhouseUp(infra, () => {});
  await migrate(chConfig, { dir: MIGRATIONS, lockSettleMs: 200 });
  await migrate(aboveConfig, { dir: MIGRATIONS, lockSettleMs: 200 });
  ch = createClickHouse(chConfig);
  above = createClickHouse(aboveConfig);
  admin = kafka.admin();
  await admin.connect();
}, 120_000);

afterAll(async () => {
  await admin?.deleteTopics({ topics }).catch(() => {});
  await admin?.disconnect();
  for (const db of [DATABASE, DATABASE_ABOVE])
    await ch?.command(sql`DROP DATABASE IF EXISTS ${identifier(db)}`).catch(() => {});
  await ch?.close();
  await above?.close();
  await clickhouseDown(infra, () => {});
}, 60_000);

describe('dropped partitions after a ClickHouse restart', () => {
  it('replay --clear and retention leave nothing a SIGTERM or SIGKILL restart brings back: raw and 1m/1h rollups stay exact', async () => {
    const now = Date.now();
    const replayAll = replayer(() => ch, await produce(EVENTS, (i) => (now - (i % 300) * 1000) * 1000), now);
    expect(await replayAll(false)).toMatchObject({ inserted: EVENTS, skippedDuplicates: 0, invalid: 0 });

    // Rows of a day past retention, in two inserts (offsets far from the topic's, so the ledger ignores them).
    const old = now - 40 * DAY_MS;
    for (const batch of [0, 1]) {
      await ch.insert(
        'access_logs',
        Array.from({ length: 50 }, (_, i) =>
          STREAMS[0]!.toRow(
            exampleAccessLog({ ts: (old + i * 1000) * 1000 }),
            0,
            String(1_000_000 + batch * 50 + i),
          ),
        ),
      );
    }
    await mergeEverything();
    // The hazard is real: every table holds merged-away parts that a restart would load.
    const hazard = await inactiveRows();
    for (const t of ACCESS_TABLES) expect(hazard[t], t).toBeGreaterThan(0);

    const exact = {
      raw: EVENTS,
      ledger: EVENTS,
      route_stats_1m: EVENTS,
      route_histogram_1m: EVENTS,
      route_histogram_1h: EVENTS,
      slo_counts_1m: EVENTS,
      slo_counts_1h: EVENTS,
      policy_stats_1m: EVENTS,
      policy_stats_1h: EVENTS,
    };
    const cleared = await replayAll(true);
    expect(cleared).toMatchObject({ inserted: EVENTS, skippedDuplicates: 0 });
    expect(cleared.clearedPartitions).toContain(`route_histogram_1h/${dayId(now)}`);
    expect(cleared.clearedPartitions).toContain(`slo_counts_1h/${dayId(now)}`);
    const retention = createRetentionJob(
      { warehouse: clickhouseWarehouse(ch), logger, instance: 'test' },
      ingestConfigSchema.parse({}).retention,
    );
    const runs = await retention.runOnce();
    for (const t of ACCESS_TABLES) expect(runs.find((r) => r.table === t)?.dropped, t).toEqual([dayId(old)]);
    expect(await counts()).toEqual(exact);

    await restart('SIGTERM');
    expect(await counts()).toEqual(exact);

    // Again with fresh merged-away parts, then a kill -9 inside old_parts_lifetime.
    await mergeEverything();
    expect(await replayAll(true)).toMatchObject({ inserted: EVENTS, skippedDuplicates: 0 });
    expect(await counts()).toEqual(exact);
    await restart('SIGKILL');
    expect(await counts()).toEqual(exact);
  }, 240_000);

  it('rows and rollups that came back above the offset ledger are reported by replay and fixed by replay --clear', async () => {
    const n = 1000;
    const now = Date.now();
    const day = dayId(now);
    const prefix = await produce(n, () => now * 1000);
    const replayAll = replayer(() => above, prefix, now);
    expect(await replayAll(false)).toMatchObject({ inserted: n, mismatches: [] });
    // What a plain DROP PARTITION did before (and a user's may still do): merged-away parts stay behind.
    await mergeEverything(above);
    for (const t of ACCESS_TABLES)
      await above.command(sql`ALTER TABLE ${identifier(t)} DROP PARTITION ${Number(day)}`);
    expect(await replayAll(false)).toMatchObject({ inserted: n, skippedDuplicates: 0 });
    await restart('SIGKILL');
    const doubled = {
      raw: 2 * n,
      ledger: n,
      route_stats_1m: 2 * n,
      route_histogram_1m: 2 * n,
      route_histogram_1h: 2 * n,
      slo_counts_1m: 2 * n,
      slo_counts_1h: 2 * n,
      policy_stats_1m: 2 * n,
      policy_stats_1h: 2 * n,
    };
    expect(await counts(above)).toEqual(doubled);

    const check = await replayAll(false);
    expect(check).toMatchObject({ inserted: 0, skippedDuplicates: n });
    expect(check.mismatches).toEqual([
      {
        table: 'access_logs',
        day,
        rawRows: 2 * n,
        ledgerRows: n,
        rollups: [
          { table: 'route_stats_1m', rows: 2 * n, expected: n },
          { table: 'route_histogram_1m', rows: 2 * n, expected: n },
          { table: 'route_histogram_1h', rows: 2 * n, expected: n },
          { table: 'slo_counts_1m', rows: 2 * n, expected: n },
          { table: 'slo_counts_1h', rows: 2 * n, expected: n },
          { table: 'policy_stats_1m', rows: 2 * n, expected: n },
          { table: 'policy_stats_1h', rows: 2 * n, expected: n },
        ],
      },
    ]);

    // `tapwire replay` prints it and exits 1.
    const cli = spawnSync(
      process.execPath,
      [
        '--import',
        'tsx',
        'services/cli/src/main.ts',
        'replay',
        '--from',
        'now-1h',
        '--tables',
        'access_logs',
      ],
      {
        cwd: ROOT,
        encoding: 'utf8',
        timeout: 120_000,
        env: {
          ...process.env,
          TAPWIRE_LOG_KIND: 'kafka',
          TAPWIRE_STORE_KIND: 'clickhouse',
          TAPWIRE_KAFKA_BROKERS: testKafkaConfig().brokers.join(','),
          TAPWIRE_CLICKHOUSE_URL: clickhouseUrl(infra),
          TAPWIRE_CLICKHOUSE_DATABASE: DATABASE_ABOVE,
          TAPWIRE_INGEST_TOPIC_PREFIX: prefix,
          TAPWIRE_TELEMETRY_LOG_LEVEL: 'silent',
        },
      },
    );
    expect(cli.stdout).toContain(
      `  ABOVE LEDGER access_logs/${day}: ${2 * n} rows for ${n} log positions, route_stats_1m ${2 * n} (expected ${n}), route_histogram_1m ${2 * n} (expected ${n}), route_histogram_1h ${2 * n} (expected ${n}), slo_counts_1m ${2 * n} (expected ${n}), slo_counts_1h ${2 * n} (expected ${n}), policy_stats_1m ${2 * n} (expected ${n}), policy_stats_1h ${2 * n} (expected ${n})\n`,
    );
    expect(cli.stderr).toContain(
      '1 day(s) hold more than the offset ledger; rerun with --clear for those days',
    );
    expect(cli.status).toBe(1);

    const fixed = await replayAll(true);
    expect(fixed).toMatchObject({ inserted: n, mismatches: [] });
    expect(await counts(above)).toEqual({
      raw: n,
      ledger: n,
      route_stats_1m: n,
      route_histogram_1m: n,
      route_histogram_1h: n,
      slo_counts_1m: n,
      slo_counts_1h: n,
      policy_stats_1m: n,
      policy_stats_1h: n,
    });
  }, 180_000);
});
