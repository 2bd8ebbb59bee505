import { type ClickHouse, type SqlFragment, setDayTtl } from '@tapwire/clickhouse';
import { describe, expect, it } from 'vitest';

/** A ClickHouse whose system.tables holds one table (or none); it records every command. */
function fakeClickHouse(table: { key: string; engine: string } | undefined) {
  const commands: string[] = [];
  const ch = {
    database: 'db',
    async query(statement: SqlFragment) {
      if (statement.text.includes('system.tables')) return table ? [table] : [];
      throw new Error(`unexpected query ${statement.text}`);
    },
    async command(statement: SqlFragment) {
      commands.push(statement.text);
    },
  } as unknown as ClickHouse;
  return { ch, commands };
}

const BASE = 'ReplacingMergeTree PARTITION BY toYYYYMMDD(ts) ORDER BY (tenant, ts, id)';
const SET =
  'ALTER TABLE `access_logs` MODIFY SETTING ttl_only_drop_parts = 1, materialize_ttl_recalculate_only = 1';
const ttl = (days: number) =>
  `ALTER TABLE \`access_logs\` MODIFY TTL \`ts\` + INTERVAL ${days} DAY SETTINGS materialize_ttl_after_modify = 1`;
const SETTINGS =
  'SETTINGS index_granularity = 8192, ttl_only_drop_parts = 1, materialize_ttl_recalculate_only = 1';

describe('setDayTtl', () => {
  it('sets the MergeTree settings, then the TTL, on a table that has neither', async () => {
    const { ch, commands } = fakeClickHouse({
      key: 'toYYYYMMDD(ts)',
      engine: `${BASE} SETTINGS index_granularity = 8192`,
    });
    expect(await setDayTtl(ch, 'access_logs', 7)).toBe('set');
    expect(commands).toEqual([SET, ttl(7)]);
  });

  it.each([
    ['as 24.x-26.x print it', `${BASE} TTL ts + toIntervalDay(7) ${SETTINGS}`],
    ['with INTERVAL and backquotes', `${BASE} TTL \`ts\` + INTERVAL 7 DAY ${SETTINGS}`],
    [
      'with the settings in another order',
      `${BASE} TTL ts + toIntervalDay(7) SETTINGS materialize_ttl_recalculate_only = 1, index_granularity = 8192, ttl_only_drop_parts = 1`,
    ],
  ])('leaves a table already so alone (%s)', async (_name, engine) => {
    const { ch, commands } = fakeClickHouse({ key: 'toYYYYMMDD(ts)', engine });
    expect(await setDayTtl(ch, 'access_logs', 7)).toBe('unchanged');
    expect(commands).toEqual([]);
  });

  it('changes only the TTL when the retention changed', async () => {
    const { ch, commands } = fakeClickHouse({
      key: 'toYYYYMMDD(ts)',
      engine: `${BASE} TTL ts + toIntervalDay(7) ${SETTINGS}`,
    });
    expect(await setDayTtl(ch, 'access_logs', 30)).toBe('set');
    expect(commands).toEqual([ttl(30)]);
  });

  it('sets the settings again when one was changed by hand', async () => {
    const { ch, commands } = fakeClickHouse({
      key: 'toYYYYMMDD(ts)',
      engine: `${BASE} TTL ts + toIntervalDay(7) SETTINGS index_granularity = 8192, ttl_only_drop_parts = 0, materialize_ttl_recalculate_only = 1`,
    });
    expect(await setDayTtl(ch, 'access_logs', 7)).toBe('set');
    expect(commands).toEqual([SET]);
  });

  it('reads the time column from the partition key', async () => {
    const { ch, commands } = fakeClickHouse({
      key: 'toYYYYMMDD(`hour`)',
      engine: 'SummingMergeTree PARTITION BY toYYYYMMDD(hour) ORDER BY (tenant, hour)',
    });
    await setDayTtl(ch, 'route_histogram_1h', 30);
    expect(commands.at(-1)).toBe(
      'ALTER TABLE `route_histogram_1h` MODIFY TTL `hour` + INTERVAL 30 DAY SETTINGS materialize_ttl_after_modify = 1',
    );
  });

  it('refuses a table not partitioned by day, a missing table, and a retention that is not whole days', async () => {
    const monthly = fakeClickHouse({
      key: 'toYYYYMM(ts)',
      engine: 'MergeTree PARTITION BY toYYYYMM(ts) ORDER BY ts',
    });
    await expect(setDayTtl(monthly.ch, 'retention_runs', 7)).rejects.toMatchObject({
      code: 'TAPWIRE_CH_TTL_NOT_APPLICABLE',
      message:
        'a table cannot take a day TTL: retention_runs is not partitioned by toYYYYMMDD(column) (partition key: toYYYYMM(ts))',
    });
    await expect(setDayTtl(fakeClickHouse(undefined).ch, 'nope', 7)).rejects.toMatchObject({
      code: 'TAPWIRE_CH_TTL_NOT_APPLICABLE',
      message: 'a table cannot take a day TTL: no table nope in db',
    });
    for (const days of [0, -1, 1.5, Number.NaN])
      await expect(setDayTtl(monthly.ch, 'access_logs', days)).rejects.toMatchObject({
        code: 'TAPWIRE_CH_UNSAFE_SQL_VALUE',
      });
    expect(monthly.commands).toEqual([]);
  });
});
