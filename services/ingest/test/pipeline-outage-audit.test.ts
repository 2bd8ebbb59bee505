import { accessLogCodec, TOPICS } from '@tapwire/schema';
import type { ConsumerRunner, EventSink } from '@tapwire/stream';
import { describe, expect, it, vi } from 'vitest';
import { exampleAccessLog } from '../../../test/support/events.js';
import { ingestConfigSchema } from '../src/config.js';
import type { DayAudit } from '../src/day-audit.js';
import { createDetachedIngestMetrics } from '../src/metrics.js';
import { createIngestPipeline } from '../src/pipeline.js';
import type { Stream } from '../src/rows.js';
import type { Warehouse } from '../src/warehouse.js';

const T = Date.UTC(2026, 11, 5, 12) / 1000;

function recordingLogger() {
  const errors: { fields: Record<string, unknown>; message: string }[] = [];
  const logger = {
    error: (fields: Record<string, unknown>, message: string) => errors.push({ fields, message }),
    warn() {},
    info() {},
    debug() {},
    child: () => logger,
  };
  return { logger: logger as never, errors };
}

/** A warehouse whose first insert fails (ClickHouse restarting) and whose audit returns `audit`. */
function restartingWarehouse(audit: (stream: Stream, day: number) => DayAudit) {
  const audited: string[] = [];
  let failures = 1;
  const warehouse = {
    kind: 'clickhouse',
    memory: async () => [],
    async insert() {
      if (failures-- > 0) throw new Error('ECONNREFUSED');
    },
    insertRows: async () => {},
    storedSeqs: async () => [],
    highestSeq: async () => undefined,
    checkRollup: async () => 'complete',
    async auditDay(stream: Stream, day: number) {
      audited.push(`${stream.table}/${day}`);
      return audit(stream, day);
    },
    daysBefore: async () => [],
    dropDay: async () => false,
    expireAfter: async () => 'unsupported' as const,
    capabilities: async () => undefined,
    close: async () => {},
  } satisfies Warehouse;
  return { warehouse, audited };
}

async function ingestThroughOutage(warehouse: Warehouse, audited: string[], logger: never) {
  const metrics = createDetachedIngestMetrics();
  const config = ingestConfigSchema.parse({ retryBackoffMs: 10, admin: { port: 0 } });
  const dlq = { emit: () => true, flush: async () => {} } as unknown as EventSink;
  const pipeline = createIngestPipeline({ warehouse, dlq, logger, metrics }, config);
  pipeline.attach({ commit: async () => {}, pause() {}, resume() {} } as unknown as ConsumerRunner);
  await pipeline.onBatch({
    topic: TOPICS.accessLogs,
    partition: 0,
    highWatermark: '0',
    messages: [0, 1].map((i) => ({
      offset: String(i),
      key: null,
      value: Buffer.from(accessLogCodec.encode(exampleAccessLog({ ts: T * 1_000_000 }))),
    })),
  });
  await pipeline.stop();
  // The audit runs beside the inserts: wait until it has asked about the day.
  await vi.waitFor(() => expect(audited).toHaveLength(1));
  await new Promise((r) => setImmediate(r));
  return {
    stats: pipeline.stats(),
    metrics: await metrics.registry.getSingleMetricAsString('tapwire_ingest_rollup_checks_total'),
  };
}

describe('ingest pipeline after a ClickHouse outage', () => {
  it('audits the days it wrote and reports raw rows and rollups above the ledger (data a restart brought back)', async () => {
    const day = Math.floor(T / 86_400);
    const { warehouse, audited } = restartingWarehouse((stream) => ({
      table: stream.table,
      day: '20261205',
      rawRows: 4,
      ledgerRows: 2,
      rollups: [
        { table: 'route_stats_1m', rows: 4, expected: 2 },
        { table: 'route_histogram_1m', rows: 2, expected: 2 },
      ],
    }));
    const { logger, errors } = recordingLogger();
    const { stats, metrics } = await ingestThroughOutage(warehouse, audited, logger);
    expect(audited).toEqual([`access_logs/${day}`]);
    expect(stats).toMatchObject({ inserted: 2, insertFailures: 1, ledgerMismatches: 1 });
    expect(errors).toHaveLength(1);
    expect(errors[0]?.fields.above).toEqual(['access_logs', 'route_stats_1m']);
    expect(errors[0]?.message).toContain(
      'tapwire replay --clear --from 2026-12-05T00:00:00Z --to 2026-12-05T23:59:59Z --tables access_logs',
    );
    expect(metrics).toContain('tapwire_ingest_rollup_checks_total{table="access_logs",outcome="excess"} 1');
    expect(metrics).toContain(
      'tapwire_ingest_rollup_checks_total{table="route_stats_1m",outcome="excess"} 1',
    );
    expect(metrics).not.toContain('route_histogram_1m');
  });

  it('a day that agrees with the ledger is not reported', async () => {
    const { warehouse, audited } = restartingWarehouse((stream) => ({
      table: stream.table,
      day: '20261205',
      rawRows: 2,
      ledgerRows: 2,
      rollups: [{ table: 'route_stats_1m', rows: 1, expected: 2 }],
    }));
    const { logger, errors } = recordingLogger();
    const { stats } = await ingestThroughOutage(warehouse, audited, logger);
    expect(audited).toHaveLength(1);
    expect(stats).toMatchObject({ inserted: 2, ledgerMismatches: 0 });
    expect(errors).toEqual([]);
  });
});
