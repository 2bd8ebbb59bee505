import { type EventSink, emptySinkStats, type LogSource, planRange, readRange } from '@tapwire/stream';
import type { Logger } from '@tapwire/telemetry';
import type { IngestConfig } from './config.js';
import { type DayAudit, reportAudit } from './day-audit.js';
import { createDetachedIngestMetrics } from './metrics.js';
import { createIngestPipeline } from './pipeline.js';
import { STREAMS } from './rows.js';
import type { Warehouse } from './warehouse.js';

/** DERIVED_TABLES lists, per raw table, the rollups its materialized views fill. */
export const DERIVED_TABLES: Record<string, readonly string[]> = Object.fromEntries(
  STREAMS.map((s) => [s.table, s.rollups.map((r) => r.table)]),
);

/** ReplayOptions say what to rebuild. */
export interface ReplayOptions {
  fromMs: number;
  toMs?: number;
  tables: readonly string[];
  /** Drop the affected day partitions of each table and its rollups first (whole UTC days). */
  clear: boolean;
  onProgress?(done: number, total: number): void;
}

/** ReplaySummary is what a replay did. */
export interface ReplaySummary {
  fromMs: number;
  toMs: number;
  clearedPartitions: string[];
  /** Per topic, the log records read (`events` counts records: a batched record holds many events). */
  topics: { topic: string; table: string; events: number }[];
  inserted: number;
  skippedDuplicates: number;
  invalid: number;
  /** Days of the window whose tables hold more than the ledger afterwards (each also logged). */
  mismatches: DayAudit[];
  durationMs: number;
}

const DAY_MS = 86_400_000;
const dayId = (ms: number) => new Date(ms).toISOString().slice(0, 10).replace(/-/g, '');

function countingSink(): EventSink & { count: () => number } {
  let n = 0;
  return {
    emit: () => {
      n++;
      return true;
    },
    flush: async () => {},
    close: async () => {},
    stats: emptySinkStats,
    count: () => n,
  };
}

/**
 * replay rebuilds projections by re-reading the log (Kafka or the embedded one) from a point in time into the tables, through the
 * same pipeline as ingest, in a fresh consumer group whose start offsets are set by time. Events
 * already stored in a table are skipped (the ledger), so a replay interrupted and run again, with or
 * without clearing, never inserts an event twice. Invalid events are counted, not dead-lettered again.
 */
export async function replay(
  deps: { source: LogSource; warehouse: Warehouse; logger: Logger },
  config: IngestConfig,
  options: ReplayOptions,
): Promise<ReplaySummary> {
  const started = Date.now();
  const streams = STREAMS.filter((s) => options.tables.includes(s.table));
  let fromMs = options.fromMs;
  let toMs = options.toMs ?? Date.now();
  const cleared: string[] = [];
  if (options.clear) {
    // A day partition holds the whole day: rebuild whole days so nothing outside the window is lost.
    fromMs = Math.floor(fromMs / DAY_MS) * DAY_MS;
    toMs = options.toMs === undefined ? toMs : Math.ceil(toMs / DAY_MS) * DAY_MS;
    for (const s of streams) {
      for (const table of [s.table, ...(DERIVED_TABLES[s.table] ?? [])]) {
        for (let d = fromMs; d < toMs; d += DAY_MS) {
          const partition = dayId(d);
          if (await deps.warehouse.dropDay(table, partition)) cleared.push(`${table}/${partition}`);
        }
      }
    }
  }

  const plan = await planRange(
    deps.source,
    streams.map((s) => config.topicPrefix + s.topic),
    // Without --to, up to what the topics hold now.
    { fromMs, toMs: options.toMs === undefined ? undefined : toMs, groupPrefix: `${config.groupId}-replay` },
  );
  const groupId = plan.groupId;
  const summary: ReplaySummary['topics'] = plan.topics.map((t, i) => ({ ...t, table: streams[i]!.table }));

  const dlq = countingSink();
  const metrics = createDetachedIngestMetrics();
  const pipeline = createIngestPipeline(
    { warehouse: deps.warehouse, dlq, logger: deps.logger, metrics },
    { ...config, groupId },
  );
  await readRange(deps.source, plan, {
    onAssigned: pipeline.onAssigned,
    onBatch: pipeline.onBatch,
    started(runner) {
      pipeline.attach(runner);
      pipeline.start();
    },
    drained: () => pipeline.stop(),
    ...(options.onProgress ? { onProgress: options.onProgress } : {}),
  });
  const stats = pipeline.stats();
  // Whatever the replay skipped as already stored is only right if the tables agree with the ledger.
  const mismatches: DayAudit[] = [];
  for (const s of streams) {
    for (let d = Math.floor(fromMs / DAY_MS); d * DAY_MS < toMs; d++) {
      const audit = await deps.warehouse.auditDay(s, d);
      if (reportAudit(audit, deps.logger)) mismatches.push(audit);
    }
  }
  return {
    fromMs,
    toMs,
    clearedPartitions: cleared,
    topics: summary,
    inserted: stats.inserted,
    skippedDuplicates: stats.skippedDuplicates,
    invalid: dlq.count(),
    mismatches,
    durationMs: Date.now() - started,
  };
}
