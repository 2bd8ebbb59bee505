/**
 * Analytics API benchmark: ≥ 10M access-log rows over 24 h are generated inside ClickHouse
 * (INSERT … SELECT FROM numbers(), so the materialized views fill the rollups as ingest would),
 * then the overview, a route's series and a log search are timed through the real HTTP API,
 * and the exact SQL each request ran is timed directly on ClickHouse in the same run. Prints one
 * JSON report with p50/p95 of both and the API's overhead.
 *
 *   npm run bench:api          (needs `tapwire infra up`; BENCH_ROWS, BENCH_ITERATIONS to change)
 */
import { fileURLToPath } from 'node:url';
import { createClickHouseStore } from '@tapwire/analytics';
import { apiConfigSchema, buildApi } from '@tapwire/api';
import { createClickHouse, identifier, migrate, raw, sql } from '@tapwire/clickhouse';
import { clickhouseConfigSchema, hashToken, infraConfigSchema, loadConfig } from '@tapwire/config';
import { clickhouseUrl } from '@tapwire/infra';
import { createLogger } from '@tapwire/telemetry';
import { request } from 'undici';
import { z } from 'zod';
import { generateAccessLogs } from '../generate-access-logs.js';
import { latencySummary as summary } from '../latency-summary.js';

const MIGRATIONS = fileURLToPath(new URL('../../../migrations', import.meta.url));
const ROWS = Number(process.env.BENCH_ROWS ?? 10_000_000);
const ITERATIONS = Number(process.env.BENCH_ITERATIONS ?? 40);
const TARGET_P95_MS = 150;
const TARGET_OVERHEAD_MS = 10;

const infra = loadConfig(z.object({ infra: infraConfigSchema }), {}).infra;
const database = `tapwire_bench_api_${Date.now().toString(36)}`;
const chConfig = clickhouseConfigSchema.parse({
  url: clickhouseUrl(infra),
  database,
  requestTimeoutMs: 600_000,
});
const DAY_S = 86_400;
// The 24 h window ends at the last whole minute, so relative queries see all of it.
const END = Math.floor(Date.now() / 60_000) * 60;
const START = END - DAY_S;

async function main(): Promise<void> {
  await migrate(chConfig, { dir: MIGRATIONS, lockSettleMs: 100 });
  const ch = createClickHouse(chConfig);

  // 1. Ten services × five routes, lognormal latency (median 20-200 ms by route), 5% 5xx, 5% 4xx,
  //    200 consumers, rows evenly over the 24 h. Generated server-side in chunks of 1M rows.
  const loadStarted = performance.now();
  await generateAccessLogs(ch, { rows: ROWS, start: START, spanS: DAY_S });
  const loadS = (performance.now() - loadStarted) / 1000;
  // Background merges would have folded a day's parts by now; do it up front so runs compare.
  for (const table of ['route_histogram_1m', 'route_histogram_1h'])
    await ch.command(sql`OPTIMIZE TABLE ${identifier(table)} FINAL`);

  // 2. The API over real HTTP, answer cache off (every request reaches ClickHouse).
  const statements: string[] = [];
  const store = createClickHouseStore(createClickHouse(chConfig), {
    maxExecutionTimeS: 60,
    maxResultRows: 1_000_000,
    onQuery: (e) => {
      statements.push(e.sql);
    },
  });
  const token = 'bench-token';
  const api = await buildApi(
    { store, logger: createLogger({ name: 'bench', level: 'warn' }) },
    apiConfigSchema.parse({
      tokens: [{ name: 'bench', sha256: hashToken(token), tenant: '*' }],
      cacheTtlMs: 0,
      rateLimit: { max: 1_000_000 },
    }),
  );
  const base = await api.app.listen({ host: '127.0.0.1', port: 0 });
  const window = `from=${new Date(START * 1000).toISOString()}&to=${new Date(END * 1000).toISOString()}`;
  const scenarios = {
    overview_24h: `/v1/overview?${window}&group_by=route&sort=p99&limit=50`,
    route_series_24h: `/v1/series?${window}&service=svc-3&route=/api/v1/r3/:id&quantiles=0.5,0.9,0.99`,
    log_search_24h: `/v1/logs?${window}&service=svc-1&status=503&limit=100`,
  };
  const report: Record<string, unknown> = {};
  for (const [name, path] of Object.entries(scenarios)) {
    const apiMs: number[] = [];
    const directMs: number[] = [];
    let sqlOfRequest: string[] = [];
    // API request and its own SQL sent straight to ClickHouse alternate, so background merges
    // and caches affect both sides alike.
    for (let i = 0; i < ITERATIONS + 3; i++) {
      statements.length = 0;
      const started = performance.now();
      const res = await request(`${base}${path}`, { headers: { authorization: `Bearer ${token}` } });
      const body = await res.body.text();
      const ms = performance.now() - started;
      if (res.statusCode !== 200) throw new Error(`${name}: HTTP ${res.statusCode} ${body.slice(0, 300)}`);
      sqlOfRequest = [...statements];
      if (i === 0 && process.env.BENCH_PRINT_SQL)
        process.stderr.write(`${name}:\n${sqlOfRequest.join(';\n')}\n`);
      const directStarted = performance.now();
      for (const s of sqlOfRequest) await ch.query(raw(s), { readonly: 2 });
      const direct = performance.now() - directStarted;
      if (i >= 3) {
        apiMs.push(ms);
        directMs.push(direct);
      }
    }
    const a = summary(apiMs);
    const d = summary(directMs);
    report[name] = {
      api: a,
      direct_sql: d,
      statements: sqlOfRequest.length,
      overhead_p50_ms: Math.round((a.p50_ms - d.p50_ms) * 10) / 10,
      overhead_p95_ms: Math.round((a.p95_ms - d.p95_ms) * 10) / 10,
    };
  }
  await api.app.close();
  await store.close();
  const [count] = await ch.query<{ n: string }>(raw('SELECT count() AS n FROM access_logs'));
  if (!process.env.BENCH_KEEP_DATABASE)
    await ch.command(sql`DROP DATABASE IF EXISTS ${identifier(database)}`);
  await ch.close();

  const overview = report.overview_24h as { api: { p95_ms: number }; overhead_p50_ms: number };
  const series = report.route_series_24h as { api: { p95_ms: number }; overhead_p50_ms: number };
  const logs = report.log_search_24h as { overhead_p50_ms: number };
  process.stdout.write(
    `${JSON.stringify(
      {
        benchmark: 'api',
        rows: Number(count?.n ?? 0),
        window_hours: 24,
        load_seconds: Math.round(loadS * 10) / 10,
        iterations: ITERATIONS,
        ...report,
        targets: {
          overview_p95_le_150ms: overview.api.p95_ms <= TARGET_P95_MS,
          series_p95_le_150ms: series.api.p95_ms <= TARGET_P95_MS,
          overhead_le_10ms:
            Math.max(overview.overhead_p50_ms, series.overhead_p50_ms, logs.overhead_p50_ms) <=
            TARGET_OVERHEAD_MS,
        },
      },
      null,
      2,
    )}\n`,
  );
}

main().catch((err) => {
  process.stderr.write(`api benchmark failed: ${err instanceof Error ? err.stack : String(err)}\n`);
  process.exit(1);
});
