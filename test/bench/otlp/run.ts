/**
 * OTLP benchmark (issue #22): spans/s accepted end to end — receiver → its local log → Kafka →
 * `tapwire ingest` → ClickHouse, counted in the store — and the CPU each process used for them,
 * against the OpenTelemetry Collector's published ~15k spans/s per core. Prints one JSON report
 * (and writes it to BENCH_REPORT_FILE, default .tapwire/bench-otlp.json). Report only: targets
 * missed are printed as not met, the exit code says only whether the run completed.
 *
 * Every process is its own: the load generator (load.ts: pre-encoded ExportTraceServiceRequest
 * bodies of BENCH_SPANS_PER_REQUEST spans made once with the official ProtobufTraceSerializer,
 * trace ids stamped per send so every span id is new, OTLP/HTTP protobuf), the receiver
 * (`tapwire otlp`, the built CLI) and ingest (`tapwire ingest`). CPU is read
 * from /proc/<pid>/stat (user + system, every thread), peak RSS from /proc/<pid>/status (VmHWM).
 *
 * 1. Baseline, same run: the receiver with a discarding event log (decode, map, redact, encode;
 *    no local log write, no shipping), BENCH_BASELINE_SPANS as fast as it takes them.
 * 2. End to end: BENCH_SPANS as fast as the receiver takes them (429 → retried after
 *    Retry-After, as exporters do) until ClickHouse holds every one of them; spans/s = spans /
 *    (first send → last row stored); per core used = spans / CPU seconds of receiver + ingest.
 * 3. Latency: half the end-to-end rate, open loop, for BENCH_LATENCY_S: the receiver's p99
 *    (each request timed from when it was due). Then every span of both phases must be stored
 *    exactly once.
 *
 *   npm run bench:otlp          (needs `tapwire infra up`)
 *   BENCH_SPANS (1000000), BENCH_BASELINE_SPANS (250000), BENCH_SPANS_PER_REQUEST (250),
 *   BENCH_CONCURRENCY (8), BENCH_LATENCY_S (30), BENCH_STALL_S (60), BENCH_KEEP_DATABASE
 */
import { type ChildProcess, execFileSync, spawn } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { createClickHouse, identifier, migrate, raw, sql } from '@tapwire/clickhouse';
import {
  clickhouseConfigSchema,
  hashToken,
  infraConfigSchema,
  kafkaConfigSchema,
  loadConfig,
} from '@tapwire/config';
import { clickhouseUrl, kafkaBrokers } from '@tapwire/infra';
import { createKafkaClient, ensureTopics, topicSpecs } from '@tapwire/kafka';
import { z } from 'zod';
import { parsePromText } from '../../support/prom-text.js';

const ROOT = fileURLToPath(new URL('../../..', import.meta.url));
const HERE = dirname(fileURLToPath(import.meta.url));
const SPANS_PER_REQUEST = Number(process.env.BENCH_SPANS_PER_REQUEST ?? 250);
// Traces of 10 spans each (bodies.ts).
const TRACES_PER_BODY = Math.max(1, Math.round(SPANS_PER_REQUEST / 10));
const SPANS = Number(process.env.BENCH_SPANS ?? 1_000_000);
const BASELINE_SPANS = Number(process.env.BENCH_BASELINE_SPANS ?? 250_000);
const CONCURRENCY = Number(process.env.BENCH_CONCURRENCY ?? 8);
const LATENCY_S = Number(process.env.BENCH_LATENCY_S ?? 30);
const STALL_S = Number(process.env.BENCH_STALL_S ?? 60);
const REPORT_FILE = resolve(ROOT, process.env.BENCH_REPORT_FILE ?? '.tapwire/bench-otlp.json');
const TEMPLATES = 8;
const TARGETS = { spansPerCore: 20_000, p99Ms: 20, peakRssMb: 250 };
const COLLECTOR_BASELINE_SPANS_PER_CORE = 15_000;

