/**
 * SLO benchmark: ≥ 10M access-log rows over 4 days are generated inside ClickHouse (INSERT …
 * SELECT FROM numbers(), so the materialized views fill slo_counts_1m/_1h as ingest would), then
 * 50 SLOs of varied selectors and SLIs are (a) answered by `GET /v1/slos` through the real HTTP API
 * — or, while that route is not in this build, by evaluateSlos (one batched count for all 50)
 * through the Store; evaluateSlo per SLO, 8 at a time, is timed too — with `GET /v1/overview`
 * over 24 h on the same data as the baseline; and (b) evaluated by the alerter (its generated burn-rate alerts, one round as every
 * 30 s), measuring the CPU the process spends per round, with 50 ordinary rules as the baseline.
 * Prints one JSON report.
 *
 *   npm run bench:slo          (needs `tapwire infra up`; BENCH_ROWS, BENCH_ITERATIONS, BENCH_ROUNDS to change)
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { buildAlerter, createAlerterMetrics } from '@tapwire/alerter';
import { alertingConfigSchema, evaluateSlo, evaluateSlos, type RuleGroup } from '@tapwire/alerting';
import { createClickHouseStore } from '@tapwire/analytics';
import { apiConfigSchema, buildApi } from '@tapwire/api';
import { type ClickHouse, createClickHouse, identifier, migrate, raw, sql } from '@tapwire/clickhouse';
import { clickhouseConfigSchema, hashToken, infraConfigSchema, loadConfig } from '@tapwire/config';
import { clickhouseUrl } from '@tapwire/infra';
import { createLogger } from '@tapwire/telemetry';
import { request } from 'undici';
import { z } from 'zod';
import { createMemorySink } from '../../support/memory-sink.js';
import { generateAccessLogs } from '../generate-access-logs.js';
import { latencySummary as summary } from '../latency-summary.js';

const MIGRATIONS = fileURLToPath(new URL('../../../migrations', import.meta.url));
const ROWS = Number(process.env.BENCH_ROWS ?? 10_000_000);
const ITERATIONS = Number(process.env.BENCH_ITERATIONS ?? 20);
const ROUNDS = Number(process.env.BENCH_ROUNDS ?? 8);
const SLO_COUNT = 50;
const API_CONCURRENCY = 8;
const EVALUATION_INTERVAL_S = 30;
const TARGET_P95_MS = 150;
const TARGET_CORE_SHARE = 0.1;
const logger = createLogger({ name: 'bench-slo', level: 'silent' });
// 5% 503, 1% 429 (ignored by some SLOs), 4% 404, the rest 200.
const STATUS_SQL =
  'toUInt16(multiIf(cityHash64(number, 5) % 100 < 5, 503, cityHash64(number, 5) % 100 < 6, 429, cityHash64(number, 5) % 100 < 10, 404, 200))';
const ALERTER_OPTIONS = {
  apiUrl: 'http://127.0.0.1:8081',
  dashboardUrl: 'http://127.0.0.1:3000/d/tapwire-slo',
  dispatchTickMs: 1000,
  retry: { maxAttempts: 1, initialBackoffMs: 1, maxBackoffMs: 1 },
};

const infra = loadConfig(z.object({ infra: infraConfigSchema }), {}).infra;
const database = `tapwire_bench_slo_${Date.now().toString(36)}`;
const chConfig = clickhouseConfigSchema.parse({
  url: clickhouseUrl(infra),
  database,
  requestTimeoutMs: 600_000,
});
const DAY_S = 86_400;
const SPAN_S = 4 * DAY_S;
// The data ends at the last whole minute, so every window ending now reads all of it.
const END = Math.floor(Date.now() / 60_000) * 60;
const START = END - SPAN_S;

/**
 * sloFile declares 50 SLOs, ten of each shape: a service's availability, a route's availability
 * (429 ignored), a route's latency (thresholds off the histogram edges), a service's GET latency
 * over 7d, and a consumer's availability or latency (the latter reads raw minutes at the edges).
 */
