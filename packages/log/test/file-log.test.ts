import { spawn } from 'node:child_process';
import {
  appendFileSync,
  existsSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  statSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { type ShipperLog, SOURCE_ID } from '@tapwire/stream';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { createLogConsumerRunner, type FileLog, openFileLog } from '../src/index.js';

const opened: FileLog[] = [];
const fresh = () => mkdtempSync(join(tmpdir(), 'tapwire-log-'));
async function open(dir: string, over: Partial<Parameters<typeof openFileLog>[0]> = {}): Promise<FileLog> {
  const log = await openFileLog({ dir, fsync: 'never', ...over });
  opened.push(log);
  return log;
}
afterEach(async () => {
  for (const l of opened.splice(0)) await l.close();
});

const values = (records: { value: Buffer }[]) => records.map((r) => r.value.toString());
const segments = (dir: string, topic: string) => readdirSync(join(dir, 'topics', topic)).sort();

describe('embedded log', () => {
  it('stores records with dense offsets, keys and values, across segments and a reopen', async () => {
    const dir = fresh();
    let log = await open(dir, { segmentBytes: 4096 });
    const batch = Array.from({ length: 300 }, (_, i) => ({
      key: i % 3 === 0 ? null : `k${i}`,
      value: `value-${i}-${'x'.repeat(i % 50)}`,
    }));
    // A batch is written whole into one segment; segments roll between batches.
    for (let i = 0; i < 300; i += 10)
      expect(await log.append('t.access', batch.slice(i, i + 10))).toBe(BigInt(i));
    expect(log.highWatermark('t.access')).toBe(300n);
    expect(segments(dir, 't.access').length).toBeGreaterThan(3);

    const all = await log.read('t.access', 0n, 10 * 1024 * 1024);
    expect(all.map((r) => r.offset)).toEqual(batch.map((_, i) => BigInt(i)));
    expect(values(all)).toEqual(batch.map((b) => b.value));
    expect(all.map((r) => r.key?.toString() ?? null)).toEqual(batch.map((b) => b.key));
    // Reading from the middle of a later segment starts exactly there.
    expect(values(await log.read('t.access', 257n, 1))).toEqual([batch[257]!.value]);

    await log.close();
    opened.pop();
    log = await open(dir, { segmentBytes: 4096 });
    expect(log.topics()).toEqual(['t.access']);
    expect(log.highWatermark('t.access')).toBe(300n);
    expect(await log.append('t.access', [{ key: 'k', value: 'after' }])).toBe(300n);
    expect(values(await log.read('t.access', 299n))).toEqual([batch[299]!.value, 'after']);
  });

  it('appendSync returns the first offset once the records are written; reads see them at once', async () => {
    const dir = fresh();
    let log = await open(dir);
    expect(
      log.appendSync('t', [
        { key: 'k', value: 'a' },
        { key: null, value: Buffer.from('b') },
      ]),
    ).toBe(0n);
    expect(log.appendSync('t', [])).toBe(2n);
    expect(log.appendSync('t', [{ key: null, value: 'c' }])).toBe(2n);
    expect(log.highWatermark('t')).toBe(3n);
    // The bytes are in the file when appendSync returns (nothing waits in memory).
    expect(statSync(join(dir, 'topics', 't', segments(dir, 't')[0]!)).size).toBe(log.sizeBytes('t'));
    const read = await log.read('t', 0n);
    expect(values(read)).toEqual(['a', 'b', 'c']);
    expect(read.map((r) => r.key?.toString() ?? null)).toEqual(['k', null, null]);
    await log.close();
    opened.pop();
    log = await open(dir);
    expect(values(await log.read('t', 0n))).toEqual(['a', 'b', 'c']);
  });

  it('sync and async appends of one topic never interleave: offsets stay dense, in call order, across segments', async () => {
    const dir = fresh();
    let log = await open(dir, { segmentBytes: 1024 });
    const expected: string[] = [];
    const firsts: Promise<bigint>[] = [];
    const wanted: bigint[] = [];
    for (let call = 0; call < 300; call++) {
      const n = 1 + ((call * 7) % 5);
      const batch = Array.from({ length: n }, (_, j) => ({ key: null, value: `c${call}-${j}` }));
      wanted.push(BigInt(expected.length));
      expected.push(...batch.map((b) => b.value));
      firsts.push(call % 3 === 0 ? Promise.resolve(log.appendSync('t', batch)) : log.append('t', batch));
    }
    expect(await Promise.all(firsts)).toEqual(wanted);
    expect(segments(dir, 't').length).toBeGreaterThan(5);
    const check = async () => {
      const all = await log.read('t', 0n, 1 << 20);
      expect(all.map((r) => r.offset)).toEqual(expected.map((_, i) => BigInt(i)));
      expect(values(all)).toEqual(expected);
    };
    await check();
    await log.close();
    opened.pop();
    log = await open(dir, { segmentBytes: 1024 });
    await check();
  });

  it.each(['always', 'interval', 'never'] as const)(
    'with fsync %s, a rolled segment is closed (after its background sync) and close leaves no descriptor open',
    async (fsync) => {
      const dir = fresh();
      const descriptors = () => readdirSync('/proc/self/fd').length;
      const before = descriptors();
      const log = await openFileLog({ dir, fsync, fsyncIntervalMs: 1, segmentBytes: 200 });
      for (let i = 0; i < 60; i++) {
        log.appendSync('t', [{ key: null, value: `v${i}`.padEnd(40, '.') }]);
        // Let background syncs start, so rolls and close meet syncs in flight.
        if (i % 4 === 0) await new Promise((r) => setTimeout(r, 2));
      }
      expect(segments(dir, 't').length).toBeGreaterThan(10);
      await log.close();
      expect(descriptors()).toBe(before);
      const again = await open(dir);
      expect((await again.read('t', 0n, 1 << 20)).length).toBe(60);
    },
  );

  it('gives each directory a persistent random source id in <dir>/ID', async () => {
    const dir = fresh();
    let log = await open(dir);
    const id = log.id;
    expect(id).toMatch(/^[A-Za-z0-9_-]{16}$/);
    expect(SOURCE_ID.test(id)).toBe(true);
    expect(readFileSync(join(dir, 'ID'), 'utf8').trim()).toBe(id);
    await log.close();
    opened.pop();
    log = await open(dir);
    expect(log.id).toBe(id);
    expect((await open(fresh())).id).not.toBe(id);
    await log.close();
    opened.splice(opened.indexOf(log), 1);
    writeFileSync(join(dir, 'ID'), 'not an id!\n');
    await expect(openFileLog({ dir })).rejects.toThrow(/TAPWIRE_LOG_BAD_ID: .*ID holds "not an id!"/);
    // The refusal released the lock: with the id restored the directory opens.
    writeFileSync(join(dir, 'ID'), `${id}\n`);
    expect((await open(dir)).id).toBe(id);
  });

  it('as a ShipperLog: lists segments and deletes closed ones wholly below an offset, never the active one', async () => {
    const dir = fresh();
    const log = await open(dir, { segmentBytes: 320 });
    const shipper: ShipperLog = log;
    // Each 5-record batch is 150–155 bytes: two batches per segment, so bases 0, 10, 20, 30, 40.
    for (let i = 0; i < 45; i += 5)
      log.appendSync(
        't',
        Array.from({ length: 5 }, (_, j) => ({ key: null, value: `v${i + j}` })),
      );
    const listed = shipper.segments('t');
    expect(listed.map((s) => s.base)).toEqual([0n, 10n, 20n, 30n, 40n]);
    expect(listed.map((s) => s.bytes)).toEqual(
      segments(dir, 't').map((name) => statSync(join(dir, 'topics', 't', name)).size),
    );
    expect(shipper.segments('unknown')).toEqual([]);
    expect(await shipper.deleteBelow('unknown', 100n)).toBe(0);

    // Offset 25 is inside segment 20: only segments 0 and 10 (offsets 0–19) are wholly below it.
    expect(await shipper.deleteBelow('t', 25n)).toBe(listed[0]!.bytes + listed[1]!.bytes);
    expect(segments(dir, 't')).toEqual([
      '00000000000000000020.log',
      '00000000000000000030.log',
      '00000000000000000040.log',
    ]);
    expect(shipper.lowWatermark('t')).toBe(20n);
    expect((await shipper.read('t', 0n))[0]!.offset).toBe(20n);
    // Exactly at a base: segment 20 holds 20–29, all below 30.
    expect(await shipper.deleteBelow('t', 30n)).toBe(listed[2]!.bytes);
    // Everything shipped: the active segment stays, and appends continue.
    expect(await shipper.deleteBelow('t', 1000n)).toBe(listed[3]!.bytes);
    expect(shipper.segments('t')).toEqual([{ base: 40n, bytes: listed[4]!.bytes }]);
    expect(existsSync(join(dir, 'topics', 't', '00000000000000000040.log'))).toBe(true);
    expect(log.appendSync('t', [{ key: null, value: 'v45' }])).toBe(45n);
    expect(values(await shipper.read('t', 0n))).toEqual(['v40', 'v41', 'v42', 'v43', 'v44', 'v45']);
  });

  it('cuts a torn or corrupt tail on open and keeps every whole record before it', async () => {
    const dir = fresh();
    let log = await open(dir);
    await log.append(
      't',
      Array.from({ length: 10 }, (_, i) => ({ key: null, value: `v${i}` })),
    );
    await log.close();
    opened.pop();
    const file = join(dir, 'topics', 't', segments(dir, 't')[0]!);
    const whole = statSync(file).size;
    // A write cut short by a crash: half a frame at the end.
    appendFileSync(file, readFileSync(file).subarray(0, 20));
    log = await open(dir);
    expect(log.highWatermark('t')).toBe(10n);
    expect(statSync(file).size).toBe(whole);
    expect(values(await log.read('t', 0n))).toEqual(Array.from({ length: 10 }, (_, i) => `v${i}`));
    await log.close();
    opened.pop();

    // A flipped byte inside record 7: records 0–6 survive, the log continues at offset 7.
    const buf = readFileSync(file);
    const frame = whole / 10;
    buf[frame * 7 + 12] = buf[frame * 7 + 12]! ^ 0xff;
    writeFileSync(file, buf);
    log = await open(dir);
    expect(log.highWatermark('t')).toBe(7n);
    expect(await log.append('t', [{ key: null, value: 'again' }])).toBe(7n);
    expect(values(await log.read('t', 5n))).toEqual(['v5', 'v6', 'again']);
  });

  it('deletes whole closed segments past the size or age limit; reads start at the oldest kept', async () => {
    const dir = fresh();
    const log = await open(dir, { segmentBytes: 2048, retentionBytes: 6000, retentionMs: 3_600_000 });
    for (let i = 0; i < 20; i++)
      await log.append(
        't',
        Array.from({ length: 10 }, (_, j) => ({ key: null, value: `${i * 10 + j}`.padStart(40, '0') })),
      );
    const before = segments(dir, 't').length;
    const deleted = await log.enforceRetention();
    expect(deleted.length).toBeGreaterThan(0);
    expect(segments(dir, 't').length).toBe(before - deleted.length);
    expect(log.sizeBytes('t')).toBeLessThanOrEqual(6000 + 2048);
    const low = log.lowWatermark('t');
    expect(low).toBeGreaterThan(0n);
    const rest = await log.read('t', 0n, 1 << 20);
    expect(rest[0]!.offset).toBe(low);
    expect(rest.at(-1)!.offset).toBe(199n);
    // Age: an hour later everything but the active segment goes.
    await log.enforceRetention(Date.now() + 3_700_000);
    expect(segments(dir, 't').length).toBe(1);
    expect(log.highWatermark('t')).toBe(200n);
  });

  it('finds the first offset appended at or after a time', async () => {
    const log = await open(fresh());
    await log.append('t', [{ key: null, value: 'a' }]);
    await new Promise((r) => setTimeout(r, 30));
    const middle = Date.now();
    await log.append('t', [
      { key: null, value: 'b' },
      { key: null, value: 'c' },
    ]);
    expect(await log.offsetForTime('t', 0)).toBe(0n);
    expect(await log.offsetForTime('t', middle)).toBe(1n);
    expect(await log.offsetForTime('t', Date.now() + 1000)).toBe(3n);
  });

  it('refuses a bad topic name', async () => {
    const log = await open(fresh());
    await expect(log.append('../etc', [{ key: null, value: 'x' }])).rejects.toThrow(/TAPWIRE_LOG_BAD_TOPIC/);
    expect(() => log.appendSync('a/b', [{ key: null, value: 'x' }])).toThrow(/TAPWIRE_LOG_BAD_TOPIC/);
  });

  it('a consumer group reads in order, commits, resumes after a restart, and pauses', async () => {
    const dir = fresh();
    const log = await open(dir);
    await log.append(
      'a',
      Array.from({ length: 5 }, (_, i) => ({ key: null, value: `a${i}` })),
    );
    const seen: string[] = [];
    const assigned: unknown[] = [];
    const handlers = {
      async onAssigned(a: unknown) {
        assigned.push(a);
      },
      async onBatch(b: { topic: string; messages: { offset: string; value: Buffer | null }[] }) {
        for (const m of b.messages) seen.push(`${b.topic}@${m.offset}=${m.value}`);
      },
    };
    let runner = createLogConsumerRunner(
      log,
      { groupId: 'g', topics: ['a', 'b'], fromBeginning: true },
      handlers,
    );
    await runner.start();
    await vi.waitFor(() => expect(seen).toHaveLength(5));
    expect(assigned[0]).toEqual([
      { topic: 'a', partition: 0, offset: '-1' },
      { topic: 'b', partition: 0, offset: '-1' },
    ]);
    await runner.commit([{ topic: 'a', partition: 0, offset: '3' }]);
    runner.pause();
    await log.append('b', [{ key: null, value: 'b0' }]);
    await new Promise((r) => setTimeout(r, 100));
    expect(seen).toHaveLength(5);
    runner.resume();
    await vi.waitFor(() => expect(seen).toContain('b@0=b0'));
    expect(runner.lag()).toEqual([
      { topic: 'a', partition: 0, highWatermark: '5', consumed: '5', lag: 0 },
      { topic: 'b', partition: 0, highWatermark: '1', consumed: '1', lag: 0 },
    ]);
    await runner.close();

    // A new member of the group starts at what was committed: a@3 and a@4 again, b from the start.
    seen.length = 0;
    runner = createLogConsumerRunner(
      log,
      { groupId: 'g', topics: ['a', 'b'], fromBeginning: true },
      handlers,
    );
    await runner.start();
    await vi.waitFor(() => expect(seen.sort()).toEqual(['a@3=a3', 'a@4=a4', 'b@0=b0']));
    expect(assigned[1]).toEqual([
      { topic: 'a', partition: 0, offset: '3' },
      { topic: 'b', partition: 0, offset: '-1' },
    ]);
    await runner.close();
  });

  it('a process killed with SIGKILL under load loses no record it had acknowledged', async () => {
    const dir = fresh();
    const child = spawn(
      process.execPath,
      ['--import', 'tsx', fileURLToPath(new URL('./support/append-forever.ts', import.meta.url)), dir],
      { stdio: ['ignore', 'pipe', 'inherit'] },
    );
    let acked = -1;
    let out = '';
    child.stdout.on('data', (d: Buffer) => {
      out += d.toString();
      const lines = out.split('\n');
      out = lines.pop()!;
      for (const l of lines) if (l) acked = Math.max(acked, Number(l));
    });
    await vi.waitFor(() => expect(acked).toBeGreaterThan(5000), { timeout: 30_000, interval: 20 });
    child.kill('SIGKILL');
    await new Promise((r) => child.once('exit', r));
    const ackedAtKill = acked;
    const log = await open(dir);
    const high = log.highWatermark('load');
    expect(high).toBeGreaterThan(BigInt(ackedAtKill));
    const all: string[] = [];
    for (let from = 0n; from < high; ) {
      const batch = await log.read('load', from, 1 << 20);
      all.push(...values(batch));
      from = batch.at(-1)!.offset + 1n;
    }
    expect(all.length).toBe(Number(high));
    // Every record is intact and in order, acknowledged ones included.
    expect(all.every((v, i) => v === `event-${i}`)).toBe(true);
  }, 60_000);

  it('a child SIGKILLed right after its last appendSync returned leaves every record readable after reopen', async () => {
    const dir = fresh();
    const count = 3000;
    const child = spawn(
      process.execPath,
      [
        '--import',
        'tsx',
        fileURLToPath(new URL('./support/append-sync-then-die.ts', import.meta.url)),
        dir,
        String(count),
      ],
      { stdio: ['ignore', 'inherit', 'inherit'] },
    );
    const [code, signal] = await new Promise<[number | null, string | null]>((r) =>
      child.once('exit', (c, s) => r([c, s])),
    );
    expect([code, signal]).toEqual([null, 'SIGKILL']);
    const log = await open(dir);
    expect(log.highWatermark('load')).toBe(BigInt(count));
    expect(segments(dir, 'load').length).toBeGreaterThan(3);
    const all: string[] = [];
    for (let from = 0n; from < BigInt(count); ) {
      const batch = await log.read('load', from, 1 << 20);
      all.push(...values(batch));
      from = batch.at(-1)!.offset + 1n;
    }
    expect(all).toEqual(Array.from({ length: count }, (_, i) => `event-${i}`));
    expect(log.highWatermark('echo')).toBeGreaterThan(0n);
  }, 60_000);
});
