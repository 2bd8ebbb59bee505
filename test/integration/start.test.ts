import { spawn } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { createClickHouse, identifier, sql } from '@tapwire/clickhouse';
import { afterAll, describe, expect, it } from 'vitest';
import { deletePrefixedTopics, testClickHouseConfig, uniqueName } from '../support/infra.js';
import { freePort } from '../support/upstream.js';

const ROOT = fileURLToPath(new URL('../..', import.meta.url));
const databases: string[] = [];
const prefixes: string[] = [];

afterAll(async () => {
  const admin = createClickHouse(testClickHouseConfig('default'));
  for (const database of databases) await admin.command(sql`DROP DATABASE IF EXISTS ${identifier(database)}`);
  await admin.close();
  for (const prefix of prefixes) await deletePrefixedTopics(prefix);
});

describe.each([{ log: 'kafka' as const }, { log: 'embedded' as const }])(
  'tapwire start --demo on the $log event log',
  ({ log }) => {
    it('runs every service in one process and shows live demo data in the API within a minute', async () => {
      const home = mkdtempSync(join(tmpdir(), 'tapwire-start-log-'));
      const logDir = join(home, 'log');
      const database = uniqueName('tapwire_start');
      const prefix = `${uniqueName('start')}.`;
      databases.push(database);
      prefixes.push(prefix);
      const ports = await Promise.all(Array.from({ length: 9 }, () => freePort()));
      const env = {
        ...process.env,
        TAPWIRE_CLICKHOUSE_URL: testClickHouseConfig(database).url,
        TAPWIRE_CLICKHOUSE_DATABASE: database,
        TAPWIRE_TELEMETRY_LOG_LEVEL: 'warn',
        TAPWIRE_INGEST_GROUP_ID: uniqueName('tapwire-ingest-start'),
        TAPWIRE_INGEST_TOPIC_PREFIX: prefix,
        TAPWIRE_PROXY_LISTEN_HOST: '127.0.0.1',
        TAPWIRE_PROXY_LISTEN_PORT: String(ports[0]),
        TAPWIRE_PROXY_ADMIN_PORT: String(ports[1]),
        TAPWIRE_INGEST_ADMIN_PORT: String(ports[2]),
        TAPWIRE_API_LISTEN_HOST: '127.0.0.1',
        TAPWIRE_API_LISTEN_PORT: String(ports[3]),
        TAPWIRE_API_ADMIN_PORT: String(ports[4]),
        TAPWIRE_ALERTER_ADMIN_PORT: String(ports[5]),
        TAPWIRE_OTLP_GRPC_PORT: String(ports[6]),
        TAPWIRE_OTLP_HTTP_PORT: String(ports[7]),
        TAPWIRE_OTLP_ADMIN_PORT: String(ports[8]),
        TAPWIRE_LOG_KIND: log,
        TAPWIRE_LOG_DIR: logDir,
        // Its own local log: the default folder in the working directory outlives the test's topics.
        TAPWIRE_PROXY_EMIT_LOG_DIR: join(home, 'proxy-log'),
        TAPWIRE_OTLP_EMIT_LOG_DIR: join(home, 'otlp-log'),
      };
      const child = spawn(
        process.execPath,
        ['--import', 'tsx', 'services/cli/src/main.ts', 'start', '--demo', '--demo-rate', '30'],
        {
          cwd: ROOT,
          env,
          stdio: ['ignore', 'pipe', 'pipe'],
        },
      );
      let out = '';
      let err = '';
      child.stdout.on('data', (c: Buffer) => {
        out += c.toString();
      });
      child.stderr.on('data', (c: Buffer) => {
        err += c.toString();
      });
      const started = Date.now();
      try {
        let token: string | undefined;
        for (let i = 0; i < 600 && !token; i++) {
          token = /demo token: (\S+)/.exec(out)?.[1];
          if (!token) await new Promise((r) => setTimeout(r, 100));
        }
        expect(token, `stdout: ${out}\nstderr: ${err.slice(-2000)}`).toBeDefined();
        const api = `http://127.0.0.1:${ports[3]}`;
        let routes: { route: string; requests: number; latency_ms: { p99: number | null } }[] = [];
        while (Date.now() - started < 60_000) {
          const res = await fetch(`${api}/v1/overview?from=now-15m&group_by=route&source=raw`, {
            headers: { authorization: `Bearer ${token}` },
          });
          if (res.ok) routes = ((await res.json()) as { rows: typeof routes }).rows;
          if (routes.some((r) => r.route === '/api/users/:id' && r.requests > 10)) break;
          await new Promise((r) => setTimeout(r, 500));
        }
        expect(Date.now() - started).toBeLessThan(60_000);
        expect(routes.map((r) => r.route)).toEqual(expect.arrayContaining(['/api/users/:id', '/api/orders']));
        expect(routes.filter((r) => !(r.latency_ms.p99 !== null && r.latency_ms.p99 > 0))).toEqual([]);
        const rules = await fetch(`${api}/v1/rules`, { headers: { authorization: `Bearer ${token}` } });
        expect(((await rules.json()) as { groups: { name: string }[] }).groups.map((g) => g.name)).toEqual([
          'demo',
        ]);
        const ready = await fetch(`http://127.0.0.1:${ports[5]}/readyz`);
        expect(ready.status).toBe(200);
        // The API and the alerter share the demo's alerting file: the alerter evaluates its SLO and
        // the API counts it from the live traffic (windows end at the last whole minute).
        expect(((await ready.json()) as { slos: number }).slos).toBe(1);
        const slo = await demoSloCounted(api, token ?? '');
        expect(slo).toMatchObject({ name: 'demo-order-lookups', objective: 99, window: '1d' });
        expect(Object.keys(slo.burn_rates).slice(0, 6)).toEqual(['5m', '30m', '1h', '6h', '1d', '3d']);
        // Silences go through the same event log the alerter reads.
        const auth = { authorization: `Bearer ${token}`, 'content-type': 'application/json' };
        const created = await fetch(`${api}/v1/silences`, {
          method: 'POST',
          headers: auth,
          body: JSON.stringify({ matchers: ['route="/api/orders"'], duration: '1h', comment: 'deploy' }),
        });
        expect(created.status).toBe(201);
        const { id } = (await created.json()) as { id: string };
        const listed = (await (await fetch(`${api}/v1/silences`, { headers: auth })).json()) as {
          silences: { id: string }[];
        };
        expect(listed.silences.map((x) => x.id)).toContain(id);
        // The embedded log holds the events in its directory; with Kafka nothing is written there.
        const accessTopic = join(logDir, 'topics', `${prefix}tapwire.access.v1`);
        expect(existsSync(accessTopic) && readdirSync(accessTopic).length > 0).toBe(log === 'embedded');
        const exited = new Promise<number | null>((r) => child.once('exit', (code) => r(code)));
        child.kill('SIGTERM');
        expect(await exited).toBe(0);
      } finally {
        child.kill('SIGKILL');
      }
    }, 200_000);
  },
);

/** demoSloCounted waits (past the next whole minute) until GET /v1/slos counts the demo SLO's requests. */
async function demoSloCounted(
  api: string,
  token: string,
): Promise<{ name: string; objective: number; window: string; sli: { total: number }; burn_rates: object }> {
  type Slo = Awaited<ReturnType<typeof demoSloCounted>>;
  let slo: Slo | undefined;
  for (const until = Date.now() + 90_000; Date.now() < until; await new Promise((r) => setTimeout(r, 1000))) {
    const res = await fetch(`${api}/v1/slos`, { headers: { authorization: `Bearer ${token}` } });
    expect(res.status).toBe(200);
    slo = ((await res.json()) as { slos: Slo[] }).slos.find((s) => s.name === 'demo-order-lookups');
    if (slo && slo.sli.total > 0) break;
  }
  expect(slo?.sli.total).toBeGreaterThan(0);
  return slo as Slo;
}
