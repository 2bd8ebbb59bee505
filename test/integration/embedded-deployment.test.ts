import { type ChildProcess, spawn, spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { createClickHouseStore, createDuckDbStore } from '@tapwire/analytics';
import { createClickHouse, identifier, migrate, sql } from '@tapwire/clickhouse';
import { sql as duckSql, openDuckDb } from '@tapwire/duckdb';
import { buildIngest, clickhouseWarehouse, ingestConfigSchema } from '@tapwire/ingest';
import { createKafkaClient, kafkaSource } from '@tapwire/kafka';
import { openFileLog } from '@tapwire/log';
import { TOPICS } from '@tapwire/schema';
import { createLogger } from '@tapwire/telemetry';
import { afterAll, describe, expect, it, vi } from 'vitest';
import {
  deletePrefixedTopics,
  silentLogger,
  testClickHouseConfig,
  testKafkaConfig,
  uniqueName,
} from '../support/infra.js';
import { freePort } from '../support/upstream.js';

/**
 * The embedded deployment as a user meets it: `tapwire start --demo` with no Kafka or ClickHouse
 * settings at all runs on the embedded log and DuckDB; a kill -9 under load loses no event the log
 * acknowledged; `tapwire export` / `import` move the data to Kafka, where ingest projects it into
 * ClickHouse with the same answers.
 */

const ROOT = fileURLToPath(new URL('../..', import.meta.url));
const MIGRATIONS = fileURLToPath(new URL('../../migrations', import.meta.url));
const home = mkdtempSync(join(tmpdir(), 'tapwire-embedded-'));
const logDir = join(home, 'data', 'log');
const storePath = join(home, 'data', 'tapwire.duckdb');
const database = uniqueName('tapwire_migrated');
const prefix = `${uniqueName('migrated')}.`;

afterAll(async () => {
  const admin = createClickHouse(testClickHouseConfig('default'));
  await admin.command(sql`DROP DATABASE IF EXISTS ${identifier(database)}`);
  await admin.close();
  await deletePrefixedTopics(prefix);
});

/** Only what a fresh machine has: no TAPWIRE_* settings but this test's ports and paths. */
function bareEnv(extra: Record<string, string>): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = {};
  for (const [k, v] of Object.entries(process.env)) if (!k.startsWith('TAPWIRE_')) env[k] = v;
  return {
    ...env,
    TAPWIRE_LOG_DIR: logDir,
    TAPWIRE_STORE_PATH: storePath,
    TAPWIRE_TELEMETRY_LOG_LEVEL: 'warn',
    ...extra,
  };
}

interface Started {
  child: ChildProcess;
  out: () => string;
  err: () => string;
}

