import { randomBytes } from 'node:crypto';
import { type ClickHouse, identifier, sql } from '@tapwire/clickhouse';
import { type EventSink, emptySinkStats, type LogSource } from '@tapwire/kafka';
import type { Logger } from '@tapwire/telemetry';
import type { IngestConfig } from './config.js';
import { createIngestMetrics } from './metrics.js';
import { createIngestPipeline } from './pipeline.js';
import { STREAMS } from './rows.js';

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
  topics: { topic: string; table: string; events: number }[];
  inserted: number;
  skippedDuplicates: number;
  invalid: number;
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
 * same pipeline as ingest, in a fresh consumer group whose start offsets are set by time. Offsets
 * already stored in a table are skipped (the ledger), so a replay interrupted and run again, with or
 * without clearing, never inserts an event twice. Invalid events are counted, not dead-lettered again.
 */
export async function replay(
  deps: { source: LogSource; ch: ClickHouse; logger: Logger },
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
          const [exists] = await deps.ch.query<{ n: string }>(
            sql`SELECT count() AS n FROM system.parts WHERE database = ${deps.ch.database} AND table = ${table} AND partition = ${partition} AND active`,
          );
          if (Number(exists?.n ?? 0) === 0) continue;
          await deps.ch.command(sql`ALTER TABLE ${identifier(table)} DROP PARTITION ${Number(partition)}`);
          cleared.push(`${table}/${partition}`);
        }
      }
    }
  }

  const offsets = await deps.source.offsets();
  const groupId = `${config.groupId}-replay-${randomBytes(4).toString('hex')}`;
  const ends = new Map<string, bigint>();
  const summary: ReplaySummary['topics'] = [];
  let total = 0;
  try {
    for (const s of streams) {
      const topic = config.topicPrefix + s.topic;
      const start = await offsets.offsetsAt(topic, fromMs);
      const end =
        options.toMs === undefined
          ? await offsets.highWatermarks(topic)
          : await offsets.offsetsAt(topic, toMs);
      let events = 0;
      for (const p of start) {
        const e = BigInt(end.find((x) => x.partition === p.partition)?.offset ?? p.offset);
        const n = e - BigInt(p.offset);
        if (n > 0n) {
          ends.set(`${topic}\u0000${p.partition}`, e);
          events += Number(n);
        }
      }
      await offsets.presetGroup(groupId, topic, start);
      summary.push({ topic, table: s.table, events });
      total += events;
    }
  } finally {
    await offsets.close();
  }

  const dlq = countingSink();
  const metrics = createIngestMetrics({
    bufferedRows: () => 0,
    clickhouseUp: () => true,
    paused: () => false,
    lag: () => [],
    retention: () => ({ lastRunSeconds: 0, droppedPartitions: 0, failures: 0 }),
  });
  const pipeline = createIngestPipeline(
    { ch: deps.ch, dlq, logger: deps.logger, metrics },
    { ...config, groupId },
  );
  let done = 0;
  let finish: () => void = () => {};
  const finished = new Promise<void>((resolve) => {
    finish = resolve;
  });
  if (ends.size === 0) finish();
  const runner = deps.source.runner(
    { groupId, topics: summary.map((t) => t.topic), fromBeginning: false },
    {
      onAssigned: pipeline.onAssigned,
      async onBatch(batch) {
        const k = `${batch.topic}\u0000${batch.partition}`;
        const end = ends.get(k);
        if (end === undefined) return;
        const messages = batch.messages.filter((m) => BigInt(m.offset) < end);
        if (messages.length > 0) await pipeline.onBatch({ ...batch, messages });
        done += messages.length;
        options.onProgress?.(done, total);
        const last = batch.messages[batch.messages.length - 1];
        if (last && BigInt(last.offset) + 1n >= end) {
          ends.delete(k);
          if (ends.size === 0) finish();
        }
      },
    },
  );
  pipeline.attach(runner);
  pipeline.start();
  try {
    await runner.start();
    await finished;
    await pipeline.stop();
  } finally {
    await runner.close();
    const cleanup = await deps.source.offsets();
    await cleanup.deleteGroup(groupId);
    await cleanup.close();
  }
  const stats = pipeline.stats();
  return {
    fromMs,
    toMs,
    clearedPartitions: cleared,
    topics: summary,
    inserted: stats.inserted,
    skippedDuplicates: stats.skippedDuplicates,
    invalid: dlq.count(),
    durationMs: Date.now() - started,
  };
}
