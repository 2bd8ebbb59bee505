import { describe, expect, it } from 'vitest';
import { buildSpanTree, type StoredSpan } from '../src/index.js';

function span(id: string, parent: string, startUs: number, durationUs: number, name = id): StoredSpan {
  return {
    span_id: id,
    parent_span_id: parent,
    name,
    kind: parent ? 'CLIENT' : 'SERVER',
    service: parent ? 'db' : 'shop',
    status: 'OK',
    status_message: '',
    ts_us: String(startUs),
    duration_us: String(durationUs),
    attr_keys: ['k'],
    attr_values: [name],
  };
}

describe('buildSpanTree', () => {
  it('nests children under parents, ordered by start, with offsets from the trace start', () => {
    const t = buildSpanTree('t', 'acme', [
      span('c2', 'root', 1_000_300, 10),
      span('root', '', 1_000_000, 500),
      span('c1', 'root', 1_000_100, 100),
      span('g', 'c1', 1_000_150, 20),
    ]);
    expect(t).toMatchObject({
      start_us: 1_000_000,
      duration_us: 500,
      span_count: 4,
      services: ['db', 'shop'],
    });
    expect(t.roots.map((r) => r.span_id)).toEqual(['root']);
    const [root] = t.roots;
    expect(root?.children.map((c) => [c.span_id, c.offset_us])).toEqual([
      ['c1', 100],
      ['c2', 300],
    ]);
    expect(root?.children[0]?.children[0]).toMatchObject({
      span_id: 'g',
      offset_us: 150,
      attributes: { k: 'g' },
    });
  });

  it('keeps spans whose parent is missing as extra roots instead of dropping them', () => {
    const t = buildSpanTree('t', 'acme', [span('a', '', 10, 5), span('orphan', 'gone', 12, 1)]);
    expect(t.roots.map((r) => r.span_id)).toEqual(['a', 'orphan']);
  });
});
