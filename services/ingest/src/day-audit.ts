import { type ClickHouse, identifier, type QueryOptions, raw, sql } from '@tapwire/clickhouse';
import type { Logger } from '@tapwire/telemetry';
import type { IngestMetrics } from './metrics.js';
import type { Stream } from './rows.js';

/** DayAudit compares one day of a raw table and its rollups with the ledger. */
export interface DayAudit {
  readonly table: string;
  /** YYYYMMDD (UTC). */
  readonly day: string;
  /** Rows the raw table holds for the day. */
  readonly rawRows: number;
  /**
   * Distinct event identities (source_id, source_seq) among them: what should be there once. A
   * copy stored from a shipper's resend has another Kafka offset but the same identity.
   */
  readonly ledgerRows: number;
  /** Per rollup, the raw rows it counts for the day, and how many it should (the ledger's). */
  readonly rollups: readonly { table: string; rows: number; expected: number }[];
}

const DAY_S = 86_400;
// Counting distinct identities holds them all in memory: a day too large fails the audit
// (logged by its caller) instead of starving the server.
const LIMITS: QueryOptions = { maxMemoryBytes: 1024 ** 3, maxExecutionTimeS: 120 };

/** dayName formats a day number (days since 1970-01-01) as YYYYMMDD. */
export function dayName(day: number): string {
  return new Date(day * DAY_S * 1000).toISOString().slice(0, 10).replace(/-/g, '');
}

/**
 * tablesAboveLedger names the tables holding more than the ledger allows. Only excess is judged:
 * rows being inserted meanwhile can make a rollup look short for a moment, never above.
 */
export function tablesAboveLedger(a: DayAudit): string[] {
  return [
    ...(a.rawRows > a.ledgerRows ? [a.table] : []),
    ...a.rollups.filter((r) => r.rows > r.expected).map((r) => r.table),
  ];
}

/**
 * auditDay counts one UTC day (days since 1970-01-01) of a raw table and its rollups against the
 * ledger: each event identity counts once. A raw table or a rollup above the ledger means data came
 * back that was deleted (on 18.16 a restart reloads parts merged away before a DROP PARTITION) or
 * was inserted twice.
 */
export async function auditDay(ch: ClickHouse, stream: Stream, day: number): Promise<DayAudit> {
  const table = identifier(stream.table);
  const start = day * DAY_S;
  const inDay = sql`ts >= toDateTime(${start}, 'UTC') AND ts < toDateTime(${start + DAY_S}, 'UTC')`;
  // Rollups first: rows reach a rollup after the raw table, so rows inserted meanwhile can make a
  // rollup look short of the ledger read after it, never above it.
  const counted: { table: string; rows: number }[] = [];
  for (const rollup of stream.rollups) {
    // The rollup's time buckets of the day's first and last second, as its view computes them.
    const bucketAt = (second: number) =>
      sql`(SELECT toString(${raw(rollup.bucket)}) FROM (SELECT toDateTime(${second}, 'UTC') AS ts))`;
    const [range] = await ch.query<{ lo: string; hi: string }>(
      sql`SELECT ${bucketAt(start)} AS lo, ${bucketAt(start + DAY_S - 1)} AS hi`,
    );
    const [actual] = await ch.query<{ n: string }>(
      sql`SELECT ${raw(rollup.count)} AS n FROM ${identifier(rollup.table)} WHERE ${identifier(rollup.time)} BETWEEN ${range?.lo ?? ''} AND ${range?.hi ?? ''}`,
      LIMITS,
    );
    counted.push({ table: rollup.table, rows: Number(actual?.n ?? 0) });
  }
  const [r] = await ch.query<{ n: string; ledger: string }>(
    sql`SELECT count() AS n, uniqExact(source_id, source_seq) AS ledger FROM ${table} WHERE ${inDay}`,
    LIMITS,
  );
  const ledgerRows = Number(r?.ledger ?? 0);
  return {
    table: stream.table,
    day: dayName(day),
    rawRows: Number(r?.n ?? 0),
    ledgerRows,
    // `count` is the raw rows a rollup holds (rows.ts), and every row of the day lands in one of
    // the day's buckets: over the whole day a rollup counts each ledger row once.
    rollups: counted.map((c) => ({ ...c, expected: ledgerRows })),
  };
}

/** reportAudit logs and counts a day whose tables hold more than the ledger, naming the fix; true when they do. */
export function reportAudit(audit: DayAudit, logger: Logger, metrics?: IngestMetrics): boolean {
  const above = tablesAboveLedger(audit);
  if (above.length === 0) return false;
  for (const t of above) metrics?.rollupChecked(t, 'excess');
  const day = `${audit.day.slice(0, 4)}-${audit.day.slice(4, 6)}-${audit.day.slice(6, 8)}`;
  logger.error(
    { ...audit, above },
    `${above.join(', ')} hold more than the ledger for ${audit.day} (deleted data came back after a ClickHouse restart, or was inserted twice); rebuild that day with \`tapwire replay --clear --from ${day}T00:00:00Z --to ${day}T23:59:59Z --tables ${audit.table}\``,
  );
  return true;
}
