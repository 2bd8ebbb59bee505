import { randomBytes } from 'node:crypto';
import { type ClickHouse, identifier, joinSql, raw, type SqlFragment, sql } from '@tapwire/clickhouse';
import type { Logger } from '@tapwire/telemetry';
import type { Rollup, Stream } from './rows.js';

/** StoredBatch is the part of a failed insert that ClickHouse stored anyway: raw rows by ledger identity. */
export interface StoredBatch {
  readonly stream: Stream;
  /** UTC day of the rows, in days since 1970-01-01 (rows.ts `dayOf`). */
  readonly day: number;
  /** Per source (source_id), the sequence numbers of the stored rows. */
  readonly seqs: ReadonlyMap<string, readonly string[]>;
  /** Rollups still to check. */
  pending: Rollup[];
}

/** Outcome of checking one rollup against the raw table. */
export type RepairOutcome = 'complete' | 'repaired' | 'unresolved';

const ATTEMPTS = 5;
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

function batchFilter(b: StoredBatch): SqlFragment {
  const parts = [...b.seqs].map(
    ([source, seqs]) =>
      sql`(source_id = ${source} AND source_seq IN (${joinSql(
        seqs.map((s) => sql`${BigInt(s)}`),
        ', ',
      )}))`,
  );
  return sql`intDiv(toUInt32(ts), 86400) = ${b.day} AND (${joinSql(parts, ' OR ')})`;
}

/**
 * viewSelect returns the SELECT of the materialized view that fills `rollup` (as the server
 * stores it, so the migrations stay the only place that defines it), reading from `source`
 * instead of the raw table.
 */
async function viewSelect(
  ch: ClickHouse,
  rawTable: string,
  rollup: Rollup,
  source: SqlFragment,
): Promise<SqlFragment> {
  const [row] = await ch.query<{ q: string }>(
    sql`SELECT create_table_query AS q FROM system.tables WHERE database = ${ch.database} AND name = ${`${rollup.table}_mv`}`,
  );
  const q = row?.q ?? '';
  const at = q.indexOf(' AS SELECT ');
  const from = new RegExp(`\\bFROM\\s+\`?${ch.database}\`?\\.\`?${rawTable}\`?(?=\\s|$)`, 'g');
  if (at < 0 || (q.match(from) ?? []).length !== 1) {
    throw new Error(`cannot read the materialized view ${rollup.table}_mv that fills ${rollup.table}`);
  }
  return raw(q.slice(at + 4).replace(from, `FROM ${source.text}`));
}

async function countOf(ch: ClickHouse, query: SqlFragment): Promise<number> {
  const [r] = await ch.query<{ n: string | number }>(query);
  return Number(r?.n ?? 0);
}

/**
 * checkRollup makes one rollup agree with the raw table about a stored batch. ClickHouse writes
 * the raw part first and then pushes the block to each materialized view; a server stopping in
 * between leaves the raw rows stored (so ingest's ledger will not insert them again) and some
 * rollups without them. Over the time buckets the batch touches, the rollup's count must equal
 * what its view computes from the raw table: equal means complete; short by exactly the batch's
 * contribution means the push was lost, and the batch is pushed to that rollup alone (through a
 * temporary copy of its view); anything else (other writers in flight) is re-checked, then reported.
 */
export async function checkRollup(
  ch: ClickHouse,
  batch: StoredBatch,
  rollup: Rollup,
  logger: Logger,
): Promise<RepairOutcome> {
  const rawTable = identifier(batch.stream.table);
  const filter = batchFilter(batch);
  const [range] = await ch.query<{ lo: string; hi: string; n: string | number }>(
    sql`SELECT toString(min(${raw(rollup.bucket)})) AS lo, toString(max(${raw(rollup.bucket)})) AS hi, count() AS n FROM ${rawTable} WHERE ${filter}`,
  );
  if (!range || Number(range.n) === 0) return 'complete';
  const count = raw(rollup.count);
  const ofBatch = await viewSelect(
    ch,
    batch.stream.table,
    rollup,
    sql`(SELECT * FROM ${rawTable} WHERE ${filter})`,
  );
  const ofBuckets = await viewSelect(
    ch,
    batch.stream.table,
    rollup,
    sql`(SELECT * FROM ${rawTable} FINAL WHERE ${raw(rollup.bucket)} BETWEEN ${range.lo} AND ${range.hi})`,
  );
  const contribution = await countOf(ch, sql`SELECT ${count} AS n FROM (${ofBatch})`);
  let repaired = false;
  for (let attempt = 0; attempt < ATTEMPTS; attempt++) {
    const [actual, expected] = await Promise.all([
      countOf(
        ch,
        sql`SELECT ${count} AS n FROM ${identifier(rollup.table)} WHERE ${identifier(rollup.time)} BETWEEN ${range.lo} AND ${range.hi}`,
      ),
      countOf(ch, sql`SELECT ${count} AS n FROM (${ofBuckets})`),
    ]);
    if (actual === expected) return repaired ? 'repaired' : 'complete';
    if (!repaired && actual === expected - contribution) {
      await pushTo(ch, batch, rollup, filter);
      repaired = true;
      logger.warn(
        { table: rollup.table, from: batch.stream.table, rows: contribution },
        'a stored insert had not reached this rollup (ClickHouse stopped mid-insert); pushed it again',
      );
      continue;
    }
    await sleep(300);
  }
  return 'unresolved';
}

/** pushTo sends the batch's raw rows through a temporary copy of the rollup's view, and nowhere else. */
async function pushTo(
  ch: ClickHouse,
  batch: StoredBatch,
  rollup: Rollup,
  filter: SqlFragment,
): Promise<void> {
  const name = `tapwire_repair_${randomBytes(6).toString('hex')}`;
  const entry = identifier(name);
  const view = identifier(`${name}_mv`);
  try {
    await ch.command(sql`CREATE TABLE ${entry} AS ${identifier(batch.stream.table)} ENGINE = Null`);
    const select = await viewSelect(ch, batch.stream.table, rollup, entry);
    await ch.command(sql`CREATE MATERIALIZED VIEW ${view} TO ${identifier(rollup.table)} AS ${select}`);
    await ch.command(
      sql`INSERT INTO ${entry} SELECT * FROM ${identifier(batch.stream.table)} WHERE ${filter}`,
    );
  } finally {
    await ch.command(sql`DROP TABLE IF EXISTS ${view}`).catch(() => {});
    await ch.command(sql`DROP TABLE IF EXISTS ${entry}`).catch(() => {});
  }
}
