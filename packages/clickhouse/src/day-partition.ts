import type { ClickHouse } from './client.js';
import { TapwireClickHouseError } from './errors.js';
import { identifier, sql } from './sql.js';

/** DropDayOptions bound the waits of dropDayPartition. */
export interface DropDayOptions {
  /** How long to wait for the delete mutation, or for dropped parts to leave the disk, in ms. Default: 600000. */
  readonly timeoutMs?: number;
  /** Pause between checks of system.mutations / system.parts, in ms. Default: 250. */
  readonly pollMs?: number;
}

/** DayDrop says how dropDayPartition emptied a day: nothing to do, a plain drop, or a delete that left a covering part. */
export type DayDrop = 'empty' | 'dropped' | 'deleted';

const DAY = /^\d{8}$/;
const DAY_KEY = /^toYYYYMMDD\(`?([A-Za-z_][A-Za-z0-9_]*)`?\)$/;

/** dayKeyColumn names the column of a `toYYYYMMDD(column)` partition key, if that is the key. */
export function dayKeyColumn(partitionKey: string): string | undefined {
  return DAY_KEY.exec(partitionKey)?.[1];
}
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

interface PartState {
  activeParts: number;
  activeRows: number;
  inactiveRows: number;
  /** Parts holding rows, active or not: what a restart could load. */
  loadable: Set<string>;
}

async function partState(ch: ClickHouse, table: string, day: string): Promise<PartState> {
  const parts = await ch.query<{ name: string; active: number | string; rows: number | string }>(
    sql`SELECT name, active, rows FROM system.parts WHERE database = ${ch.database} AND table = ${table} AND partition = ${day}`,
  );
  const state: PartState = { activeParts: 0, activeRows: 0, inactiveRows: 0, loadable: new Set() };
  for (const p of parts) {
    const rows = Number(p.rows);
    if (Number(p.active) === 1) {
      state.activeParts++;
      state.activeRows += rows;
    } else state.inactiveRows += rows;
    if (rows > 0) state.loadable.add(p.name);
  }
  return state;
}

async function until(
  check: () => Promise<boolean>,
  options: DropDayOptions,
  what: () => string,
): Promise<void> {
  const deadline = Date.now() + (options.timeoutMs ?? 600_000);
  while (!(await check())) {
    if (Date.now() > deadline)
      throw new TapwireClickHouseError('TAPWIRE_CH_PARTITION_DROP_INCOMPLETE', what());
    await sleep(options.pollMs ?? 250);
  }
}

/**
 * dropDayPartition empties one YYYYMMDD partition of a MergeTree table so that no server restart
 * can bring its rows back. On 18.16, `DROP PARTITION` removes only the active parts; the parts they
 * were merged from stay on disk for `old_parts_lifetime` (480 s) and a restart loads them as active
 * again. So when such parts exist the day is emptied by a delete mutation instead, which leaves an
 * empty active part covering every older one (and a mutation file that deletes them again if
 * loaded); that empty part is dropped by a later call, once nothing it covers is left on disk.
 */
export async function dropDayPartition(
  ch: ClickHouse,
  table: string,
  day: string,
  options: DropDayOptions = {},
): Promise<DayDrop> {
  if (!DAY.test(day)) throw new TapwireClickHouseError('TAPWIRE_CH_UNSAFE_SQL_VALUE', `day partition ${day}`);
  const state = await partState(ch, table, day);
  if (state.activeRows === 0) {
    // Only empty covering parts left by an earlier delete: safe to remove once they cover nothing.
    if (state.activeParts > 0 && state.inactiveRows === 0)
      await ch.command(sql`ALTER TABLE ${identifier(table)} DROP PARTITION ${Number(day)}`);
    return 'empty';
  }
  if (state.inactiveRows === 0) {
    await ch.command(sql`ALTER TABLE ${identifier(table)} DROP PARTITION ${Number(day)}`);
    // The dropped parts leave the disk at once unless a query still reads them, or a merge that
    // committed since the check above left its sources behind: wait until none of them is left.
    // Parts written after the drop (live ingest) are not waited for.
    await until(
      async () => {
        const now = (await partState(ch, table, day)).loadable;
        return ![...state.loadable].some((name) => now.has(name));
      },
      options,
      () => `${table}/${day}: dropped parts are still on disk`,
    );
    return 'dropped';
  }
  const [t] = await ch.query<{ key: string }>(
    sql`SELECT partition_key AS key FROM system.tables WHERE database = ${ch.database} AND name = ${table}`,
  );
  const column = dayKeyColumn(t?.key ?? '');
  if (!column) {
    throw new TapwireClickHouseError(
      'TAPWIRE_CH_PARTITION_DROP_INCOMPLETE',
      `${table} is not partitioned by toYYYYMMDD(column) (partition key: ${t?.key ?? 'none'})`,
    );
  }
  await ch.command(
    sql`ALTER TABLE ${identifier(table)} DELETE WHERE toYYYYMMDD(${identifier(column)}) = ${Number(day)}`,
  );
  await until(
    async () => {
      const [m] = await ch.query<{ n: string }>(
        sql`SELECT count() AS n FROM system.mutations WHERE database = ${ch.database} AND table = ${table} AND NOT is_done`,
      );
      // Not "no active rows": rows ingest writes meanwhile are newer than the mutation and stay.
      return Number(m?.n ?? 0) === 0;
    },
    options,
    () => `${table}/${day}: the delete mutation has not finished (see system.mutations)`,
  );
  return 'deleted';
}
