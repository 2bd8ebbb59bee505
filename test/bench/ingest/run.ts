/**
 * Ingest benchmark: the same backlog of ≥ 1M events (access logs and spans) in both Kafka record
 * formats, each drained by `tapwire ingest` (a separate process) into its own ClickHouse database,
 * and ClickHouse's own ceiling for the same rows. Prints one JSON report (issue #18).
 *
 * - `single`: one record per event, as the proxy wrote before issue #18 (and other producers still
 *   do), produced by the Kafka event sink.
 * - `batched`: the proxy's shipper format (`encodeBatch` of @tapwire/stream): one record per batch
 *   of BENCH_BATCH_EVENTS (1000) events of one topic from one source (at most 900,000 bytes, the
 *   shipper's default cap), key = the source id, sequence numbers consecutive per source and topic.
 *   BENCH_BATCH_SOURCES (6) sources stand for as many proxy instances; their ids are chosen so that
 *   the shipper's partitioner puts each on its own partition, as the single-event records spread
 *   over all of them.
 *
 * Both backlogs are produced first (fresh topics per format), then drained one after the other
 * (single first). The ceiling is clickhouse-client bulk-inserting the rows the single run stored,
 * from a JSONEachRow file, into a third database with the same tables and materialized views.
 *
 * `eventsPerSecond` is the sustained rate: rows stored from the first count at or past a tenth of
 * the backlog to the last row. `endToEndEventsPerSecond` also counts process start-up and the
 * consumer group join. A run that stores nothing new for BENCH_STALL_S (60) is stopped and reported
 * as stalled (ingest that cannot read a format sends it to the DLQ).
 *
 * Kafka bytes per event are given two ways: `producedBytesPerEvent` (key, value and header bytes
 * the producer handed to Kafka) and `brokerBytesPerEvent` (the topics' segment files in the local
 * broker's log directory, record-batch framing included; null when that directory is not readable).
 *
 *   npm run bench:ingest          (needs `tapwire infra up`)
 *   BENCH_ACCESS_EVENTS (600000), BENCH_SPAN_EVENTS (400000), BENCH_BATCH_EVENTS (1000),
 *   BENCH_BATCH_SOURCES (6), BENCH_STALL_S (60)
 */
