import { spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { createClickHouse, identifier, sql } from '@tapwire/clickhouse';
import { afterAll, describe, expect, it } from 'vitest';
import { infraConfig, testClickHouseConfig, uniqueName } from '../support/infra.js';

const ROOT = fileURLToPath(new URL('../..', import.meta.url));
const database = uniqueName('tapwire_cli');

function tapwire(args: string[], env: Record<string, string> = {}) {
  const r = spawnSync(process.execPath, ['--import', 'tsx', 'services/cli/src/main.ts', ...args], {
    cwd: ROOT,
    encoding: 'utf8',
    env: { ...process.env, TAPWIRE_CLICKHOUSE_URL: testClickHouseConfig(database).url, ...env },
    timeout: 60_000,
  });
  return { code: r.status, out: r.stdout, err: r.stderr };
}

afterAll(async () => {
  const admin = createClickHouse(testClickHouseConfig('default'));
  await admin.command(sql`DROP DATABASE IF EXISTS ${identifier(database)}`);
  await admin.close();
});

describe('tapwire command line', () => {
  it('prints help for every command and subcommand', () => {
    for (const args of [
      ['--help'],
      ['migrate', '--help'],
      ['topics', '--help'],
      ['proxy', '--help'],
      ['ingest', '--help'],
      ['replay', '--help'],
      ['infra', '--help'],
      ['infra', 'up', '--help'],
      ['infra', 'status', '--help'],
    ]) {
      const r = tapwire(args);
      expect(r.code, args.join(' ')).toBe(0);
      expect(r.out).toMatch(/^Usage: tapwire/);
    }
    expect(tapwire(['migrate', '--help']).out).toContain('--status');
  });

  it('replay refuses bad arguments with exit 2, naming the option', () => {
    expect(tapwire(['replay', '--from', 'yesterday'])).toMatchObject({
      code: 2,
      err: 'tapwire: --from: not a time: "yesterday"\n',
    });
    expect(tapwire(['replay', '--from', 'now-1h', '--tables', 'access_logs,users'])).toMatchObject({
      code: 2,
      err: 'tapwire: --tables: unknown table(s) users\n',
    });
    expect(tapwire(['replay', '--from', 'now', '--to', 'now-1h']).err).toBe(
      'tapwire: --to must be after --from\n',
    );
  });

  it('exits 2 naming every bad config field', () => {
    const r = tapwire(['migrate'], {
      TAPWIRE_CLICKHOUSE_URL: 'not a url',
      TAPWIRE_CLICKHOUSE_DATABASE: 'bad-name',
    });
    expect(r.code).toBe(2);
    expect(r.err).toContain('tapwire: invalid configuration:');
    expect(r.err).toContain('  - clickhouse.url (from env TAPWIRE_CLICKHOUSE_URL): ');
    expect(r.err).toContain(
      '  - clickhouse.database (from env TAPWIRE_CLICKHOUSE_DATABASE): must be letters, digits or "_"',
    );
  });

  it('migrates, reports status, and is a no-op the second time', () => {
    const env = { TAPWIRE_CLICKHOUSE_DATABASE: database, TAPWIRE_TELEMETRY_LOG_LEVEL: 'warn' };
    const first = tapwire(['migrate'], env);
    expect(first.err).toBe('');
    expect(first.code).toBe(0);
    expect(first.out).toMatch(
      /^applied 0001_raw_tables \(\d+ ms\)\napplied 0002_trace_index \(\d+ ms\)\napplied 0003_route_stats_1m \(\d+ ms\)\napplied 0004_saturation_1m \(\d+ ms\)\napplied 0005_pipeline_tables \(\d+ ms\)\napplied 0006_saturation_dropped \(\d+ ms\)\napplied 0007_route_histograms \(\d+ ms\)\ndatabase tapwire_cli_\w+: 7 applied, 0 already up to date\n$/,
    );
    expect(tapwire(['migrate'], env).out).toBe(`database ${database}: 0 applied, 7 already up to date\n`);
    expect(tapwire(['migrate', '--status'], env).out).toBe(
      '0001_raw_tables.sql\tapplied\n0002_trace_index.sql\tapplied\n0003_route_stats_1m.sql\tapplied\n0004_saturation_1m.sql\tapplied\n0005_pipeline_tables.sql\tapplied\n0006_saturation_dropped.sql\tapplied\n0007_route_histograms.sql\tapplied\n',
    );
  });

  it('reports infra status of the running servers', () => {
    const r = tapwire(['infra', 'status', '--json']);
    expect(r.code).toBe(0);
    const status = JSON.parse(r.out) as { name: string; ready: boolean; address: string }[];
    const infra = infraConfig();
    expect(status.map((s) => [s.name, s.ready, s.address])).toEqual([
      ['kafka', true, `127.0.0.1:${infra.kafkaPort}`],
      ['clickhouse', true, `http://127.0.0.1:${infra.clickhouseHttpPort}`],
    ]);
  });

  it('fails with exit 1 and a coded message when ClickHouse is unreachable', () => {
    const r = tapwire(['migrate'], {
      TAPWIRE_CLICKHOUSE_URL: 'http://127.0.0.1:1',
      TAPWIRE_CLICKHOUSE_DATABASE: database,
    });
    expect(r.code).toBe(1);
    expect(r.err).toMatch(/^tapwire: TAPWIRE_CH_UNREACHABLE: ClickHouse is unreachable/m);
  });
});