function slos(): Record<string, unknown>[] {
  return Array.from({ length: SLO_COUNT }, (_, i) => {
    const service = `svc-${i % 10}`;
    const route = `/api/v1/r${i % 5}/:id`;
    const consumer = `key-${(i * 7) % 200}`;
    const name = `slo-${i}`;
    switch (i % 5) {
      case 0:
        return { name, selector: { service }, sli: { kind: 'availability' }, objective: 99.9 };
      case 1:
        return {
          name,
          selector: { service, route },
          sli: { kind: 'availability', bad_statuses: ['5xx'], ignored_statuses: [429] },
          objective: 99.5,
          window: '30d',
        };
      case 2:
        return {
          name,
          selector: { service, route },
          sli: { kind: 'latency', threshold_ms: 100 + 37 * i },
          objective: 99,
        };
      case 3:
        return {
          name,
          selector: { service, method: 'GET' },
          sli: { kind: 'latency', threshold_ms: 250 },
          objective: 95,
          window: '7d',
        };
      default:
        return i % 2 === 0
          ? { name, selector: { consumer }, sli: { kind: 'availability' }, objective: 99 }
          : { name, selector: { consumer }, sli: { kind: 'latency', threshold_ms: 300 }, objective: 99 };
    }
  });
}

/** serverCpuMs is the CPU ClickHouse's query threads have used since it started (every client's). */
async function serverCpuMs(ch: ClickHouse): Promise<number> {
  const rows = await ch.query<{ us: string }>(
    raw(
      "SELECT sum(value) AS us FROM system.events WHERE event IN ('UserTimeMicroseconds', 'SystemTimeMicroseconds')",
    ),
  );
  return Number(rows[0]?.us ?? 0) / 1000;
}

const coreShare = (cpuMsPerRound: number) =>
  Math.round((cpuMsPerRound / (EVALUATION_INTERVAL_S * 1000)) * 10_000) / 10_000;

/**
 * cpuRounds runs `round` n times after one warm-up and reports, per round, wall time, the CPU
 * this process used and the CPU ClickHouse's query threads used (server-wide: other clients
 * count too, so run it on a quiet server), and each as a share of one core at one round per 30 s.
 */
async function cpuRounds(ch: ClickHouse, n: number, round: () => Promise<void>) {
  await round();
  const wall: number[] = [];
  const server = await serverCpuMs(ch);
  const cpu = process.cpuUsage();
  let statements = 0;
  for (let i = 0; i < n; i++) {
    const before = statementCount;
    const started = performance.now();
    await round();
    wall.push(performance.now() - started);
    statements = statementCount - before;
  }
  const used = process.cpuUsage(cpu);
  const cpuMsPerRound = (used.user + used.system) / 1000 / n;
  const serverMsPerRound = ((await serverCpuMs(ch)) - server) / n;
  return {
    rounds: n,
    statements_per_round: statements,
    wall: summary(wall),
    cpu_ms_per_round: Math.round(cpuMsPerRound * 10) / 10,
    core_share_at_30s: coreShare(cpuMsPerRound),
    clickhouse_cpu_ms_per_round: Math.round(serverMsPerRound * 10) / 10,
    clickhouse_core_share_at_30s: coreShare(serverMsPerRound),
  };
}

/** statementCount counts the statements the Store has sent; recent holds the last ones' times. */
let statementCount = 0;
const recent: { ms: number; sql: string }[] = [];

