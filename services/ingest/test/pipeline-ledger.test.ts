import { accessLogCodec, type DlqEvent, TOPICS } from '@tapwire/schema';
import {
  type ConsumedMessage,
  type ConsumerRunner,
  type EventSink,
  encodeBatch,
  type TopicPartitionOffset,
} from '@tapwire/stream';
import { describe, expect, it } from 'vitest';
import { exampleAccessLog } from '../../../test/support/events.js';
import { ingestConfigSchema } from '../src/config.js';
import { createDetachedIngestMetrics } from '../src/metrics.js';
import { createIngestPipeline } from '../src/pipeline.js';
import type { StoredBatch } from '../src/rollup-repair.js';
import type { Warehouse } from '../src/warehouse.js';

const quiet = { error() {}, warn() {}, info() {}, debug() {}, child: () => quiet } as never;
const TOPIC = TOPICS.accessLogs;

type StoredRow = { id: string; source_id: string; source_seq: string; kafka_offset: string };

/**
 * A warehouse in memory behind our interface: it keeps the rows it is given, answers ledger
 * lookups from them and counts the lookups. `storeThenFail` inserts stored but answered with an
 * error, as by a server stopping mid-insert.
 */
function memoryWarehouse(options: { storeThenFail?: number; held?: boolean } = {}) {
  const rows: StoredRow[] = [];
  const lookups: string[] = [];
  const checked: StoredBatch[] = [];
  const waiting: (() => void)[] = [];
  let storeThenFail = options.storeThenFail ?? 0;
  const warehouse = {
    kind: 'clickhouse',
    memory: async () => [],
    async insert(_table: string, body: readonly (string | Uint8Array)[]) {
      if (options.held) await new Promise<void>((resolve) => waiting.push(resolve));
      const text = body.map((p) => Buffer.from(p).toString('utf8')).join('');
      for (const line of text.split('\n')) if (line) rows.push(JSON.parse(line) as StoredRow);
      if (storeThenFail-- > 0) throw new Error('socket hang up');
    },
    insertRows: async () => {},
    async storedSeqs(_table: string, source: string, from: bigint, to?: bigint) {
      lookups.push(`seqs ${source} ${from}..${to ?? ''}`);
      return rows
        .filter((r) => r.source_id === source)
        .map((r) => r.source_seq)
        .filter((s) => BigInt(s) >= from && (to === undefined || BigInt(s) <= to));
    },
    async highestSeq(_table: string, source: string, from: bigint) {
      lookups.push(`highest ${source} ${from}`);
      let top: bigint | undefined;
      for (const r of rows) {
        const seq = BigInt(r.source_seq);
        if (r.source_id === source && seq >= from && (top === undefined || seq > top)) top = seq;
      }
      return top?.toString();
    },
    async checkRollup(batch: StoredBatch) {
      checked.push(batch);
      return 'complete' as const;
    },
    auditDay: async () => ({ table: 'access_logs', day: '', rawRows: 0, ledgerRows: 0, rollups: [] }),
    daysBefore: async () => [],
    dropDay: async () => false,
    expireAfter: async () => 'unsupported' as const,
    capabilities: async () => undefined,
    close: async () => {},
  } satisfies Warehouse;
  /** release lets the oldest held insert go on. */
  const release = async () => {
    while (waiting.length === 0) await new Promise((r) => setImmediate(r));
    waiting.shift()!();
  };
  return { warehouse, rows, lookups, checked, release };
}

