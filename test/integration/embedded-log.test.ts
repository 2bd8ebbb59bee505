import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { type ClickHouse, createClickHouse, identifier, migrate, raw, sql } from '@tapwire/clickhouse';
import { buildIngest, clickhouseWarehouse, ingestConfigSchema, replay } from '@tapwire/ingest';
import { createLogEventSink, type FileLog, fileLogSource, openFileLog } from '@tapwire/log';
import { type AccessLogEvent, type DlqEvent, TOPICS } from '@tapwire/schema';
import { createLogger } from '@tapwire/telemetry';
import { afterAll, describe, expect, it, vi } from 'vitest';
import { exampleAccessLog, exampleSaturation, exampleSpan } from '../support/events.js';
import { silentLogger, testClickHouseConfig, uniqueName } from '../support/infra.js';

// The ingest pipeline reading the embedded log instead of Kafka: same code path (consumer group,
// offsets, batches, ledger, DLQ), real ClickHouse.

const logger = createLogger({ name: 'embedded-log-it', level: 'silent' });
const MIGRATIONS = fileURLToPath(new URL('../../migrations', import.meta.url));
const databases: string[] = [];
const logs: FileLog[] = [];

async function world() {
  const database = uniqueName('tapwire_embedded_log');
  databases.push(database);
  await migrate(testClickHouseConfig(database), { dir: MIGRATIONS, lockSettleMs: 200 });
  const ch = createClickHouse(testClickHouseConfig(database));
  const log = await openFileLog({ dir: mkdtempSync(join(tmpdir(), 'tapwire-elog-')), fsync: 'interval' });
  logs.push(log);
  const sinkConfig = { lingerMs: 10, maxBufferedEvents: 100_000, retryBackoffMs: 50 };
  const sink = createLogEventSink({ log, logger: silentLogger }, sinkConfig);
  const dlq = createLogEventSink({ log, logger: silentLogger }, sinkConfig);
  const config = ingestConfigSchema.parse({
    groupId: uniqueName('tapwire-ingest-elog'),
    flushIntervalMs: 200,
    admin: { port: 0 },
    retention: { enabled: false },
  });
  return { ch, log, sink, dlq, config };
}

async function counts(ch: ClickHouse): Promise<Record<string, number>> {
  const [r] = await ch.query<Record<string, string>>(
    raw(`SELECT (SELECT count() FROM access_logs) AS access_logs,
                (SELECT uniqExact(id) FROM access_logs) AS access_ids,
                (SELECT count() FROM spans) AS spans,
                (SELECT count() FROM saturation) AS saturation,
                (SELECT countMerge(requests) FROM route_stats_1m) AS route_stats_1m,
                (SELECT sum(requests) FROM route_histogram_1h) AS route_histogram_1h`),
  );
  return Object.fromEntries(Object.entries(r ?? {}).map(([k, v]) => [k, Number(v)]));
}

afterAll(async () => {
  for (const l of logs) await l.close();
  const root = createClickHouse(testClickHouseConfig('default'));
  for (const db of databases) await root.command(sql`DROP DATABASE IF EXISTS ${identifier(db)}`);
  await root.close();
});

