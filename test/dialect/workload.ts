import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { createClickHouseStore } from '@tapwire/analytics';
import { type ClickHouse, createClickHouse, identifier, migrate, raw, sql } from '@tapwire/clickhouse';
import type { ClickHouseConfig } from '@tapwire/config';
import {
  clickhouseWarehouse,
  createRetentionJob,
  ingestConfigSchema,
  replay,
  STREAMS,
} from '@tapwire/ingest';
import { createLogEventSink, fileLogSource, openFileLog } from '@tapwire/log';
import { TOPICS } from '@tapwire/schema';
import { createLogger } from '@tapwire/telemetry';
import { runDashboardQueries, seedDashboards } from '../support/dashboard-queries.js';
import {
  exampleAccessLog,
  exampleAlertState,
  exampleDlq,
  exampleSaturation,
  exampleSpan,
} from '../support/events.js';
import { silentLogger, testClickHouseConfig } from '../support/infra.js';
import { CALLS, seedRows } from '../support/store-contract-cases.js';

/**
 * The workload of the ClickHouse dialect check: Tapwire's own code paths that send SQL, run
 * against the ClickHouse at `url` (a recording proxy in front of 18.16, see recorder.ts). Nothing
 * here writes SQL of its own except the seed inserts and a TRUNCATE that makes a rollup short:
 * every query comes from migrate, the ClickHouse Store, the ingest pipeline and warehouse, the
 * retention job, and the dashboards' panels.
 */

const MIGRATIONS = fileURLToPath(new URL('../../migrations', import.meta.url));
const DAY_MS = 86_400_000;
const logger = createLogger({ name: 'dialect-check', level: 'silent' });

/** WorkloadDatabases names the database each part of the workload migrates and uses. */
export interface WorkloadDatabases {
  readonly contract: string;
  readonly dashboards: string;
  readonly ingest: string;
}

const configAt = (url: string, database: string): ClickHouseConfig => ({
  ...testClickHouseConfig(database),
  url,
});

async function migrated(url: string, database: string): Promise<ClickHouse> {
  await migrate(configAt(url, database), { dir: MIGRATIONS, logger: silentLogger, lockSettleMs: 100 });
  return createClickHouse(configAt(url, database));
}

/** storeContract seeds the store contract suite's rows and asks the ClickHouse Store its whole battery. */
async function storeContract(url: string, database: string): Promise<void> {
  const ch = await migrated(url, database);
  for (const [table, list] of Object.entries(seedRows())) {
    for (let i = 0; i < list.length; i += 5000) await ch.insert(table, list.slice(i, i + 5000));
  }
  const store = createClickHouseStore(ch, { maxExecutionTimeS: 20, maxResultRows: 100_000 });
  try {
    for (const call of CALLS) await call.run(store);
    await store.ping();
  } finally {
    await store.close();
  }
}

/** dashboards runs every panel and variable query of dashboards/ as the dashboards test does. */
async function dashboards(url: string, database: string): Promise<void> {
  const ch = await migrated(url, database);
  try {
    const to = Math.floor(Date.now() / 1000 / 60) * 60;
    const window = { from: to - 3600, to };
    await seedDashboards(ch, window);
    await runDashboardQueries(ch, window);
  } finally {
    await ch.close();
  }
}

/**
 * ingest writes events of every stream, on three UTC days, to an embedded log and runs ingest's
 * pipeline over it with `replay` (ledger reads, NDJSON inserts, day audits), again (every event
 * already stored), the rollup repair of a batch whose rollup lost it, a replay that clears its
 * days first (dropDay), and the retention job (daysBefore, dropDay, retention_runs).
 */
