import type { SpanNode, SpanNodeEvent, SpanNodeLink, TraceResult } from './results.js';

/** StoredSpan is one row of the spans table as the store reads it (64-bit integers as strings). */
export interface StoredSpan {
  span_id: string;
  parent_span_id: string;
  name: string;
  kind: string;
  service: string;
  status: string;
  status_message: string;
  ts_us: number | string;
  duration_us: number | string;
  attr_keys: string[];
  attr_values: string[];
  resource_keys: string[];
  resource_values: string[];
  scope_name: string;
  scope_version: string;
  /** JSON array of `{time, name, attributes}` (migrations/0011); '' or '[]' when none. */
  events_json: string;
  /** JSON array of `{trace_id, span_id, attributes}`; '' or '[]' when none. */
  links_json: string;
}

function record(keys: readonly string[], values: readonly string[]): Record<string, string> {
  const out: Record<string, string> = {};
  keys.forEach((k, i) => {
    out[k] = values[i] ?? '';
  });
  return out;
}

// Ingest wrote these from validated events; a cell that does not parse (never expected) reads empty
// rather than failing the whole trace.
function jsonArray(text: string): Record<string, unknown>[] {
  if (text === '' || text === '[]') return [];
  try {
    const value: unknown = JSON.parse(text);
    return Array.isArray(value) ? (value as Record<string, unknown>[]) : [];
  } catch {
    return [];
  }
}

const stringMap = (v: unknown): Record<string, string> =>
  typeof v === 'object' && v !== null ? (v as Record<string, string>) : {};

function eventsOf(text: string, traceStart: number): SpanNodeEvent[] {
  return jsonArray(text).map((e) => ({
    time_us: Number(e.time),
    offset_us: Number(e.time) - traceStart,
    name: String(e.name ?? ''),
    attributes: stringMap(e.attributes),
  }));
}

function linksOf(text: string): SpanNodeLink[] {
  return jsonArray(text).map((l) => ({
    trace_id: String(l.trace_id ?? ''),
    span_id: String(l.span_id ?? ''),
    attributes: stringMap(l.attributes),
  }));
}

/**
 * buildSpanTree nests spans under their parents, across services (an app's SERVER span under the
 * proxy's CLIENT span that called it); spans whose parent is missing (the trace's root, or a
 * parent in a service that does not report to Tapwire) become roots. Children are
 * ordered by start time, so the tree reads like a waterfall.
 */
export function buildSpanTree(traceId: string, tenant: string, spans: readonly StoredSpan[]): TraceResult {
  const start = Math.min(...spans.map((s) => Number(s.ts_us)));
  const end = Math.max(...spans.map((s) => Number(s.ts_us) + Number(s.duration_us)));
  const nodes = new Map<string, SpanNode>();
  for (const s of spans) {
    nodes.set(s.span_id, {
      span_id: s.span_id,
      parent_span_id: s.parent_span_id,
      name: s.name,
      kind: s.kind,
      service: s.service,
      status: s.status,
      status_message: s.status_message,
      start_us: Number(s.ts_us),
      offset_us: Number(s.ts_us) - start,
      duration_us: Number(s.duration_us),
      attributes: record(s.attr_keys, s.attr_values),
      resource: record(s.resource_keys ?? [], s.resource_values ?? []),
      scope: { name: s.scope_name ?? '', version: s.scope_version ?? '' },
      events: eventsOf(s.events_json ?? '', start),
      links: linksOf(s.links_json ?? ''),
      children: [],
    });
  }
  const roots: SpanNode[] = [];
  for (const node of nodes.values()) {
    const parent = node.parent_span_id ? nodes.get(node.parent_span_id) : undefined;
    if (parent && parent !== node) parent.children.push(node);
    else roots.push(node);
  }
  const byStart = (a: SpanNode, b: SpanNode) => a.start_us - b.start_us || a.span_id.localeCompare(b.span_id);
  for (const node of nodes.values()) node.children.sort(byStart);
  roots.sort(byStart);
  return {
    trace_id: traceId,
    tenant,
    start_us: start,
    duration_us: end - start,
    span_count: nodes.size,
    services: [...new Set(spans.map((s) => s.service))].sort(),
    roots,
  };
}
