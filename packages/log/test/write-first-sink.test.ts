import { mkdtempSync, rmSync, symlinkSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { TOPICS } from '@tapwire/schema';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { exampleAccessLog, exampleSpan } from '../../../test/support/events.js';
import {
  createWriteFirstSink,
  type FileLog,
  fileLogSource,
  openFileLog,
  type WriteFirstLog,
} from '../src/index.js';

const opened: FileLog[] = [];
const fresh = () => mkdtempSync(join(tmpdir(), 'tapwire-log-sink-'));
async function open(over: Partial<Parameters<typeof openFileLog>[0]> = {}): Promise<FileLog> {
  const log = await openFileLog({ dir: fresh(), fsync: 'never', ...over });
  opened.push(log);
  return log;
}
afterEach(async () => {
  vi.useRealTimers();
  for (const l of opened.splice(0)) await l.close();
});

/** counting wraps a log's appendSync, recording each call's topic and record count. */
function counting(log: FileLog) {
  const calls: [string, number][] = [];
  const wrapped: WriteFirstLog = {
    appendSync(topic, records) {
      calls.push([topic, records.length]);
      return log.appendSync(topic, records);
    },
  };
  return { calls, wrapped };
}

function warnings() {
  const seen: { obj: Record<string, unknown>; msg: string }[] = [];
  return { seen, logger: { warn: (obj: object, msg: string) => seen.push({ obj: obj as never, msg }) } };
}

const ticks = () => new Promise((r) => setImmediate(r));
const values = async (log: FileLog, topic: string) =>
  (await log.read(topic, 0n)).map((r) => r.value.toString());

describe('write-first sink', () => {
  it('writes the events of one synchronous run with one append per topic, right after the run', async () => {
    const log = await open();
    const { calls, wrapped } = counting(log);
    const sink = createWriteFirstSink(wrapped, { logger: warnings().logger, topicPrefix: 'p.' });
    const access = exampleAccessLog();
    const spans = [exampleSpan(), exampleSpan()];
    // What a proxy emits for one request: an access log and its spans.
    expect(sink.emit(TOPICS.accessLogs, access)).toBe(true);
    expect(sink.emit(TOPICS.spans, spans[0]!)).toBe(true);
    expect(sink.emit(TOPICS.spans, spans[1]!)).toBe(true);
    expect(calls).toEqual([]);
    await Promise.resolve();
    expect(calls).toEqual([
      [`p.${TOPICS.accessLogs}`, 1],
      [`p.${TOPICS.spans}`, 2],
    ]);
    expect(await values(log, `p.${TOPICS.accessLogs}`)).toEqual([JSON.stringify(access)]);
    expect(await values(log, `p.${TOPICS.spans}`)).toEqual(spans.map((s) => JSON.stringify(s)));
    const [stored] = await log.read(`p.${TOPICS.accessLogs}`, 0n);
    expect(stored!.key?.toString()).toBe(access.trace_id);

    // The next request is the next run: one more append per topic.
    sink.emit(TOPICS.spans, exampleSpan());
    await ticks();
    expect(calls).toHaveLength(3);
    expect(log.highWatermark(`p.${TOPICS.spans}`)).toBe(3n);
    expect(sink.stats()).toEqual({
      accepted: 4,
      delivered: 4,
      invalid: 0,
      dropped: 0,
      buffered: 0,
      bufferCapacity: 0,
      sendErrors: 0,
    });
  });

  it('refuses and counts an invalid event; flush writes what is queued; close writes it and refuses later events', async () => {
    const log = await open();
    const w = warnings();
    const sink = createWriteFirstSink(log, { logger: w.logger });
    expect(sink.emit(TOPICS.spans, { ...exampleSpan(), trace_id: 'nope' })).toBe(false);
    expect(w.seen.map((s) => s.msg)).toEqual(['refused an invalid event']);

    sink.emit(TOPICS.spans, exampleSpan());
    const flushed = sink.flush();
    expect(log.highWatermark(TOPICS.spans)).toBe(1n);
    await flushed;

    sink.emit(TOPICS.spans, exampleSpan());
    sink.emit(TOPICS.spans, exampleSpan());
    await sink.close();
    expect(log.highWatermark(TOPICS.spans)).toBe(3n);
    expect(sink.emit(TOPICS.spans, exampleSpan())).toBe(false);
    await sink.close();
    await ticks();
    expect(log.highWatermark(TOPICS.spans)).toBe(3n);
    expect(sink.stats()).toMatchObject({ accepted: 3, delivered: 3, invalid: 1, dropped: 1, sendErrors: 0 });
  });

  it('a failing log drops and counts, logs the cause at most once per interval with the drops since the last line, and recovers by itself', async () => {
    vi.useFakeTimers({ toFake: ['Date'] });
    const t0 = Date.UTC(2025, 0, 1);
    vi.setSystemTime(t0);
    // Every append after a segment's first rolls to a new segment named by its first offset.
    const log = await open({ segmentBytes: 1 });
    const w = warnings();
    const sink = createWriteFirstSink(log, { logger: w.logger, validate: false });
    const topic = TOPICS.spans;
    const run = async (n: number) => {
      for (let i = 0; i < n; i++) expect(sink.emit(topic, exampleSpan({ name: `run-${i}` }))).toBe(true);
      await ticks();
    };
    await run(1);
    // The next segment (offset 1) is /dev/full: every write fails with ENOSPC.
    const full = join(log.dir, 'topics', topic, `${'1'.padStart(20, '0')}.log`);
    symlinkSync('/dev/full', full);

    await run(2);
    expect(w.seen).toHaveLength(1);
    expect(w.seen[0]!.msg).toMatch(/^cannot write events to the local log; dropped them/);
    expect(w.seen[0]!.obj).toMatchObject({ topic, dropped: 2 });
    expect(String(w.seen[0]!.obj.err)).toMatch(`TAPWIRE_LOG_WRITE_FAILED: cannot write ${full}: ENOSPC`);

    vi.setSystemTime(t0 + 1000);
    await run(1);
    expect(w.seen).toHaveLength(1);
    vi.setSystemTime(t0 + 10_500);
    await run(3);
    expect(w.seen).toHaveLength(2);
    expect(w.seen[1]!.obj).toMatchObject({ topic, dropped: 4 });
    expect(sink.stats()).toMatchObject({ accepted: 7, delivered: 1, dropped: 6, sendErrors: 3 });

    // The disk has room again: the next events are written, at the next offsets.
    rmSync(full);
    vi.setSystemTime(t0 + 11_000);
    await run(2);
    expect(log.highWatermark(topic)).toBe(3n);
    expect(w.seen).toHaveLength(2);
    // Recovery is reported too, under the same limit.
    vi.setSystemTime(t0 + 21_000);
    await run(1);
    expect(w.seen).toHaveLength(3);
    expect(w.seen[2]).toEqual({
      obj: { dropped: 0 },
      msg: 'writing events to the local log again (dropped: since the last line)',
    });
    vi.setSystemTime(t0 + 40_000);
    await run(1);
    expect(w.seen).toHaveLength(3);
    expect(sink.stats()).toMatchObject({ accepted: 11, delivered: 5, dropped: 6, sendErrors: 3 });
    expect((await log.read(topic, 0n)).map((r) => r.offset)).toEqual([0n, 1n, 2n, 3n, 4n]);
  });

  it('is the sink the embedded EventLog hands out: written without a linger', async () => {
    const log = await open();
    const sink = fileLogSource(log, warnings().logger).sink({
      lingerMs: 60_000,
      maxBatchEvents: 1000,
      maxBufferedEvents: 1000,
      retryBackoffMs: 1000,
      topicPrefix: 'x.',
    });
    sink.emit(TOPICS.accessLogs, exampleAccessLog());
    await Promise.resolve();
    expect(log.highWatermark(`x.${TOPICS.accessLogs}`)).toBe(1n);
    expect(sink.stats()).toMatchObject({ accepted: 1, delivered: 1 });
  });
});
