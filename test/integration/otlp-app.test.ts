import { spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { createClickHouse, identifier, raw, sql } from '@tapwire/clickhouse';
import { hashToken } from '@tapwire/config';
import { raw as duckRaw, openDuckDb } from '@tapwire/duckdb';
import { kafkaBrokers } from '@tapwire/infra';
import { createKafkaClient, ensureTopics, topicSpecs } from '@tapwire/kafka';
import { TOPICS } from '@tapwire/schema';
import { request } from 'undici';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import {
  deletePrefixedTopics,
  infraConfig,
  silentLogger,
  testClickHouseConfig,
  testKafkaConfig,
  uniqueName,
} from '../support/infra.js';
import { readTopics } from '../support/kafka-read.js';
import { type OtelApp, type OtelExporterKind, startOtelApp } from '../support/otel-app-process.js';
import { spawnTapwire, type TapwireProcess, waitForUrl } from '../support/tapwire-process.js';
import { freePort, startUpstream, type TestUpstream } from '../support/upstream.js';

/**
 * Issue #22's acceptance: a real app instrumented with @opentelemetry/sdk-node and the official
 * OTLP exporters (gRPC, HTTP/protobuf, HTTP/JSON; one run each) behind Tapwire's proxy. Every
 * request's trace in the API is one tree — proxy SERVER → proxy CLIENT → app SERVER → INTERNAL →
 * app CLIENT — with exact parent links; the overview by service lists the app next to the proxy's
 * service with the exact request count; the secrets the app records (canaries) reach neither the
 * event log, nor the store, nor any service's log. On Kafka + ClickHouse (each service its own
 * process: the receiver writes its local log and ships it) and on the embedded log + DuckDB
 * (`tapwire start`: the receiver writes into the shared log).
 */

const ROOT = fileURLToPath(new URL('../..', import.meta.url));
const REQUESTS = 20;
const TENANT = 'acme';
const PROXY_SERVICE = 'orders-api';
const APP_SERVICE = 'orders-app';
const EXPORTERS: { exporter: OtelExporterKind; auth: 'bearer' | 'x-tapwire-token'; gzip: boolean }[] = [
  { exporter: 'grpc', auth: 'bearer', gzip: false },
  { exporter: 'http/protobuf', auth: 'x-tapwire-token', gzip: true },
  { exporter: 'http/json', auth: 'bearer', gzip: false },
];
const hostOf = (exporter: OtelExporterKind) => `${exporter.replace('/', '-')}.orders.test`;

interface SpanNode {
  span_id: string;
  parent_span_id: string;
  name: string;
  kind: string;
  service: string;
  attributes: Record<string, string>;
  resource: Record<string, string>;
  scope: { name: string; version: string };
  events: { name: string; attributes: Record<string, string> }[];
  children: SpanNode[];
}
interface Trace {
  trace_id: string;
  tenant: string;
  span_count: number;
  services: string[];
  roots: SpanNode[];
}
interface Sent {
  traceId: string;
  proxyServer: string;
  proxyClient: string;
  appServer: string;
  internal: string;
  appClient: string;
}

/** Deployment is Tapwire running on one kind of log and store, with the apps behind its proxy. */
interface Deployment {
  proxyUrl: string;
  apiUrl: string;
  apps: Map<OtelExporterKind, OtelApp>;
  processes: TapwireProcess[];
  /** Text of every event the log holds (Kafka's topics or the embedded log's files). */
  loggedText(expectedSpans: number): Promise<string>;
  /** Text of every row of the spans and access_logs tables (after stop() for DuckDB). */
  storedText(): Promise<string>;
  stop(): Promise<void>;
}

const canary = `CANARY${randomBytes(6).toString('hex')}`;
const apiToken = `api-${randomBytes(12).toString('hex')}`;
const otlpToken = `otlp-${randomBytes(12).toString('hex')}`;
const cleanups: (() => Promise<void>)[] = [];

afterAll(async () => {
  for (const c of cleanups.reverse()) await c().catch(() => undefined);
});

/** filesText is the bytes of every file under `dir`, as latin1 text (a canary is ASCII). */
function filesText(dir: string): string {
  let out = '';
  for (const name of readdirSync(dir)) {
    const p = join(dir, name);
    const st = statSync(p);
    // Only directories and regular files (the log's LOCK may be a socket).
    if (st.isDirectory()) out += filesText(p);
    else if (st.isFile()) out += readFileSync(p).toString('latin1');
  }
  return out;
}

async function startApps(receiver: { grpc: number; http: number }, inventory: TestUpstream) {
  const apps = new Map<OtelExporterKind, OtelApp>();
  await Promise.all(
    EXPORTERS.map(async ({ exporter, auth, gzip }) => {
      const endpoint =
        exporter === 'grpc'
          ? `http://127.0.0.1:${receiver.grpc}`
          : `http://127.0.0.1:${receiver.http}/v1/traces`;
      apps.set(
        exporter,
        await startOtelApp({
          exporter,
          endpoint,
          token: otlpToken,
          auth,
          gzip,
          inventoryUrl: inventory.url,
          canary,
        }),
      );
    }),
  );
  for (const app of apps.values()) cleanups.push(() => app.stop());
  return apps;
}

function proxySection(
  ports: { proxy: number; admin: number },
  apps: Map<OtelExporterKind, OtelApp>,
  logDir: string,
  prefix: string,
) {
  const upstreams = EXPORTERS.map(
    ({ exporter }) =>
      `    - { name: ${exporter.replace('/', '-')}, service: ${PROXY_SERVICE}, tenant: ${TENANT}, url: ${apps.get(exporter)?.url}, match: { host: ${hostOf(exporter)} } }`,
  ).join('\n');
  return `proxy:
  listen: { host: 127.0.0.1, port: ${ports.proxy} }
  admin: { host: 127.0.0.1, port: ${ports.admin} }
  emit: { topicPrefix: "${prefix}", logDir: ${logDir} }
  upstreams:
${upstreams}
`;
}

function apiAndOtlpSections(
  ports: { api: number; apiAdmin: number; grpc: number; http: number; otlpAdmin: number },
  logDir: string,
  prefix: string,
) {
  return `api:
  listen: { host: 127.0.0.1, port: ${ports.api} }
  admin: { host: 127.0.0.1, port: ${ports.apiAdmin} }
  topicPrefix: "${prefix}"
  tokens: [{ name: e2e, sha256: ${hashToken(apiToken)}, tenant: ${TENANT} }]
otlp:
  grpc: { host: 127.0.0.1, port: ${ports.grpc} }
  http: { host: 127.0.0.1, port: ${ports.http} }
  admin: { host: 127.0.0.1, port: ${ports.otlpAdmin} }
  tokens: [{ name: orders-app, sha256: ${hashToken(otlpToken)}, tenant: ${TENANT} }]
  redaction: { attributeKeys: [db.connection_string] }
  emit: { topicPrefix: "${prefix}", logDir: ${logDir} }
`;
}

async function ports() {
  const [proxy, proxyAdmin, ingestAdmin, api, apiAdmin, alerterAdmin, grpc, http, otlpAdmin] =
    await Promise.all(Array.from({ length: 9 }, () => freePort()));
  return { proxy, proxyAdmin, ingestAdmin, api, apiAdmin, alerterAdmin, grpc, http, otlpAdmin } as Record<
    string,
    number
  >;
}

/** Kafka + ClickHouse: proxy, receiver, ingest and API each in its own process. */
async function startDistributed(inventory: TestUpstream): Promise<Deployment> {
  const dir = mkdtempSync(join(tmpdir(), 'tapwire-otlp-app-'));
  const database = uniqueName('tapwire_otlp_app');
  const prefix = `${uniqueName('otlpapp')}.`;
  cleanups.push(async () => {
    const admin = createClickHouse(testClickHouseConfig('default'));
    await admin.command(sql`DROP DATABASE IF EXISTS ${identifier(database)}`);
    await admin.close();
    await deletePrefixedTopics(prefix);
    rmSync(dir, { recursive: true, force: true });
  });
  const p = await ports();
  const apps = await startApps({ grpc: p.grpc!, http: p.http! }, inventory);
  const config = join(dir, 'tapwire.yaml');
  writeFileSync(
    config,
    `telemetry: { logLevel: debug }
kafka: { brokers: [${kafkaBrokers(infraConfig()).join(', ')}] }
clickhouse: { url: ${testClickHouseConfig(database).url}, database: ${database} }
${proxySection({ proxy: p.proxy!, admin: p.proxyAdmin! }, apps, join(dir, 'proxy-log'), prefix)}ingest: { groupId: ${uniqueName('otlp-app-ingest')}, topicPrefix: "${prefix}", admin: { host: 127.0.0.1, port: ${p.ingestAdmin} }, heapLimitMb: 0 }
${apiAndOtlpSections({ api: p.api!, apiAdmin: p.apiAdmin!, grpc: p.grpc!, http: p.http!, otlpAdmin: p.otlpAdmin! }, join(dir, 'otlp-log'), prefix)}`,
  );
  const kafka = createKafkaClient(testKafkaConfig(), silentLogger, 'otlp-app');
  await ensureTopics(
    kafka,
    topicSpecs(
      { partitions: 3, replicationFactor: 1, retentionMs: 3_600_000, dlqRetentionMs: 3_600_000 },
      prefix,
    ),
  );
  const migrate = spawnSync(
    process.execPath,
    ['--import', 'tsx', 'services/cli/src/main.ts', '-c', config, 'migrate'],
    { cwd: ROOT, encoding: 'utf8', timeout: 120_000 },
  );
  expect(migrate.status, migrate.stderr).toBe(0);
  const processes = ['ingest', 'otlp', 'proxy', 'api'].map((c) => spawnTapwire([c], config));
  cleanups.push(async () => {
    for (const proc of processes) await proc.stop('SIGKILL');
  });
  await Promise.all(
    [p.ingestAdmin, p.otlpAdmin, p.proxyAdmin, p.apiAdmin].map((port) =>
      waitForUrl(`http://127.0.0.1:${port}/readyz`),
    ),
  );
  return {
    proxyUrl: `http://127.0.0.1:${p.proxy}`,
    apiUrl: `http://127.0.0.1:${p.api}`,
    apps,
    processes,
    async loggedText(expectedSpans) {
      const messages = await readTopics(
        kafka,
        [`${prefix}${TOPICS.spans}`, `${prefix}${TOPICS.accessLogs}`],
        (m) => m.filter((x) => x.topic === `${prefix}${TOPICS.spans}`).length >= expectedSpans,
      );
      // The local logs on disk (the receiver's and the proxy's) hold the same events before shipping.
      return messages.map((m) => m.value.toString('utf8')).join('\n') + filesText(dir);
    },
    async storedText() {
      const ch = createClickHouse(testClickHouseConfig(database));
      const rows = [
        ...(await ch.query<Record<string, unknown>>(raw('SELECT * FROM spans'))),
        ...(await ch.query<Record<string, unknown>>(raw('SELECT * FROM access_logs'))),
      ];
      await ch.close();
      return JSON.stringify(rows);
    },
    async stop() {
      for (const proc of processes) await proc.stop();
    },
  };
}

/** The embedded log and DuckDB: `tapwire start`, every service in one process. */
async function startEmbedded(inventory: TestUpstream): Promise<Deployment> {
  const dir = mkdtempSync(join(tmpdir(), 'tapwire-otlp-app-embedded-'));
  cleanups.push(async () => rmSync(dir, { recursive: true, force: true }));
  const p = await ports();
  const apps = await startApps({ grpc: p.grpc!, http: p.http! }, inventory);
  const config = join(dir, 'tapwire.yaml');
  const storePath = join(dir, 'data', 'tapwire.duckdb');
  writeFileSync(
    config,
    `telemetry: { logLevel: debug }
log: { dir: ${join(dir, 'data', 'log')} }
store: { path: ${storePath} }
${proxySection({ proxy: p.proxy!, admin: p.proxyAdmin! }, apps, join(dir, 'proxy-log'), '')}ingest: { admin: { host: 127.0.0.1, port: ${p.ingestAdmin} } }
alerter: { rulesFile: ${join(dir, 'no-alerting.yaml')}, admin: { host: 127.0.0.1, port: ${p.alerterAdmin} } }
${apiAndOtlpSections({ api: p.api!, apiAdmin: p.apiAdmin!, grpc: p.grpc!, http: p.http!, otlpAdmin: p.otlpAdmin! }, join(dir, 'otlp-log'), '')}`,
  );
  const start = spawnTapwire(['start'], config);
  cleanups.push(async () => {
    await start.stop('SIGKILL');
  });
  await Promise.all(
    [p.ingestAdmin, p.otlpAdmin, p.proxyAdmin, p.apiAdmin].map((port) =>
      waitForUrl(`http://127.0.0.1:${port}/readyz`).catch((err: Error) => {
        throw new Error(`${err.message}\n${start.output().slice(-3000)}`);
      }),
    ),
  );
  return {
    proxyUrl: `http://127.0.0.1:${p.proxy}`,
    apiUrl: `http://127.0.0.1:${p.api}`,
    apps,
    processes: [start],
    async loggedText() {
      return filesText(dir);
    },
    async storedText() {
      const db = await openDuckDb({ path: storePath });
      const rows = [
        ...(await db.query<Record<string, unknown>>(duckRaw('SELECT * FROM spans'))),
        ...(await db.query<Record<string, unknown>>(duckRaw('SELECT * FROM access_logs'))),
      ];
      await db.close();
      return JSON.stringify(rows, (_k, v) => (typeof v === 'bigint' ? String(v) : v));
    },
    async stop() {
      expect((await start.stop()).code, start.output().slice(-3000)).toBe(0);
    },
  };
}

/** spanIdOf reads the parent id of a W3C traceparent (00-<trace>-<span>-<flags>). */
const parentOf = (traceparent: string) => traceparent.split('-')[2] ?? '';

describe.each([
  { deployment: 'Kafka and ClickHouse', start: startDistributed },
  { deployment: 'the embedded log and DuckDB', start: startEmbedded },
])('an OpenTelemetry-instrumented app behind the proxy, on $deployment', ({ start }) => {
  let inventory: TestUpstream;
  let d: Deployment;

  beforeAll(async () => {
    inventory = await startUpstream();
    cleanups.push(() => inventory.close());
    d = await start(inventory);
  }, 180_000);

  const api = async <T>(path: string): Promise<{ status: number; body: T }> => {
    const res = await fetch(`${d.apiUrl}${path}`, { headers: { authorization: `Bearer ${apiToken}` } });
    return { status: res.status, body: (await res.json()) as T };
  };

  it.each(EXPORTERS)(
    'with the $exporter exporter, every request is one trace: proxy SERVER → proxy CLIENT → app SERVER → INTERNAL → app CLIENT',
    async ({ exporter }) => {
      const app = d.apps.get(exporter)!;
      // Each exporter's run starts after the one before has been fully seen: its window is its own.
      const from = new Date().toISOString();
      const seenBefore = inventory.seen.length;
      const sent: Sent[] = [];
      for (let i = 0; i < REQUESTS; i++) {
        // undici's request, not fetch: fetch does not send a Host header of the caller's.
        const res = await request(`${d.proxyUrl}/orders/${i}?api_key=${canary}-client-query`, {
          headers: { host: hostOf(exporter), authorization: `Bearer ${canary}-client-auth` },
        });
        expect(res.statusCode).toBe(200);
        const body = (await res.body.json()) as {
          traceparent: string;
          server_span_id: string;
          internal_span_id: string;
        };
        const [, traceId, proxyServer] = String(res.headers.traceparent ?? '').split('-');
        const seen = inventory.seen[seenBefore + i];
        expect(seen?.url).toBe(`/stock/${i}?api_key=${canary}-client-query`);
        const inventoryParent = String(seen?.headers.traceparent ?? '');
        // The W3C context went through: the app's spans belong to the proxy's trace.
        expect(body.traceparent.split('-')[1]).toBe(traceId);
        expect(inventoryParent.split('-')[1]).toBe(traceId);
        sent.push({
          traceId: traceId!,
          proxyServer: proxyServer!,
          proxyClient: parentOf(body.traceparent),
          appServer: body.server_span_id,
          internal: body.internal_span_id,
          appClient: parentOf(inventoryParent),
        });
      }
      await app.flush();

      for (const s of sent) {
        let trace: Trace | undefined;
        await vi.waitFor(
          async () => {
            const r = await api<Trace>(`/v1/traces/${s.traceId}`);
            expect(r.status).toBe(200);
            expect(r.body.span_count).toBe(5);
            trace = r.body;
          },
          { timeout: 60_000, interval: 250 },
        );
        const t = trace!;
        expect(t.tenant).toBe(TENANT);
        expect(t.services).toEqual([PROXY_SERVICE, APP_SERVICE]);
        // One tree: one root, each span the only child of the one before, parents exact.
        expect(t.roots).toHaveLength(1);
        const chain: SpanNode[] = [];
        for (let n: SpanNode | undefined = t.roots[0]; n; n = n.children[0]) {
          expect(n.children.length).toBeLessThanOrEqual(1);
          chain.push(n);
        }
        expect(
          chain.map((n) => ({ id: n.span_id, parent: n.parent_span_id, kind: n.kind, service: n.service })),
        ).toEqual([
          { id: s.proxyServer, parent: '', kind: 'SERVER', service: PROXY_SERVICE },
          { id: s.proxyClient, parent: s.proxyServer, kind: 'CLIENT', service: PROXY_SERVICE },
          { id: s.appServer, parent: s.proxyClient, kind: 'SERVER', service: APP_SERVICE },
          { id: s.internal, parent: s.appServer, kind: 'INTERNAL', service: APP_SERVICE },
          { id: s.appClient, parent: s.internal, kind: 'CLIENT', service: APP_SERVICE },
        ]);
        const [proxyServer, , appServer, internal, appClient] = chain;
        const i = sent.indexOf(s);
        expect(internal?.name).toBe('load-order');
        expect(internal?.scope).toEqual({ name: 'orders-app.handlers', version: '1.4.2' });
        expect(appServer?.scope.name).toBe('@opentelemetry/instrumentation-http');
        expect(internal?.resource['service.version']).toBe('1.4.2');
        // What the app recorded arrives, its secrets redacted: header attributes and configured
        // keys whole, URLs' userinfo and secret query parameters, in span, event and resource attributes.
        expect(internal?.attributes['order.id']).toBe(String(i));
        expect(internal?.attributes['http.request.header.authorization']).toBe('[REDACTED]');
        expect(appServer?.attributes['http.request.header.authorization']).toBe('[REDACTED]');
        expect(appServer?.attributes['url.query']).toBe('api_key=[REDACTED]');
        expect(proxyServer?.attributes['url.query']).toBe('api_key=[REDACTED]');
        expect(internal?.attributes['url.full']).toBe(
          'https://[REDACTED]@payments.example/v1/charges?api_key=[REDACTED]&currency=eur',
        );
        expect(appClient?.attributes['url.full']).toBe(`${inventory.url}/stock/${i}?api_key=[REDACTED]`);
        expect(internal?.events).toEqual([
          expect.objectContaining({
            name: 'cache-miss',
            attributes: {
              'cache.key': `order:${i}`,
              'url.full': 'https://cache.internal/get?token=[REDACTED]',
            },
          }),
        ]);
        for (const n of chain.slice(2)) expect(n.resource['db.connection_string']).toBe('[REDACTED]');
        // A value over the 4096-character limit is cut and marked, never dropped nor kept whole.
        expect(internal?.attributes['app.note']).toBe(`${'x'.repeat(4080)}…[cut 920 chars]`);
        expect(JSON.stringify(t)).not.toContain(canary);
      }

      // The overview by service lists the app next to the proxy's service, each with every request.
      type Row = { service: string; requests: number };
      await vi.waitFor(
        async () => {
          const r = await api<{ rows: Row[] }>(
            `/v1/overview?group_by=service&source=raw&from=${encodeURIComponent(from)}&to=now`,
          );
          expect(r.status).toBe(200);
          expect(
            r.body.rows
              .map((row) => ({ service: row.service, requests: row.requests }))
              .sort((a, b) => a.service.localeCompare(b.service)),
          ).toEqual([
            { service: PROXY_SERVICE, requests: REQUESTS },
            { service: APP_SERVICE, requests: REQUESTS },
          ]);
        },
        { timeout: 30_000, interval: 500 },
      );
    },
    120_000,
  );

  it('no canary secret reaches the event log, the store or any service log', async () => {
    // Every exporter's requests: five spans each (the proxy's two, the app's three).
    const logged = await d.loggedText(EXPORTERS.length * REQUESTS * 5);
    expect(logged.length).toBeGreaterThan(0);
    expect(logged).toContain(APP_SERVICE);
    expect(logged).not.toContain(canary);
    await d.stop();
    const stored = await d.storedText();
    expect(stored).toContain('load-order');
    expect(stored).not.toContain(canary);
    for (const proc of d.processes) {
      expect(proc.output().length).toBeGreaterThan(0);
      expect(proc.output()).not.toContain(canary);
    }
  }, 120_000);
});
