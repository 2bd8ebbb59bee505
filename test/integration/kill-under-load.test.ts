import { spawn } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { createClickHouse, identifier, raw, sql } from '@tapwire/clickhouse';
import { raw as duckRaw, openDuckDb } from '@tapwire/duckdb';
import { kafkaBrokers } from '@tapwire/infra';
import { afterAll, describe, expect, it, vi } from 'vitest';
import { startCountingLoad } from '../support/counting-client.js';
import { deletePrefixedTopics, infraConfig, testClickHouseConfig, uniqueName } from '../support/infra.js';
import {
  bareEnv,
  killHard,
  metricSamples,
  scrape,
  spawnTapwire,
  type TapwireProcess,
} from '../support/tapwire-child.js';
import { freePort, startUpstream, type TestUpstream } from '../support/upstream.js';

// Issue #18, acceptance: `tapwire start` killed with SIGKILL under load, then started again on the
// same configuration. Every request whose whole answer reached the client is stored exactly once
// (raw rows and the 1-minute rollups), on Kafka + ClickHouse and on the embedded log + DuckDB; the
// directory lock the killed process held does not refuse the restart.

const ROOT = fileURLToPath(new URL('../..', import.meta.url));
const databases: string[] = [];
const prefixes: string[] = [];
const dirs: string[] = [];
const running: TapwireProcess[] = [];
const upstreams: TestUpstream[] = [];

afterAll(async () => {
  for (const p of running) await killHard(p);
  for (const u of upstreams) await u.close();
  const admin = createClickHouse(testClickHouseConfig('default'));
  for (const db of databases) await admin.command(sql`DROP DATABASE IF EXISTS ${identifier(db)}`);
  await admin.close();
  for (const prefix of prefixes) await deletePrefixedTopics(prefix);
  for (const dir of dirs) rmSync(dir, { recursive: true, force: true });
});

/** The load runs this long once requests flow, then the process is killed in the middle of it. */
const LOAD_MS = 3000;
const CONNECTIONS = 16;

/** Counts is what the store holds for the test's traffic. */
interface Counts {
  raw: number;
  ids: number;
  ledger: number;
  paths: number;
  /** Requests counted by each 1-minute rollup of access logs. */
  rollups: Record<string, number>;
}

/** Deployment is one way to run `tapwire start`: its config, the directory its lock guards, and how to read what it stored. */
interface Deployment {
  config: string;
  proxyPort: number;
  /** The directory whose lock the proxy's writes go through. */
  lockedDir: string;
  /** caughtUp resolves when everything written has reached the store and throws saying what is missing (while the process runs). */
  caughtUp(answered: number): Promise<void>;
  /** stored reads the store once the process has stopped: counts and the request paths of the rows. */
  stored(): Promise<{ counts: Counts; paths: string[] }>;
}

async function ports(): Promise<number[]> {
  return Promise.all(Array.from({ length: 9 }, () => freePort()));
}

function commonYaml(
  p: number[],
  upstreamUrl: string,
  groupId: string,
  prefix: string,
  emit = '{}',
  otlpEmit = '{}',
): string {
  return `proxy:
  listen: { host: 127.0.0.1, port: ${p[0]} }
  admin: { host: 127.0.0.1, port: ${p[1]} }
  emit: ${emit}
  upstreams:
    - { name: load, url: ${upstreamUrl}, routes: ["/load/:n"] }
ingest: { groupId: ${groupId}, topicPrefix: "${prefix}", flushIntervalMs: 200, heapLimitMb: 0, admin: { host: 127.0.0.1, port: ${p[2]} } }
api: { listen: { host: 127.0.0.1, port: ${p[3]} }, admin: { host: 127.0.0.1, port: ${p[4]} } }
alerter: { admin: { host: 127.0.0.1, port: ${p[5]} } }
otlp:
  grpc: { host: 127.0.0.1, port: ${p[6]} }
  http: { host: 127.0.0.1, port: ${p[7]} }
  admin: { host: 127.0.0.1, port: ${p[8]} }
  emit: ${otlpEmit}
`;
}

/** ingestLagZero throws unless ingest reports its lag on every partition, and all of it is 0. */
async function ingestLagZero(ingestAdmin: number): Promise<void> {
  const lag = metricSamples(
    await scrape(`http://127.0.0.1:${ingestAdmin}/metrics`),
    'tapwire_ingest_consumer_lag',
  );
  if (lag.length === 0 || lag.some((l) => l !== 0))
    throw new Error(`ingest lag: ${lag.join(', ') || 'not reported'}`);
}

