import { type ChildProcess, spawn } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { fileURLToPath } from 'node:url';
import { type ClickHouse, createClickHouse, identifier, migrate, raw, sql } from '@tapwire/clickhouse';
import { infraConfigSchema, kafkaConfigSchema } from '@tapwire/config';
import { kafkaBrokers, kafkaDown, kafkaUp } from '@tapwire/infra';
import { createKafkaClient, createKafkaEventSink, ensureTopics, topicSpecs } from '@tapwire/kafka';
import { TOPICS } from '@tapwire/schema';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { exampleAccessLog } from '../support/events.js';
import { infraConfig, silentLogger, testClickHouseConfig, uniqueName } from '../support/infra.js';

const ROOT = fileURLToPath(new URL('../..', import.meta.url));
const MIGRATIONS = fileURLToPath(new URL('../../migrations', import.meta.url));
// A broker of this test's own: it is stopped and started again, and the shared one on 9092 never is.
const cfg = infraConfigSchema.parse({
  ...infraConfig(),
  dir: '.tapwire/infra-kafka-stop',
  kafkaPort: 19092,
  kafkaControllerPort: 19093,
  kafkaHeapMb: 256,
});
const say = (line: string) => process.stdout.write(`[kafka-stop] ${line}\n`);
const database = uniqueName('tapwire_ingest_stop');
const prefix = `${uniqueName('stop')}.`;
const SHUTDOWN_GRACE_MS = 5000;
// What the ingest promises (shutdownGraceMs + 10 s), plus slack for a slow shared machine; a zombie never exits.
const EXIT_WAIT_MS = SHUTDOWN_GRACE_MS + 10_000 + 15_000;
const dir = mkdtempSync(join(tmpdir(), 'tapwire-ingest-stop-'));
const children: ChildProcess[] = [];
let ch: ClickHouse;

function startIngest(
  config: string,
  env: Record<string, string> = {},
): { child: ChildProcess; output: () => string } {
  const child = spawn(
    process.execPath,
    ['--import', 'tsx', 'services/cli/src/main.ts', '-c', config, 'ingest'],
    {
      cwd: ROOT,
      env: { ...process.env, TAPWIRE_TELEMETRY_LOG_LEVEL: 'info', ...env },
      stdio: ['ignore', 'pipe', 'pipe'],
    },
  );
  children.push(child);
  let out = '';
  child.stdout?.on('data', (d: Buffer) => {
    out += d.toString('utf8');
  });
  child.stderr?.on('data', (d: Buffer) => {
    out += d.toString('utf8');
  });
  return { child, output: () => out };
}

function exitOf(
  child: ChildProcess,
  timeoutMs: number,
): Promise<{ code: number | null; signal: string | null }> {
  return new Promise((resolve, reject) => {
    if (child.exitCode !== null || child.signalCode !== null) {
      resolve({ code: child.exitCode, signal: child.signalCode });
      return;
    }
    const timer = setTimeout(
      () => reject(new Error(`pid ${child.pid} still running ${timeoutMs} ms after SIGTERM`)),
      timeoutMs,
    );
    child.once('exit', (code, signal) => {
      clearTimeout(timer);
      resolve({ code, signal });
    });
  });
}

