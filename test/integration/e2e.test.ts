import { type ChildProcess, spawn } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { createClickHouse, identifier, sql } from '@tapwire/clickhouse';
import { hashToken } from '@tapwire/config';
import { kafkaBrokers } from '@tapwire/infra';
import { createKafkaClient, ensureTopics, topicSpecs } from '@tapwire/kafka';
import { Pool } from 'undici';
import { afterAll, describe, expect, it } from 'vitest';
import { slackWebhookSchema } from '../support/alert-formats.js';
import { exactQuantile, mulberry32 } from '../support/analytics-seed.js';
import {
  deletePrefixedTopics,
  infraConfig,
  silentLogger,
  testClickHouseConfig,
  testKafkaConfig,
  uniqueName,
} from '../support/infra.js';
import { startReceiver } from '../support/receiver.js';
import { freePort } from '../support/upstream.js';

const ROOT = fileURLToPath(new URL('../..', import.meta.url));
const database = uniqueName('tapwire_e2e');
const prefix = `${uniqueName('e2e')}.`;
const children: ChildProcess[] = [];
const dir = mkdtempSync(join(tmpdir(), 'tapwire-e2e-'));

afterAll(async () => {
  for (const c of children) c.kill('SIGKILL');
  const admin = createClickHouse(testClickHouseConfig('default'));
  await admin.command(sql`DROP DATABASE IF EXISTS ${identifier(database)}`);
  await admin.close();
  rmSync(dir, { recursive: true, force: true });
  await deletePrefixedTopics(prefix);
});

function tapwire(args: string[], config: string): ChildProcess {
  const child = spawn(
    process.execPath,
    ['--import', 'tsx', 'services/cli/src/main.ts', '-c', config, ...args],
    {
      cwd: ROOT,
      env: { ...process.env, TAPWIRE_TELEMETRY_LOG_LEVEL: 'warn' },
      stdio: ['ignore', 'ignore', 'inherit'],
    },
  );
  children.push(child);
  return child;
}

async function ready(url: string): Promise<void> {
  for (let i = 0; i < 300; i++) {
    if (
      await fetch(url).then(
        (r) => r.ok,
        () => false,
      )
    )
      return;
    await new Promise((r) => setTimeout(r, 200));
  }
  throw new Error(`${url} never became ready`);
}

