import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createServer, type Server } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, afterEach, describe, expect, it, vi } from 'vitest';
import { bareEnv, killHard, spawnTapwire, type TapwireProcess } from '../support/tapwire-child.js';
import { freePort } from '../support/upstream.js';

/**
 * What a newcomer sees when a start goes wrong (issue #20): a port another process holds names the
 * setting and its variable (exit 1, no stack); a mistyped TAPWIRE_* variable is warned about; and
 * /readyz names the store the services run on.
 */

const homes: string[] = [];
const held: Server[] = [];
const running: TapwireProcess[] = [];

afterEach(async () => {
  for (const p of running.splice(0)) await killHard(p);
  for (const s of held.splice(0)) await new Promise((r) => s.close(r));
});
afterAll(() => {
  for (const home of homes) rmSync(home, { recursive: true, force: true });
});

const ALERTING_YAML = `groups:
  - name: t
    rules:
      - id: t-errors
        alert: ErrorRateHigh
        kind: error_rate
        group_by: [service]
        window: 1m
        threshold: 0.5
route:
  receiver: nowhere
receivers:
  - name: nowhere
    webhook: { url: "http://127.0.0.1:9/" }
`;

/** Ports of every listener `tapwire start` opens, by the env variable that sets each. */
const PORT_VARS = [
  'TAPWIRE_PROXY_LISTEN_PORT',
  'TAPWIRE_PROXY_ADMIN_PORT',
  'TAPWIRE_INGEST_ADMIN_PORT',
  'TAPWIRE_API_LISTEN_PORT',
  'TAPWIRE_API_ADMIN_PORT',
  'TAPWIRE_ALERTER_ADMIN_PORT',
  'TAPWIRE_OTLP_GRPC_PORT',
  'TAPWIRE_OTLP_HTTP_PORT',
  'TAPWIRE_OTLP_ADMIN_PORT',
] as const;
type Ports = Record<(typeof PORT_VARS)[number], number>;

/** embeddedStart is the environment of `tapwire start` on the embedded log and DuckDB in a fresh folder, on free loopback ports. */
async function embeddedStart(
  extra: Record<string, string> = {},
): Promise<{ env: NodeJS.ProcessEnv; ports: Ports }> {
  const home = mkdtempSync(join(tmpdir(), 'tapwire-startup-'));
  homes.push(home);
  const rulesFile = join(home, 'alerting.yaml');
  writeFileSync(rulesFile, ALERTING_YAML);
  const ports = Object.fromEntries(
    await Promise.all(PORT_VARS.map(async (v) => [v, await freePort()] as const)),
  ) as Ports;
  const env = bareEnv({
    TAPWIRE_LOG_DIR: join(home, 'log'),
    TAPWIRE_STORE_PATH: join(home, 'tapwire.duckdb'),
    TAPWIRE_ALERTER_RULES_FILE: rulesFile,
    TAPWIRE_PROXY_LISTEN_HOST: '127.0.0.1',
    TAPWIRE_API_LISTEN_HOST: '127.0.0.1',
    TAPWIRE_OTLP_GRPC_HOST: '127.0.0.1',
    TAPWIRE_OTLP_HTTP_HOST: '127.0.0.1',
    ...Object.fromEntries(Object.entries(ports).map(([k, v]) => [k, String(v)])),
    ...extra,
  });
  return { env, ports };
}

/** hold binds 127.0.0.1:port the way another process would. */
async function hold(port: number): Promise<void> {
  const server = createServer();
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, '127.0.0.1', resolve);
  });
  held.push(server);
}

function start(args: string[], env: NodeJS.ProcessEnv): TapwireProcess {
  const p = spawnTapwire(args, env);
  running.push(p);
  return p;
}

async function readyz(url: string): Promise<unknown> {
  const res = await fetch(url);
  expect(res.status, url).toBe(200);
  return res.json();
}

