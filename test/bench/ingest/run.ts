/**
 * Ingest benchmark: a backlog of ≥ 1M events (access logs and spans) is produced to fresh topics,
 * then `tapwire ingest` (a separate process) drains it into ClickHouse; in the same run the same
 * rows are bulk-inserted by clickhouse-client from a file into a second database (same tables and
 * materialized views) to measure ClickHouse's own ceiling. Prints one JSON report.
 *
 * `pipeline.eventsPerSecond` is the sustained rate: rows stored from the first count at or past a
 * tenth of the backlog to the last row. `endToEndEventsPerSecond` also counts process start-up and
 * the consumer group join.
 *
 *   npm run bench:ingest          (needs `tapwire infra up`)
 */
import { spawn, spawnSync } from 'node:child_process';
import { createWriteStream, mkdtempSync, readFileSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { createClickHouse, identifier, migrate, raw, sql } from '@tapwire/clickhouse';
import { clickhouseConfigSchema, infraConfigSchema, kafkaConfigSchema, loadConfig } from '@tapwire/config';
import { clickhouseUrl, kafkaBrokers } from '@tapwire/infra';
import { createKafkaClient, createKafkaEventSink, ensureTopics, topicSpecs } from '@tapwire/kafka';
import { TOPICS } from '@tapwire/schema';
import { z } from 'zod';
import { exampleAccessLog, exampleSpan, hex } from '../../support/events.js';

const ROOT = fileURLToPath(new URL('../../..', import.meta.url));
const MIGRATIONS = join(ROOT, 'migrations');
const ACCESS = Number(process.env.BENCH_ACCESS_EVENTS ?? 600_000);
const SPANS = Number(process.env.BENCH_SPAN_EVENTS ?? 400_000);
const quiet = { error() {}, warn() {}, info() {}, debug() {} };

const infra = loadConfig(z.object({ infra: infraConfigSchema }), {}).infra;
const brokers = kafkaBrokers(infra);
const chUrl = clickhouseUrl(infra);
const stamp = Date.now().toString(36);
const prefix = `bench_${stamp}.`;
const dbPipeline = `tapwire_bench_pipe_${stamp}`;
const dbCeiling = `tapwire_bench_ceil_${stamp}`;

function peakRssMb(pid: number | undefined): number | null {
  try {
    const m = /VmHWM:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
    return m ? Math.round(Number(m[1]) / 102.4) / 10 : null;
  } catch {
    return null;
  }
}

async function main(): Promise<void> {
  const kafka = createKafkaClient(kafkaConfigSchema.parse({ brokers }), quiet, 'bench');
  await ensureTopics(kafka, topicSpecs(kafkaConfigSchema.parse({}).topics, prefix));
  for (const db of [dbPipeline, dbCeiling]) {
    await migrate(clickhouseConfigSchema.parse({ url: chUrl, database: db }), {
      dir: MIGRATIONS,
      lockSettleMs: 100,
    });
  }

  // 1. The backlog, spread over the last hour, produced as fast as the sink goes.
  const sink = createKafkaEventSink(
    { kafka, logger: quiet },
    {
      lingerMs: 20,
      maxBatchEvents: 5000,
      maxBufferedEvents: 200_000,
      retryBackoffMs: 100,
      topicPrefix: prefix,
      validate: false,
      compression: 'none',
    },
  );
  const now = Date.now() * 1000;
  const produceStarted = Date.now();
  const routes = ['/users/:id', '/orders/:id', '/search', '/cart', '/login'];
  for (let i = 0; i < Math.max(ACCESS, SPANS); i++) {
    const ts = now - Math.floor(Math.random() * 3_600_000_000);
    if (i < ACCESS) {
      while (
        !sink.emit(
          TOPICS.accessLogs,
          exampleAccessLog({
            ts,
            trace_id: hex(16),
            route: routes[i % 5]!,
            duration_ms: Math.random() * 200,
            status: i % 20 === 0 ? 500 : 200,
          }),
        )
      ) {
        await new Promise((r) => setTimeout(r, 5));
      }
    }
    if (i < SPANS) {
      while (!sink.emit(TOPICS.spans, exampleSpan({ ts, start: ts })))
        await new Promise((r) => setTimeout(r, 5));
    }
    if (i % 10_000 === 0) await new Promise((r) => setImmediate(r));
  }
  await sink.flush();
  await sink.close();
  const produceMs = Date.now() - produceStarted;
  const total = ACCESS + SPANS;

  // 2. The pipeline: `tapwire ingest` as its own process, timed until every row is stored.
  const ch = createClickHouse(clickhouseConfigSchema.parse({ url: chUrl, database: dbPipeline }));
  const env = {
    ...process.env,
    TAPWIRE_KAFKA_BROKERS: brokers.join(','),
    TAPWIRE_CLICKHOUSE_URL: chUrl,
    TAPWIRE_CLICKHOUSE_DATABASE: dbPipeline,
    TAPWIRE_INGEST_TOPIC_PREFIX: prefix,
    TAPWIRE_INGEST_GROUP_ID: `tapwire-ingest-bench-${stamp}`,
    TAPWIRE_INGEST_ADMIN_PORT: process.env.BENCH_ADMIN_PORT ?? '0',
    TAPWIRE_INGEST_RETENTION_ENABLED: 'false',
    TAPWIRE_TELEMETRY_LOG_LEVEL: 'warn',
  };
  // BENCH_CPU_PROFILE_DIR=<dir> writes a CPU profile of the ingest process there.
  const profile = process.env.BENCH_CPU_PROFILE_DIR
    ? ['--cpu-prof', `--cpu-prof-dir=${process.env.BENCH_CPU_PROFILE_DIR}`]
    : [];
  profile.push(...(process.env.BENCH_CHILD_NODE_ARGS ?? '').split(' ').filter(Boolean));
  const child = spawn(process.execPath, [...profile, join(ROOT, 'services/cli/dist/main.js'), 'ingest'], {
    env,
    // BENCH_CHILD_STDOUT=1 shows what the child prints (e.g. with BENCH_CHILD_NODE_ARGS=--trace-gc).
    stdio: ['ignore', process.env.BENCH_CHILD_STDOUT ? 'inherit' : 'ignore', 'inherit'],
  });
  const pipeStarted = Date.now();
  let stored = 0;
  let firstRowAt = 0;
  // Sustained rate: from the first count at or past a tenth of the backlog to the last row, so
  // neither process start-up nor the consumer group join counts as throughput.
  let steady: { at: number; stored: number } | undefined;
  while (stored < total) {
    await new Promise((r) => setTimeout(r, 100));
    const [a] = await ch.query<{ n: string }>(
      raw('SELECT (SELECT count() FROM access_logs) + (SELECT count() FROM spans) AS n'),
    );
    stored = Number(a?.n ?? 0);
    if (stored > 0 && firstRowAt === 0) firstRowAt = Date.now();
    if (stored >= total / 10 && steady === undefined) steady = { at: Date.now(), stored };
    if (Date.now() - pipeStarted > 900_000) throw new Error(`pipeline stalled at ${stored} of ${total}`);
  }
  const pipeMs = Date.now() - pipeStarted;
  const steadyRows = total - (steady?.stored ?? 0);
  const steadyMs = Date.now() - (steady?.at ?? pipeStarted);
  const consumerRss = peakRssMb(child.pid);
  child.kill('SIGTERM');
  await new Promise((r) => child.once('exit', r));

  // 3. The ceiling: the same rows, from a JSONEachRow file, by clickhouse-client into the same tables.
  const dir = mkdtempSync(join(tmpdir(), 'tapwire-bench-ingest-'));
  let ceilingMs = 0;
  let fileBytes = 0;
  // The exported rows are about 0.5 GB: they are removed however the ceiling run ends.
  try {
    for (const table of ['access_logs', 'spans']) {
      const file = join(dir, `${table}.ndjson`);
      const res = await fetch(`${chUrl}/?database=${dbPipeline}`, {
        method: 'POST',
        body: `SELECT * FROM ${table} FORMAT JSONEachRow`,
      });
      if (!res.ok || !res.body) throw new Error(`export of ${table} failed: ${res.status}`);
      const out = createWriteStream(file);
      for await (const chunk of res.body as unknown as AsyncIterable<Uint8Array>) out.write(chunk);
      await new Promise((r) => out.end(r));
      fileBytes += statSync(file).size;
      const t = Date.now();
      const load = spawnSync(
        'sh',
        [
          '-c',
          `clickhouse-client --port ${infra.clickhouseTcpPort} --database ${dbCeiling} --query "INSERT INTO ${table} FORMAT JSONEachRow" < ${file}`,
        ],
        { encoding: 'utf8' },
      );
      if (load.status !== 0) throw new Error(`clickhouse-client failed: ${load.stderr}`);
      ceilingMs += Date.now() - t;
    }
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }

  const pipelineEventsPerSecond = Math.round(steadyRows / (steadyMs / 1000));
  const endToEndEventsPerSecond = Math.round(total / (pipeMs / 1000));
  const ceilingRowsPerSecond = Math.round(total / (ceilingMs / 1000));
  const [dups] = await ch.query<{ n: string; u: string }>(
    raw('SELECT count() AS n, uniqExact(id) AS u FROM access_logs'),
  );
  const report = {
    benchmark: 'ingest',
    events: { accessLogs: ACCESS, spans: SPANS, total },
    produce: { ms: produceMs, eventsPerSecond: Math.round(total / (produceMs / 1000)) },
    pipeline: {
      ms: pipeMs,
      eventsPerSecond: pipelineEventsPerSecond,
      sustained: { fromRows: total - steadyRows, ms: steadyMs },
      endToEndEventsPerSecond,
      startupMs: firstRowAt - pipeStarted,
      consumerPeakRssMb: consumerRss,
      accessLogRows: Number(dups?.n),
      distinctAccessLogIds: Number(dups?.u),
    },
    ceiling: { ms: ceilingMs, rowsPerSecond: ceilingRowsPerSecond, fileMb: Math.round(fileBytes / 1e5) / 10 },
    ratio: +(pipelineEventsPerSecond / ceilingRowsPerSecond).toFixed(3),
    targets: {
      events_per_second_ge_60000: pipelineEventsPerSecond >= 60_000,
      ratio_ge_0_3: pipelineEventsPerSecond >= 0.3 * ceilingRowsPerSecond,
      consumer_peak_rss_le_300mb: (consumerRss ?? Number.POSITIVE_INFINITY) <= 300,
    },
  };
  process.stdout.write(`${JSON.stringify(report, null, 2)}\n`);

  const admin = kafka.admin();
  await admin.connect();
  await admin
    .deleteTopics({ topics: topicSpecs(kafkaConfigSchema.parse({}).topics, prefix).map((s) => s.topic) })
    .catch(() => {});
  await admin.disconnect();
  await ch.close();
  const root = createClickHouse(clickhouseConfigSchema.parse({ url: chUrl, database: 'default' }));
  for (const db of [dbPipeline, dbCeiling])
    await root.command(sql`DROP DATABASE IF EXISTS ${identifier(db)}`);
  await root.close();
}

await main();
