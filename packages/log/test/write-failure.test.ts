import { spawn } from 'node:child_process';
import { mkdtempSync, readdirSync, renameSync, rmSync, statSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterEach, describe, expect, it } from 'vitest';
import { type FileLog, LogError, openFileLog } from '../src/index.js';

const opened: FileLog[] = [];
const fresh = () => mkdtempSync(join(tmpdir(), 'tapwire-log-fail-'));
async function open(dir: string, over: Partial<Parameters<typeof openFileLog>[0]> = {}): Promise<FileLog> {
  const log = await openFileLog({ dir, fsync: 'never', ...over });
  opened.push(log);
  return log;
}
afterEach(async () => {
  for (const l of opened.splice(0)) await l.close();
});

const values = (records: { value: Buffer }[]) => records.map((r) => r.value.toString());
const one = (value: string) => [{ key: null, value }];
const segmentPath = (dir: string, topic: string, base: number) =>
  join(dir, 'topics', topic, `${String(base).padStart(20, '0')}.log`);

function thrown(fn: () => unknown): LogError {
  try {
    fn();
  } catch (err) {
    return err as LogError;
  }
  throw new Error('expected a throw');
}

describe('write failures', () => {
  it('a full disk (the segment is /dev/full: ENOSPC) fails the append without touching the log; the next append after it is gone succeeds', async () => {
    const dir = fresh();
    // Every append after the first of a segment rolls to a new segment named by its first offset.
    const log = await open(dir, { segmentBytes: 1 });
    for (let i = 0; i < 3; i++) expect(log.appendSync('t', one(`v${i}`))).toBe(BigInt(i));
    const full = segmentPath(dir, 't', 3);
    symlinkSync('/dev/full', full);

    const err = thrown(() => log.appendSync('t', one('lost')));
    expect(err).toBeInstanceOf(LogError);
    expect(err.code).toBe('TAPWIRE_LOG_WRITE_FAILED');
    expect(err.message).toBe(
      `TAPWIRE_LOG_WRITE_FAILED: cannot write ${full}: ENOSPC: no space left on device, write`,
    );
    expect((err.cause as NodeJS.ErrnoException).code).toBe('ENOSPC');
    // The async form fails the same way, and still nothing moved.
    await expect(log.append('t', one('lost too'))).rejects.toThrow(/TAPWIRE_LOG_WRITE_FAILED: .*ENOSPC/);
    expect(log.highWatermark('t')).toBe(3n);
    expect(values(await log.read('t', 0n))).toEqual(['v0', 'v1', 'v2']);

    rmSync(full);
    expect(log.appendSync('t', one('v3'))).toBe(3n);
    expect(await log.append('t', one('v4'))).toBe(4n);
    expect(statSync(full).isFile()).toBe(true);
    expect(values(await log.read('t', 0n))).toEqual(['v0', 'v1', 'v2', 'v3', 'v4']);
    await log.close();
    opened.pop();
    const again = await open(dir, { segmentBytes: 1 });
    expect(values(await again.read('t', 0n))).toEqual(['v0', 'v1', 'v2', 'v3', 'v4']);
    expect(again.appendSync('t', one('v5'))).toBe(5n);
  });

  it('a topic directory replaced by a file fails appends until it is back, then they continue at the right offset', async () => {
    const dir = fresh();
    const log = await open(dir, { segmentBytes: 1 });
    log.appendSync('t', one('v0'));
    log.appendSync('other', one('o0'));
    const topicDir = join(dir, 'topics', 't');
    renameSync(topicDir, `${topicDir}.away`);
    writeFileSync(topicDir, 'not a directory');

    const err = thrown(() => log.appendSync('t', one('lost')));
    expect(err.code).toBe('TAPWIRE_LOG_WRITE_FAILED');
    expect(err.message).toMatch(
      new RegExp(`^TAPWIRE_LOG_WRITE_FAILED: cannot open the active segment of ${topicDir}: EEXIST: `),
    );
    // Other topics are not affected.
    expect(log.appendSync('other', one('o1'))).toBe(1n);

    rmSync(topicDir);
    renameSync(`${topicDir}.away`, topicDir);
    expect(log.appendSync('t', one('v1'))).toBe(1n);
    expect(values(await log.read('t', 0n))).toEqual(['v0', 'v1']);
  });

  it('a write the kernel cuts short (file size limit: part written, then EFBIG) is cut back off the file: no torn frame before later records', async () => {
    const dir = fresh();
    // `ulimit -f` applies to the child only; the log there appends 10 kB batches until one fails.
    const child = spawn(
      '/bin/sh',
      [
        '-c',
        'ulimit -f 64 && exec "$0" "$@"',
        process.execPath,
        '--import',
        'tsx',
        fileURLToPath(new URL('./support/append-until-too-large.ts', import.meta.url)),
        dir,
      ],
      { stdio: ['ignore', 'pipe', 'inherit'] },
    );
    let out = '';
    child.stdout.on('data', (d: Buffer) => {
      out += d.toString();
    });
    expect(await new Promise((r) => child.once('exit', r))).toBe(0);
    const lines = out
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l) as { ok?: string; failed?: string; code?: string; after?: string });
    const acked = BigInt(lines.filter((l) => l.ok).at(-1)!.ok!);
    const failure = lines.find((l) => l.failed)!;
    expect(failure.code).toBe('TAPWIRE_LOG_WRITE_FAILED');
    expect(failure.failed).toMatch(
      /^TAPWIRE_LOG_WRITE_FAILED: cannot write .*\.log: EFBIG: file too large, write$/,
    );
    // The small record after the failure got the next offset, right behind the acknowledged ones.
    expect(lines.at(-1)).toEqual({ after: acked.toString() });

    const file = join(dir, 'topics', 't', readdirSync(join(dir, 'topics', 't'))[0]!);
    const sizeAfterChild = statSync(file).size;
    const log = await open(dir);
    expect(log.highWatermark('t')).toBe(acked + 1n);
    // Opening cut nothing: the child left whole frames only.
    expect(log.sizeBytes('t')).toBe(sizeAfterChild);
    const all = await log.read('t', 0n, 1 << 20);
    expect(all.map((r) => r.offset)).toEqual(Array.from({ length: Number(acked) + 1 }, (_, i) => BigInt(i)));
    expect(values(all)).toEqual([
      ...Array.from({ length: Number(acked) }, (_, i) => `${i}`.padStart(250, '0')),
      'small',
    ]);
    // Without the limit the same batch that failed is written.
    expect(
      log.appendSync(
        't',
        Array.from({ length: 40 }, () => ({ key: null, value: 'x'.repeat(250) })),
      ),
    ).toBe(acked + 1n);
  }, 60_000);
});