async function kafkaDeployment(dir: string, upstreamUrl: string): Promise<Deployment> {
  const database = uniqueName('tapwire_kill');
  const prefix = `${uniqueName('kill')}.`;
  databases.push(database);
  prefixes.push(prefix);
  const p = await ports();
  const logDir = join(dir, 'proxy-log');
  const config = join(dir, 'tapwire.yaml');
  writeFileSync(
    config,
    `log: { kind: kafka }
store: { kind: clickhouse }
kafka: { brokers: [${kafkaBrokers(infraConfig()).join(', ')}] }
clickhouse: { url: ${testClickHouseConfig(database).url}, database: ${database} }
${commonYaml(p, upstreamUrl, uniqueName('tapwire-ingest-kill'), prefix, `{ logDir: ${logDir} }`, `{ logDir: ${join(dir, 'otlp-log')} }`)}`,
  );
  const ch = createClickHouse(testClickHouseConfig(database));
  const counts = async (): Promise<Counts> => {
    const [r] = await ch.query<Record<string, string>>(
      raw(`SELECT (SELECT count() FROM access_logs) AS raw, (SELECT uniqExact(id) FROM access_logs) AS ids,
             (SELECT uniqExact(source_id, source_seq) FROM access_logs) AS ledger,
             (SELECT uniqExact(path) FROM access_logs) AS paths,
             (SELECT countMerge(requests) FROM route_stats_1m) AS route_stats_1m,
             (SELECT sum(requests) FROM route_histogram_1m) AS route_histogram_1m`),
    );
    return {
      raw: Number(r?.raw),
      ids: Number(r?.ids),
      ledger: Number(r?.ledger),
      paths: Number(r?.paths),
      rollups: {
        route_stats_1m: Number(r?.route_stats_1m),
        route_histogram_1m: Number(r?.route_histogram_1m),
      },
    };
  };
  return {
    config,
    proxyPort: p[0]!,
    lockedDir: logDir,
    async caughtUp(answered) {
      const unshipped = metricSamples(
        await scrape(`http://127.0.0.1:${p[1]}/metrics`),
        'tapwire_proxy_unshipped_events',
      );
      if (unshipped.length !== 1 || unshipped[0] !== 0) throw new Error(`unshipped events: ${unshipped}`);
      await ingestLagZero(p[2]!);
      const c = await counts();
      if (c.raw < answered || Object.values(c.rollups).some((n) => n < answered))
        throw new Error(`stored ${JSON.stringify(c)} of ${answered} answered`);
    },
    async stored() {
      const rows = await ch.query<{ path: string }>(raw('SELECT path FROM access_logs'));
      const c = await counts();
      await ch.close();
      return { counts: c, paths: rows.map((r) => r.path) };
    },
  };
}

async function embeddedDeployment(dir: string, upstreamUrl: string): Promise<Deployment> {
  const p = await ports();
  const logDir = join(dir, 'log');
  const storePath = join(dir, 'tapwire.duckdb');
  const config = join(dir, 'tapwire.yaml');
  writeFileSync(
    config,
    `log: { kind: embedded, dir: ${logDir} }
store: { kind: duckdb, path: ${storePath} }
${commonYaml(p, upstreamUrl, 'tapwire-ingest', '')}`,
  );
  return {
    config,
    proxyPort: p[0]!,
    lockedDir: logDir,
    // DuckDB is the running process's: how far ingest got is read from its lag.
    async caughtUp() {
      await ingestLagZero(p[2]!);
    },
    async stored() {
      const db = await openDuckDb({ path: storePath });
      try {
        const [r] = await db.query<Record<string, unknown>>(
          duckRaw(`SELECT (SELECT count(*) FROM access_logs) AS raw, (SELECT count(DISTINCT id) FROM access_logs) AS ids,
            (SELECT count(DISTINCT (source_id, source_seq)) FROM access_logs) AS ledger,
            (SELECT count(DISTINCT path) FROM access_logs) AS paths,
            (SELECT coalesce(sum(requests), 0) FROM route_histogram_1m) AS route_histogram_1m`),
        );
        const rows = await db.query<{ path: string }>(duckRaw('SELECT path FROM access_logs'));
        return {
          counts: {
            raw: Number(r?.raw),
            ids: Number(r?.ids),
            ledger: Number(r?.ledger),
            paths: Number(r?.paths),
            rollups: { route_histogram_1m: Number(r?.route_histogram_1m) },
          },
          paths: rows.map((x) => x.path),
        };
      } finally {
        await db.close();
      }
    },
  };
}