describe('ingest from the embedded log', () => {
  it('N events become exactly N rows field by field; invalid records go to the DLQ with reasons; a restart re-reads nothing twice', async () => {
    const w = await world();
    const now = Date.now() * 1000;
    const accessLogs = Array.from({ length: 3000 }, (_, i) =>
      exampleAccessLog({
        ts: now - i * 1000,
        status: i % 10 === 0 ? 503 : 200,
        duration_ms: (i % 100) + 0.5,
      }),
    );
    for (const e of accessLogs) w.sink.emit(TOPICS.accessLogs, e);
    for (let i = 0; i < 1500; i++) w.sink.emit(TOPICS.spans, exampleSpan({ ts: now, start: now }));
    for (let i = 0; i < 50; i++)
      w.sink.emit(TOPICS.saturation, exampleSaturation({ ts: now - i * 1_000_000, instance: `p${i % 2}` }));
    await w.sink.flush();
    // Garbage written straight to the log, between valid neighbours.
    await w.log.append(TOPICS.accessLogs, [
      { key: null, value: 'not json' },
      { key: null, value: JSON.stringify({ ...exampleAccessLog(), v: 99 }) },
    ]);
    const late = exampleAccessLog({ ts: now });
    w.sink.emit(TOPICS.accessLogs, late);
    await w.sink.flush();

    let ingest = buildIngest(
      {
        source: fileLogSource(w.log, silentLogger),
        warehouse: clickhouseWarehouse(w.ch),
        dlq: w.dlq,
        logger,
      },
      w.config,
    );
    await ingest.start();
    const want = {
      access_logs: 3001,
      access_ids: 3001,
      spans: 1500,
      saturation: 50,
      route_stats_1m: 3001,
      route_histogram_1h: 3001,
    };
    try {
      await vi.waitFor(async () => expect(await counts(w.ch)).toEqual(want), {
        timeout: 60_000,
        interval: 250,
      });
      const rows = await w.ch.query<Record<string, unknown>>(
        raw('SELECT id, status, duration_ms, route, trace_id, bytes_out, ts_us FROM access_logs'),
      );
      const byId = new Map(rows.map((r) => [r.id as string, r]));
      for (const e of [...accessLogs, late] as AccessLogEvent[]) {
        expect(byId.get(e.id)).toEqual({
          id: e.id,
          status: e.status,
          duration_ms: e.duration_ms,
          route: e.route,
          trace_id: e.trace_id,
          bytes_out: String(e.bytes_out),
          ts_us: String(e.ts),
        });
      }
      await vi.waitFor(async () => expect(w.log.highWatermark(TOPICS.dlq)).toBe(2n));
      const dead = (await w.log.read(TOPICS.dlq, 0n)).map((r) => JSON.parse(r.value.toString()) as DlqEvent);
      expect(dead.map((d) => [d.source_topic, d.source_offset, d.reason.split(':')[0]])).toEqual([
        [TOPICS.accessLogs, '3000', 'not_json'],
        [TOPICS.accessLogs, '3001', 'unknown_version'],
      ]);
      // 4,551 events and the 2 DLQ records, which ingest projects into dlq_events like any topic.
      expect(ingest.pipeline.stats()).toMatchObject({ inserted: 4553, deadLettered: 2 });
    } finally {
      await ingest.close();
    }

    // The group committed where it stopped: a restarted ingest finds nothing new to insert.
    ingest = buildIngest(
      {
        source: fileLogSource(w.log, silentLogger),
        warehouse: clickhouseWarehouse(w.ch),
        dlq: w.dlq,
        logger,
      },
      w.config,
    );
    await ingest.start();
    w.sink.emit(TOPICS.accessLogs, exampleAccessLog({ ts: now }));
    await w.sink.flush();
    try {
      await vi.waitFor(async () => expect((await counts(w.ch)).route_histogram_1h).toBe(3002), {
        timeout: 30_000,
        interval: 250,
      });
    } finally {
      await ingest.close();
    }
    expect(await counts(w.ch)).toEqual({
      ...want,
      access_logs: 3002,
      access_ids: 3002,
      route_stats_1m: 3002,
      route_histogram_1h: 3002,
    });
  }, 120_000);

  it('replay from the embedded log after truncating restores the same counts', async () => {
    const w = await world();
    const start = Date.now();
    for (let i = 0; i < 1000; i++)
      w.sink.emit(
        TOPICS.accessLogs,
        exampleAccessLog({ ts: (start - i * 1000) * 1000, status: i % 4 === 0 ? 500 : 200 }),
      );
    await w.sink.flush();
    const ingest = buildIngest(
      {
        source: fileLogSource(w.log, silentLogger),
        warehouse: clickhouseWarehouse(w.ch),
        dlq: w.dlq,
        logger,
      },
      w.config,
    );
    await ingest.start();
    await vi.waitFor(async () => expect((await counts(w.ch)).route_stats_1m).toBe(1000), {
      timeout: 60_000,
      interval: 250,
    });
    await ingest.close();
    const before = await counts(w.ch);
    for (const t of ['access_logs', 'route_stats_1m', 'route_histogram_1m', 'route_histogram_1h'])
      await w.ch.command(sql`TRUNCATE TABLE ${identifier(t)}`);
    expect((await counts(w.ch)).access_logs).toBe(0);

    const summary = await replay(
      { source: fileLogSource(w.log, silentLogger), warehouse: clickhouseWarehouse(w.ch), logger },
      w.config,
      {
        fromMs: start - 3_600_000,
        tables: ['access_logs'],
        clear: false,
      },
    );
    expect(summary).toMatchObject({ inserted: 1000, skippedDuplicates: 0, invalid: 0 });
    expect(summary.topics).toEqual([{ topic: TOPICS.accessLogs, table: 'access_logs', events: 1000 }]);
    expect(await counts(w.ch)).toEqual(before);
  }, 120_000);
});
