import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
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
import {
  exampleAccessLog,
  exampleAlertState,
  exampleDlq,
  exampleSaturation,
  exampleSpan,
} from '../support/events.js';
import { silentLogger, testClickHouseConfig } from '../support/infra.js';

/**
 * The workload of the ClickHouse dialect check, run against the ClickHouse at `url` (a recording
 * proxy in front of 18.16, see recorder.ts): the store contract suite and the dashboards test as
 * they are (every Store question, every dashboard query as Grafana sends it, migrations), and
 * ingest's code paths, which need no Kafka here: the pipeline over an embedded log (ledger reads,
 * inserts, day audits), the rollup repair, a clearing replay (dropDay) and the retention job
 * (daysBefore, dropDay). SQL of its own: the events' inserts go through ingest; only a TRUNCATE
 * and an OPTIMIZE set up the repair and the delete-mutation paths.
 */

const REPO = fileURLToPath(new URL('../..', import.meta.url));
const MIGRATIONS = join(REPO, 'migrations');
const DAY_MS = 86_400_000;
const logger = createLogger({ name: 'dialect-check', level: 'silent' });

const configAt = (url: string, database: string): ClickHouseConfig => ({
  ...testClickHouseConfig(database),
  url,
});

async function migrated(url: string, database: string): Promise<ClickHouse> {
  await migrate(configAt(url, database), { dir: MIGRATIONS, logger: silentLogger, lockSettleMs: 100 });
  return createClickHouse(configAt(url, database));
}

/** SUITES are the integration test files whose ClickHouse traffic the check replays: every Store question and every dashboard query. */
export const SUITES = ['test/integration/store-contract.test.ts', 'test/integration/dashboards.test.ts'];

/**
 * runSuites runs integration test files in a child vitest whose ClickHouse is the one at `url`
 * (TAPWIRE_INFRA_CLICKHOUSE_HTTP_PORT: test/infra then finds its server running and answering
 * there), so the check sees exactly what those suites send; rejects with their output if they fail.
 */
export async function runSuites(url: string, files: readonly string[]): Promise<void> {
  const env: NodeJS.ProcessEnv = {};
  // The parent vitest's worker variables would confuse the child's own pool.
  for (const [k, v] of Object.entries(process.env)) if (!k.startsWith('VITEST')) env[k] = v;
  env.TAPWIRE_INFRA_CLICKHOUSE_HTTP_PORT = new URL(url).port;
  const child = spawn(join(REPO, 'node_modules/.bin/vitest'), ['run', '--project', 'integration', ...files], {
    cwd: REPO,
    env,
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let output = '';
  const keep = (b: Buffer) => {
    output = (output + b.toString()).slice(-20_000);
  };
  child.stdout.on('data', keep);
  child.stderr.on('data', keep);
  const code = await new Promise<number | null>((resolve) => child.once('exit', resolve));
  if (code !== 0) throw new Error(`${files.join(', ')} failed (exit ${code}) against ${url}:\n${output}`);
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

/** runIngestWorkload runs `ingest` against the ClickHouse at `url` in a database named `database`, then drops it. */
export async function runIngestWorkload(url: string, database: string): Promise<void> {
  try {
    await ingest(url, database);
  } finally {
    const root = createClickHouse(configAt(url, 'default'));
    await root.command(sql`DROP DATABASE IF EXISTS ${identifier(database)}`).catch(() => {});
    await root.close();
  }
}
