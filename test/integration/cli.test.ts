import { spawn, spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { createClickHouse, identifier, sql } from '@tapwire/clickhouse';
import { afterAll, describe, expect, it } from 'vitest';
import { infraConfig, testClickHouseConfig, uniqueName } from '../support/infra.js';
import { freePort } from '../support/upstream.js';

const ROOT = fileURLToPath(new URL('../..', import.meta.url));
const database = uniqueName('tapwire_cli');
const apiDatabase = uniqueName('tapwire_cli_api');

function tapwire(args: string[], env: Record<string, string> = {}, input?: string) {
  const r = spawnSync(process.execPath, ['--import', 'tsx', 'services/cli/src/main.ts', ...args], {
    cwd: ROOT,
    encoding: 'utf8',
    ...(input !== undefined ? { input } : {}),
    env: { ...process.env, TAPWIRE_CLICKHOUSE_URL: testClickHouseConfig(database).url, ...env },
    timeout: 60_000,
  });
  return { code: r.status, out: r.stdout, err: r.stderr };
}

afterAll(async () => {
  const admin = createClickHouse(testClickHouseConfig('default'));
  for (const db of [database, apiDatabase])
    await admin.command(sql`DROP DATABASE IF EXISTS ${identifier(db)}`);
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
      ['api', '--help'],
      ['alerter', '--help'],
      ['start', '--help'],
      ['token', '--help'],
    ]) {
      const r = tapwire(args);
      expect(r.code, args.join(' ')).toBe(0);
      expect(r.out).toMatch(/^Usage: tapwire/);
    }
    expect(tapwire(['migrate', '--help']).out).toContain('--status');
  });

  it('token prints a new token with the config entry that admits it, and hashes one from stdin', () => {
    const r = tapwire(['token', '--name', 'ops', '--tenant', 'acme', '--admin']);
    expect(r.code).toBe(0);
    const token = /^token: (tw_[A-Za-z0-9_-]{32})$/m.exec(r.out)?.[1] ?? '';
    const sha = createHash('sha256').update(token).digest('hex');
    expect(r.out).toContain(`- name: ops\n  sha256: ${sha}\n  tenant: "acme"\n  scopes: [read, admin]\n`);
    expect(tapwire(['token', '--hash'], {}, 'secret-token\n')).toMatchObject({
      code: 0,
      out: `${createHash('sha256').update('secret-token').digest('hex')}\n`,
    });
    expect(tapwire(['token', '--hash'], {}, '')).toMatchObject({
      code: 1,
      err: 'tapwire: no token on stdin\n',
    });
  });

  it('token --otlp prints the otlp.tokens entry for one tenant, and refuses one for every tenant', () => {
    const r = tapwire(['token', '--otlp', '--name', 'orders-api', '--tenant', 'shop']);
    expect(r.code).toBe(0);
    const token = /^token: (tw_[A-Za-z0-9_-]{32})$/m.exec(r.out)?.[1] ?? '';
    const sha = createHash('sha256').update(token).digest('hex');
    expect(r.out).toContain('under otlp.tokens');
    expect(r.out).toContain(`- name: orders-api\n  sha256: ${sha}\n  tenant: "shop"\n`);
    expect(r.out).not.toContain('scopes');
    expect(tapwire(['token', '--otlp'])).toMatchObject({
      code: 1,
      err: 'tapwire: --otlp needs --tenant <tenant>: the tenant its spans belong to\n',
    });
  });

  it('api serves /v1 with a configured token and stops cleanly on SIGTERM', async () => {
    const [port, admin] = [await freePort(), await freePort()];
    const env = {
      ...process.env,
      TAPWIRE_CLICKHOUSE_URL: testClickHouseConfig(database).url,
      TAPWIRE_CLICKHOUSE_DATABASE: apiDatabase,
      TAPWIRE_API_LISTEN_HOST: '127.0.0.1',
      TAPWIRE_API_LISTEN_PORT: String(port),
      TAPWIRE_API_ADMIN_PORT: String(admin),
      TAPWIRE_TELEMETRY_LOG_LEVEL: 'warn',
    };
    const dir = mkdtempSync(join(tmpdir(), 'tapwire-api-'));
    const file = join(dir, 'config.yaml');
    const sha = createHash('sha256').update('cli-token').digest('hex');
    writeFileSync(file, `api:\n  tokens:\n    - { name: cli, sha256: ${sha}, tenant: "*" }\n`);
    expect(tapwire(['migrate'], { TAPWIRE_CLICKHOUSE_DATABASE: apiDatabase }).code).toBe(0);
    const child = spawn(
      process.execPath,
      ['--import', 'tsx', 'services/cli/src/main.ts', '-c', file, 'api'],
      {
        cwd: ROOT,
        env,
        stdio: 'ignore',
      },
    );
    try {
      let ready = false;
      for (let i = 0; i < 100 && !ready; i++) {
        ready = await fetch(`http://127.0.0.1:${admin}/readyz`).then(
          (r) => r.ok,
          () => false,
        );
        if (!ready) await new Promise((r) => setTimeout(r, 200));
      }
      expect(ready).toBe(true);
      expect((await fetch(`http://127.0.0.1:${port}/v1/overview`)).status).toBe(401);
      const res = await fetch(`http://127.0.0.1:${port}/v1/overview?from=now-1h`, {
        headers: { authorization: 'Bearer cli-token' },
      });
      expect(res.status).toBe(200);
      expect(await res.json()).toMatchObject({ rows: [], has_more: false });
      expect(await (await fetch(`http://127.0.0.1:${admin}/metrics`)).text()).toContain(
        'tapwire_api_requests_total',
      );
      const exited = new Promise<number | null>((r) => child.once('exit', (code) => r(code)));
      child.kill('SIGTERM');
      expect(await exited).toBe(0);
    } finally {
      child.kill('SIGKILL');
      rmSync(dir, { recursive: true, force: true });
    }
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

  it('refuses to run a separate service on the embedded log, naming log.kind (one process owns it)', () => {
    for (const command of ['proxy', 'ingest', 'api', 'alerter']) {
      const r = tapwire([command], { TAPWIRE_LOG_KIND: 'embedded' });
      expect(r.code).toBe(2);
      expect(r.err).toContain(
        `log.kind is embedded: \`tapwire ${command}\` runs as a separate process only over Kafka`,
      );
    }
  });

  it('migrates, reports status, and is a no-op the second time', () => {
    const env = { TAPWIRE_CLICKHOUSE_DATABASE: database, TAPWIRE_TELEMETRY_LOG_LEVEL: 'warn' };
    const first = tapwire(['migrate'], env);
    expect(first.err).toBe('');
    expect(first.code).toBe(0);
    expect(first.out).toMatch(
      /^applied 0001_raw_tables \(\d+ ms\)\napplied 0002_trace_index \(\d+ ms\)\napplied 0003_route_stats_1m \(\d+ ms\)\napplied 0004_saturation_1m \(\d+ ms\)\napplied 0005_pipeline_tables \(\d+ ms\)\napplied 0006_saturation_dropped \(\d+ ms\)\napplied 0007_route_histograms \(\d+ ms\)\napplied 0008_alert_history \(\d+ ms\)\napplied 0009_source_ledger \(\d+ ms\)\napplied 0010_slo_counts \(\d+ ms\)\napplied 0011_span_v2 \(\d+ ms\)\napplied 0012_policy_decisions \(\d+ ms\)\ndatabase tapwire_cli_\w+: 12 applied, 0 already up to date\n$/,
    );
    expect(tapwire(['migrate'], env).out).toBe(`database ${database}: 0 applied, 12 already up to date\n`);
    expect(tapwire(['migrate', '--status'], env).out).toBe(
      '0001_raw_tables.sql\tapplied\n0002_trace_index.sql\tapplied\n0003_route_stats_1m.sql\tapplied\n0004_saturation_1m.sql\tapplied\n0005_pipeline_tables.sql\tapplied\n0006_saturation_dropped.sql\tapplied\n0007_route_histograms.sql\tapplied\n0008_alert_history.sql\tapplied\n0009_source_ledger.sql\tapplied\n0010_slo_counts.sql\tapplied\n0011_span_v2.sql\tapplied\n0012_policy_decisions.sql\tapplied\n',
    );
  });

  it('reports infra status of the running servers', () => {
    const r = tapwire(['infra', 'status', '--json']);
    expect(r.code).toBe(0);
    const status = JSON.parse(r.out) as { name: string; ready: boolean; address: string; version?: string }[];
    const infra = infraConfig();
    expect(status.map((s) => [s.name, s.ready, s.address])).toEqual([
      ['kafka', true, `127.0.0.1:${infra.kafkaPort}`],
      ['clickhouse', true, `http://127.0.0.1:${infra.clickhouseHttpPort}`],
    ]);
    // The broker runs the configured version (with no settings, DEFAULT_KAFKA_VERSION).
    expect(status[0]?.version).toBe(infra.kafkaVersion);
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