function pidExists(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

/** stored counts the raw rows, their distinct ids, and the requests each access-log rollup holds. */
async function stored(): Promise<Record<string, number>> {
  const [r] = await ch.query<Record<string, string>>(
    raw(`SELECT
           (SELECT count() FROM access_logs) AS raw,
           (SELECT uniqExact(id) FROM access_logs) AS ids,
           (SELECT countMerge(requests) FROM route_stats_1m) AS route_stats_1m,
           (SELECT sum(requests) FROM route_histogram_1m) AS route_histogram_1m,
           (SELECT sum(requests) FROM route_histogram_1h) AS route_histogram_1h`),
  );
  return Object.fromEntries(Object.entries(r ?? {}).map(([k, v]) => [k, Number(v)]));
}

const exactly = (n: number) => ({
  raw: n,
  ids: n,
  route_stats_1m: n,
  route_histogram_1m: n,
  route_histogram_1h: n,
});

beforeAll(async () => {
  await kafkaUp(cfg, say);
  await migrate(testClickHouseConfig(database), { dir: MIGRATIONS, lockSettleMs: 200 });
  ch = createClickHouse(testClickHouseConfig(database));
}, 180_000);

afterAll(async () => {
  for (const c of children) if (c.exitCode === null && c.signalCode === null) c.kill('SIGKILL');
  await kafkaDown(cfg, say);
  rmSync(cfg.dir, { recursive: true, force: true });
  rmSync(dir, { recursive: true, force: true });
  await ch?.command(sql`DROP DATABASE IF EXISTS ${identifier(database)}`);
  await ch?.close();
}, 60_000);

describe('ingest shutdown while Kafka is down', () => {
  it('a SIGTERMed ingest exits within its grace period and never rejoins; a new ingest stores new events exactly once', async () => {
    const kafkaConfig = kafkaConfigSchema.parse({
      brokers: kafkaBrokers(cfg),
      clientId: 'tapwire-test-stop',
    });
    const kafka = createKafkaClient(kafkaConfig, silentLogger, 'ingest-stop-test');
    await ensureTopics(
      kafka,
      topicSpecs(
        { partitions: 3, replicationFactor: 1, retentionMs: 3_600_000, dlqRetentionMs: 3_600_000 },
        prefix,
      ),
    );
    const config = join(dir, 'tapwire.yaml');
    writeFileSync(
      config,
      `kafka: { brokers: [${kafkaConfig.brokers.join(', ')}] }
clickhouse: { url: ${testClickHouseConfig(database).url}, database: ${database} }
ingest:
  topicPrefix: ${prefix}
  flushIntervalMs: 200
  shutdownGraceMs: ${SHUTDOWN_GRACE_MS}
  admin: { host: 127.0.0.1, port: 0 }
  retention: { enabled: false }
`,
    );
    const emitAccessLogs = async (n: number) => {
      const sink = createKafkaEventSink(
        { kafka, logger: silentLogger },
        {
          lingerMs: 10,
          maxBatchEvents: 500,
          maxBufferedEvents: 10_000,
          retryBackoffMs: 100,
          topicPrefix: prefix,
        },
      );
      for (let i = 0; i < n; i++) sink.emit(TOPICS.accessLogs, exampleAccessLog({ ts: Date.now() * 1000 }));
      await sink.close(10_000);
    };

    // Both ways ingest runs: on a worker thread (the default) and on the main thread (heapLimitMb 0).
    const first = [startIngest(config), startIngest(config, { TAPWIRE_INGEST_HEAP_LIMIT_MB: '0' })];
    // Signal handlers are installed once an ingest runs; a SIGTERM before that is the default kill.
    for (const f of first)
      await vi.waitFor(() => expect(f.output()).toContain('"msg":"ingest running"'), {
        timeout: 90_000,
        interval: 200,
      });
    await emitAccessLogs(300);
    await vi.waitFor(async () => expect(await stored()).toEqual(exactly(300)), {
      timeout: 90_000,
      interval: 500,
    });

    await kafkaDown(cfg, say);
    // Let the consumers find the broker gone and enter kafkajs's crash-and-restart loop, as in the report.
    await sleep(3000);
    const firstPids = first.map((f) => f.child.pid!);
    for (const f of first) f.child.kill('SIGTERM');
    for (const f of first) {
      const exit = await exitOf(f.child, EXIT_WAIT_MS).catch((err: Error) => {
        throw new Error(`${err.message}; its output:\n${f.output().slice(-4000)}`);
      });
      expect(exit, f.output().slice(-4000)).toEqual({ code: 0, signal: null });
      expect(f.output()).toContain('ingest stopped');
    }
    expect(firstPids.map(pidExists)).toEqual([false, false]);

    await kafkaUp(cfg, say);
    const second = startIngest(config);
    await emitAccessLogs(500);
    try {
      await vi.waitFor(async () => expect(await stored()).toEqual(exactly(800)), {
        timeout: 90_000,
        interval: 500,
      });
      // A second member would have taken partitions and stored its share again: wait past a
      // rebalance's worth of time, then the group still has one member and the counts are unchanged.
      await sleep(5000);
      const admin = kafka.admin();
      await admin.connect();
      try {
        const { groups } = await admin.describeGroups(['tapwire-ingest']);
        expect(groups.map((g) => g.members.length)).toEqual([1]);
      } finally {
        await admin.disconnect();
      }
      expect(await stored()).toEqual(exactly(800));
      expect(firstPids.map(pidExists)).toEqual([false, false]);
    } finally {
      second.child.kill('SIGTERM');
      await exitOf(second.child, EXIT_WAIT_MS);
    }
  }, 300_000);
});
