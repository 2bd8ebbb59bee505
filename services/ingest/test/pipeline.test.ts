import { accessLogCodec, TOPICS } from '@tapwire/schema';
import type { ConsumerRunner, EventSink, PartitionBatch, TopicPartitionOffset } from '@tapwire/stream';
import { describe, expect, it } from 'vitest';
import { exampleAccessLog } from '../../../test/support/events.js';
import { ingestConfigSchema } from '../src/config.js';
import { createDetachedIngestMetrics } from '../src/metrics.js';
import { createIngestPipeline } from '../src/pipeline.js';
import type { Warehouse } from '../src/warehouse.js';

const quiet = { error() {}, warn() {}, info() {}, debug() {}, child: () => quiet } as never;

/** A warehouse whose inserts wait until the test releases them; it records each insert's row count. */
function heldWarehouse() {
  const inserts: number[] = [];
  const waiting: (() => void)[] = [];
  const warehouse = {
    kind: 'clickhouse',
    memory: async () => [],
    async insert(_table: string, body: readonly (string | Uint8Array)[]) {
      const rows = body.reduce(
        (n, piece) => n + Buffer.from(piece).toString('utf8').split('\n').length - 1,
        0,
      );
      await new Promise<void>((resolve) => waiting.push(resolve));
      inserts.push(rows);
    },
    insertRows: async () => {},
    storedSeqs: async () => [],
    highestSeq: async () => undefined,
    checkRollup: async () => 'complete',
    auditDay: async () => ({ table: 'access_logs', day: '', rawRows: 0, ledgerRows: 0, rollups: [] }),
    daysBefore: async () => [],
    dropDay: async () => false,
    expireAfter: async () => 'unsupported' as const,
    capabilities: async () => undefined,
    close: async () => {},
  } satisfies Warehouse;
  const release = async () => {
    while (waiting.length === 0) await new Promise((r) => setImmediate(r));
    waiting.shift()!();
    await new Promise((r) => setImmediate(r));
  };
  return { warehouse, inserts, release, pending: () => waiting.length };
}

function setup(warehouse: Warehouse) {
  const commits: TopicPartitionOffset[][] = [];
  const runner = {
    commit: async (o: readonly TopicPartitionOffset[]) => void commits.push([...o]),
    pause() {},
    resume() {},
  };
  const dlq = { emit: () => true, flush: async () => {} } as unknown as EventSink;
  const metrics = createDetachedIngestMetrics();
  const config = ingestConfigSchema.parse({ maxBatchRows: 100, flushIntervalMs: 60_000, admin: { port: 0 } });
  const pipeline = createIngestPipeline({ warehouse, dlq, logger: quiet, metrics }, config);
  pipeline.attach(runner as unknown as ConsumerRunner);
  let next = 0;
  const consume = (n: number) => {
    const batch: PartitionBatch = {
      topic: TOPICS.accessLogs,
      partition: 0,
      highWatermark: '0',
      messages: Array.from({ length: n }, () => ({
        offset: String(next++),
        key: null,
        value: Buffer.from(accessLogCodec.encode(exampleAccessLog())),
      })),
    };
    return pipeline.onBatch(batch);
  };
  return { pipeline, consume, commits };
}

describe('ingest pipeline batching', () => {
  it('rows that arrive during an insert wait for a full batch instead of going out as a small insert', async () => {
    const w = heldWarehouse();
    const { pipeline, consume, commits } = setup(w.warehouse);

    await consume(100); // maxBatchRows: the first insert starts
    await consume(30); // arrives while it runs
    await w.release();
    expect(w.inserts).toEqual([100]);
    expect(commits).toEqual([[{ topic: TOPICS.accessLogs, partition: 0, offset: '100' }]]);
    expect(w.pending()).toBe(0); // no second insert of the 30 waiting rows

    await consume(80); // 110 waiting: a full batch again
    await w.release();
    expect(w.inserts).toEqual([100, 110]);
    expect(commits.at(-1)).toEqual([{ topic: TOPICS.accessLogs, partition: 0, offset: '210' }]);

    // The interval's flush takes what is there, however little.
    await consume(7);
    const tick = pipeline.flush(false);
    await w.release();
    await tick;
    expect(w.inserts).toEqual([100, 110, 7]);
  });

  it('stopping inserts everything, including rows that arrive during its inserts', async () => {
    const w = heldWarehouse();
    const { pipeline, consume, commits } = setup(w.warehouse);
    await consume(10);
    const stopped = pipeline.stop();
    await consume(5); // lands while the final insert runs
    await w.release();
    await w.release();
    await stopped;
    expect(w.inserts).toEqual([10, 5]);
    expect(commits.at(-1)).toEqual([{ topic: TOPICS.accessLogs, partition: 0, offset: '15' }]);
  });
});
