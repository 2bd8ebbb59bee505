/**
 * Embedded benchmark: the same traffic through the embedded deployment (embedded log + DuckDB)
 * and the distributed one (Kafka + ClickHouse), in the same run. For each, BENCH_REQUESTS proxied
 * requests (1M by default) become their events — an access log, a SERVER and a CLIENT span each —
 * emitted through the deployment's EventSink while ingest runs, timed until every row is stored
 * (end-to-end events/s); then the analytics API is timed on the result (p50/p95 per question).
 * Each deployment runs in its own child process, so peak RSS is its own (with the JavaScript heap
 * and, embedded, DuckDB's own count at that peak). DuckDB runs with the `store` settings as
 * `tapwire start` would (defaults, or TAPWIRE_STORE_MEMORY_LIMIT / TAPWIRE_STORE_THREADS). Prints
 * one JSON report.
 *
 *   npm run bench:embedded          (the distributed half needs `tapwire infra up`)
 *   BENCH_REQUESTS=200000 npm run bench:embedded -- embedded     (one half, fewer requests)
 */
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { createClickHouseStore, createDuckDbStore, type Store } from '@tapwire/analytics';
import { apiConfigSchema, buildApi } from '@tapwire/api';
import { createClickHouse, identifier, migrate, raw, sql } from '@tapwire/clickhouse';
import {
  clickhouseConfigSchema,
  hashToken,
  infraConfigSchema,
  kafkaConfigSchema,
  loadConfig,
  storeConfigSchema,
} from '@tapwire/config';
import { raw as duckRaw, openDuckDb } from '@tapwire/duckdb';
import { clickhouseUrl, kafkaBrokers } from '@tapwire/infra';
import {
  buildIngest,
  clickhouseWarehouse,
  duckdbWarehouse,
  ingestConfigSchema,
  type Warehouse,
} from '@tapwire/ingest';
import { createKafkaClient, ensureTopics, kafkaSource, topicSpecs } from '@tapwire/kafka';
import { fileLogSource, openFileLog } from '@tapwire/log';
import { TOPICS } from '@tapwire/schema';
import type { EventLog } from '@tapwire/stream';
import { createLogger } from '@tapwire/telemetry';
import { z } from 'zod';
import { exampleAccessLog, exampleSpan, hex } from '../../support/events.js';

const ROOT = fileURLToPath(new URL('../../..', import.meta.url));
const REQUESTS = Number(process.env.BENCH_REQUESTS ?? 1_000_000);
const API_ITERATIONS = Number(process.env.BENCH_API_ITERATIONS ?? 30);
const quiet = { error() {}, warn() {}, info() {}, debug() {} };
const logger = createLogger({ name: 'bench-embedded', level: 'warn' });
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

type Kind = 'embedded' | 'distributed';

interface Deployment {
  log: EventLog;
  /** Topic prefix ingest reads (Kafka topics are this run's own). */
  prefix: string;
  warehouse: Warehouse;
  store: Store;
  stored(): Promise<number>;
  /** Bytes the embedded database says it holds (duckdb_memory()); undefined for ClickHouse. */
  duckdbBytes?(): Promise<number>;
  /** The store settings used, for the report. */
  settings?: Record<string, unknown>;
  close(): Promise<void>;
}

async function open(kind: Kind): Promise<Deployment> {
  const stamp = Date.now().toString(36);
  if (kind === 'embedded') {
    const dir = mkdtempSync(join(tmpdir(), 'tapwire-bench-embedded-'));
    const fileLog = await openFileLog({ dir: join(dir, 'log') });
    const store = loadConfig(z.object({ store: storeConfigSchema }), {}).store;
    const db = await openDuckDb({
      path: join(dir, 'tapwire.duckdb'),
      threads: store.threads,
      memoryLimit: store.memoryLimit,
    });
    return {
      log: fileLogSource(fileLog, quiet),
      prefix: '',
      warehouse: duckdbWarehouse(db),
      store: createDuckDbStore(db, { maxExecutionTimeS: 60, maxResultRows: 100_000 }),
      async stored() {
        const [r] = await db.query<{ n: string }>(
          duckRaw('SELECT (SELECT count(*) FROM access_logs) + (SELECT count(*) FROM spans) AS n'),
        );
        return Number(r?.n ?? 0);
      },
      async duckdbBytes() {
        const [r] = await db.query<{ b: string }>(
          duckRaw('SELECT sum(memory_usage_bytes) AS b FROM duckdb_memory()'),
        );
        return Number(r?.b ?? 0);
      },
      settings: { memory_limit: store.memoryLimit, threads: store.threads },
      async close() {
        await db.close();
        await fileLog.close();
        // The log and the database of 1M requests take about 1.7 GB.
        rmSync(dir, { recursive: true, force: true });
      },
    };
  }
  const infra = loadConfig(z.object({ infra: infraConfigSchema }), {}).infra;
  const kafka = createKafkaClient(kafkaConfigSchema.parse({ brokers: kafkaBrokers(infra) }), quiet, 'bench');
  const prefix = `bench_e2e_${stamp}.`;
  await ensureTopics(kafka, topicSpecs(kafkaConfigSchema.parse({}).topics, prefix));
  const chConfig = clickhouseConfigSchema.parse({
    url: clickhouseUrl(infra),
    database: `tapwire_bench_e2e_${stamp}`,
  });
  await migrate(chConfig, { dir: join(ROOT, 'migrations'), lockSettleMs: 100 });
  const ch = createClickHouse(chConfig);

  return {
    log: kafkaSource({ kafka, logger: quiet }),
    warehouse: clickhouseWarehouse(ch),
    store: createClickHouseStore(ch, { maxExecutionTimeS: 60, maxResultRows: 100_000 }),
    prefix,
    async stored() {
      const [r] = await ch.query<{ n: string }>(
        raw('SELECT (SELECT count() FROM access_logs) + (SELECT count() FROM spans) AS n'),
      );
      return Number(r?.n ?? 0);
    },
    async close() {
      await ch.command(sql`DROP DATABASE IF EXISTS ${identifier(chConfig.database)}`);
      await ch.close();
      const admin = kafka.admin();
      await admin.connect();
      const topics = (await admin.listTopics()).filter((t) => t.startsWith(prefix));
      await admin.deleteTopics({ topics }).catch(() => {});
      await admin.disconnect();
    },
  };
}