import { spawn, spawnSync } from 'node:child_process';
import { createWriteStream, mkdtempSync, readdirSync, readFileSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { createClickHouse, identifier, migrate, raw, sql } from '@tapwire/clickhouse';
import { clickhouseConfigSchema, infraConfigSchema, kafkaConfigSchema, loadConfig } from '@tapwire/config';
import { clickhouseUrl, kafkaBrokers } from '@tapwire/infra';
import {
  createKafkaClient,
  createKafkaEventSink,
  ensureTopics,
  keyPartitioner,
  partitionForKey,
  topicSpecs,
} from '@tapwire/kafka';
import { type EventByTopic, TOPICS } from '@tapwire/schema';
import { createEventEncoder, type EncodedBatch, encodeBatch } from '@tapwire/stream';
import type { Kafka } from 'kafkajs';
import { z } from 'zod';
import { exampleAccessLog, exampleSpan, hex } from '../../support/events.js';

const ROOT = fileURLToPath(new URL('../../..', import.meta.url));
const MIGRATIONS = join(ROOT, 'migrations');
const ACCESS = Number(process.env.BENCH_ACCESS_EVENTS ?? 600_000);
const SPANS = Number(process.env.BENCH_SPAN_EVENTS ?? 400_000);
const BATCH_EVENTS = Number(process.env.BENCH_BATCH_EVENTS ?? 1000);
const BATCH_SOURCES = Number(process.env.BENCH_BATCH_SOURCES ?? 6);
const STALL_S = Number(process.env.BENCH_STALL_S ?? 60);
// The shipper's default cap on one record's events (newlines included).
const BATCH_MAX_BYTES = 900_000;
const TOTAL = ACCESS + SPANS;
const quiet = { error() {}, warn() {}, info() {}, debug() {} };

const infra = loadConfig(z.object({ infra: infraConfigSchema }), {}).infra;
const brokers = kafkaBrokers(infra);
const chUrl = clickhouseUrl(infra);
const stamp = Date.now().toString(36);
const topicDefaults = kafkaConfigSchema.parse({}).topics;
const FORMATS = {
  single: { prefix: `bench_${stamp}_s.`, db: `tapwire_bench_pipe_${stamp}` },
  batched: { prefix: `bench_${stamp}_b.`, db: `tapwire_bench_pipeb_${stamp}` },
} as const;
type Format = keyof typeof FORMATS;
const dbCeiling = `tapwire_bench_ceil_${stamp}`;

function peakRssMb(pid: number | undefined): number | null {
  try {
    const m = /VmHWM:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
    return m ? Math.round(Number(m[1]) / 102.4) / 10 : null;
  } catch {
    return null;
  }
}

/** The backlog, spread over the last hour: event i of each topic, while i is below its count. */
const routes = ['/users/:id', '/orders/:id', '/search', '/cart', '/login'];
function* backlog(): Generator<
  | [typeof TOPICS.accessLogs, EventByTopic[typeof TOPICS.accessLogs]]
  | [typeof TOPICS.spans, EventByTopic[typeof TOPICS.spans]]
> {
  const now = Date.now() * 1000;
  for (let i = 0; i < Math.max(ACCESS, SPANS); i++) {
    const ts = now - Math.floor(Math.random() * 3_600_000_000);
    if (i < ACCESS)
      yield [
        TOPICS.accessLogs,
        exampleAccessLog({
          ts,
          trace_id: hex(16),
          route: routes[i % 5]!,
          duration_ms: Math.random() * 200,
          status: i % 20 === 0 ? 500 : 200,
        }),
      ];
    if (i < SPANS) yield [TOPICS.spans, exampleSpan({ ts, start: ts })];
  }
}

interface Produced {
  ms: number;
  eventsPerSecond: number;
  records: number;
  recordsPerSecond: number;
  /** Key, value and header bytes handed to the producer. */
  producedBytes: number;
}

/** produceSingle writes one record per event through the Kafka event sink, as fast as it goes. */
async function produceSingle(kafka: Kafka): Promise<Produced> {
  const sink = createKafkaEventSink(
    { kafka, logger: quiet },
    {
      lingerMs: 20,
      maxBatchEvents: 5000,
      maxBufferedEvents: 200_000,
      retryBackoffMs: 100,
      topicPrefix: FORMATS.single.prefix,
      validate: false,
      compression: 'none',
    },
  );
  // The same encoding the sink applies, to count the bytes it sends.
  const encode = createEventEncoder({ validate: false });
  let producedBytes = 0;
  let n = 0;
  const started = Date.now();
  for (const [topic, event] of backlog()) {
    const record = encode(topic, event);
    if (typeof record !== 'string')
      producedBytes += Buffer.byteLength(record.key) + Buffer.byteLength(record.value);
    while (!sink.emit(topic, event)) await new Promise((r) => setTimeout(r, 5));
    if (++n % 10_000 === 0) await new Promise((r) => setImmediate(r));
  }
  await sink.flush();
  await sink.close();
  const ms = Date.now() - started;
  return {
    ms,
    eventsPerSecond: Math.round(TOTAL / (ms / 1000)),
    records: TOTAL,
    recordsPerSecond: Math.round(TOTAL / (ms / 1000)),
    producedBytes,
  };
}

/**
 * batchSources names BATCH_SOURCES sources the shipper's key partitioner sends to partitions
 * 0, 1, … (a key starting with 8 hex digits is partitioned by them).
 */
function batchSources(): string[] {
  return Array.from({ length: BATCH_SOURCES }, (_, i) => {
    const id = `${i.toString(16).padStart(8, '0')}-bench-${stamp}`;
    if (partitionForKey(id, topicDefaults.partitions) !== i % topicDefaults.partitions)
      throw new Error(`source ${id} does not land on partition ${i}`);
    return id;
  });
}

/** produceBatched writes the backlog as the shipper does: batches of one topic from one source. */
async function produceBatched(kafka: Kafka): Promise<Produced & { sources: string[] }> {
  const sources = batchSources();
  const producer = kafka.producer({ createPartitioner: keyPartitioner, allowAutoTopicCreation: false });
  await producer.connect();
  const encode = createEventEncoder({ validate: false });
  const open = new Map<string, { topic: string; source: string; events: Buffer[]; bytes: number }>();
  const nextSeq = new Map<string, bigint>();
  // Records ready to send, at most one per (topic, source): each source has its own partition, and
  // a partition's records in one request form one record batch, which Kafka caps in size.
  let ready = new Map<string, { topic: string; record: EncodedBatch }>();
  let records = 0;
  let producedBytes = 0;

  const send = async () => {
    if (ready.size === 0) return;
    const byTopic = new Map<string, { key: string; value: Buffer; headers: Record<string, string> }[]>();
    for (const { topic, record } of ready.values()) {
      const list = byTopic.get(topic) ?? [];
      byTopic.set(topic, list);
      list.push({ key: record.key, value: record.value, headers: record.headers });
    }
    ready = new Map();
    await producer.sendBatch({
      acks: -1,
      topicMessages: [...byTopic].map(([topic, messages]) => ({ topic, messages })),
    });
  };
  const cut = async (key: string) => {
    const batch = open.get(key);
    if (!batch || batch.events.length === 0) return;
    open.delete(key);
    const firstSeq = nextSeq.get(key) ?? 0n;
    nextSeq.set(key, firstSeq + BigInt(batch.events.length));
    const record = encodeBatch({ source: batch.source, firstSeq, events: batch.events });
    records++;
    producedBytes += Buffer.byteLength(record.key) + record.value.length;
    for (const [k, v] of Object.entries(record.headers))
      producedBytes += Buffer.byteLength(k) + Buffer.byteLength(v);
    if (ready.has(key)) await send();
    ready.set(key, { topic: FORMATS.batched.prefix + batch.topic, record });
    if (ready.size >= 2 * sources.length) await send();
  };

  const perTopic = new Map<string, number>();
  const started = Date.now();
  for (const [topic, event] of backlog()) {
    const record = encode(topic, event);
    if (typeof record === 'string') throw new Error(record);
    // Round robin over the sources, per topic: every source gets a share of both topics.
    const i = perTopic.get(topic) ?? 0;
    perTopic.set(topic, i + 1);
    const source = sources[i % sources.length]!;
    const key = `${topic}|${source}`;
    const line = Buffer.from(record.value);
    let batch = open.get(key);
    if (batch && batch.bytes + 1 + line.length > BATCH_MAX_BYTES) {
      await cut(key);
      batch = undefined;
    }
    if (!batch) {
      batch = { topic, source, events: [], bytes: -1 };
      open.set(key, batch);
    }
    batch.events.push(line);
    batch.bytes += 1 + line.length;
    if (batch.events.length >= BATCH_EVENTS) await cut(key);
  }
  for (const key of [...open.keys()]) await cut(key);
  await send();
  await producer.disconnect();
  const ms = Date.now() - started;
  return {
    ms,
    eventsPerSecond: Math.round(TOTAL / (ms / 1000)),
    records,
    recordsPerSecond: Math.round(records / (ms / 1000)),
    producedBytes,
    sources,
  };
}

/** brokerTopicBytes sums the segment files of a prefix's event topics in the local broker's log directory. */
function brokerTopicBytes(prefix: string): number | null {
  try {
    const props = readFileSync(resolve(infra.dir, 'kafka', 'server.properties'), 'utf8');
    const dir = /^log\.dirs=(.+)$/m.exec(props)?.[1]?.trim();
    if (!dir) return null;
    const topics = [TOPICS.accessLogs, TOPICS.spans].map((t) => prefix + t);
    let bytes = 0;
    for (const entry of readdirSync(dir)) {
      const topic = entry.slice(0, entry.lastIndexOf('-'));
      if (!topics.includes(topic as (typeof topics)[number])) continue;
      for (const f of readdirSync(join(dir, entry)))
        if (f.endsWith('.log')) bytes += statSync(join(dir, entry, f)).size;
    }
    return bytes;
  } catch {
    return null;
  }
}

interface PipelineRun {
  ms: number;
  eventsPerSecond: number;
  recordsPerSecond: number;
  sustained: { fromRows: number; ms: number };
  endToEndEventsPerSecond: number;
  startupMs: number;
  consumerPeakRssMb: number | null;
  stored: number;
  stalled: boolean;
  accessLogRows: number;
  distinctAccessLogIds: number;
  spanRows: number;
  /** Every event stored exactly once. */
  exactlyOnce: boolean;
}

/** drain runs `tapwire ingest` on a format's topics until every event is stored (or it stalls). */
async function drain(format: Format, eventsPerRecord: number): Promise<PipelineRun> {
  const { prefix, db } = FORMATS[format];
  const ch = createClickHouse(clickhouseConfigSchema.parse({ url: chUrl, database: db }));
  const env = {
    ...process.env,
    TAPWIRE_KAFKA_BROKERS: brokers.join(','),
    TAPWIRE_CLICKHOUSE_URL: chUrl,
    TAPWIRE_CLICKHOUSE_DATABASE: db,
    TAPWIRE_INGEST_TOPIC_PREFIX: prefix,
    TAPWIRE_INGEST_GROUP_ID: `tapwire-ingest-bench-${stamp}-${format}`,
    TAPWIRE_INGEST_ADMIN_PORT: process.env.BENCH_ADMIN_PORT ?? '0',
    TAPWIRE_INGEST_RETENTION_ENABLED: 'false',
    TAPWIRE_TELEMETRY_LOG_LEVEL: 'warn',
  };
  // BENCH_CPU_PROFILE_DIR=<dir> writes a CPU profile of each ingest process there.
  const profile = process.env.BENCH_CPU_PROFILE_DIR
    ? ['--cpu-prof', `--cpu-prof-dir=${process.env.BENCH_CPU_PROFILE_DIR}`]
    : [];
  profile.push(...(process.env.BENCH_CHILD_NODE_ARGS ?? '').split(' ').filter(Boolean));
  const child = spawn(process.execPath, [...profile, join(ROOT, 'services/cli/dist/main.js'), 'ingest'], {
    env,
    // BENCH_CHILD_STDOUT=1 shows what the child prints (e.g. with BENCH_CHILD_NODE_ARGS=--trace-gc).
    stdio: ['ignore', process.env.BENCH_CHILD_STDOUT ? 'inherit' : 'ignore', 'inherit'],
  });
  const started = Date.now();
  let stored = 0;
  let firstRowAt = 0;
  let progressAt = started;
  let stalled = false;
  // Sustained rate: from the first count at or past a tenth of the backlog to the last row, so
  // neither process start-up nor the consumer group join counts as throughput.
  let steady: { at: number; stored: number } | undefined;
  while (stored < TOTAL) {
    await new Promise((r) => setTimeout(r, 100));
    const [a] = await ch.query<{ n: string }>(
      raw('SELECT (SELECT count() FROM access_logs) + (SELECT count() FROM spans) AS n'),
    );
    const n = Number(a?.n ?? 0);
    if (n > stored) progressAt = Date.now();
    stored = n;
    if (stored > 0 && firstRowAt === 0) firstRowAt = Date.now();
    if (stored >= TOTAL / 10 && steady === undefined) steady = { at: Date.now(), stored };
    if (Date.now() - progressAt > STALL_S * 1000 || Date.now() - started > 900_000) {
      stalled = true;
      break;
    }
  }
  const doneAt = stalled ? progressAt : Date.now();
  const ms = doneAt - started;
  const steadyRows = stored - (steady?.stored ?? 0);
  const steadyMs = doneAt - (steady?.at ?? started);
  const consumerPeakRssMb = peakRssMb(child.pid);
  child.kill('SIGTERM');
  await new Promise((r) => child.once('exit', r));
  const [rows] = await ch.query<{ n: string; u: string; s: string }>(
    raw('SELECT count() AS n, uniqExact(id) AS u, (SELECT count() FROM spans) AS s FROM access_logs'),
  );
  await ch.close();
  const eventsPerSecond = steadyMs > 0 ? Math.round(steadyRows / (steadyMs / 1000)) : 0;
  const accessLogRows = Number(rows?.n);
  const distinctAccessLogIds = Number(rows?.u);
  const spanRows = Number(rows?.s);
  return {
    ms,
    eventsPerSecond,
    recordsPerSecond: Math.round(eventsPerSecond / eventsPerRecord),
    sustained: { fromRows: steady?.stored ?? 0, ms: steadyMs },
    endToEndEventsPerSecond: Math.round(stored / (ms / 1000)),
    startupMs: firstRowAt ? firstRowAt - started : -1,
    consumerPeakRssMb,
    stored,
    stalled,
    accessLogRows,
    distinctAccessLogIds,
    spanRows,
    exactlyOnce: accessLogRows === ACCESS && distinctAccessLogIds === ACCESS && spanRows === SPANS,
  };
}

/** ceiling bulk-inserts the rows of `fromDb` into the ceiling database with clickhouse-client. */
async function ceiling(fromDb: string) {
  const dir = mkdtempSync(join(tmpdir(), 'tapwire-bench-ingest-'));
  let ms = 0;
  let fileBytes = 0;
  let rows = 0;
  // The exported rows are about 0.5 GB: they are removed however the ceiling run ends.
  try {
    for (const table of ['access_logs', 'spans']) {
      const file = join(dir, `${table}.ndjson`);
      const res = await fetch(`${chUrl}/?database=${fromDb}`, {
        method: 'POST',
        body: `SELECT * FROM ${table} FORMAT JSONEachRow`,
      });
      if (!res.ok || !res.body) throw new Error(`export of ${table} failed: ${res.status}`);
      const out = createWriteStream(file);
      for await (const chunk of res.body as unknown as AsyncIterable<Uint8Array>) out.write(chunk);
      await new Promise((r) => out.end(r));
      fileBytes += statSync(file).size;
      rows += Number(spawnSync('wc', ['-l', file], { encoding: 'utf8' }).stdout.trim().split(' ')[0]);
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
      ms += Date.now() - t;
    }
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
  return {
    ms,
    rows,
    rowsPerSecond: Math.round(rows / (ms / 1000)),
    fileMb: Math.round(fileBytes / 1e5) / 10,
  };
}

function kafkaBytes(format: Format, produced: Produced) {
  const broker = brokerTopicBytes(FORMATS[format].prefix);
  return {
    records: produced.records,
    eventsPerRecord: +(TOTAL / produced.records).toFixed(1),
    producedBytes: produced.producedBytes,
    producedBytesPerEvent: +(produced.producedBytes / TOTAL).toFixed(1),
    brokerBytes: broker,
    brokerBytesPerEvent: broker === null ? null : +(broker / TOTAL).toFixed(1),
  };
}

async function main(): Promise<void> {
  const kafka = createKafkaClient(kafkaConfigSchema.parse({ brokers }), quiet, 'bench');
  const root = createClickHouse(clickhouseConfigSchema.parse({ url: chUrl, database: 'default' }));
  const dbs = [FORMATS.single.db, FORMATS.batched.db, dbCeiling];
  const admin = kafka.admin();
  try {
    for (const { prefix } of Object.values(FORMATS))
      await ensureTopics(kafka, topicSpecs(topicDefaults, prefix));
    for (const db of dbs)
      await migrate(clickhouseConfigSchema.parse({ url: chUrl, database: db }), {
        dir: MIGRATIONS,
        lockSettleMs: 100,
      });

    // 1. Both backlogs, before either is drained.
    const producedSingle = await produceSingle(kafka);
    const producedBatched = await produceBatched(kafka);
    const bytesSingle = kafkaBytes('single', producedSingle);
    const bytesBatched = kafkaBytes('batched', producedBatched);

    // 2. Each drained by its own `tapwire ingest`, one after the other; 3. the ceiling.
    const single = await drain('single', 1);
    const batched = await drain('batched', TOTAL / producedBatched.records);
    const ceil = await ceiling(FORMATS.single.db);
    const ratio = (r: PipelineRun) => +(r.eventsPerSecond / ceil.rowsPerSecond).toFixed(3);

    const { sources, ...batchedProduce } = producedBatched;
    const report = {
      benchmark: 'ingest',
      events: { accessLogs: ACCESS, spans: SPANS, total: TOTAL },
      order: ['produce single', 'produce batched', 'drain single', 'drain batched', 'ceiling'],
      ceiling: ceil,
      single: {
        format: 'one Kafka record per event',
        produce: producedSingle,
        kafka: bytesSingle,
        pipeline: single,
        ratio: ratio(single),
      },
      batched: {
        format: `encodeBatch records of up to ${BATCH_EVENTS} events (${BATCH_MAX_BYTES} bytes) of one topic from one source`,
        sources: sources.length,
        produce: batchedProduce,
        kafka: bytesBatched,
        pipeline: batched,
        ratio: ratio(batched),
      },
      batched_over_single_events_per_second: +(batched.eventsPerSecond / single.eventsPerSecond).toFixed(3),
      targets: {
        batched_events_per_second_ge_100000: batched.eventsPerSecond >= 100_000,
        batched_ratio_ge_0_5: batched.eventsPerSecond >= 0.5 * ceil.rowsPerSecond,
        batched_consumer_peak_rss_le_300mb: (batched.consumerPeakRssMb ?? Number.POSITIVE_INFINITY) <= 300,
        batched_exactly_once: batched.exactlyOnce,
        single_exactly_once: single.exactlyOnce,
      },
      // The single-event targets before issue #18.
      previousTargets: {
        events_per_second_ge_60000: single.eventsPerSecond >= 60_000,
        ratio_ge_0_3: single.eventsPerSecond >= 0.3 * ceil.rowsPerSecond,
        consumer_peak_rss_le_300mb: (single.consumerPeakRssMb ?? Number.POSITIVE_INFINITY) <= 300,
      },
    };
    process.stdout.write(`${JSON.stringify(report, null, 2)}\n`);
  } finally {
    await admin.connect();
    const topics = Object.values(FORMATS).flatMap(({ prefix }) =>
      topicSpecs(topicDefaults, prefix).map((s) => s.topic),
    );
    await admin.deleteTopics({ topics }).catch(() => {});
    await admin.disconnect();
    for (const db of dbs) await root.command(sql`DROP DATABASE IF EXISTS ${identifier(db)}`);
    await root.close();
  }
}

await main();
