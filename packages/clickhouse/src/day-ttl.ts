import type { ClickHouse } from './client.js';
import { dayKeyColumn } from './day-partition.js';
import { TapwireClickHouseError } from './errors.js';
import { identifier, raw, sql } from './sql.js';

/** DayTtlChange says what setDayTtl did: changed the table, or found it as asked. */
export type DayTtlChange = 'set' | 'unchanged';

// Whole expired parts are dropped (the tables are partitioned by day, so a day's parts expire
// together) instead of rewritten row by row, and materializing a TTL after MODIFY TTL only
// recalculates each part's TTL information (hard links for the data) instead of rewriting it.
const MERGE_TREE_SETTINGS = { ttl_only_drop_parts: '1', materialize_ttl_recalculate_only: '1' } as const;

const TTL_CLAUSE = /\sTTL\s+(.*?)(?:\sSETTINGS\s|$)/;
const SETTINGS_CLAUSE = /\sSETTINGS\s+(.*)$/;
const compact = (s: string) => s.replace(/[`\s]/g, '').toLowerCase();

function settingsOf(engineFull: string): Map<string, string> {
  const clause = SETTINGS_CLAUSE.exec(engineFull)?.[1] ?? '';
  return new Map(
    clause
      .split(',')
      .map((kv) => kv.split('=').map((s) => s.trim().replace(/^'|'$/g, '')))
      .filter((kv): kv is [string, string] => kv.length === 2),
  );
}

/**
 * setDayTtl makes ClickHouse delete a day-partitioned table's rows `days` days after their time
 * column (the column of its `toYYYYMMDD(column)` partition key): `MODIFY TTL column + INTERVAL days
 * DAY`, with the table's `ttl_only_drop_parts` and `materialize_ttl_recalculate_only` set first.
 * The TTL is materialized (`materialize_ttl_after_modify = 1`, as a mutation that recalculates
 * TTL information only): with it off, parts written before the change keep the TTL they were
 * written under, so a longer retention would still drop them early and parts from before any TTL
 * would never expire. Idempotent: a table already so is left alone. Needs ServerCapabilities.ttl.
 * DDL outside migrations/ on purpose: retention is configuration, applied by the retention job.
 */
export async function setDayTtl(ch: ClickHouse, table: string, days: number): Promise<DayTtlChange> {
  if (!Number.isSafeInteger(days) || days < 1) {
    throw new TapwireClickHouseError('TAPWIRE_CH_UNSAFE_SQL_VALUE', `retention of ${days} days`);
  }
  const [t] = await ch.query<{ key: string; engine: string }>(
    sql`SELECT partition_key AS key, engine_full AS engine FROM system.tables WHERE database = ${ch.database} AND name = ${table}`,
  );
  const column = dayKeyColumn(t?.key ?? '');
  if (!t || !column) {
    throw new TapwireClickHouseError(
      'TAPWIRE_CH_TTL_NOT_APPLICABLE',
      t
        ? `${table} is not partitioned by toYYYYMMDD(column) (partition key: ${t.key || 'none'})`
        : `no table ${table} in ${ch.database}`,
    );
  }
  let change: DayTtlChange = 'unchanged';
  const settings = settingsOf(t.engine);
  if (Object.entries(MERGE_TREE_SETTINGS).some(([name, value]) => settings.get(name) !== value)) {
    const assignments = Object.entries(MERGE_TREE_SETTINGS).map(([name, value]) => `${name} = ${value}`);
    await ch.command(sql`ALTER TABLE ${identifier(table)} MODIFY SETTING ${raw(assignments.join(', '))}`);
    change = 'set';
  }
  const current = compact(TTL_CLAUSE.exec(t.engine)?.[1] ?? '');
  const wanted = [`${column}+toIntervalDay(${days})`, `${column}+INTERVAL${days}DAY`].map(compact);
  if (!wanted.includes(current)) {
    await ch.command(
      sql`ALTER TABLE ${identifier(table)} MODIFY TTL ${identifier(column)} + INTERVAL ${days} DAY SETTINGS materialize_ttl_after_modify = 1`,
    );
    change = 'set';
  }
  return change;
}