function setup(warehouse: Warehouse, firstOffset = 0) {
  const commits: TopicPartitionOffset[][] = [];
  const dead: DlqEvent[] = [];
  const runner = {
    commit: async (o: readonly TopicPartitionOffset[]) => void commits.push([...o]),
    pause() {},
    resume() {},
  };
  const dlq = {
    emit: (_topic: string, e: DlqEvent) => {
      dead.push(e);
      return true;
    },
    flush: async () => {},
  } as unknown as EventSink;
  const config = ingestConfigSchema.parse({
    maxBatchRows: 100_000,
    flushIntervalMs: 60_000,
    retryBackoffMs: 10,
    admin: { port: 0 },
  });
  const pipeline = createIngestPipeline(
    { warehouse, dlq, logger: quiet, metrics: createDetachedIngestMetrics() },
    config,
  );
  pipeline.attach(runner as unknown as ConsumerRunner);
  let next = firstOffset;
  const consume = (messages: Omit<ConsumedMessage, 'offset'>[]) =>
    pipeline.onBatch({
      topic: TOPIC,
      partition: 0,
      highWatermark: '0',
      messages: messages.map((m) => ({ ...m, offset: String(next++) })),
    });
  return { pipeline, consume, commits, dead };
}

const event = () => Buffer.from(accessLogCodec.encode(exampleAccessLog()));

/** batch is one batched record of `source` from `firstSeq`: the events given, or that many valid access logs. */
function batch(
  source: string,
  firstSeq: number,
  events: Buffer[] | number,
  overHeaders: Record<string, string> = {},
): Omit<ConsumedMessage, 'offset'> {
  const list = typeof events === 'number' ? Array.from({ length: events }, event) : events;
  const encoded = encodeBatch({ source, firstSeq: BigInt(firstSeq), events: list });
  // As kafkajs gives them: header values as Buffers.
  const headers = Object.fromEntries(
    Object.entries({ ...encoded.headers, ...overHeaders }).map(([k, v]) => [k, Buffer.from(v)]),
  );
  return { key: Buffer.from(encoded.key), value: encoded.value, headers };
}

const single = (): Omit<ConsumedMessage, 'offset'> => ({ key: null, value: event(), headers: {} });

const seqsOf = (rows: StoredRow[], source: string) =>
  rows
    .filter((r) => r.source_id === source)
    .map((r) => Number(r.source_seq))
    .sort((a, b) => a - b);

const range = (from: number, to: number) => Array.from({ length: to - from + 1 }, (_, i) => from + i);