async function main(): Promise<void> {
  await migrate(chConfig, { dir: MIGRATIONS, lockSettleMs: 100 });
  const ch = createClickHouse(chConfig);

  // 1. The API benchmark's traffic (generate-access-logs.ts) over 4 days, with 1% of it 429.
  const loadStarted = performance.now();
  await generateAccessLogs(ch, { rows: ROWS, start: START, spanS: SPAN_S, statusSql: STATUS_SQL });
  const loadS = (performance.now() - loadStarted) / 1000;
  // Background merges would have folded the days' parts by now; do it up front so runs compare.
  for (const table of ['route_histogram_1m', 'route_histogram_1h', 'slo_counts_1m', 'slo_counts_1h'])
    await ch.command(sql`OPTIMIZE TABLE ${identifier(table)} FINAL`);
  const rollupRows = Object.fromEntries(
    await Promise.all(
      ['slo_counts_1m', 'slo_counts_1h'].map(async (t) => {
        const [r] = await ch.query<{ n: string }>(sql`SELECT count() AS n FROM ${identifier(t)}`);
        return [t, Number(r?.n ?? 0)] as const;
      }),
    ),
  );

  const dir = mkdtempSync(join(tmpdir(), 'tapwire-bench-slo-'));
  const alertingFile = join(dir, 'alerting.yaml');
  const alerting = {
    route: { receiver: 'hook' },
    receivers: [{ name: 'hook', webhook: { url: 'http://127.0.0.1:9/unused' } }],
    slos: slos(),
  };
  // JSON is YAML: the API reads it as the alerting file.
  writeFileSync(alertingFile, JSON.stringify(alerting));
  const config = alertingConfigSchema.parse(alerting);
  const store = createClickHouseStore(createClickHouse(chConfig), {
    maxExecutionTimeS: 60,
    maxResultRows: 1_000_000,
    onQuery: (e) => {
      statementCount++;
      recent.push({ ms: e.ms, sql: e.sql });
    },
  });

  // 2. (a) The API over real HTTP, answer cache off (every request reaches ClickHouse).
  const token = 'bench-token';
  const api = await buildApi(
    { store, logger },
    apiConfigSchema.parse({
      tokens: [{ name: 'bench', sha256: hashToken(token), tenant: '*' }],
      cacheTtlMs: 0,
      rateLimit: { max: 1_000_000 },
      alertingFile,
    }),
  );
  const base = await api.app.listen({ host: '127.0.0.1', port: 0 });
  const get = async (path: string) => {
    const res = await request(`${base}${path}`, { headers: { authorization: `Bearer ${token}` } });
    const body = await res.body.text();
    return { status: res.statusCode, body };
  };
  const window = `from=${new Date((END - DAY_S) * 1000).toISOString()}&to=${new Date(END * 1000).toISOString()}`;
  const probe = await get('/v1/slos');
  const route = probe.status === 200;
  if (route && (JSON.parse(probe.body) as { slos: unknown[] }).slos.length !== SLO_COUNT)
    throw new Error(`GET /v1/slos answered ${probe.body.slice(0, 300)}`);
  /** evaluateAll counts every SLO on its own through the Store, 8 at a time. */
  const evaluateAll = async () => {
    const queue = [...config.slos];
    const now = Date.now();
    await Promise.all(
      Array.from({ length: API_CONCURRENCY }, async () => {
        for (let s = queue.shift(); s; s = queue.shift()) await evaluateSlo(store, { tenant: null }, s, now);
      }),
    );
  };
  const scenarios: Record<string, () => Promise<void>> = {
    overview_24h: async () => {
      const r = await get(`/v1/overview?${window}&group_by=route&sort=p99&limit=50`);
      if (r.status !== 200) throw new Error(`overview: HTTP ${r.status} ${r.body.slice(0, 300)}`);
    },
    // All 50 in one sloCountsMany call (each data level read once for all), as the alerter does.
    slos_evaluate_slos_batched: async () => {
      recent.length = 0;
      await evaluateSlos(store, { tenant: null }, config.slos, Date.now());
    },
    slos_evaluate_slo_x50_8_at_a_time: evaluateAll,
    ...(route
      ? {
          slos_api: async () => {
            const r = await get('/v1/slos');
            if (r.status !== 200) throw new Error(`slos: HTTP ${r.status} ${r.body.slice(0, 300)}`);
          },
        }
      : {}),
  };
  const latency: Record<string, ReturnType<typeof summary>> = {};
  const lastBatch: typeof recent = [];
  for (const [name, run] of Object.entries(scenarios)) {
    const ms: number[] = [];
    for (let i = 0; i < ITERATIONS + 2; i++) {
      const started = performance.now();
      await run();
      if (i >= 2) ms.push(performance.now() - started);
    }
    latency[name] = summary(ms);
    if (name === 'slos_evaluate_slos_batched') lastBatch.push(...recent);
  }
  await api.app.close();
  // The statements of the last batched count: which table each read and how long it took.
  const batchedStatements = lastBatch.map((r) => ({
    ms: Math.round(r.ms * 10) / 10,
    table: /FROM\s+`?(\w+)/.exec(r.sql)?.[1] ?? '?',
    branches: r.sql.split('UNION ALL').length,
  }));

  // 3. (b) The alerter: one round evaluates every SLO's burn-rate alerts (one sloCounts call per
  //    SLO, all at once) and dispatches; the baseline round evaluates 50 ordinary rules.
  const alerter = buildAlerter(
    { store, slos: store, sink: createMemorySink(), logger, metrics: createAlerterMetrics() },
    config,
    ALERTER_OPTIONS,
  );
  const sloCpu = await cpuRounds(ch, ROUNDS, async () => {
    await alerter.evaluateSlos();
    await alerter.dispatch();
  });
  await alerter.close();
  const rules = alertingConfigSchema.parse({
    groups: [
      {
        name: 'baseline',
        rules: Array.from({ length: SLO_COUNT }, (_, i) => ({
          id: `r${i}`,
          alert: `Rule${i}`,
          kind: (['error_rate', 'latency_quantile'] as const)[i % 2],
          quantile: 0.99,
          filters: { service: `svc-${i % 10}`, route: `/api/v1/r${i % 5}/:id` },
          group_by: ['service', 'route'],
          window: '1h',
          threshold: 1_000_000,
        })),
      },
    ],
    route: { receiver: 'hook' },
    receivers: [{ name: 'hook', webhook: { url: 'http://127.0.0.1:9/unused' } }],
  });
  const plain = buildAlerter(
    { store, sink: createMemorySink(), logger, metrics: createAlerterMetrics() },
    rules,
    ALERTER_OPTIONS,
  );
  const ruleCpu = await cpuRounds(ch, ROUNDS, async () => {
    await plain.evaluateGroup(rules.groups[0] as RuleGroup);
    await plain.dispatch();
  });
  await plain.close();

  await store.close();
  rmSync(dir, { recursive: true, force: true });
  const [count] = await ch.query<{ n: string }>(raw('SELECT count() AS n FROM access_logs'));
  if (!process.env.BENCH_KEEP_DATABASE)
    await ch.command(sql`DROP DATABASE IF EXISTS ${identifier(database)}`);
  await ch.close();

  const sloLatency = latency.slos_api ?? latency.slos_evaluate_slos_batched;
  process.stdout.write(
    `${JSON.stringify(
      {
        benchmark: 'slo',
        rows: Number(count?.n ?? 0),
        span_days: SPAN_S / DAY_S,
        load_seconds: Math.round(loadS * 10) / 10,
        rollup_rows: rollupRows,
        slos: SLO_COUNT,
        iterations: ITERATIONS,
        // GET /v1/slos when this build has the route; evaluateSlos (one batched count) otherwise.
        slos_measured_by: route
          ? 'GET /v1/slos'
          : 'evaluateSlos of all 50 through the Store (no /v1/slos route)',
        latency,
        batched_statements: batchedStatements,
        alerter_slo_rounds: sloCpu,
        alerter_baseline_50_rules: ruleCpu,
        targets: {
          slos_p95_le_150ms: (sloLatency?.p95_ms ?? Number.POSITIVE_INFINITY) <= TARGET_P95_MS,
          alerter_le_10pct_of_a_core: sloCpu.core_share_at_30s <= TARGET_CORE_SHARE,
        },
      },
      null,
      2,
    )}\n`,
  );
}

main().catch((err) => {
  process.stderr.write(`slo benchmark failed: ${err instanceof Error ? err.stack : String(err)}\n`);
  process.exit(1);
});
