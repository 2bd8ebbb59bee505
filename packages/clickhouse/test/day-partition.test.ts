import { type ClickHouse, dropDayPartition, type SqlFragment } from '@tapwire/clickhouse';
import { describe, expect, it } from 'vitest';

interface Part {
  name: string;
  active: 0 | 1;
  rows: number;
}
type Parts = Part[];

const part = (name: string, active: 0 | 1, rows: number): Part => ({ name, active, rows });

/**
 * A ClickHouse that answers system.parts with `parts` (the next state once a statement ran, when
 * `after` gives one), system.tables with `partitionKey`, and system.mutations with `pending`
 * unfinished mutations; it records every command.
 */
function fakeClickHouse(
  parts: Parts,
  options: { after?: Parts; partitionKey?: string; pending?: number[] } = {},
) {
  const commands: string[] = [];
  let state = parts;
  const pending = [...(options.pending ?? [])];
  const ch = {
    database: 'db',
    async query(statement: SqlFragment) {
      const text = statement.text;
      if (text.includes('system.parts')) return state;
      if (text.includes('system.tables')) return [{ key: options.partitionKey ?? 'toYYYYMMDD(minute)' }];
      if (text.includes('system.mutations')) return [{ n: String(pending.shift() ?? 0) }];
      throw new Error(`unexpected query ${text}`);
    },
    async command(statement: SqlFragment) {
      commands.push(statement.text.replace(/\s+/g, ' '));
      if (options.after) state = options.after;
    },
  } as unknown as ClickHouse;
  return { ch, commands };
}

const none: Parts = [];
const merged = part('20261205_1_2_1', 1, 500);
const sources = [part('20261205_1_1_0', 0, 250), part('20261205_2_2_0', 0, 250)];
const covering = part('20261205_1_2_1_3', 1, 0);
const fast = { pollMs: 1 };

describe('dropDayPartition', () => {
  it('drops a day with no merged-away parts left on disk', async () => {
    const { ch, commands } = fakeClickHouse([merged], { after: none });
    expect(await dropDayPartition(ch, 'route_stats_1m', '20261205', fast)).toBe('dropped');
    expect(commands).toEqual(['ALTER TABLE `route_stats_1m` DROP PARTITION 20261205']);
  });

  it('after a drop, waits for the dropped parts only, not for parts ingest wrote since', async () => {
    const { ch } = fakeClickHouse([merged], {
      after: [part('20261205_3_3_0', 0, 10), part('20261205_3_4_1', 1, 20)],
    });
    expect(await dropDayPartition(ch, 'access_logs', '20261205', fast)).toBe('dropped');
    const stuck = fakeClickHouse([merged], { after: [{ ...merged, active: 0 }] });
    await expect(
      dropDayPartition(stuck.ch, 'access_logs', '20261205', { pollMs: 1, timeoutMs: 20 }),
    ).rejects.toMatchObject({
      code: 'TAPWIRE_CH_PARTITION_DROP_INCOMPLETE',
      message:
        'a dropped partition could still come back after a server restart: access_logs/20261205: dropped parts are still on disk',
    });
  });

  it('empties a day whose merged-away parts a restart would load with a delete mutation, and waits for the mutation', async () => {
    const { ch, commands } = fakeClickHouse([merged, ...sources], {
      // A part ingest wrote after the mutation began keeps its rows: the wait is for the mutation only.
      after: [covering, { ...merged, active: 0 }, ...sources, part('20261205_4_4_0', 1, 7)],
      pending: [1, 1, 0],
    });
    expect(await dropDayPartition(ch, 'route_stats_1m', '20261205', fast)).toBe('deleted');
    expect(commands).toEqual(['ALTER TABLE `route_stats_1m` DELETE WHERE toYYYYMMDD(`minute`) = 20261205']);
  });

  it('removes the empty covering part only once nothing it covers is left', async () => {
    const covers = fakeClickHouse([covering, ...sources]);
    expect(await dropDayPartition(covers.ch, 'access_logs', '20261205', fast)).toBe('empty');
    expect(covers.commands).toEqual([]);
    const alone = fakeClickHouse([covering, part('20261205_1_1_0_3', 0, 0)]);
    expect(await dropDayPartition(alone.ch, 'access_logs', '20261205', fast)).toBe('empty');
    expect(alone.commands).toEqual(['ALTER TABLE `access_logs` DROP PARTITION 20261205']);
    const nothing = fakeClickHouse(none);
    expect(await dropDayPartition(nothing.ch, 'access_logs', '20261205', fast)).toBe('empty');
    expect(nothing.commands).toEqual([]);
  });

  it('refuses a day that is not YYYYMMDD and a table not partitioned by day, naming them', async () => {
    const { ch, commands } = fakeClickHouse([merged, ...sources], { partitionKey: 'toYYYYMM(ts)' });
    await expect(dropDayPartition(ch, 'retention_runs', '2026-12-05', fast)).rejects.toMatchObject({
      code: 'TAPWIRE_CH_UNSAFE_SQL_VALUE',
      message: 'value cannot be used in SQL: day partition 2026-12-05',
    });
    await expect(dropDayPartition(ch, 'retention_runs', '20261205', fast)).rejects.toMatchObject({
      code: 'TAPWIRE_CH_PARTITION_DROP_INCOMPLETE',
      message:
        'a dropped partition could still come back after a server restart: retention_runs is not partitioned by toYYYYMMDD(column) (partition key: toYYYYMM(ts))',
    });
    expect(commands).toEqual([]);
  });

  it('reports a delete mutation that does not finish in time', async () => {
    const { ch } = fakeClickHouse([merged, ...sources], { pending: Array.from({ length: 1000 }, () => 1) });
    await expect(
      dropDayPartition(ch, 'spans', '20261205', { pollMs: 1, timeoutMs: 20 }),
    ).rejects.toMatchObject({
      code: 'TAPWIRE_CH_PARTITION_DROP_INCOMPLETE',
      retryable: true,
      message:
        'a dropped partition could still come back after a server restart: spans/20261205: the delete mutation has not finished (see system.mutations)',
    });
  });
});
