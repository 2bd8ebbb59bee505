import type { DayTtlChange } from '@tapwire/clickhouse';
import type { Logger } from '@tapwire/telemetry';
import { type IngestConfig, RETAINED_TABLES } from './config.js';
import type { Warehouse } from './warehouse.js';

/** RetentionRun reports what one run of the retention job did. */
export interface RetentionRun {
  table: string;
  retentionDays: number;
  dropped: string[];
  error: string;
  /** Where the database expires rows itself (a TTL): whether this run changed it; absent where the job drops days. */
  ttl?: DayTtlChange;
}

/** RetentionState is what /metrics reports about the job. */
export interface RetentionState {
  lastRunSeconds: number;
  droppedPartitions: number;
  failures: number;
}

function yyyymmdd(ms: number): string {
  return new Date(ms).toISOString().slice(0, 10).replace(/-/g, '');
}

/**
 * createRetentionJob keeps each table to its retention and records every run in retention_runs.
 * Where the database has a native TTL (ClickHouse 21.10 and later) it sets each table's TTL from the
 * configuration, again whenever that changes, and the database deletes old rows itself; elsewhere
 * (18.16, DuckDB) it drops the day partitions older than the retention (named YYYYMMDD by the
 * migrations).
 */
export function createRetentionJob(
  deps: { warehouse: Warehouse; logger: Logger; now?: () => number; instance: string },
  config: IngestConfig['retention'],
) {
  const now = deps.now ?? Date.now;
  const state: RetentionState = { lastRunSeconds: 0, droppedPartitions: 0, failures: 0 };
  let timer: NodeJS.Timeout | undefined;
  let running: Promise<RetentionRun[]> | undefined;

  async function runOnce(): Promise<RetentionRun[]> {
    const runs: RetentionRun[] = [];
    for (const table of RETAINED_TABLES) {
      const days = config.days[table] ?? config.defaultDays;
      // A partition whose day is before the cutoff holds only rows older than `days` days.
      const cutoff = yyyymmdd(now() - days * 86_400_000);
      const run: RetentionRun = { table, retentionDays: days, dropped: [], error: '' };
      try {
        const ttl = await deps.warehouse.expireAfter(table, days);
        if (ttl !== 'unsupported') run.ttl = ttl;
        else
          for (const partition of await deps.warehouse.daysBefore(table, cutoff))
            if (await deps.warehouse.dropDay(table, partition)) run.dropped.push(partition);
      } catch (err) {
        run.error = (err as Error).message.slice(0, 2000);
        state.failures++;
        deps.logger.warn({ table, err: run.error }, 'retention failed for a table');
      }
      state.droppedPartitions += run.dropped.length;
      runs.push(run);
    }
    state.lastRunSeconds = Math.floor(now() / 1000);
    await deps.warehouse
      .insertRows(
        'retention_runs',
        runs.map((r) => ({
          ts: state.lastRunSeconds,
          table_name: r.table,
          retention_days: r.retentionDays,
          dropped_partitions: r.dropped,
          error: r.error,
          instance: deps.instance,
        })),
      )
      .catch((err: Error) => deps.logger.warn({ err: err.message }, 'could not record the retention run'));
    const dropped = runs.flatMap((r) => r.dropped.map((p) => `${r.table}/${p}`));
    if (dropped.length > 0) deps.logger.info({ dropped }, 'retention dropped old partitions');
    const ttlSet = runs.filter((r) => r.ttl === 'set').map((r) => `${r.table}: ${r.retentionDays} days`);
    if (ttlSet.length > 0) deps.logger.info({ ttl: ttlSet }, 'retention set the tables’ TTL');
    return runs;
  }

  return {
    state: () => ({ ...state }),
    runOnce(): Promise<RetentionRun[]> {
      running ??= runOnce().finally(() => {
        running = undefined;
      });
      return running;
    },
    start() {
      if (!config.enabled || timer) return;
      timer = setInterval(() => void this.runOnce(), config.intervalMs);
      timer.unref();
      void this.runOnce();
    },
    async stop() {
      if (timer) clearInterval(timer);
      timer = undefined;
      await running;
    },
  };
}