async function startRunning(config: string): Promise<TapwireProcess> {
  const p = spawnTapwire(['-c', config, 'start'], bareEnv());
  running.push(p);
  await vi.waitFor(
    () => {
      if (p.child.exitCode !== null)
        throw new Error(`tapwire start exited ${p.child.exitCode}: ${p.output()}`);
      expect(p.output()).toMatch(/tapwire running/);
    },
    { timeout: 90_000, interval: 100 },
  );
  return p;
}

describe.each([
  { deployment: 'Kafka and ClickHouse', open: kafkaDeployment },
  { deployment: 'the embedded log and DuckDB', open: embeddedDeployment },
])('tapwire start on $deployment, killed with SIGKILL under load', ({ open }) => {
  it('restarted on the same config: every answered request is stored exactly once, raw and in the 1-minute rollups', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'tapwire-kill-'));
    dirs.push(dir);
    const upstream = await startUpstream();
    upstreams.push(upstream);
    const d = await open(dir, upstream.url);

    const first = await startRunning(d.config);
    const load = startCountingLoad(`http://127.0.0.1:${d.proxyPort}`, {
      connections: CONNECTIONS,
      path: (n) => `/load/${n}`,
    });
    await vi.waitFor(() => expect(load.answeredCount()).toBeGreaterThan(100), {
      timeout: 60_000,
      interval: 20,
    });
    await new Promise((r) => setTimeout(r, LOAD_MS));
    await killHard(first);
    const { answered, failed } = await load.stop();
    expect(first.child.signalCode).toBe('SIGKILL');
    // The killed process left its lock behind: a socket file nobody listens on.
    expect(existsSync(join(d.lockedDir, 'LOCK'))).toBe(true);

    const second = await startRunning(d.config);
    expect(second.output()).not.toContain('TAPWIRE_LOG_LOCKED');
    await vi
      .waitFor(() => d.caughtUp(answered.size), { timeout: 90_000, interval: 500 })
      .catch((err: Error) => {
        throw new Error(
          `${err.message}\nkilled process:\n${first.output().slice(-2000)}\nafter restart:\n${second.output().slice(-3000)}`,
        );
      });
    second.child.kill('SIGTERM');
    expect(await second.exited(), second.output()).toEqual({ code: 0, signal: null });

    const { counts, paths } = await d.stored();
    const n = answered.size;
    const storedPaths = new Set(paths);
    const missing = [...answered].filter((i) => !storedPaths.has(`/load/${i}`));
    const unanswered = paths.map((p) => Number(p.slice('/load/'.length))).filter((i) => !answered.has(i));
    process.stdout.write(
      `[kill-under-load] answered ${n}, failed ${failed.size}; stored ${JSON.stringify(counts)}; answered not stored ${missing.length}, stored not answered ${unanswered.length}\n`,
    );
    // Every answered request is stored (the proxy writes its events before the last byte leaves).
    expect(missing).toEqual([]);
    // A request recorded in the microseconds between that write and the send of its last byte,
    // when the kill came, is stored while its client saw the connection die: one in flight per
    // connection at most, each one the client counted as failed. (Almost always none.)
    expect(unanswered.filter((i) => !failed.has(i))).toEqual([]);
    expect(unanswered.length).toBeLessThanOrEqual(CONNECTIONS);
    // Each stored once, and counted once by each 1-minute rollup.
    const rows = n + unanswered.length;
    expect(counts).toEqual({
      raw: rows,
      ids: rows,
      ledger: rows,
      paths: rows,
      rollups: Object.fromEntries(Object.keys(counts.rollups).map((k) => [k, rows])),
    });
  }, 240_000);
});

describe('the order of answer and record', () => {
  it('a proxy killed while it writes a request’s access log has not answered that request: the event is written before the last response byte', async () => {
    const upstream = await startUpstream();
    upstreams.push(upstream);
    const child = spawn(
      process.execPath,
      ['--import', 'tsx', 'test/support/kill-at-append-proxy.ts', upstream.url],
      { cwd: ROOT, stdio: ['ignore', 'pipe', 'inherit'] },
    );
    const died = new Promise<NodeJS.Signals | null>((r) => child.once('exit', (_, signal) => r(signal)));
    let out = '';
    child.stdout.on('data', (c: Buffer) => {
      out += c.toString();
    });
    try {
      await vi.waitFor(() => expect(out).toMatch(/^listening \S+/), { timeout: 60_000, interval: 50 });
      const url = /^listening (\S+)/.exec(out)![1]!;
      const outcome = await fetch(`${url}/users/42`).then(
        async (res) => ({ answered: `${res.status} ${await res.text()}` }),
        (err: Error) => ({ failed: err.message }),
      );
      expect(await died).toBe('SIGKILL');
      expect(outcome).toEqual({ failed: 'fetch failed' });
    } finally {
      child.kill('SIGKILL');
    }
  });
});