const infra = loadConfig(z.object({ infra: infraConfigSchema }), {}).infra;
const brokers = kafkaBrokers(infra);
const chUrl = clickhouseUrl(infra);
const stamp = Date.now().toString(36);
const prefix = `bench_otlp_${stamp}.`;
const database = `tapwire_bench_otlp_${stamp}`;
const token = `bench-${stamp}`;
const tenant = 'bench';
const clockTicks = Number(execFileSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }).trim()) || 100;
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const round = (n: number, digits = 0) => Math.round(n * 10 ** digits) / 10 ** digits;

/** cpuSeconds is the user + system CPU a process has used so far, all its threads. */
function cpuSeconds(pid: number | undefined): number {
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  // Fields after the command name (which may hold spaces): state is field 3, utime 14, stime 15.
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  return (Number(fields[11]) + Number(fields[12])) / clockTicks;
}

function peakRssMb(pid: number | undefined): number | null {
  try {
    const m = /VmHWM:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
    return m ? round(Number(m[1]) / 1024, 1) : null;
  } catch {
    return null;
  }
}

function freePortSync(): number {
  return Number(
    execFileSync(
      process.execPath,
      [
        '-e',
        "const s=require('net').createServer().listen(0,'127.0.0.1',()=>{console.log(s.address().port);s.close()})",
      ],
      { encoding: 'utf8' },
    ).trim(),
  );
}

interface Started {
  child: ChildProcess;
  pid: number;
  output: () => string;
  stop(): Promise<void>;
}