function percentile(sorted: readonly number[], q: number): number {
  const i = Math.min(sorted.length - 1, Math.max(0, Math.ceil(q * sorted.length) - 1));
  return Math.round((sorted[i] ?? 0) * 10) / 10;
}

/** runOne measures one deployment (in this process) and prints its JSON result. */
async function runOne(kind: Kind): Promise<void> {
  const d = await open(kind);
  const prefix = d.prefix;
  const dlq = d.log.sink({
    lingerMs: 20,
    maxBatchEvents: 500,
    maxBufferedEvents: 10_000,
    retryBackoffMs: 100,
    topicPrefix: prefix,
  });
  const ingest = buildIngest(
    { source: d.log, warehouse: d.warehouse, dlq, logger },
    ingestConfigSchema.parse({
      groupId: `tapwire-ingest-bench-${Date.now().toString(36)}`,
      topicPrefix: prefix,
      admin: { port: 0 },
      retention: { enabled: false },
    }),
  );
  await ingest.start();
  const sink = d.log.sink({
    lingerMs: 20,
    maxBatchEvents: 5000,
    maxBufferedEvents: 100_000,
    retryBackoffMs: 100,
    topicPrefix: prefix,
    validate: false,
  });
  const events = REQUESTS * 3;
  const routes = ['/users/:id', '/orders/:id', '/search', '/cart', '/login'];
  const now = Date.now() * 1000;
  const started = performance.now();
  const peak = { rss: 0, heap: 0, duckdb: 0 };
  let sampling = false;
  const rssTimer = setInterval(() => {
    if (sampling) return;
    sampling = true;
    void (async () => {
      const duckdb = (await d.duckdbBytes?.().catch(() => 0)) ?? 0;
      const m = process.memoryUsage();
      if (m.rss > peak.rss) Object.assign(peak, { rss: m.rss, heap: m.heapUsed, duckdb });
    })().finally(() => {
      sampling = false;
    });
  }, 200);
  const emit = async (topic: (typeof TOPICS)[keyof typeof TOPICS], event: unknown) => {
    while (!sink.emit(topic as typeof TOPICS.spans, event as never)) await sleep(2);
  };
  for (let i = 0; i < REQUESTS; i++) {
    // In arrival order over the last hour, as a proxy emits them (with a little jitter).
    const ts = now - 3_600_000_000 + Math.floor(((i + Math.random()) * 3_600_000_000) / REQUESTS);
    const trace = hex(16);
    const server = hex(8);
    const duration = Math.random() * 200;
    const route = routes[i % 5]!;
    await emit(
      TOPICS.accessLogs,
      exampleAccessLog({
        ts,
        trace_id: trace,
        span_id: server,
        route,
        duration_ms: duration,
        status: i % 20 === 0 ? 500 : 200,
      }),
    );
    await emit(
      TOPICS.spans,
      exampleSpan({ ts, start: ts, trace_id: trace, span_id: server, name: `GET ${route}` }),
    );
    await emit(
      TOPICS.spans,
      exampleSpan({
        ts: ts + 100,
        start: ts + 100,
        trace_id: trace,
        parent_span_id: server,
        kind: 'CLIENT',
        name: 'GET',
      }),
    );
    if (i % 5000 === 0) await new Promise((r) => setImmediate(r));
  }
  if (process.env.BENCH_DEBUG) process.stderr.write(`emitted ${JSON.stringify(sink.stats())}\n`);
  await sink.flush();
  const producedMs = performance.now() - started;
  let stored = 0;
  while (stored < events) {
    await sleep(250);
    stored = await d.stored();
    if (process.env.BENCH_DEBUG)
      process.stderr.write(`stored ${stored}/${events} ${JSON.stringify(ingest.pipeline.stats())}\n`);
  }
  const endToEndMs = performance.now() - started;
  await ingest.close();
  await sink.close();
  await dlq.close();

  const token = `tw_bench_${hex(8)}`;
  const api = await buildApi(
    { store: d.store, logger, silences: { list: async () => [], put: async () => {} } },
    apiConfigSchema.parse({
      tokens: [{ name: 'bench', sha256: hashToken(token), tenant: '*' }],
      cacheTtlMs: 0,
      rateLimit: { max: 1_000_000 },
    }),
  );
  const from = new Date(Math.floor(now / 1000) - 3_600_000).toISOString();
  const to = new Date(now / 1000 + 60_000).toISOString();
  const window = `from=${from}&to=${to}`;
  const scenarios: Record<string, string> = {
    overview_by_route: `/v1/overview?${window}&group_by=route&sort=p99`,
    route_series: `/v1/series?${window}&route=/orders/:id&quantiles=0.5,0.9,0.99`,
    log_search_5xx: `/v1/logs?${window}&status=500&limit=100`,
    consumers: `/v1/consumers?${window}`,
  };
  const apiResult: Record<string, { p50_ms: number; p95_ms: number }> = {};
  const all: number[] = [];
  for (const [name, url] of Object.entries(scenarios)) {
    const ms: number[] = [];
    for (let i = 0; i < API_ITERATIONS; i++) {
      const t = performance.now();
      const res = await api.app.inject({ method: 'GET', url, headers: { authorization: `Bearer ${token}` } });
      if (res.statusCode !== 200)
        throw new Error(`${name}: HTTP ${res.statusCode} ${res.body.slice(0, 300)}`);
      ms.push(performance.now() - t);
    }
    ms.sort((a, b) => a - b);
    all.push(...ms);
    apiResult[name] = { p50_ms: percentile(ms, 0.5), p95_ms: percentile(ms, 0.95) };
  }
  all.sort((a, b) => a - b);
  clearInterval(rssTimer);
  await api.app.close();
  await d.close();
  process.stdout.write(
    `${JSON.stringify({
      deployment: kind,
      requests: REQUESTS,
      events,
      produce_events_per_s: Math.round(events / (producedMs / 1000)),
      end_to_end_events_per_s: Math.round(events / (endToEndMs / 1000)),
      end_to_end_s: Math.round(endToEndMs / 100) / 10,
      api_p95_ms: percentile(all, 0.95),
      api: apiResult,
      peak_rss_mb: Math.round(Math.max(peak.rss, process.memoryUsage().rss) / 1e5) / 10,
      // At the RSS peak: the JavaScript heap in use and what DuckDB counts as its own.
      at_peak: {
        heap_used_mb: Math.round(peak.heap / 1e5) / 10,
        ...(d.duckdbBytes ? { duckdb_mb: Math.round(peak.duckdb / 1e5) / 10 } : {}),
      },
      ...(d.settings ? { store: d.settings } : {}),
    })}\n`,
  );
}