describe('ingest ledger for batched records', () => {
  it('looks a source up when it is first seen, not while its batches move forward', async () => {
    const w = memoryWarehouse();
    const { pipeline, consume, commits } = setup(w.warehouse);
    await consume([batch('proxy-a', 0, 10)]);
    await consume([batch('proxy-a', 10, 10), single(), batch('proxy-a', 20, 5)]);
    await pipeline.flush();
    await consume([batch('proxy-a', 25, 5)]);
    await pipeline.flush();
    expect(w.lookups).toEqual(['seqs proxy-a 0..9', 'highest proxy-a 0']);
    expect(seqsOf(w.rows, 'proxy-a')).toEqual(range(0, 29));
    // The single-event record between them keeps the legacy identity: its partition and offset.
    expect(w.rows.filter((r) => r.source_id === 'partition:0')).toEqual([
      expect.objectContaining({ source_id: 'partition:0', source_seq: '2', kafka_offset: '2' }),
    ]);
    expect(w.rows.find((r) => r.source_seq === '12' && r.source_id === 'proxy-a')?.kafka_offset).toBe('1');
    expect(commits.at(-1)).toEqual([{ topic: TOPIC, partition: 0, offset: '5' }]);
    expect(pipeline.stats()).toMatchObject({ inserted: 31, skippedDuplicates: 0 });
  });

  it('a resend of batches still buffered, and one that overlaps and extends them, stores each event once', async () => {
    const w = memoryWarehouse();
    const { pipeline, consume } = setup(w.warehouse);
    await consume([batch('proxy-a', 0, 10), batch('proxy-a', 10, 11)]);
    // The shipper lost its position: the same batch again, then 10..25.
    await consume([batch('proxy-a', 10, 11), batch('proxy-a', 10, 16)]);
    await pipeline.flush();
    expect(seqsOf(w.rows, 'proxy-a')).toEqual(range(0, 25));
    expect(pipeline.stats()).toMatchObject({ inserted: 26, skippedDuplicates: 22 });
  });

  it('a resend arriving while the first copy is being inserted is skipped', async () => {
    const w = memoryWarehouse({ held: true });
    const { pipeline, consume } = setup(w.warehouse);
    await consume([batch('proxy-a', 0, 10)]);
    const flushed = pipeline.flush();
    await consume([batch('proxy-a', 0, 12)]);
    // The flush goes on until nothing is left: the first insert, then one of seqs 10 and 11.
    await w.release();
    await w.release();
    await flushed;
    expect(seqsOf(w.rows, 'proxy-a')).toEqual(range(0, 11));
    expect(pipeline.stats()).toMatchObject({ inserted: 12, skippedDuplicates: 10 });
  });

  it('a resend of batches already inserted is looked up in the warehouse and skipped', async () => {
    const w = memoryWarehouse();
    const { pipeline, consume } = setup(w.warehouse);
    await consume([batch('proxy-a', 0, 21)]);
    await pipeline.flush();
    await consume([batch('proxy-a', 10, 16), batch('proxy-a', 26, 4)]);
    await pipeline.flush();
    expect(w.lookups).toEqual(['seqs proxy-a 0..20', 'highest proxy-a 0', 'seqs proxy-a 10..20']);
    expect(seqsOf(w.rows, 'proxy-a')).toEqual(range(0, 29));
    expect(pipeline.stats()).toMatchObject({ inserted: 30, skippedDuplicates: 11 });
  });

  it('after a restart, batches inserted but not committed are skipped up to the highest stored, then no lookup', async () => {
    const w = memoryWarehouse();
    const before = setup(w.warehouse);
    await before.consume([batch('proxy-a', 0, 10), batch('proxy-a', 10, 10), batch('proxy-a', 20, 10)]);
    await before.pipeline.flush();
    w.lookups.length = 0;
    // A new process reads the same records again (nothing was committed), then new ones.
    const after = setup(w.warehouse);
    await after.pipeline.onAssigned([{ topic: TOPIC, partition: 0, offset: '-1' }]);
    await after.consume([batch('proxy-a', 0, 10), batch('proxy-a', 10, 10), batch('proxy-a', 20, 10)]);
    await after.consume([batch('proxy-a', 30, 10), batch('proxy-a', 40, 10)]);
    await after.pipeline.flush();
    expect(w.lookups).toEqual([
      'seqs partition:0 0..',
      'seqs proxy-a 0..9',
      'highest proxy-a 0',
      'seqs proxy-a 10..19',
      'seqs proxy-a 20..29',
    ]);
    expect(seqsOf(w.rows, 'proxy-a')).toEqual(range(0, 49));
    expect(after.pipeline.stats()).toMatchObject({ inserted: 20, skippedDuplicates: 30 });
  });

  it('sources are separate: another source at the same sequence numbers is stored', async () => {
    const w = memoryWarehouse();
    const { pipeline, consume } = setup(w.warehouse);
    await consume([batch('proxy-a', 0, 5), batch('proxy-b', 0, 5), batch('proxy-a', 5, 5)]);
    await pipeline.flush();
    expect(seqsOf(w.rows, 'proxy-a')).toEqual(range(0, 9));
    expect(seqsOf(w.rows, 'proxy-b')).toEqual(range(0, 4));
  });

  it('an invalid event of a batch goes to the DLQ alone with its index, once; a record that is not a batch goes whole', async () => {
    const w = memoryWarehouse();
    const { pipeline, consume, dead } = setup(w.warehouse);
    const events = [event(), Buffer.from('{"v":1,"id":"abc'), event()];
    await consume([batch('proxy-a', 100, events)]);
    // Resent: the bad event is not dead-lettered again.
    await consume([batch('proxy-a', 100, events)]);
    await consume([batch('proxy-a', 200, 3, { 'tapwire-count': '4' })]);
    await pipeline.flush();
    expect(seqsOf(w.rows, 'proxy-a')).toEqual([100, 102]);
    expect(dead).toEqual([
      expect.objectContaining({
        id: 'dlq_tapwire_access_v1_0_0_1',
        source_topic: TOPIC,
        source_partition: 0,
        source_offset: '0',
        source_index: 1,
        raw_base64: Buffer.from('{"v":1,"id":"abc').toString('base64'),
      }),
      expect.objectContaining({
        id: 'dlq_tapwire_access_v1_0_2',
        source_offset: '2',
        reason: 'invalid_batch: batch holds 3 lines, its count header says 4',
      }),
    ]);
    expect(dead[0]?.reason).toMatch(/^not_json: /);
    expect(dead[1]).not.toHaveProperty('source_index');
    expect(pipeline.stats()).toMatchObject({ inserted: 2, deadLettered: 2, skippedDuplicates: 3 });
  });

  it('a batched DLQ id keeps offset and index whole under a long topic prefix', async () => {
    const w = memoryWarehouse();
    const dead: DlqEvent[] = [];
    const prefix = `${'p'.repeat(70)}.`;
    const pipeline = createIngestPipeline(
      {
        warehouse: w.warehouse,
        dlq: { emit: (_t: string, e: DlqEvent) => dead.push(e) > 0, flush: async () => {} } as never,
        logger: quiet,
        metrics: createDetachedIngestMetrics(),
      },
      ingestConfigSchema.parse({ topicPrefix: prefix, admin: { port: 0 } }),
    );
    pipeline.attach({ commit: async () => {}, pause() {}, resume() {} } as unknown as ConsumerRunner);
    await pipeline.onBatch({
      topic: prefix + TOPIC,
      partition: 7,
      highWatermark: '0',
      messages: [{ ...batch('proxy-a', 0, [event(), Buffer.from('x'), Buffer.from('y')]), offset: '123456' }],
    });
    expect(dead.map((d) => d.id)).toEqual([
      `dlq_${'p'.repeat(64 - 4 - '_7_123456_1'.length)}_7_123456_1`,
      `dlq_${'p'.repeat(64 - 4 - '_7_123456_2'.length)}_7_123456_2`,
    ]);
    expect(dead.every((d) => d.id.length === 64)).toBe(true);
  });

  it('rows a failed insert stored anyway are not inserted again, and their rollups are checked by identity', async () => {
    const w = memoryWarehouse({ storeThenFail: 1 });
    const { pipeline, consume } = setup(w.warehouse);
    await consume([batch('proxy-a', 0, 5), single(), batch('proxy-b', 40, 3)]);
    await pipeline.flush();
    expect(seqsOf(w.rows, 'proxy-a')).toEqual(range(0, 4));
    expect(seqsOf(w.rows, 'proxy-b')).toEqual([40, 41, 42]);
    expect(w.rows).toHaveLength(9);
    expect(pipeline.stats()).toMatchObject({ insertFailures: 1, skippedDuplicates: 9 });
    // Once per access-log rollup: route_stats_1m, route_histogram_1m/_1h, slo_counts_1m/_1h,
    // policy_stats_1m/_1h.
    const stored = {
      'proxy-a': ['0', '1', '2', '3', '4'],
      'partition:0': ['1'],
      'proxy-b': ['40', '41', '42'],
    };
    expect(w.checked.map((b) => Object.fromEntries(b.seqs))).toEqual(Array(7).fill(stored));
  });

  it('single-event records already stored when the partition was assigned are skipped by their identity', async () => {
    const w = memoryWarehouse();
    const first = setup(w.warehouse);
    await first.consume([single(), single(), single()]);
    await first.pipeline.flush();
    // Committed up to 1: offsets 1 and 2 come again, 3 and 4 are new.
    const again = setup(w.warehouse, 1);
    await again.pipeline.onAssigned([{ topic: TOPIC, partition: 0, offset: '1' }]);
    await again.consume([single(), single(), single(), single()]);
    await again.pipeline.flush();
    expect(seqsOf(w.rows, 'partition:0')).toEqual([0, 1, 2, 3, 4]);
    expect(again.pipeline.stats()).toMatchObject({ inserted: 2, skippedDuplicates: 2 });
  });
});