function startProcess(args: string[], env: NodeJS.ProcessEnv): Started {
  const child = spawn(process.execPath, args, {
    cwd: ROOT,
    env: { ...process.env, ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let out = '';
  child.stdout?.on('data', (c: Buffer) => {
    out = (out + c.toString('utf8')).slice(-20_000);
  });
  child.stderr?.on('data', (c: Buffer) => {
    out = (out + c.toString('utf8')).slice(-20_000);
  });
  const exited = new Promise<void>((r) => child.once('exit', () => r()));
  return {
    child,
    pid: child.pid ?? 0,
    output: () => out,
    async stop() {
      if (child.exitCode !== null || child.signalCode !== null) return;
      child.kill('SIGTERM');
      const timer = setTimeout(() => child.kill('SIGKILL'), 30_000);
      await exited;
      clearTimeout(timer);
    },
  };
}

async function waitFor<T>(
  what: string,
  proc: Started,
  probe: () => Promise<T | undefined> | T | undefined,
  timeoutMs = 90_000,
): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    const v = await probe();
    if (v !== undefined) return v;
    if (proc.child.exitCode !== null) break;
    await sleep(200);
  }
  throw new Error(`${what} did not come up:\n${proc.output().slice(-3000)}`);
}

/**
 * startReceiver runs the receiver and resolves with its OTLP/HTTP traces URL once it is ready:
 * `kafka` is `tapwire otlp` itself (the built CLI, its own local log shipped to Kafka), `discard`
 * the baseline (discarding-receiver.ts: the same runOtlpService with a discarding event log).
 */
async function startReceiver(
  sink: 'discard' | 'kafka',
  dir: string,
): Promise<Started & { tracesUrl: string; adminUrl: string }> {
  const [grpcPort, httpPort, adminPort] = [freePortSync(), freePortSync(), freePortSync()];
  const otlp = {
    grpc: { host: '127.0.0.1', port: grpcPort },
    http: { host: '127.0.0.1', port: httpPort },
    admin: { host: '127.0.0.1', port: adminPort },
    tokens: [{ name: 'bench', sha256: hashToken(token), tenant }],
    emit: { topicPrefix: prefix, logDir: join(dir, `${sink}-otlp-log`) },
  };
  let proc: Started;
  if (sink === 'kafka') {
    // JSON is YAML: the CLI reads it as its configuration file.
    const config = join(dir, 'otlp.yaml');
    writeFileSync(config, JSON.stringify({ telemetry: { logLevel: 'warn' }, kafka: { brokers }, otlp }));
    proc = startProcess([join(ROOT, 'services/cli/dist/main.js'), '-c', config, 'otlp'], {});
  } else {
    proc = startProcess(['--import', 'tsx', join(HERE, 'discarding-receiver.ts')], {
      BENCH_RECEIVER: JSON.stringify(otlp),
    });
  }
  const adminUrl = `http://127.0.0.1:${adminPort}`;
  await waitFor(`the ${sink} receiver's /readyz`, proc, () =>
    fetch(`${adminUrl}/readyz`).then(
      (r) => (r.ok ? true : undefined),
      () => undefined,
    ),
  );
  return { ...proc, tracesUrl: `http://127.0.0.1:${httpPort}/v1/traces`, adminUrl };
}

/** requestBuckets reads the receiver's OTLP/HTTP request-duration histogram: cumulative count per upper bound (s). */
async function requestBuckets(adminUrl: string): Promise<Map<number, number>> {
  const text = await (await fetch(`${adminUrl}/metrics`)).text();
  const buckets = new Map<number, number>();
  for (const s of parsePromText(text))
    if (s.name === 'tapwire_otlp_request_duration_seconds_bucket' && s.labels.transport === 'http')
      buckets.set(s.labels.le === '+Inf' ? Number.POSITIVE_INFINITY : Number(s.labels.le), s.value);
  return buckets;
}

/** histogramP99Ms is the upper bound (ms) of the bucket holding the 99th percentile of the requests between two reads. */
function histogramP99Ms(before: Map<number, number>, after: Map<number, number>): number | null {
  const bounds = [...after.keys()].sort((a, b) => a - b);
  const total = (after.get(Number.POSITIVE_INFINITY) ?? 0) - (before.get(Number.POSITIVE_INFINITY) ?? 0);
  if (total <= 0) return null;
  for (const le of bounds)
    if ((after.get(le) ?? 0) - (before.get(le) ?? 0) >= 0.99 * total)
      return Number.isFinite(le) ? round(le * 1000, 1) : null;
  return null;
}

interface LoadResult {
  requests: number;
  accepted_requests: number;
  spans: number;
  spans_per_request: number;
  request_bytes: number;
  wall_ms: number;
  spans_per_second: number;
  throttled: number;
  errors: number;
  rejected_spans: number;
  latency_ms: { p50: number; p90: number; p99: number; max: number };
}

/** load runs load.ts in its own process and resolves with its report. */
async function load(options: Record<string, unknown>): Promise<LoadResult> {
  const proc = startProcess(['--import', 'tsx', join(HERE, 'load.ts')], {
    BENCH_LOAD: JSON.stringify({
      token,
      templates: TEMPLATES,
      tracesPerBody: TRACES_PER_BODY,
      concurrency: CONCURRENCY,
      ...options,
    }),
  });
  const code = await new Promise<number | null>((r) => proc.child.once('exit', (c) => r(c)));
  const line = proc
    .output()
    .split('\n')
    .find((l) => l.startsWith('{"requests"'));
  if (code !== 0 || !line)
    throw new Error(`the load generator failed (${code}):\n${proc.output().slice(-3000)}`);
  return JSON.parse(line) as LoadResult;
}

async function main(): Promise<void> {
  const dir = mkdtempSync(join(tmpdir(), 'tapwire-bench-otlp-'));
  const chConfig = clickhouseConfigSchema.parse({ url: chUrl, database, requestTimeoutMs: 120_000 });
  await migrate(chConfig, { dir: join(ROOT, 'migrations'), lockSettleMs: 100 });
  const ch = createClickHouse(chConfig);
  const quiet = { error() {}, warn() {}, info() {}, debug() {} };
  const kafka = createKafkaClient(kafkaConfigSchema.parse({ brokers }), quiet, 'bench-otlp');
  await ensureTopics(kafka, topicSpecs(kafkaConfigSchema.parse({}).topics, prefix));
  const running: Started[] = [];
  try {
    // 1. Baseline: the receiver alone, its events discarded.
    const baseRx = await startReceiver('discard', dir);
    running.push(baseRx);
    const baseRequests = Math.max(1, Math.round(BASELINE_SPANS / SPANS_PER_REQUEST));
    // A short warm-up (JIT), not counted.
    await load({ url: baseRx.tracesUrl, mode: 'max', requests: 40, seqStart: 0x7000_0000 });
    const baseCpu0 = cpuSeconds(baseRx.pid);
    const base = await load({
      url: baseRx.tracesUrl,
      mode: 'max',
      requests: baseRequests,
      seqStart: 0x7100_0000,
    });
    const baseCpu = cpuSeconds(baseRx.pid) - baseCpu0;
    const baseRss = peakRssMb(baseRx.pid);
    await baseRx.stop();
    running.pop();

    // 2. End to end: receiver → local log → Kafka → ingest → ClickHouse.
    const ingestAdmin = freePortSync();
    const ingest = startProcess([join(ROOT, 'services/cli/dist/main.js'), 'ingest'], {
      TAPWIRE_KAFKA_BROKERS: brokers.join(','),
      TAPWIRE_CLICKHOUSE_URL: chUrl,
      TAPWIRE_CLICKHOUSE_DATABASE: database,
      TAPWIRE_INGEST_TOPIC_PREFIX: prefix,
      TAPWIRE_INGEST_GROUP_ID: `tapwire-ingest-bench-otlp-${stamp}`,
      TAPWIRE_INGEST_ADMIN_HOST: '127.0.0.1',
      TAPWIRE_INGEST_ADMIN_PORT: String(ingestAdmin),
      TAPWIRE_INGEST_RETENTION_ENABLED: 'false',
      TAPWIRE_TELEMETRY_LOG_LEVEL: 'warn',
    });
    running.push(ingest);
    const rx = await startReceiver('kafka', dir);
    running.push(rx);
    await waitFor('ingest', ingest, () =>
      fetch(`http://127.0.0.1:${ingestAdmin}/readyz`).then(
        (r) => (r.ok ? true : undefined),
        () => undefined,
      ),
    );
    const stored = async () => {
      const [r] = await ch.query<{ ids: string; rows: string }>(
        raw(`SELECT uniqExact(id) AS ids, count() AS rows FROM spans WHERE tenant = '${tenant}'`),
      );
      return { ids: Number(r?.ids ?? 0), rows: Number(r?.rows ?? 0) };
    };
    /** untilStored polls the store until it holds `n` distinct spans (or nothing new came for STALL_S). */
    const untilStored = async (n: number) => {
      let last = await stored();
      let changed = Date.now();
      while (last.ids < n) {
        await sleep(250);
        const now = await stored();
        if (now.ids !== last.ids) changed = Date.now();
        last = now;
        if (Date.now() - changed > STALL_S * 1000) return { ...last, stalled: true };
      }
      return { ...last, stalled: false };
    };
    const requests = Math.max(1, Math.round(SPANS / SPANS_PER_REQUEST));
    await load({ url: rx.tracesUrl, mode: 'max', requests: 40, seqStart: 0x6000_0000 });
    const warm = await untilStored(40 * SPANS_PER_REQUEST);
    const cpu0 = { rx: cpuSeconds(rx.pid), ingest: cpuSeconds(ingest.pid) };
    const t0 = performance.now();
    const e2eLoad = await load({ url: rx.tracesUrl, mode: 'max', requests, seqStart: 0 });
    const acceptedMs = performance.now() - t0;
    const e2eStored = await untilStored(warm.ids + e2eLoad.spans);
    const storedMs = performance.now() - t0;
    const cpu = { rx: cpuSeconds(rx.pid) - cpu0.rx, ingest: cpuSeconds(ingest.pid) - cpu0.ingest };
    const e2eRate = e2eLoad.spans / (storedMs / 1000);

    // 3. The receiver's latency at half the end-to-end rate.
    const rps = Math.max(1, e2eRate / 2 / SPANS_PER_REQUEST);
    const bucketsBefore = await requestBuckets(rx.adminUrl);
    const latency = await load({
      url: rx.tracesUrl,
      mode: 'rate',
      rps,
      durationS: LATENCY_S,
      seqStart: 0x4000_0000,
    });
    const serverP99Ms = histogramP99Ms(bucketsBefore, await requestBuckets(rx.adminUrl));
    const expected = warm.ids + e2eLoad.spans + latency.spans;
    const final = await untilStored(expected);
    const rss = { receiver: peakRssMb(rx.pid), ingest: peakRssMb(ingest.pid) };
    await rx.stop();
    await ingest.stop();
    running.length = 0;

    const cpuTotal = cpu.rx + cpu.ingest;
    const spansPerCore = e2eLoad.spans / cpuTotal;
    const report = {
      benchmark: 'otlp',
      transport: 'OTLP/HTTP protobuf',
      spans_per_request: e2eLoad.spans_per_request,
      request_bytes: e2eLoad.request_bytes,
      concurrency: CONCURRENCY,
      baseline_receiver_discarding: {
        spans: base.spans,
        spans_per_second: base.spans_per_second,
        receiver_cpu_s: round(baseCpu, 2),
        spans_per_core_second: round(base.spans / baseCpu),
        latency_ms: base.latency_ms,
        peak_rss_mb: baseRss,
      },
      end_to_end: {
        spans: e2eLoad.spans,
        accepted_spans_per_second: round(e2eLoad.spans / (acceptedMs / 1000)),
        stored_spans_per_second: round(e2eRate),
        throttled_requests: e2eLoad.throttled,
        errors: e2eLoad.errors,
        stalled: e2eStored.stalled,
        cpu_s: { receiver: round(cpu.rx, 2), ingest: round(cpu.ingest, 2) },
        spans_per_core_second: {
          receiver_and_ingest: round(spansPerCore),
          receiver: round(e2eLoad.spans / cpu.rx),
          ingest: round(e2eLoad.spans / cpu.ingest),
        },
        collector_published_spans_per_core_second: COLLECTOR_BASELINE_SPANS_PER_CORE,
      },
      latency_at_half_rate: {
        target_spans_per_second: round(rps * SPANS_PER_REQUEST),
        requests_per_second: round(rps, 1),
        requests: latency.requests,
        throttled: latency.throttled,
        errors: latency.errors,
        // Seen by the load generator, each request timed from when it was due.
        receiver_latency_ms: latency.latency_ms,
        // The receiver's own histogram (arrival to answer): the bucket bound holding its p99.
        receiver_histogram_p99_le_ms: serverP99Ms,
      },
      peak_rss_mb: rss,
      stored: {
        expected_spans: expected,
        distinct_spans: final.ids,
        rows: final.rows,
        exactly_once: final.ids === expected && final.rows === expected,
      },
      targets: {
        spans_per_core_ge_20k: { value: round(spansPerCore), met: spansPerCore >= TARGETS.spansPerCore },
        receiver_p99_le_20ms_at_half_rate: {
          value: latency.latency_ms.p99,
          met: latency.latency_ms.p99 <= TARGETS.p99Ms,
        },
        receiver_peak_rss_le_250mb: {
          value: rss.receiver,
          met: rss.receiver !== null && rss.receiver <= TARGETS.peakRssMb,
        },
      },
    };
    const text = `${JSON.stringify(report, null, 2)}\n`;
    process.stdout.write(text);
    mkdirSync(dirname(REPORT_FILE), { recursive: true });
    writeFileSync(REPORT_FILE, text);
  } finally {
    for (const p of running.reverse()) await p.stop();
    if (!process.env.BENCH_KEEP_DATABASE)
      await ch.command(sql`DROP DATABASE IF EXISTS ${identifier(database)}`);
    await ch.close();
    const admin = kafka.admin();
    await admin.connect();
    const topics = (await admin.listTopics()).filter((t) => t.startsWith(prefix));
    if (topics.length > 0) await admin.deleteTopics({ topics }).catch(() => undefined);
    await admin.disconnect();
    rmSync(dir, { recursive: true, force: true });
  }
}

main().catch((err) => {
  process.stderr.write(`otlp benchmark failed: ${err instanceof Error ? err.stack : String(err)}\n`);
  process.exit(1);
});
