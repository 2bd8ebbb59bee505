import {
  type BatchProducer,
  createLogShipper,
  type OutgoingRecord,
  type Shipper,
  type ShipperConfig,
  TapwireKafkaError,
} from '@tapwire/kafka';
import { decodeBatch } from '@tapwire/stream';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { createMemoryShipperLog, type MemoryShipperLog } from './memory-shipper-log.js';

/** FakeProducer records every send attempt; `outcome` decides each one, `hold` delays acknowledgements. */
interface FakeProducer extends BatchProducer {
  readonly attempts: OutgoingRecord[][];
  readonly acked: OutgoingRecord[][];
  outcome: (attempt: number) => 'ok' | 'fail';
  hold: Promise<void> | undefined;
  closed: boolean;
}

function fakeProducer(): FakeProducer {
  const p: FakeProducer = {
    attempts: [],
    acked: [],
    outcome: () => 'ok',
    hold: undefined,
    closed: false,
    async send(records) {
      if (p.closed) throw new TapwireKafkaError('TAPWIRE_KAFKA_SEND_FAILED', 'the producer is closed');
      const n = p.attempts.push([...records]) - 1;
      await p.hold;
      if (p.outcome(n) === 'fail') throw new TapwireKafkaError('TAPWIRE_KAFKA_SEND_FAILED', 'broker down');
      p.acked.push([...records]);
    },
    async close() {
      p.closed = true;
    },
  };
  return p;
}

interface Warning {
  fields: Record<string, unknown>;
  msg: string;
}

const running: Shipper[] = [];
afterEach(async () => {
  await Promise.all(running.splice(0).map((s) => s.stop(100)));
});

function shipper(log: MemoryShipperLog, producer: FakeProducer, config: ShipperConfig = {}) {
  const warnings: Warning[] = [];
  const logger = {
    error() {},
    info() {},
    debug() {},
    warn: (fields: object, msg: string) => warnings.push({ fields: fields as Record<string, unknown>, msg }),
  };
  const s = createLogShipper({ producer, logger }, log, {
    lingerMs: 0,
    retryBackoffMs: 5,
    maxRetryBackoffMs: 20,
    savePositionEveryMs: 0,
    ...config,
  });
  running.push(s);
  return { shipper: s, warnings };
}

/** batchesOf decodes records: per record its topic, key, first seq, and events as strings. */
function batchesOf(records: readonly OutgoingRecord[]) {
  return records.map((r) => {
    const decoded = decodeBatch(r.headers, r.value);
    if (decoded.kind !== 'batch') throw new Error(`not a batch: ${JSON.stringify(decoded)}`);
    return {
      topic: r.topic,
      key: r.key,
      source: decoded.batch.source,
      firstSeq: decoded.batch.firstSeq,
      events: decoded.batch.events.map((e) => e.toString()),
    };
  });
}

const event = (i: number, size = 0) => JSON.stringify({ i, pad: 'x'.repeat(size) });
/** A JSON event of exactly `bytes` bytes. */
const sized = (i: number, bytes: number) => event(i, bytes - event(i).length);
const range = (n: number, from = 0) => Array.from({ length: n }, (_, i) => from + i);
const LONG_AGO = Date.now() - 3_600_000;