describe('end to end: separate processes over real Kafka and ClickHouse', () => {
  it('API quantiles, error rate and saturation match the ground truth; an alert fires to Slack and resolves when traffic heals', async () => {
    // An upstream whose latency the test controls: slow (lognormal around 1 s) until healed. It
    // records how long it really took to answer each request: the ground truth the API must match
    // (the proxy adds only its own overhead, a few ms under load, well under 1% of a second).
    const servedMs: number[] = [];
    let healed = false;
    const rand = mulberry32(99);
    const lognormal = () =>
      1000 *
      Math.exp(0.3 * Math.sqrt(-2 * Math.log(Math.max(rand(), 1e-12))) * Math.cos(2 * Math.PI * rand()));
    const upstream: Server = createServer((req, res) => {
      const fail = req.url === '/e2e/fail';
      const started = performance.now();
      setTimeout(
        () => {
          res.writeHead(fail ? 500 : 200, { 'content-type': 'text/plain' });
          res.end(fail ? 'boom' : 'ok');
          if (!fail && !healed) servedMs.push(performance.now() - started);
        },
        healed ? 5 : lognormal(),
      );
    });
    await new Promise<void>((r) => upstream.listen(0, '127.0.0.1', r));
    const upstreamUrl = `http://127.0.0.1:${(upstream.address() as { port: number }).port}`;
    const slack = await startReceiver({ status: 200, body: 'ok' });
    const [proxyPort, proxyAdmin, ingestAdmin, apiPort, apiAdmin, alerterAdmin] = await Promise.all(
      Array.from({ length: 6 }, () => freePort()),
    );
    const token = 'e2e-token-0123456789';
    const rules = join(dir, 'alerting.yaml');
    writeFileSync(
      rules,
      `groups:
  - name: e2e
    interval: 5s
    rules:
      - { id: e2e-p99, alert: E2EP99High, kind: latency_quantile, quantile: 0.99, filters: { route: /e2e/ok }, group_by: [route], window: 20s, threshold: 250, severity: critical }
route: { receiver: chat, group_by: [alertname], group_wait: 0s, group_interval: 1s }
receivers:
  - { name: chat, slack: { webhookUrl: "${slack.url}/hook" } }
`,
    );
    const config = join(dir, 'tapwire.yaml');
    writeFileSync(
      config,
      `kafka: { brokers: [${kafkaBrokers(infraConfig()).join(', ')}] }
clickhouse: { url: ${testClickHouseConfig(database).url}, database: ${database} }
proxy:
  listen: { host: 127.0.0.1, port: ${proxyPort} }
  admin: { host: 127.0.0.1, port: ${proxyAdmin} }
  emit: { topicPrefix: ${prefix}, logDir: ${join(dir, 'proxy-log')} }
  upstreams:
    - { name: e2e, url: ${upstreamUrl}, routes: [/e2e/ok, /e2e/fail], maxConcurrency: 64 }
ingest: { groupId: ${uniqueName('e2e-ingest')}, topicPrefix: ${prefix}, admin: { host: 127.0.0.1, port: ${ingestAdmin} }, heapLimitMb: 0 }
api:
  listen: { host: 127.0.0.1, port: ${apiPort} }
  admin: { host: 127.0.0.1, port: ${apiAdmin} }
  topicPrefix: ${prefix}
  tokens: [{ name: e2e, sha256: ${hashToken(token)}, tenant: "*" }]
alerter: { rulesFile: ${rules}, topicPrefix: ${prefix}, admin: { host: 127.0.0.1, port: ${alerterAdmin} }, dispatchTickMs: 200 }
`,
    );
    const kafka = createKafkaClient(testKafkaConfig(), silentLogger, 'e2e');
    await ensureTopics(
      kafka,
      topicSpecs(
        { partitions: 3, replicationFactor: 1, retentionMs: 3_600_000, dlqRetentionMs: 3_600_000 },
        prefix,
      ),
    );
    const setup = spawn(
      process.execPath,
      ['--import', 'tsx', 'services/cli/src/main.ts', '-c', config, 'migrate'],
      { cwd: ROOT, stdio: 'ignore' },
    );
    expect(await new Promise((r) => setup.once('exit', r))).toBe(0);
    tapwire(['ingest'], config);
    tapwire(['proxy'], config);
    tapwire(['api'], config);
    tapwire(['alerter'], config);
    await Promise.all(
      [proxyAdmin, ingestAdmin, apiAdmin, alerterAdmin].map((p) => ready(`http://127.0.0.1:${p}/readyz`)),
    );

    // Traffic: 1,200 requests, one in twenty to the failing route.
    const pool = new Pool(`http://127.0.0.1:${proxyPort}`, { connections: 40 });
    let failures = 0;
    const from = new Date(Date.now() - 60_000).toISOString();
    let next = 0;
    await Promise.all(
      Array.from({ length: 40 }, async () => {
        while (next < 1200) {
          const i = next++;
          const path = i % 20 === 0 ? '/e2e/fail' : '/e2e/ok';
          const r = await pool.request({ path, method: 'GET' });
          await r.body.dump();
          if (path === '/e2e/fail' && r.statusCode === 500) failures++;
        }
      }),
    );
    expect(failures).toBe(60);
    const get = async (path: string) => {
      const r = await fetch(`http://127.0.0.1:${apiPort}${path}`, {
        headers: { authorization: `Bearer ${token}` },
      });
      return r.json() as Promise<Record<string, unknown>>;
    };
    type Row = { route: string; requests: number; errors_5xx: number; latency_ms: Record<string, number> };
    let rows: Row[] = [];
    for (let i = 0; i < 120 && rows.reduce((n, r) => n + r.requests, 0) < 1200; i++) {
      await new Promise((r) => setTimeout(r, 500));
      rows = ((await get(`/v1/overview?group_by=route&source=raw&from=${from}&to=now`)).rows as Row[]) ?? [];
    }
    const ok = rows.find((r) => r.route === '/e2e/ok');
    const fail = rows.find((r) => r.route === '/e2e/fail');
    expect([ok?.requests, fail?.requests, fail?.errors_5xx]).toEqual([1140, 60, 60]);
    // Only the traffic phase: the alert phase below adds requests after this snapshot.
    const sorted = servedMs.slice(0, 1140).sort((a, b) => a - b);
    for (const [key, q] of [
      ['p50', 0.5],
      ['p90', 0.9],
      ['p99', 0.99],
    ] as const) {
      const truth = exactQuantile(sorted, q);
      const got = ok?.latency_ms[key] ?? 0;
      expect(Math.abs(got - truth) / truth, `${key}: API ${got} vs upstream ${truth}`).toBeLessThanOrEqual(
        0.01,
      );
    }
    const service = (
      (await get(`/v1/overview?source=raw&from=${from}&to=now`)).rows as { error_rate_5xx: number }[]
    )[0];
    expect(service?.error_rate_5xx).toBe(60 / 1200);
    const saturation = (await get(`/v1/saturation?source=raw&from=${from}&to=now&step=10s`)) as {
      upstreams: { upstream: string; points: { concurrency_limit: number; in_flight_max: number }[] }[];
    };
    const e2e = saturation.upstreams.find((u) => u.upstream === 'e2e');
    expect(e2e?.points.every((p) => p.concurrency_limit === 64)).toBe(true);
    expect(Math.max(...(e2e?.points.map((p) => p.in_flight_max) ?? [0]))).toBeLessThanOrEqual(40);

    // The p99 breach reaches Slack; healed traffic resolves it.
    const message = (status: string) =>
      slack.requests.find((r) => JSON.parse(r.body).text.startsWith(status));
    for (let i = 0; i < 120 && !message('[FIRING'); i++) {
      await pool.request({ path: '/e2e/ok', method: 'GET' }).then((r) => r.body.dump());
      await new Promise((r) => setTimeout(r, 250));
    }
    expect(slackWebhookSchema.parse(JSON.parse(message('[FIRING')?.body ?? '{}')).text).toBe(
      '[FIRING:1] E2EP99High',
    );
    healed = true;
    for (let i = 0; i < 240 && !message('[RESOLVED'); i++) {
      await pool.request({ path: '/e2e/ok', method: 'GET' }).then((r) => r.body.dump());
      await new Promise((r) => setTimeout(r, 250));
    }
    expect(JSON.parse(message('[RESOLVED')?.body ?? '{}').text).toBe('[RESOLVED] E2EP99High');
    await pool.close();
    for (const c of children) c.kill('SIGTERM');
    await slack.close();
    upstream.close();
  }, 300_000);
});
