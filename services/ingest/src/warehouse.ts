import {
  type ClickHouse,
  type DayTtlChange,
  dropDayPartition,
  identifier,
  type ServerCapabilities,
  setDayTtl,
  sql,
} from '@tapwire/clickhouse';
import { type DuckDb, identifier as duckIdentifier, sql as duckSql, tableSpec } from '@tapwire/duckdb';
import type { Logger } from '@tapwire/telemetry';
import { auditDay, type DayAudit, dayName } from './day-audit.js';
import { checkRollup, type RepairOutcome, type StoredBatch } from './rollup-repair.js';
import type { Rollup, Row, Stream } from './rows.js';

/**
 * Warehouse is where ingest writes: the seam between the pipeline (batches, the per-event ledger,
 * retention, replay) and a database. A raw row's ledger identity is (source_id, source_seq): the
 * local log an event was first written to and its sequence there, or `partition:<p>` and the
 * offset for a single-event record (rows.ts). ClickHouse is the distributed one; DuckDB the embedded one.
 * Day partitions are named YYYYMMDD (UTC) on both.
 */
export interface Warehouse {
  readonly kind: 'clickhouse' | 'duckdb';
  /**
   * insert writes rows of one table and one day: the pieces of `body`, concatenated, are NDJSON
   * (one JSON object per line, every column present).
   */
  insert(table: string, body: readonly (string | Uint8Array)[]): Promise<void>;
  /** insertRows writes bookkeeping rows (consumer lag, retention runs). */
  insertRows(table: string, rows: readonly Row[]): Promise<void>;
  /** storedSeqs lists the sequence numbers of one source that a raw table holds, from `from` (to `to`, inclusive). */
  storedSeqs(table: string, source: string, from: bigint, to?: bigint): Promise<string[]>;
  /** highestSeq is the highest sequence number of one source that a raw table holds at or above `from`, if any. */
  highestSeq(table: string, source: string, from: bigint): Promise<string | undefined>;
  /**
   * checkRollup makes one rollup of a batch that a failed insert stored anyway agree with the raw
   * table (ClickHouse pushes to materialized views after storing the raw part; see rollup-repair.ts).
   */
  checkRollup(batch: StoredBatch, rollup: Rollup, logger: Logger): Promise<RepairOutcome>;
  /** auditDay counts one day (days since 1970-01-01) of a raw table and its rollups against the ledger (day-audit.ts). */
  auditDay(stream: Stream, day: number): Promise<DayAudit>;
  /** days lists a table's day partitions before `before` (YYYYMMDD); none for a table it does not have. */
  daysBefore(table: string, before: string): Promise<string[]>;
  /** dropDay deletes one day partition of a table for good (no restart brings it back); resolves whether it held anything. */
  dropDay(table: string, day: string): Promise<boolean>;
  /**
   * expireAfter makes the database itself delete a table's rows `days` days after their day (a
   * native TTL, ClickHouse 21.10 and later): 'set' when this changed the table, 'unchanged' when it
   * already was so, 'unsupported' where there is no such TTL (18.16, DuckDB) and the caller drops
   * old days itself.
   */
  expireAfter(table: string, days: number): Promise<DayTtlChange | 'unsupported'>;
  /** capabilities are the ClickHouse server's version and capabilities; undefined for DuckDB. */
  capabilities(): Promise<ServerCapabilities | undefined>;
  /** memory is what an embedded database holds in this process, per tag; [] for ClickHouse (a server of its own). */
  memory(): Promise<{ tag: string; bytes: number; temporaryBytes: number }[]>;
  close(): Promise<void>;
}

const DAY_PARTITION = /^\d{8}$/;