describe('log shipper', () => {
  it('ships every event in order, at most maxBatchEvents per record, each naming its source and first seq', async () => {
    const log = createMemoryShipperLog({ id: 'proxy-a.1' });
    const values = range(25).map((i) => event(i));
    log.append('access', values);
    const producer = fakeProducer();
    const { shipper: s } = shipper(log, producer, { maxBatchEvents: 10, topicPrefix: 'p.' });
    s.start();
    await vi.waitFor(() => expect(s.stats().shippedEvents).toBe(25));

    const batches = producer.acked.flatMap(batchesOf);
    expect(batches.map((b) => [b.topic, b.key, b.source, b.firstSeq, b.events.length])).toEqual([
      ['p.access', 'proxy-a.1', 'proxy-a.1', 0n, 10],
      ['p.access', 'proxy-a.1', 'proxy-a.1', 10n, 10],
      ['p.access', 'proxy-a.1', 'proxy-a.1', 20n, 5],
    ]);
    expect(batches.flatMap((b) => b.events)).toEqual(values);
    expect(producer.acked[0]![0]!.headers).toEqual({
      'tapwire-format': 'ndjson-batch',
      'tapwire-format-version': '1',
      'tapwire-source': 'proxy-a.1',
      'tapwire-first-seq': '0',
      'tapwire-count': '10',
    });
    expect(log.committed('shipper')).toEqual(new Map([['access', 25n]]));
    expect(s.stats()).toMatchObject({
      shippedEvents: 25,
      shippedBatches: 3,
      shippedBytes: values.join('\n').length - 2,
      unshippedEvents: 0,
      unshippedBytes: 0,
      lagSeconds: 0,
      sendErrors: 0,
      connected: true,
      lastError: undefined,
    });
  });

  it('sends only events already synced to disk (a power loss cannot take back what Kafka has)', async () => {
    const log = createMemoryShipperLog();
    log.append(
      'access',
      range(30).map((i) => event(i)),
    );
    const producer = fakeProducer();
    const notDurable: string[] = [];
    const send = producer.send.bind(producer);
    producer.send = async (records) => {
      for (const b of batchesOf(records))
        if (b.firstSeq + BigInt(b.events.length) > log.durableEnd('access'))
          notDurable.push(`${b.firstSeq}+${b.events.length}`);
      await send(records);
    };
    const { shipper: s } = shipper(log, producer, { maxBatchEvents: 10 });
    s.start();
    await vi.waitFor(() => expect(s.stats().shippedEvents).toBe(30));
    log.append(
      'access',
      range(5, 30).map((i) => event(i)),
    );
    await vi.waitFor(() => expect(s.stats().shippedEvents).toBe(35));
    expect(notDurable).toEqual([]);
  });

  it('saves its position at most once per savePositionEveryMs while shipping, then when idle and at stop', async () => {
    const log = createMemoryShipperLog();
    const producer = fakeProducer();
    const { shipper: s } = shipper(log, producer, { maxBatchEvents: 5, savePositionEveryMs: 2000 });
    s.start();
    log.append(
      'access',
      range(5).map((i) => event(i)),
    );
    await vi.waitFor(() => expect(s.stats().shippedEvents).toBe(5));
    // The first acknowledged send saves at once (nothing was saved before).
    expect(log.commits.map((c) => c.get('access'))).toEqual([5n]);
    for (let i = 1; i <= 4; i++) {
      log.append(
        'access',
        range(5, 5 * i).map((j) => event(j)),
      );
      await vi.waitFor(() => expect(s.stats().shippedEvents).toBe(5 * (i + 1)));
    }
    // Four more sends within 2 s: no save yet, then one once the interval is due.
    expect(log.commits).toHaveLength(1);
    await vi.waitFor(() => expect(log.commits.map((c) => c.get('access'))).toEqual([5n, 25n]), {
      timeout: 2000,
    });
    log.append('access', [event(25)]);
    await vi.waitFor(() => expect(s.stats().shippedEvents).toBe(26));
    await s.stop(1000);
    expect(log.committed('shipper')).toEqual(new Map([['access', 26n]]));
  });

  it('ends a batch before it would exceed maxBatchBytes, and sends an event larger than that alone', async () => {
    const log = createMemoryShipperLog();
    const values = [
      ...range(5).map((i) => sized(i, 100)),
      sized(5, 1000),
      ...range(2, 6).map((i) => sized(i, 100)),
    ];
    log.append('t', values);
    const producer = fakeProducer();
    const { shipper: s } = shipper(log, producer, { maxBatchBytes: 350 });
    s.start();
    await vi.waitFor(() => expect(s.stats().shippedEvents).toBe(8));
    const records = producer.acked.flat();
    // 3 × 100 + 2 newlines = 302 ≤ 350; a fourth would make 403.
    expect(records.map((r) => r.headers['tapwire-count'])).toEqual(['3', '2', '1', '2']);
    expect(records.map((r) => r.value.length)).toEqual([302, 201, 1000, 201]);
    expect(batchesOf(records).flatMap((b) => b.events)).toEqual(values);
  });

  it("sends several topics' batches in one request, each topic's in order", async () => {
    const log = createMemoryShipperLog();
    log.append('a', ['a0', 'a1', 'a2']);
    log.append('b', ['b0', 'b1']);
    const producer = fakeProducer();
    const { shipper: s } = shipper(log, producer, { maxBatchEvents: 2 });
    s.start();
    await vi.waitFor(() => expect(s.stats().shippedEvents).toBe(5));
    expect(
      producer.acked.map(batchesOf).map((req) => req.map((b) => [b.topic, b.firstSeq, b.events])),
    ).toEqual([
      [
        ['a', 0n, ['a0', 'a1']],
        ['b', 0n, ['b0', 'b1']],
      ],
      [['a', 2n, ['a2']]],
    ]);
    expect(log.committed('shipper')).toEqual(
      new Map([
        ['a', 3n],
        ['b', 2n],
      ]),
    );
  });

  it('takes the other topics’ partial batches along when one batch is ready', async () => {
    const log = createMemoryShipperLog();
    const producer = fakeProducer();
    const { shipper: s } = shipper(log, producer, { maxBatchEvents: 2, lingerMs: 3_600_000 });
    s.start();
    log.append('b', ['b0']);
    log.append('a', ['a0', 'a1']);
    await vi.waitFor(() => expect(s.stats().shippedEvents).toBe(3));
    expect(producer.acked.map(batchesOf).map((req) => req.map((b) => [b.topic, b.events]))).toEqual([
      [
        ['a', ['a0', 'a1']],
        ['b', ['b0']],
      ],
    ]);
  });

  it('saves its position only after Kafka acknowledged, then deletes the shipped segments', async () => {
    // 128 bytes per record (100 + frame): three records per 400-byte segment.
    const log = createMemoryShipperLog({ segmentBytes: 400 });
    log.append(
      't',
      range(10).map((i) => sized(i, 100)),
    );
    expect(log.segments('t').map((s) => s.base)).toEqual([0n, 3n, 6n, 9n]);
    const producer = fakeProducer();
    let ack!: () => void;
    producer.hold = new Promise((resolve) => {
      ack = resolve;
    });
    const { shipper: s } = shipper(log, producer);
    s.start();
    await vi.waitFor(() => expect(producer.attempts).toHaveLength(1));
    await new Promise((r) => setTimeout(r, 20));
    expect(log.commits).toEqual([]);
    expect(log.committed('shipper')).toEqual(new Map());
    expect(s.stats()).toMatchObject({ shippedEvents: 0, unshippedEvents: 10, unshippedBytes: 1280 });

    ack();
    await vi.waitFor(() => expect(s.stats().shippedEvents).toBe(10));
    await vi.waitFor(() => expect(log.segments('t')).toEqual([{ base: 9n, bytes: 128 }]));
    expect(log.commits).toEqual([new Map([['t', 10n]])]);
  });

  it('resends the very same batch after a failed send, not one re-cut with what arrived since', async () => {
    const log = createMemoryShipperLog();
    log.append(
      't',
      range(5).map((i) => event(i)),
    );
    const producer = fakeProducer();
    let up = false;
    producer.outcome = () => (up ? 'ok' : 'fail');
    let ack!: () => void;
    producer.hold = new Promise((resolve) => {
      ack = resolve;
    });
    const { shipper: s, warnings } = shipper(log, producer, { retryBackoffMs: 50, maxRetryBackoffMs: 100 });
    s.start();
    await vi.waitFor(() => expect(producer.attempts).toHaveLength(1));
    // These arrive while the first batch is failing: its resends must not take them along.
    log.append(
      't',
      range(5, 5).map((i) => event(i)),
    );
    ack();
    await vi.waitFor(() => expect(s.stats().sendErrors).toBeGreaterThanOrEqual(2));
    expect(s.stats()).toMatchObject({ connected: false, lastError: expect.stringContaining('broker down') });
    up = true;
    await vi.waitFor(() => expect(s.stats().shippedEvents).toBe(10));

    const errors = s.stats().sendErrors;
    // Every failed attempt, and the one that succeeded, carried the same records.
    const resends = producer.attempts.slice(0, errors + 1);
    for (const attempt of resends) expect(attempt).toEqual(producer.attempts[0]);
    expect(batchesOf(resends[0]!).map((b) => [b.firstSeq, b.events.length])).toEqual([[0n, 5]]);
    const after = producer.attempts.slice(errors + 1).flatMap(batchesOf);
    expect(after.map((b) => [b.firstSeq, b.events.length])).toEqual([[5n, 5]]);
    expect(s.stats()).toMatchObject({ shippedBatches: 2, connected: true, lastError: undefined });
    expect(warnings.filter((w) => w.fields.code === 'TAPWIRE_KAFKA_SEND_FAILED')).toHaveLength(errors);
    expect(log.committed('shipper')).toEqual(new Map([['t', 10n]]));
  });

  it('ships again from the saved position when saving its position fails: the same source and seqs', async () => {
    const log = createMemoryShipperLog({ id: 'src' });
    const values = range(4).map((i) => event(i));
    log.append('t', values);
    log.failCommits(1);
    const producer = fakeProducer();
    const { shipper: s, warnings } = shipper(log, producer);
    s.start();
    await vi.waitFor(() => expect(log.commits).toHaveLength(1));
    const batches = producer.acked.flatMap(batchesOf);
    expect(batches.map((b) => [b.source, b.firstSeq, b.events])).toEqual([
      ['src', 0n, values],
      ['src', 0n, values],
    ]);
    expect(log.committed('shipper')).toEqual(new Map([['t', 4n]]));
    expect(s.stats()).toMatchObject({ shippedEvents: 8, commitErrors: 1, sendErrors: 0, unshippedEvents: 0 });
    expect(warnings.map((w) => w.fields.code)).toEqual(['TAPWIRE_KAFKA_SHIPPER_POSITION_SAVE_FAILED']);
  });

  it('keeps the local log under maxBytes by deleting the oldest segments, counting only unshipped events not in flight', async () => {
    const log = createMemoryShipperLog({ segmentBytes: 400 });
    const values = range(18).map((i) => sized(i, 100));
    // Four segments of three 128-byte records: 1536 bytes, over a 1000-byte cap.
    log.append('t', values.slice(0, 12), LONG_AGO);
    const producer = fakeProducer();
    let up = false;
    producer.outcome = () => (up ? 'ok' : 'fail');
    const { shipper: s, warnings } = shipper(log, producer, { maxBytes: 1000 });
    s.start();
    // The two oldest segments go before anything is sent: 6 events dropped.
    await vi.waitFor(() => expect(s.stats().sendErrors).toBeGreaterThan(0));
    expect(log.segments('t').map((x) => x.base)).toEqual([6n, 9n]);
    expect(log.committed('shipper')).toEqual(new Map([['t', 6n]]));
    expect(s.stats()).toMatchObject({ droppedEvents: 6, unshippedEvents: 6, unshippedBytes: 768 });
    // The batch in flight holds 6..11 and is resent from memory when its segments go.
    expect(batchesOf(producer.attempts[0]!).map((b) => [b.firstSeq, b.events.length])).toEqual([[6n, 6]]);

    log.append('t', values.slice(12), LONG_AGO);
    await vi.waitFor(() => expect(log.segments('t').map((x) => x.base)).toEqual([12n, 15n]));
    expect(s.stats().droppedEvents).toBe(6);

    up = true;
    await vi.waitFor(() => expect(s.stats().shippedEvents).toBe(12));
    const shipped = producer.acked.flatMap(batchesOf);
    expect(shipped.map((b) => [b.firstSeq, b.events.length])).toEqual([
      [6n, 6],
      [12n, 6],
    ]);
    expect(shipped.flatMap((b) => b.events)).toEqual(values.slice(6));
    expect(log.committed('shipper')).toEqual(new Map([['t', 18n]]));
    expect(s.stats()).toMatchObject({ droppedEvents: 6, unshippedEvents: 0 });
    expect(warnings.filter((w) => w.fields.code === 'TAPWIRE_KAFKA_SHIPPER_DROPPED')).toMatchObject([
      { fields: { dropped: 6, droppedTotal: 6, maxBytes: 1000 } },
    ]);
  });

  it('warns about dropped events at most once per interval, and about the rest when it stops', async () => {
    const log = createMemoryShipperLog({ segmentBytes: 400 });
    log.append(
      't',
      range(12).map((i) => sized(i, 100)),
      LONG_AGO,
    );
    const producer = fakeProducer();
    producer.outcome = () => 'fail';
    const { shipper: s, warnings } = shipper(log, producer, { maxBytes: 1000, maxBatchEvents: 1 });
    s.start();
    await vi.waitFor(() => expect(s.stats().sendErrors).toBeGreaterThan(0));
    expect(s.stats().droppedEvents).toBe(6);
    // In flight: event 6 alone. Deleting segments 6..8 and 9..11 drops the other five.
    log.append(
      't',
      range(6, 12).map((i) => sized(i, 100)),
      LONG_AGO,
    );
    await vi.waitFor(() => expect(s.stats().droppedEvents).toBe(11));
    const dropWarnings = () =>
      warnings.filter((w) => w.fields.code === 'TAPWIRE_KAFKA_SHIPPER_DROPPED').map((w) => w.fields.dropped);
    expect(dropWarnings()).toEqual([6]);
    await s.stop(50);
    expect(dropWarnings()).toEqual([6, 5]);
  });

  it('waits up to lingerMs from the first event’s append for a batch to fill, and sends a full one at once', async () => {
    const log = createMemoryShipperLog();
    log.append('t', ['old0', 'old1'], LONG_AGO);
    const producer = fakeProducer();
    const { shipper: s } = shipper(log, producer, { lingerMs: 3_600_000, maxBatchEvents: 4 });
    s.start();
    await vi.waitFor(() => expect(s.stats().shippedEvents).toBe(2));
    const reads = log.reads;
    log.append('t', ['new2', 'new3']);
    await vi.waitFor(() => expect(log.reads).toBeGreaterThan(reads));
    await new Promise((r) => setTimeout(r, 50));
    expect(producer.attempts).toHaveLength(1);
    log.append('t', ['new4', 'new5', 'new6']);
    await vi.waitFor(() => expect(s.stats().shippedEvents).toBe(6));
    expect(producer.acked.flatMap(batchesOf).map((b) => b.events)).toEqual([
      ['old0', 'old1'],
      ['new2', 'new3', 'new4', 'new5'],
    ]);
    expect(s.stats()).toMatchObject({ unshippedEvents: 1 });
  });

  it('ships topics that appear after it started', async () => {
    const log = createMemoryShipperLog();
    const producer = fakeProducer();
    const { shipper: s } = shipper(log, producer);
    s.start();
    log.append('late', ['e0']);
    await vi.waitFor(() => expect(s.stats().shippedEvents).toBe(1), { timeout: 5000 });
    expect(log.committed('shipper')).toEqual(new Map([['late', 1n]]));
  });

  it('stop ships what the log holds without lingering, disconnects, and is safe to call twice', async () => {
    const log = createMemoryShipperLog();
    log.append('t', ['e0', 'e1', 'e2']);
    const producer = fakeProducer();
    const { shipper: s } = shipper(log, producer, { lingerMs: 3_600_000 });
    s.start();
    await vi.waitFor(() => expect(log.reads).toBeGreaterThan(0));
    expect(producer.attempts).toHaveLength(0);
    const stopping = s.stop(5000);
    expect(s.stop(5000)).toBe(stopping);
    await stopping;
    expect(producer.acked.flatMap(batchesOf).map((b) => b.events)).toEqual([['e0', 'e1', 'e2']]);
    expect(log.committed('shipper')).toEqual(new Map([['t', 3n]]));
    expect(producer.closed).toBe(true);
    expect(s.stats()).toMatchObject({ shippedEvents: 3, connected: false });
  });

  it('stop with Kafka down gives up at its deadline and leaves the events for the next start', async () => {
    const log = createMemoryShipperLog();
    log.append('t', ['e0', 'e1']);
    const down = fakeProducer();
    down.outcome = () => 'fail';
    const first = shipper(log, down).shipper;
    first.start();
    await vi.waitFor(() => expect(down.attempts.length).toBeGreaterThan(0));
    await first.stop(100);
    expect(down.closed).toBe(true);
    expect(down.acked).toEqual([]);
    expect(log.committed('shipper')).toEqual(new Map());
    expect(first.stats()).toMatchObject({ shippedEvents: 0, unshippedEvents: 2 });

    const up = fakeProducer();
    const second = shipper(log, up).shipper;
    second.start();
    await vi.waitFor(() => expect(second.stats().shippedEvents).toBe(2));
    expect(up.acked.flatMap(batchesOf).map((b) => [b.firstSeq, b.events])).toEqual([[0n, ['e0', 'e1']]]);
  });

  it('reports unshipped events, unshipped bytes pro rata by segment, and the age of the oldest unshipped event', async () => {
    const log = createMemoryShipperLog({ segmentBytes: 400 });
    const appendedAt = Date.now() - 5000;
    log.append(
      't',
      range(10).map((i) => sized(i, 100)),
      appendedAt,
    );
    const producer = fakeProducer();
    let up = false;
    producer.outcome = (n) => (n === 0 || up ? 'ok' : 'fail');
    const { shipper: s } = shipper(log, producer, { maxBatchEvents: 4 });
    expect(s.stats()).toMatchObject({ unshippedEvents: 10, unshippedBytes: 1280 });
    s.start();
    await vi.waitFor(() => expect(s.stats().sendErrors).toBeGreaterThan(0));
    // Shipped 0..3; segment 3..5 holds one shipped record of three: 2/3 of it, then 6..8 and 9.
    const stats = s.stats();
    expect(stats).toMatchObject({ shippedEvents: 4, unshippedEvents: 6, unshippedBytes: 256 + 384 + 128 });
    expect(stats.lagSeconds).toBeGreaterThanOrEqual(5);
    expect(stats.lagSeconds).toBeLessThan(3600);
    up = true;
    await vi.waitFor(() => expect(s.stats().shippedEvents).toBe(10));
    expect(s.stats()).toMatchObject({ unshippedEvents: 0, unshippedBytes: 0, lagSeconds: 0 });
  });

  it('ships from the log’s end, with an error logged, when the log ends before the shipped position', async () => {
    const log = createMemoryShipperLog();
    log.append('t', ['e0', 'e1']);
    await log.commit('shipper', new Map([['t', 5n]]));
    const producer = fakeProducer();
    const errors: string[] = [];
    const logger = { info() {}, debug() {}, warn() {}, error: (_: object, msg: string) => errors.push(msg) };
    const s = createLogShipper({ producer, logger }, log, { lingerMs: 0 });
    running.push(s);
    s.start();
    log.append('t', ['e2']);
    await vi.waitFor(() => expect(s.stats().shippedEvents).toBe(1));
    expect(producer.acked.flatMap(batchesOf).map((b) => [b.firstSeq, b.events])).toEqual([[2n, ['e2']]]);
    expect(errors).toEqual([
      'the local log ends before the shipped position: events written since may be taken for duplicates',
    ]);
  });

  it('refuses an invalid config and a log id that is not a source id', () => {
    const log = createMemoryShipperLog();
    const logger = { error() {}, warn() {}, info() {}, debug() {} };
    expect(() => createLogShipper({ producer: fakeProducer(), logger }, log, { maxBatchEvents: 0 })).toThrow(
      expect.objectContaining({ code: 'TAPWIRE_KAFKA_SHIPPER_CONFIG_INVALID' }),
    );
    expect(() =>
      createLogShipper({ producer: fakeProducer(), logger }, createMemoryShipperLog({ id: 'a b' }), {}),
    ).toThrow(expect.objectContaining({ code: 'TAPWIRE_KAFKA_SHIPPER_CONFIG_INVALID' }));
  });
});
