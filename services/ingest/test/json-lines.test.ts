import { describe, expect, it } from 'vitest';
import { JsonLines } from '../src/json-lines.js';

const text = (rows: JsonLines) => Buffer.concat(rows.body()).toString('utf8');

describe('JsonLines', () => {
  it('holds rows as NDJSON, each ending in a newline, and gives them back as lines', () => {
    const rows = new JsonLines();
    expect(rows.body()).toEqual([]);
    rows.push('{"a":1}');
    rows.push('{"route":"/ü/ß/€/𝄞","q":"it\'s"}');
    expect(rows.count).toBe(2);
    expect(text(rows)).toBe('{"a":1}\n{"route":"/ü/ß/€/𝄞","q":"it\'s"}\n');
    expect(rows.lines()).toEqual(['{"a":1}', '{"route":"/ü/ß/€/𝄞","q":"it\'s"}']);
  });

  it('spreads many rows and rows larger than a chunk over several buffers without losing a byte', () => {
    const lines = Array.from({ length: 30_000 }, (_, i) =>
      JSON.stringify({ i, pad: 'x'.repeat(i % 97), uni: i % 7 === 0 ? 'é€𝄞' : '' }),
    );
    lines.splice(29_000, 0, JSON.stringify({ big: 'y'.repeat(3 * 1024 * 1024) }));
    const rows = JsonLines.from(lines);
    expect(rows.body().length).toBeGreaterThan(2);
    expect(rows.count).toBe(lines.length);
    expect(text(rows)).toBe(`${lines.join('\n')}\n`);
    expect(rows.lines()).toEqual(lines);
  });
});
