import { mkdtempSync, readdirSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { fileURLToPath } from 'node:url';
import { type ClickHouse, createClickHouse, identifier, migrate, raw, sql } from '@tapwire/clickhouse';
import { infraConfigSchema, kafkaConfigSchema } from '@tapwire/config';
import { kafkaBrokers, kafkaDown, kafkaUp } from '@tapwire/infra';
import { createKafkaClient, ensureTopics, topicSpecs } from '@tapwire/kafka';
import { TOPICS } from '@tapwire/schema';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { infraConfig, silentLogger, testClickHouseConfig, uniqueName } from '../support/infra.js';
import { type RawMessage, readTopics } from '../support/kafka-read.js';
import { scrape } from '../support/prom-text.js';
import { steadyLoad } from '../support/steady-load.js';
import { spawnTapwire, type TapwireProcess, waitForUrl } from '../support/tapwire-process.js';
import { freePort, startUpstream, type TestUpstream } from '../support/upstream.js';

/**
 * Issue #18 acceptance: Kafka stopped 60 s under load. `tapwire proxy` and `tapwire ingest` run as
 * processes on a broker of this file's own (stopped and started again; the shared one on 9092
 * never is) and the shared ClickHouse. While the broker is away the proxy answers every request
 * from its local log, which grows and shows on /metrics; once it is back the log drains and every
 * answered request is stored exactly once, raw and rollups, in its source's order.
 */

const MIGRATIONS = fileURLToPath(new URL('../../migrations', import.meta.url));
const cfg = infraConfigSchema.parse({
  ...infraConfig(),
  dir: '.tapwire/infra-kafka-outage',
  kafkaPort: 19292,
  kafkaControllerPort: 19293,
  kafkaHeapMb: 256,
});
const say = (line: string) => process.stdout.write(`[kafka-outage] ${line}\n`);
const OUTAGE_MS = 60_000;
const SCRAPE_EVERY_MS = 5000;
const RATE_PER_S = 300;
const database = uniqueName('tapwire_outage');
const prefix = `${uniqueName('outage')}.`;
const dir = mkdtempSync(join(tmpdir(), 'tapwire-kafka-outage-'));
const kafka = createKafkaClient(
  kafkaConfigSchema.parse({ brokers: kafkaBrokers(cfg), clientId: 'tapwire-outage-test' }),
  silentLogger,
  'kafka-outage-test',
);
const processes: TapwireProcess[] = [];
let ch: ClickHouse;
let up: TestUpstream;

/** Per raw table: rows, distinct ids, distinct sources, and the ledger's distinct, lowest and highest sequence numbers. */
async function ledger(table: string): Promise<Record<string, number>> {
  const [r] = await ch.query<Record<string, string>>(
    sql`SELECT count() AS rows, uniqExact(id) AS ids, uniqExact(source_id) AS sources,
          uniqExact(source_id, source_seq) AS seqs, min(source_seq) AS min_seq, max(source_seq) AS max_seq
        FROM ${identifier(table)}`,
  );
  return Object.fromEntries(Object.entries(r ?? {}).map(([k, v]) => [k, Number(v)]));
}

/** What each access-log rollup counts. */
async function rollups(): Promise<Record<string, number>> {
  const [r] = await ch.query<Record<string, string>>(
    raw(`SELECT
           (SELECT countMerge(requests) FROM route_stats_1m) AS route_stats_1m,
           (SELECT sum(requests) FROM route_histogram_1m) AS route_histogram_1m,
           (SELECT sum(requests) FROM route_histogram_1h) AS route_histogram_1h`),
  );
  return Object.fromEntries(Object.entries(r ?? {}).map(([k, v]) => [k, Number(v)]));
}

/** segmentFiles lists, per topic of a local log, its segment files' sizes. */
function segmentFiles(logDir: string): Record<string, number[]> {
  const topics = join(logDir, 'topics');
  return Object.fromEntries(
    readdirSync(topics).map((t) => [
      t,
      readdirSync(join(topics, t))
        .filter((f) => f.endsWith('.log'))
        .map((f) => statSync(join(topics, t, f)).size),
    ]),
  );
}

const sum = (xs: number[]) => xs.reduce((a, b) => a + b, 0);

/** Each of `n` events stored once, under one source, with the sequence numbers 0..n-1. */
const onceEach = (n: number) => ({ rows: n, ids: n, sources: 1, seqs: n, min_seq: 0, max_seq: n - 1 });

/**
 * sourceOrder walks a topic's events partition by partition in offset order and checks that each
 * source's new events come in sequence order with no gap; an event at or below the highest
 * sequence seen is a resend and must be the same event. Returns, per source, its partitions, its
 * events and the resent ones.
 */
function sourceOrder(messages: RawMessage[]) {
  const bySource = new Map<
    string,
    { partitions: Set<number>; next: bigint; values: string[]; resent: number }
  >();
  const partitions = [...new Set(messages.map((m) => m.partition))];
  for (const partition of partitions) {
    const along = messages
      .filter((m) => m.partition === partition)
      .sort((a, b) =>
        BigInt(a.offset) < BigInt(b.offset) ? -1 : BigInt(a.offset) > BigInt(b.offset) ? 1 : 0,
      );
    for (const m of along) {
      const source = m.source!;
      const s = bySource.get(source) ?? { partitions: new Set(), next: 0n, values: [], resent: 0 };
      bySource.set(source, s);
      s.partitions.add(partition);
      const seq = m.seq!;
      const value = m.value.toString('utf8');
      if (seq === s.next) {
        s.values.push(value);
        s.next++;
      } else if (seq < s.next) {
        expect(value, `${source} seq ${seq} resent as another event`).toBe(s.values[Number(seq)]);
        s.resent++;
      } else {
        throw new Error(
          `${source}: seq ${seq} at ${partition}@${m.offset} after ${s.next - 1n}: a gap or out of order`,
        );
      }
    }
  }
  return [...bySource].map(([source, s]) => ({
    source,
    partitions: [...s.partitions],
    events: s.values.length,
    resent: s.resent,
  }));
}

beforeAll(async () => {
  await kafkaUp(cfg, say);
  await ensureTopics(
    kafka,
    topicSpecs(
      { partitions: 3, replicationFactor: 1, retentionMs: 3_600_000, dlqRetentionMs: 3_600_000 },
      prefix,
    ),
  );
  await migrate(testClickHouseConfig(database), { dir: MIGRATIONS, lockSettleMs: 200 });
  ch = createClickHouse(testClickHouseConfig(database));
  up = await startUpstream();
}, 180_000);

afterAll(async () => {
  for (const p of processes) await p.stop('SIGKILL');
  await up?.close();
  await kafkaDown(cfg, say);
  rmSync(cfg.dir, { recursive: true, force: true });
  rmSync(dir, { recursive: true, force: true });
  await ch?.command(sql`DROP DATABASE IF EXISTS ${identifier(database)}`);
  await ch?.close();
}, 60_000);

describe('Kafka stopped for 60 s under load', () => {
  it('the proxy answers every request, its local log grows (unshipped bytes and lag on /metrics) then drains, and ClickHouse stores each request once, in source order', async () => {
    const [proxyPort, proxyAdmin, ingestAdmin] = await Promise.all([freePort(), freePort(), freePort()]);
    const config = join(dir, 'tapwire.yaml');
    const logDir = join(dir, 'proxy-log');
    writeFileSync(
      config,
      `kafka: { brokers: [${kafkaBrokers(cfg).join(', ')}], clientId: tapwire-outage }
clickhouse: { url: ${testClickHouseConfig(database).url}, database: ${database} }
proxy:
  listen: { host: 127.0.0.1, port: ${proxyPort} }
  admin: { host: 127.0.0.1, port: ${proxyAdmin} }
  emit: { topicPrefix: ${prefix}, logDir: ${logDir} }
  upstreams:
    - { name: app, url: ${up.url}, routes: ['/orders/:id'] }
ingest:
  groupId: ${uniqueName('outage-ingest')}
  topicPrefix: ${prefix}
  flushIntervalMs: 200
  admin: { host: 127.0.0.1, port: ${ingestAdmin} }
  retention: { enabled: false }
`,
    );
    const env = { TAPWIRE_TELEMETRY_LOG_LEVEL: 'warn' };
    const ingest = spawnTapwire(['ingest'], config, env);
    const proxy = spawnTapwire(['proxy'], config, env);
    processes.push(ingest, proxy);
    await Promise.all([
      waitForUrl(`http://127.0.0.1:${proxyAdmin}/readyz`),
      waitForUrl(`http://127.0.0.1:${ingestAdmin}/readyz`),
    ]);
    const metrics = () => scrape(`http://127.0.0.1:${proxyAdmin}/metrics`);

    const load = steadyLoad(`http://127.0.0.1:${proxyPort}`, {
      ratePerS: RATE_PER_S,
      connections: 16,
      request: (n) => ({ path: `/orders/${n % 97}` }),
    });
    const scrapes: { atMs: number; answered: number; bytes: number; events: number; lag: number }[] = [];
    let downAt = 0;
    let answeredAtDown = 0;
    let upAt = 0;
    let onDiskWhenBack: Record<string, number[]> = {};
    try {
      // The whole path works before the outage: events reach ClickHouse.
      await vi.waitFor(async () => expect((await ledger('access_logs')).rows).toBeGreaterThan(0), {
        timeout: 90_000,
        interval: 500,
      });
      await kafkaDown(cfg, say);
      downAt = Date.now();
      answeredAtDown = load.answered();
      while (Date.now() - downAt < OUTAGE_MS - SCRAPE_EVERY_MS / 2) {
        await sleep(SCRAPE_EVERY_MS);
        const m = await metrics();
        scrapes.push({
          atMs: Date.now() - downAt,
          answered: load.answered(),
          bytes: m('tapwire_proxy_unshipped_bytes'),
          events: m('tapwire_proxy_unshipped_events'),
          lag: m('tapwire_proxy_shipping_lag_seconds'),
        });
      }
      await sleep(Math.max(0, OUTAGE_MS - (Date.now() - downAt)));
      onDiskWhenBack = segmentFiles(logDir);
      await kafkaUp(cfg, say);
      upAt = Date.now();
      // Load goes on until the shipper is sending again.
      const shippedAtUp = (await metrics())('tapwire_proxy_shipped_batches_total');
      await vi.waitFor(
        async () =>
          expect((await metrics())('tapwire_proxy_shipped_batches_total')).toBeGreaterThan(shippedAtUp),
        { timeout: 120_000, interval: 250 },
      );
    } finally {
      await load.stop();
      await kafkaUp(cfg, say);
    }
    const answered = load.answered();
    say(
      `answered ${answered} (${answeredAtDown} before the outage), failed ${load.failed()}; shipping resumed ${Date.now() - upAt} ms after the broker was back`,
    );
    say(`while down: ${JSON.stringify(scrapes)}`);
    expect(load.failures()).toEqual([]);
    expect(load.failed()).toBe(0);

    // While Kafka was down: the local log grew, scrape after scrape, and so did the age of its oldest unshipped event.
    expect(scrapes.length).toBeGreaterThanOrEqual(8);
    for (const [i, s] of scrapes.entries()) {
      // Events written after the broker stopped cannot have shipped: the oldest waits at least that long.
      expect(s.lag, `lag at ${s.atMs} ms`).toBeGreaterThanOrEqual(s.atMs / 1000 - 1);
      if (i === 0) continue;
      const before = scrapes[i - 1]!;
      expect(s.bytes, `unshipped bytes at ${s.atMs} ms`).toBeGreaterThan(before.bytes);
      expect(s.events).toBeGreaterThan(before.events);
      expect(s.lag).toBeGreaterThan(before.lag);
      // Every request answered by the previous scrape had its access log written, and none could ship.
      expect(s.events).toBeGreaterThanOrEqual(before.answered - answeredAtDown);
    }

    // Kafka is back: the local log drains.
    const drainStart = Date.now();
    await vi.waitFor(
      async () => {
        const m = await metrics();
        expect([
          m('tapwire_proxy_unshipped_events'),
          m('tapwire_proxy_unshipped_bytes'),
          m('tapwire_proxy_shipping_lag_seconds'),
        ]).toEqual([0, 0, 0]);
      },
      { timeout: 120_000, interval: 250 },
    );
    const m = await metrics();
    say(
      `drained ${Date.now() - drainStart} ms after the load stopped; ${m('tapwire_proxy_shipped_batches_total')} batches`,
    );
    // On disk: the log had grown past the last scrape's unshipped bytes; drained, the shipped
    // segments are deleted and each topic keeps only the one being written.
    const onDiskDrained = segmentFiles(logDir);
    say(
      `local log segments when Kafka came back ${JSON.stringify(onDiskWhenBack)}, drained ${JSON.stringify(onDiskDrained)}`,
    );
    expect(sum(Object.values(onDiskWhenBack).flat())).toBeGreaterThanOrEqual(scrapes.at(-1)!.bytes);
    expect(Object.values(onDiskWhenBack).some((segments) => segments.length > 1)).toBe(true);
    expect(Object.values(onDiskDrained).map((segments) => segments.length)).toEqual(
      Object.values(onDiskDrained).map(() => 1),
    );
    expect(m('tapwire_proxy_events_dropped_total', { reason: 'write_failed' })).toBe(0);
    expect(m('tapwire_proxy_events_dropped_total', { reason: 'over_capacity' })).toBe(0);
    expect(m('tapwire_proxy_events_emitted_total')).toBe(m('tapwire_proxy_events_delivered_total'));

    // Stored exactly once: one access log and two spans per answered request, raw and rollups.
    const storedAt = Date.now();
    await vi.waitFor(
      async () => {
        expect(await ledger('access_logs')).toEqual(onceEach(answered));
        expect(await rollups()).toEqual({
          route_stats_1m: answered,
          route_histogram_1m: answered,
          route_histogram_1h: answered,
        });
        expect(await ledger('spans')).toEqual(onceEach(2 * answered));
      },
      { timeout: 120_000, interval: 500 },
    );
    say(`stored ${Date.now() - storedAt} ms after the log drained`);
    const saturation = await ledger('saturation');
    expect(saturation).toEqual(onceEach(saturation.rows ?? 0));
    expect(saturation.rows).toBeGreaterThanOrEqual(60);

    // Along its partition, the proxy's access logs arrive in sequence order.
    const topic = prefix + TOPICS.accessLogs;
    const messages = await readTopics(
      kafka,
      [topic],
      (got) => new Set(got.map((x) => x.seq)).size >= answered,
      120_000,
    );
    const order = sourceOrder(messages);
    say(`order on ${topic}: ${JSON.stringify(order)}`);
    expect(order.map((o) => [o.partitions.length, o.events])).toEqual([[1, answered]]);

    const stopped = await proxy.stop('SIGTERM');
    expect(stopped).toEqual({ code: 0, signal: null });
    expect(await ingest.stop('SIGTERM')).toEqual({ code: 0, signal: null });
  }, 480_000);
});
