import { mkdtempSync, readdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { openDiskSpool } from '@tapwire/kafka';
import type { SpoolRecord } from '@tapwire/stream';
import { describe, expect, it } from 'vitest';

const rec = (i: number): SpoolRecord => ({
  topic: 't',
  key: `k${i}`,
  value: JSON.stringify({ i, s: 'tab\there\nnl' }),
});

async function drain(spool: ReturnType<typeof openDiskSpool>, max: number): Promise<SpoolRecord[]> {
  const out: SpoolRecord[] = [];
  for (;;) {
    const batch = await spool.nextBatch(max);
    if (!batch) return out;
    out.push(...batch.records);
    await batch.commit();
  }
}

describe('disk spool', () => {
  it('returns records in append order across segments and deletes drained segments', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'tapwire-spool-'));
    const spool = openDiskSpool({ dir, maxBytes: 1_000_000, segmentBytes: 500 });
    const records = Array.from({ length: 100 }, (_, i) => rec(i));
    for (const [i, r] of records.entries()) {
      expect(spool.append(r)).toBe(true);
      if (i % 10 === 9) await spool.flush(); // each write past 500 bytes starts a new segment
    }
    expect(readdirSync(dir).length).toBeGreaterThan(1);
    expect(spool.isEmpty()).toBe(false);
    expect(await drain(spool, 7)).toEqual(records);
    expect(spool.isEmpty()).toBe(true);
    expect(spool.bytes()).toBe(0);
    expect(readdirSync(dir)).toEqual([]);
  });

  it('refuses appends beyond its byte cap', () => {
    const dir = mkdtempSync(join(tmpdir(), 'tapwire-spool-'));
    const spool = openDiskSpool({ dir, maxBytes: 200 });
    let kept = 0;
    for (let i = 0; i < 20; i++) if (spool.append(rec(i))) kept++;
    let expected = 0;
    for (let i = 0, total = 0; i < 20; i++) {
      const size = Buffer.byteLength(`t\tk${i}\t${rec(i).value}\n`);
      if (total + size > 200) break;
      total += size;
      expected++;
    }
    expect(kept).toBe(expected);
    expect(spool.bytes()).toBeLessThanOrEqual(200);
  });

  it('keeps records across a restart and hands them out first', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'tapwire-spool-'));
    const first = openDiskSpool({ dir, maxBytes: 1_000_000 });
    for (let i = 0; i < 10; i++) first.append(rec(i));
    await first.flush();
    const second = openDiskSpool({ dir, maxBytes: 1_000_000 });
    expect(second.bytes()).toBe(first.bytes());
    second.append(rec(10));
    expect((await drain(second, 4)).map((r) => r.key)).toEqual(Array.from({ length: 11 }, (_, i) => `k${i}`));
  });
});
