import type { SpanNode, TraceResult } from './results.js';

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
}

/**
 * buildSpanTree nests spans under their parents; spans whose parent is missing (the trace's
 * root, or a parent in a service that does not report to Tapwire) become roots. Children are
 * ordered by start time, so the tree reads like a waterfall.
 */
export function buildSpanTree(traceId: string, tenant: string, spans: readonly StoredSpan[]): TraceResult {
  const start = Math.min(...spans.map((s) => Number(s.ts_us)));
  const end = Math.max(...spans.map((s) => Number(s.ts_us) + Number(s.duration_us)));
  const nodes = new Map<string, SpanNode>();
  for (const s of spans) {
    const attributes: Record<string, string> = {};
    s.attr_keys.forEach((k, i) => {
      attributes[k] = s.attr_values[i] ?? '';
    });
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
      attributes,
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