/** clickhouseWarehouse writes through the ClickHouse client; materialized views fill the rollups. */
export function clickhouseWarehouse(ch: ClickHouse): Warehouse {
  return {
    kind: 'clickhouse',
    insert: (table, body) => ch.insertNdjson(table, body),
    memory: async () => [],
    insertRows: (table, rows) => ch.insert(table, rows),
    async storedSeqs(table, source, from, to) {
      const upper = to === undefined ? sql`1` : sql`source_seq <= ${to}`;
      const rows = await ch.query<{ s: string }>(
        sql`SELECT toString(source_seq) AS s FROM ${identifier(table)} WHERE source_id = ${source} AND source_seq >= ${from} AND ${upper}`,
      );
      return rows.map((r) => r.s);
    },
    async highestSeq(table, source, from) {
      const [r] = await ch.query<{ s: string; n: string | number }>(
        sql`SELECT toString(max(source_seq)) AS s, count() AS n FROM ${identifier(table)} WHERE source_id = ${source} AND source_seq >= ${from}`,
      );
      return r && Number(r.n) > 0 ? r.s : undefined;
    },
    checkRollup: (batch, rollup, logger) => checkRollup(ch, batch, rollup, logger),
    auditDay: (stream, day) => auditDay(ch, stream, day),
    async daysBefore(table, before) {
      const parts = await ch.query<{ partition: string }>(
        sql`SELECT DISTINCT partition FROM system.parts WHERE database = ${ch.database} AND table = ${table} AND active AND partition < ${before} ORDER BY partition`,
      );
      return parts.map((p) => p.partition).filter((p) => DAY_PARTITION.test(p));
    },
    // A plain DROP PARTITION can come back after a restart on 18.16 (see day-partition.ts).
    dropDay: async (table, day) => (await dropDayPartition(ch, table, day)) !== 'empty',
    async expireAfter(table, days) {
      return (await ch.capabilities()).ttl ? setDayTtl(ch, table, days) : 'unsupported';
    },
    capabilities: () => ch.capabilities(),
    close: () => ch.close(),
  };
}

const dayNumber = (name: string) =>
  Date.UTC(Number(name.slice(0, 4)), Number(name.slice(4, 6)) - 1, Number(name.slice(6, 8))) / 86_400_000;

/**
 * duckdbWarehouse writes to the embedded database: each insert is one transaction that skips
 * event ids already stored, so a stored insert is whole and there are no rollups to repair. The
 * database belongs to its opener: close() leaves it open.
 */
export function duckdbWarehouse(db: DuckDb): Warehouse {
  return {
    kind: 'duckdb',
    memory: () => db.memory(),
    async insert(table, body) {
      await db.insertNdjson(table, body);
    },
    async insertRows(table, rows) {
      await db.insertJsonLines(
        table,
        rows.map((r) => JSON.stringify(r)),
      );
    },
    async storedSeqs(table, source, from, to) {
      const upper = to === undefined ? duckSql`TRUE` : duckSql`source_seq <= ${to}`;
      const rows = await db.query<{ s: string }>(
        duckSql`SELECT CAST(source_seq AS VARCHAR) AS s FROM ${duckIdentifier(table)} WHERE source_id = ${source} AND source_seq >= ${from} AND ${upper}`,
      );
      return rows.map((r) => r.s);
    },
    async highestSeq(table, source, from) {
      const [r] = await db.query<{ s: string | null }>(
        duckSql`SELECT CAST(max(source_seq) AS VARCHAR) AS s FROM ${duckIdentifier(table)} WHERE source_id = ${source} AND source_seq >= ${from}`,
      );
      return r?.s ?? undefined;
    },
    async checkRollup() {
      return 'complete';
    },
    // No rollup tables here, and an insert is one transaction: only the raw rows to count.
    async auditDay(stream, day) {
      const time = duckIdentifier(tableSpec(stream.table)?.time ?? 'ts');
      const [r] = await db.query<{ n: number | bigint; ledger: number | bigint }>(
        duckSql`SELECT count(*) AS n, count(DISTINCT (source_id, source_seq)) AS ledger FROM ${duckIdentifier(stream.table)} WHERE ${time} >= ${day * 86_400} AND ${time} < ${(day + 1) * 86_400}`,
      );
      return {
        table: stream.table,
        day: dayName(day),
        rawRows: Number(r?.n ?? 0),
        ledgerRows: Number(r?.ledger ?? 0),
        rollups: [],
      };
    },
    async daysBefore(table, before) {
      const spec = tableSpec(table);
      if (!spec) return [];
      const time = duckIdentifier(spec.time ?? 'ts');
      const rows = await db.query<{ d: string }>(
        duckSql`SELECT DISTINCT ${time} // 86400 AS d FROM ${duckIdentifier(table)} WHERE ${time} < ${dayNumber(before) * 86_400} ORDER BY d`,
      );
      return rows.map((r) => dayName(Number(r.d)));
    },
    async dropDay(table, day) {
      const spec = tableSpec(table);
      if (!spec) return false;
      const time = duckIdentifier(spec.time ?? 'ts');
      const start = dayNumber(day) * 86_400;
      const deleted = await db.run(
        duckSql`DELETE FROM ${duckIdentifier(table)} WHERE ${time} >= ${start} AND ${time} < ${start + 86_400}`,
      );
      return deleted > 0;
    },
    async expireAfter() {
      return 'unsupported';
    },
    async capabilities() {
      return undefined;
    },
    async close() {},
  };
}