async function ingest(url: string, database: string): Promise<void> {
  const ch = await migrated(url, database);
  const warehouse = clickhouseWarehouse(ch);
  const dir = mkdtempSync(join(tmpdir(), 'tapwire-dialect-log-'));
  const log = await openFileLog({ dir, fsync: 'interval' });
  try {
    const sink = createLogEventSink(
      { log, logger: silentLogger },
      { lingerMs: 10, maxBufferedEvents: 100_000, retryBackoffMs: 50 },
    );
    const today = Math.floor(Date.now() / DAY_MS) * DAY_MS;
    const days = [today - 5 * DAY_MS, today - DAY_MS, today];
    for (const [d, dayMs] of days.entries()) {
      for (let i = 0; i < 200; i++) {
        const us = (dayMs + 3_600_000 + i * 7_000) * 1000;
        sink.emit(
          TOPICS.accessLogs,
          exampleAccessLog({ ts: us, status: i % 9 === 0 ? 503 : 200, duration_ms: 1 + (i % 50) }),
        );
        if (i % 4 === 0) sink.emit(TOPICS.spans, exampleSpan({ ts: us, start: us }));
        if (i % 10 === 0) sink.emit(TOPICS.saturation, exampleSaturation({ ts: us, instance: `p${d}` }));
      }
      sink.emit(TOPICS.dlq, exampleDlq({ ts: (dayMs + 7_200_000) * 1000 }));
      sink.emit(TOPICS.alertState, exampleAlertState({ ts: (dayMs + 7_200_000) * 1000 }));
    }
    await sink.flush();
    await sink.close();
    const config = ingestConfigSchema.parse({
      groupId: 'tapwire-dialect',
      flushIntervalMs: 50,
      admin: { port: 0 },
      retention: { enabled: false, defaultDays: 3 },
    });
    const deps = { source: fileLogSource(log, silentLogger), warehouse, logger };
    const tables = STREAMS.map((s) => s.table);
    const fromMs = days[0]!;
    await replay(deps, config, { fromMs, tables, clear: false });
    await replay(deps, config, { fromMs, tables, clear: false });

    // A stored batch whose rollup lost it, as after a server stop mid-insert: the repair pushes it again.
    const access = STREAMS.find((s) => s.table === 'access_logs')!;
    const day = today / DAY_MS;
    const seqs = await warehouse.storedSeqs('access_logs', 'partition:0', 0n);
    const batch = {
      stream: access,
      day,
      seqs: new Map([['partition:0', seqs]]),
      pending: [...access.rollups],
    };
    for (const rollup of access.rollups) await warehouse.checkRollup(batch, rollup, logger);
    await ch.command(sql`TRUNCATE TABLE ${identifier('route_histogram_1m')}`);
    await warehouse.checkRollup(batch, access.rollups[1]!, logger);
    await warehouse.highestSeq('access_logs', 'partition:0', 0n);

    await replay(deps, config, { fromMs: today - DAY_MS, toMs: today, tables: ['access_logs'], clear: true });
    // Merged-away parts stay on disk on 18.16, so retention empties access_logs' old day with a
    // delete mutation instead of a plain DROP PARTITION (day-partition.ts).
    await ch.command(sql`OPTIMIZE TABLE ${identifier('access_logs')} FINAL`);
    const retention = createRetentionJob({ warehouse, logger, instance: 'dialect' }, config.retention);
    await retention.runOnce();
    await ch.query(
      raw('SELECT table_name, dropped_partitions, error FROM retention_runs ORDER BY table_name'),
    );
  } finally {
    await log.close();
    await ch.close();
    rmSync(dir, { recursive: true, force: true });
  }
}

/** runWorkload runs every part of the workload against the ClickHouse at `url`, then drops its databases. */
export async function runWorkload(url: string, databases: WorkloadDatabases): Promise<void> {
  try {
    await storeContract(url, databases.contract);
    await dashboards(url, databases.dashboards);
    await ingest(url, databases.ingest);
  } finally {
    const root = createClickHouse(configAt(url, 'default'));
    for (const db of Object.values(databases))
      await root.command(sql`DROP DATABASE IF EXISTS ${identifier(db)}`).catch(() => {});
    await root.close();
  }
}
