import { describe, expect, it } from 'vitest';
import { SeqRanges } from '../src/seq-ranges.js';

describe('SeqRanges', () => {
  it('holds an in-order run as one range, and knows exactly what it holds', () => {
    const r = new SeqRanges();
    for (let s = 10n; s <= 20n; s++) r.add(s);
    expect(r.ranges).toBe(1);
    expect([9n, 10n, 15n, 20n, 21n].map((s) => r.has(s))).toEqual([false, true, true, true, false]);
  });

  it('keeps gaps, and merges ranges an out-of-order number joins', () => {
    const r = new SeqRanges();
    for (const s of [1n, 2n, 3n, 10n, 11n, 12n, 6n]) r.add(s);
    expect(r.ranges).toBe(3);
    expect([0n, 3n, 4n, 5n, 6n, 7n, 9n, 12n].map((s) => r.has(s))).toEqual([
      false,
      true,
      false,
      false,
      true,
      false,
      false,
      true,
    ]);
    r.add(4n);
    r.add(5n);
    r.add(0n);
    r.add(2n);
    expect(r.ranges).toBe(2);
    for (let s = 0n; s <= 6n; s++) expect(r.has(s)).toBe(true);
    for (const s of [7n, 8n, 9n]) {
      expect(r.has(s)).toBe(false);
      r.add(s);
    }
    expect(r.ranges).toBe(1);
    expect(r.has(13n)).toBe(false);
  });
});