function child(kind: Kind): Record<string, unknown> {
  const r = spawnSync(process.execPath, ['--import', 'tsx', fileURLToPath(import.meta.url), kind], {
    cwd: ROOT,
    env: { ...process.env, TSX_TSCONFIG_PATH: join(ROOT, 'tsconfig.json') },
    encoding: 'utf8',
    stdio: ['ignore', 'pipe', 'inherit'],
    maxBuffer: 16 * 1024 * 1024,
  });
  const line = r.stdout.trim().split('\n').pop() ?? '';
  try {
    return JSON.parse(line) as Record<string, unknown>;
  } catch {
    return { deployment: kind, error: `exit ${r.status}: ${r.stdout.slice(-500)}` };
  }
}

async function main(): Promise<void> {
  const arg = process.argv[2];
  if (arg === 'embedded' || arg === 'distributed') {
    await runOne(arg);
    process.exit(0);
  }
  const embedded = child('embedded');
  const distributed = child('distributed');
  const ratio = (key: string) =>
    typeof embedded[key] === 'number' &&
    typeof distributed[key] === 'number' &&
    (distributed[key] as number) > 0
      ? Math.round(((embedded[key] as number) / (distributed[key] as number)) * 100) / 100
      : null;
  const report = {
    benchmark: 'embedded',
    machine: { cpus: (await import('node:os')).cpus().length, node: process.version },
    embedded,
    distributed,
    embedded_vs_distributed: {
      end_to_end_events_per_s: ratio('end_to_end_events_per_s'),
      api_p95_ms: ratio('api_p95_ms'),
      peak_rss_mb: ratio('peak_rss_mb'),
    },
  };
  process.stdout.write(`${JSON.stringify(report, null, 2)}\n`);
}

main().catch((err: unknown) => {
  process.stderr.write(`${(err as Error).stack ?? String(err)}\n`);
  process.exit(1);
});
