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
    resource_keys: [],
    resource_values: [],
    scope_name: '',
    scope_version: '',
    events_json: '[]',
    links_json: '[]',
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

  it('reads resource, scope, events (offset from the trace start) and links; empty for rows stored before them', () => {
    const app: StoredSpan = {
      ...span('app', 'root', 1_000_100, 50),
      resource_keys: ['service.version', 'host.name'],
      resource_values: ['1.4.2', 'web-1'],
      scope_name: '@opentelemetry/instrumentation-http',
      scope_version: '0.52.0',
      events_json: JSON.stringify([{ time: 1_000_120, name: 'retry', attributes: { attempt: '2' } }]),
      links_json: JSON.stringify([
        { trace_id: 'ab'.repeat(16), span_id: 'cd'.repeat(8), attributes: { k: 'v' } },
      ]),
    };
    const t = buildSpanTree('t', 'acme', [span('root', '', 1_000_000, 500), app]);
    const [root] = t.roots;
    expect(root).toMatchObject({ resource: {}, scope: { name: '', version: '' }, events: [], links: [] });
    expect(root?.children[0]).toMatchObject({
      span_id: 'app',
      resource: { 'service.version': '1.4.2', 'host.name': 'web-1' },
      scope: { name: '@opentelemetry/instrumentation-http', version: '0.52.0' },
      events: [{ time_us: 1_000_120, offset_us: 120, name: 'retry', attributes: { attempt: '2' } }],
      links: [{ trace_id: 'ab'.repeat(16), span_id: 'cd'.repeat(8), attributes: { k: 'v' } }],
    });
    // A ClickHouse row stored before migrations/0011 that never got the DEFAULT reads ''.
    const old = buildSpanTree('t', 'acme', [{ ...span('x', '', 1, 1), events_json: '', links_json: '' }]);
    expect(old.roots[0]).toMatchObject({ events: [], links: [] });
  });
});