function start(args: string[], env: NodeJS.ProcessEnv): Started {
  const child = spawn(process.execPath, ['--import', 'tsx', 'services/cli/src/main.ts', 'start', ...args], {
    cwd: ROOT,
    env,
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let out = '';
  let err = '';
  child.stdout?.on('data', (c: Buffer) => {
    out += c.toString();
  });
  child.stderr?.on('data', (c: Buffer) => {
    err += c.toString();
  });
  return { child, out: () => out, err: () => err };
}

function exited(child: ChildProcess): Promise<number | null> {
  return new Promise((r) => {
    if (child.exitCode !== null || child.signalCode !== null) r(child.exitCode);
    else child.once('exit', (code) => r(code));
  });
}

/** Kills a child that is still running and waits until it is gone, so its log lock is free. */
async function stop(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return;
  const gone = exited(child);
  child.kill('SIGKILL');
  await gone;
}

function tapwire(args: string[], env: NodeJS.ProcessEnv) {
  const r = spawnSync(process.execPath, ['--import', 'tsx', 'services/cli/src/main.ts', ...args], {
    cwd: ROOT,
    env,
    encoding: 'utf8',
    timeout: 120_000,
  });
  return { code: r.status, out: r.stdout, err: r.stderr };
}

/** What the embedded log and DuckDB hold once nothing runs: records per topic, rows and distinct ids. */
async function stored() {
  const log = await openFileLog({ dir: logDir });
  const records = (topic: string) => Number(log.highWatermark(topic) - log.lowWatermark(topic));
  const logged = { access: records(TOPICS.accessLogs), spans: records(TOPICS.spans) };
  await log.close();
  const db = await openDuckDb({ path: storePath });
  const [row] = await db.query<Record<string, string>>(
    duckSql`SELECT (SELECT count(*) FROM access_logs) AS a, (SELECT count(DISTINCT id) FROM access_logs) AS ai,
      (SELECT count(*) FROM spans) AS s, (SELECT count(DISTINCT id) FROM spans) AS si`,
  );
  await db.close();
  return {
    logged,
    rows: {
      access: Number(row?.a),
      accessIds: Number(row?.ai),
      spans: Number(row?.s),
      spanIds: Number(row?.si),
    },
  };
}

/** otlpEnv puts the OTLP receiver's three listeners on the given free ports. */
function otlpEnv([grpc, http, admin]: string[]): Record<string, string> {
  return { TAPWIRE_OTLP_GRPC_PORT: grpc!, TAPWIRE_OTLP_HTTP_PORT: http!, TAPWIRE_OTLP_ADMIN_PORT: admin! };
}

describe('the embedded deployment (nothing but Node)', () => {
  it('`tapwire start --demo` with no settings serves traffic; the API answers RED, saturation, traces and logs from DuckDB; alerts reach a local receiver', async () => {
    const [proxyPort, proxyAdmin, ingestAdmin, apiPort, apiAdmin, alerterAdmin, ...otlpPorts] = (
      await Promise.all(Array.from({ length: 9 }, () => freePort()))
    ).map(String);
    const run = start(
      ['--demo', '--demo-rate', '40'],
      bareEnv({
        TAPWIRE_PROXY_LISTEN_HOST: '127.0.0.1',
        TAPWIRE_PROXY_LISTEN_PORT: proxyPort!,
        TAPWIRE_PROXY_ADMIN_PORT: proxyAdmin!,
        TAPWIRE_INGEST_ADMIN_PORT: ingestAdmin!,
        TAPWIRE_API_LISTEN_HOST: '127.0.0.1',
        TAPWIRE_API_LISTEN_PORT: apiPort!,
        TAPWIRE_API_ADMIN_PORT: apiAdmin!,
        TAPWIRE_ALERTER_ADMIN_PORT: alerterAdmin!,
        ...otlpEnv(otlpPorts),
      }),
    );
    const started = Date.now();
    try {
      await vi.waitFor(() => expect(run.out()).toMatch(/demo token: \S+/), {
        timeout: 60_000,
        interval: 100,
      });
      expect(run.err()).toContain(`embedded event log in ${logDir}`);
      expect(run.err()).toContain(`embedded store (DuckDB) in ${storePath}`);
      const token = /demo token: (\S+)/.exec(run.out())![1]!;
      const api = `http://127.0.0.1:${apiPort}`;
      const get = async <T>(path: string): Promise<T> => {
        const res = await fetch(`${api}${path}`, { headers: { authorization: `Bearer ${token}` } });
        expect(res.status, `${path}: ${await res.clone().text()}`).toBe(200);
        return (await res.json()) as T;
      };
      type Red = { rows: { route: string; requests: number; latency_ms: { p99: number | null } }[] };
      await vi.waitFor(
        async () => {
          const red = await get<Red>('/v1/overview?from=now-15m&group_by=route&source=raw');
          expect(red.rows.find((r) => r.route === '/api/users/:id')?.requests).toBeGreaterThan(10);
        },
        { timeout: 60_000, interval: 500 },
      );
      expect(Date.now() - started).toBeLessThan(60_000);
      const red = await get<Red>('/v1/overview?from=now-15m&group_by=route');
      expect(red.rows.map((r) => r.route)).toEqual(expect.arrayContaining(['/api/users/:id', '/api/orders']));
      expect(red.rows.filter((r) => !(r.latency_ms.p99 !== null && r.latency_ms.p99 > 0))).toEqual([]);
      // Each table is flushed on its own clock (about once a second), so saturation samples, logs
      // and spans may land a moment after the first access logs.
      await vi.waitFor(
        async () => {
          const saturation = await get<{ instances: { points: unknown[] }[] }>('/v1/saturation?from=now-5m');
          expect(saturation.instances[0]?.points.length).toBeGreaterThan(0);
          const logs = await get<{ rows: { trace_id: string; route: string }[] }>(
            '/v1/logs?from=now-15m&route=%2Fapi%2Forders&limit=5',
          );
          expect(logs.rows).toHaveLength(5);
          expect(new Set(logs.rows.map((r) => r.route))).toEqual(new Set(['/api/orders']));
          const trace = await get<{ span_count: number; roots: { kind: string }[] }>(
            `/v1/traces/${logs.rows[0]!.trace_id}`,
          );
          expect(trace.span_count).toBe(2);
          expect(trace.roots[0]?.kind).toBe('SERVER');
        },
        { timeout: 30_000, interval: 500 },
      );
      // The demo's rules fire (p99 of /api/search, 5xx share) and the demo API, the local receiver, prints them.
      await vi.waitFor(() => expect(run.out()).toMatch(/alert firing: \w+/), {
        timeout: 150_000,
        interval: 1000,
      });
      const alerts = await get<{ alerts: { state: string }[] }>('/v1/alerts?state=firing');
      expect(alerts.alerts.length).toBeGreaterThan(0);
      // The demo's SLO, from the alerting file the alerter runs, counted on DuckDB from the live traffic.
      type Slos = { slos: { name: string; sli: { total: number }; budget: { total: number } }[] };
      await vi.waitFor(
        async () => {
          const slo = (await get<Slos>('/v1/slos')).slos.find((s) => s.name === 'demo-order-lookups');
          expect(slo?.sli.total).toBeGreaterThan(0);
          expect(slo?.budget.total).toBe((slo?.sli.total ?? 0) / 100);
        },
        { timeout: 70_000, interval: 1000 },
      );
      run.child.kill('SIGTERM');
      expect(await exited(run.child)).toBe(0);
    } finally {
      await stop(run.child);
    }
    const after = await stored();
    // A graceful stop drains: every logged event is stored exactly once.
    expect(after.rows).toEqual({
      access: after.logged.access,
      accessIds: after.logged.access,
      spans: after.logged.spans,
      spanIds: after.logged.spans,
    });
  }, 300_000);

  it('kill -9 under load, then a restart: every event the log acknowledged is stored exactly once', async () => {
    const before = await stored();
    const [proxyPort, proxyAdmin, ingestAdmin, apiPort, apiAdmin, alerterAdmin, ...otlpPorts] = (
      await Promise.all(Array.from({ length: 9 }, () => freePort()))
    ).map(String);
    const env = bareEnv({
      TAPWIRE_PROXY_LISTEN_PORT: proxyPort!,
      TAPWIRE_PROXY_ADMIN_PORT: proxyAdmin!,
      TAPWIRE_INGEST_ADMIN_PORT: ingestAdmin!,
      TAPWIRE_API_LISTEN_PORT: apiPort!,
      TAPWIRE_API_ADMIN_PORT: apiAdmin!,
      TAPWIRE_ALERTER_ADMIN_PORT: alerterAdmin!,
      ...otlpEnv(otlpPorts),
    });
    const loaded = start(['--demo', '--demo-rate', '400'], env);
    try {
      await vi.waitFor(() => expect(loaded.out()).toMatch(/tapwire running/), {
        timeout: 60_000,
        interval: 100,
      });
      await new Promise((r) => setTimeout(r, 4000));
      loaded.child.kill('SIGKILL');
      await exited(loaded.child);
    } finally {
      await stop(loaded.child);
    }
    // Restarted without traffic: ingest resumes from its committed offsets and drains the log.
    const again = start([], env);
    try {
      await vi.waitFor(() => expect(again.out()).toMatch(/tapwire running/), {
        timeout: 60_000,
        interval: 100,
      });
      await vi.waitFor(
        async () => {
          const res = await fetch(`http://127.0.0.1:${ingestAdmin}/metrics`);
          const lag = [...(await res.text()).matchAll(/^tapwire_ingest_consumer_lag\{[^}]*\} (\d+)/gm)];
          expect(lag.length).toBeGreaterThan(0);
          expect(lag.map((m) => Number(m[1]))).toEqual(lag.map(() => 0));
        },
        { timeout: 60_000, interval: 500 },
      );
      again.child.kill('SIGTERM');
      expect(await exited(again.child)).toBe(0);
    } finally {
      await stop(again.child);
    }
    const after = await stored();
    expect(after.logged.access).toBeGreaterThan(before.logged.access + 500);
    expect(after.rows).toEqual({
      access: after.logged.access,
      accessIds: after.logged.access,
      spans: after.logged.spans,
      spanIds: after.logged.spans,
    });
  }, 180_000);

  it('`tapwire export` then `tapwire import` into Kafka: ingest projects the same answers into ClickHouse', async () => {
    const file = join(home, 'export.ndjson');
    const exported = tapwire(['export', '--out', file], bareEnv({}));
    expect(exported.code, exported.err).toBe(0);
    const { logged } = await stored();
    expect(exported.out).toContain(`tapwire.access.v1\t${logged.access} records`);
    expect(JSON.parse(readFileSync(file, 'utf8').split('\n')[0]!)).toMatchObject({ tapwire_export: 1 });

    const kafka = testKafkaConfig();
    const imported = tapwire(['import', '--in', file], {
      ...bareEnv({}),
      TAPWIRE_KAFKA_BROKERS: kafka.brokers.join(','),
      TAPWIRE_INGEST_TOPIC_PREFIX: prefix,
    });
    expect(imported.code, imported.err).toBe(0);
    expect(imported.out).toContain(`tapwire.access.v1\t${logged.access} records`);
    // Refused input names the file and line.
    const bad = join(home, 'bad.ndjson');
    spawnSync('sh', ['-c', `echo '{"hello":1}' > ${bad}`]);
    const refused = tapwire(['import', '--in', bad], {
      ...bareEnv({}),
      TAPWIRE_KAFKA_BROKERS: kafka.brokers.join(','),
      TAPWIRE_INGEST_TOPIC_PREFIX: prefix,
    });
    expect(refused.code).toBe(2);
    expect(refused.err).toContain('not a tapwire export');

    await migrate(testClickHouseConfig(database), { dir: MIGRATIONS, logger: silentLogger });
    const ch = createClickHouse(testClickHouseConfig(database));
    const client = createKafkaClient(kafka, silentLogger, 'migrated');
    const dlq = kafkaSource({ kafka: client, logger: silentLogger }).sink({
      lingerMs: 5,
      maxBatchEvents: 100,
      maxBufferedEvents: 1000,
      retryBackoffMs: 100,
      topicPrefix: prefix,
    });
    const ingest = buildIngest(
      {
        source: kafkaSource({ kafka: client, logger: silentLogger }),
        warehouse: clickhouseWarehouse(ch),
        dlq,
        logger: createLogger({ name: 'migrated-ingest', level: 'silent' }),
      },
      ingestConfigSchema.parse({
        groupId: uniqueName('tapwire-ingest-migrated'),
        topicPrefix: prefix,
        flushIntervalMs: 200,
        admin: { port: 0 },
        retention: { enabled: false },
      }),
    );
    await ingest.start();
    try {
      await vi.waitFor(
        async () => {
          const [r] = await ch.query<{ a: string; s: string }>(
            sql`SELECT (SELECT count() FROM access_logs) AS a, (SELECT count() FROM spans) AS s`,
          );
          expect([Number(r?.a), Number(r?.s)]).toEqual([logged.access, logged.spans]);
        },
        { timeout: 60_000, interval: 500 },
      );
    } finally {
      await ingest.close();
      await dlq.close();
    }
    // The same question, asked of both deployments.
    const db = await openDuckDb({ path: storePath });
    try {
      const nowS = Math.floor(Date.now() / 1000);
      const query = {
        range: { from: nowS - 86_400, to: nowS + 60 },
        filters: {},
        groupBy: 'route' as const,
        sort: 'rate' as const,
        order: 'desc' as const,
        limit: 50,
        offset: 0,
        source: 'raw' as const,
      };
      const [embedded, distributed] = await Promise.all([
        createDuckDbStore(db).overview({ tenant: null }, query),
        createClickHouseStore(ch).overview({ tenant: null }, query),
      ]);
      expect(embedded.rows.map((r) => [r.route, r.requests, r.errors_5xx])).toEqual(
        distributed.rows.map((r) => [r.route, r.requests, r.errors_5xx]),
      );
      expect(embedded.rows.reduce((n, r) => n + r.requests, 0)).toBe(logged.access);
    } finally {
      await db.close();
      await ch.close();
    }
    expect(existsSync(storePath)).toBe(true);
  }, 180_000);
});