describe('tapwire start on the embedded log and DuckDB', () => {
  it('warns about a mistyped TAPWIRE_* variable, and /readyz names DuckDB as the store', async () => {
    const { env, ports } = await embeddedStart({ TAPWIRE_PROXY_LISTEN_PORTT: '1' });
    const p = start(['start'], env);
    const url = (v: keyof Ports, path: string) => `http://127.0.0.1:${ports[v]}${path}`;
    // The alerter starts last: once it is ready, every service is.
    await vi.waitFor(
      async () =>
        expect((await fetch(url('TAPWIRE_ALERTER_ADMIN_PORT', '/readyz')).catch(() => null))?.status).toBe(
          200,
        ),
      { timeout: 60_000, interval: 200 },
    );
    expect(p.output()).toContain(
      'tapwire: warning: TAPWIRE_PROXY_LISTEN_PORTT is not a Tapwire setting; did you mean TAPWIRE_PROXY_LISTEN_PORT?\n',
    );
    const duckdb = { kind: 'duckdb', ok: true };
    expect(await readyz(url('TAPWIRE_INGEST_ADMIN_PORT', '/readyz'))).toEqual({
      ready: true,
      store: duckdb,
      paused: false,
      status: 'ready',
    });
    expect(await readyz(url('TAPWIRE_API_ADMIN_PORT', '/readyz'))).toEqual({
      ready: true,
      store: duckdb,
      status: 'ready',
    });
    expect(await readyz(url('TAPWIRE_API_LISTEN_PORT', '/readyz'))).toEqual({
      status: 'ready',
      store: duckdb,
    });
    expect(await readyz(url('TAPWIRE_ALERTER_ADMIN_PORT', '/readyz'))).toEqual({
      ready: true,
      store: duckdb,
      rules: 1,
      slos: 0,
      broken_receivers: {},
      status: 'ready',
    });
    p.child.kill('SIGTERM');
    expect((await p.exited()).code).toBe(0);
  }, 90_000);

  it.each([
    ['ingest.admin.port', 'TAPWIRE_INGEST_ADMIN_PORT'],
    ['proxy.listen.port', 'TAPWIRE_PROXY_LISTEN_PORT'],
    ['proxy.admin.port', 'TAPWIRE_PROXY_ADMIN_PORT'],
    ['api.listen.port', 'TAPWIRE_API_LISTEN_PORT'],
    ['api.admin.port', 'TAPWIRE_API_ADMIN_PORT'],
    ['alerter.admin.port', 'TAPWIRE_ALERTER_ADMIN_PORT'],
    ['otlp.grpc.port', 'TAPWIRE_OTLP_GRPC_PORT'],
    ['otlp.http.port', 'TAPWIRE_OTLP_HTTP_PORT'],
    ['otlp.admin.port', 'TAPWIRE_OTLP_ADMIN_PORT'],
  ] as const)(
    'exits 1 naming %s and %s when that port is in use',
    async (setting, envVar) => {
      const { env, ports } = await embeddedStart();
      await hold(ports[envVar]);
      const p = start(['start'], env);
      const { code } = await p.exited();
      expect(code, p.output()).toBe(1);
      expect(p.output()).toContain(
        `tapwire: TAPWIRE_PORT_IN_USE: 127.0.0.1:${ports[envVar]} is in use — ${setting} (env ${envVar})\n`,
      );
      // The reason, not a stack trace.
      expect(p.output()).not.toMatch(/^\s+at /m);
    },
    60_000,
  );
});

// Kafka and ClickHouse where nothing answers: a service that failed to fail would touch no shared server.
const NOWHERE = { TAPWIRE_KAFKA_BROKERS: '127.0.0.1:1', TAPWIRE_CLICKHOUSE_URL: 'http://127.0.0.1:1' };

describe('a service run on its own', () => {
  it('`tapwire ingest` (its pipeline on a worker thread) exits 1 naming ingest.admin.port when it is in use', async () => {
    const port = await freePort();
    await hold(port);
    const p = start(['ingest'], bareEnv({ ...NOWHERE, TAPWIRE_INGEST_ADMIN_PORT: String(port) }));
    const { code } = await p.exited();
    expect(code, p.output()).toBe(1);
    expect(p.output()).toContain(
      `tapwire: TAPWIRE_PORT_IN_USE: 127.0.0.1:${port} is in use — ingest.admin.port (env TAPWIRE_INGEST_ADMIN_PORT)\n`,
    );
  }, 60_000);

  it('`tapwire api` exits 1 naming api.listen.port when it is in use', async () => {
    const [port, admin] = [await freePort(), await freePort()];
    await hold(port);
    const p = start(
      ['api'],
      bareEnv({
        ...NOWHERE,
        TAPWIRE_API_LISTEN_HOST: '127.0.0.1',
        TAPWIRE_API_LISTEN_PORT: String(port),
        TAPWIRE_API_ADMIN_PORT: String(admin),
      }),
    );
    const { code } = await p.exited();
    expect(code, p.output()).toBe(1);
    expect(p.output()).toContain(
      `tapwire: TAPWIRE_PORT_IN_USE: 127.0.0.1:${port} is in use — api.listen.port (env TAPWIRE_API_LISTEN_PORT)\n`,
    );
  }, 60_000);
});
