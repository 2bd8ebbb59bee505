import type { SPAN_KINDS, SPAN_STATUSES } from '@tapwire/schema';

// Local stand-in for @tapwire/schema's span event version 2 until that lands; same shape.

/** OtlpSpanEventEvent is one timed event inside a span (OTLP Span.Event). */
export interface OtlpSpanEventEvent {
  /** Epoch microseconds. */
  time: number;
  name: string;
  attributes: Record<string, string>;
}

/** OtlpSpanLink is a link from a span to another span (OTLP Span.Link). */
export interface OtlpSpanLink {
  trace_id: string;
  span_id: string;
  attributes: Record<string, string>;
}

/** OtlpSpanEvent is a span event, version 2, as mapped from OTLP. */
export interface OtlpSpanEvent {
  v: 2;
  id: string;
  ts: number;
  tenant: string;
  trace_id: string;
  span_id: string;
  parent_span_id: string;
  name: string;
  kind: (typeof SPAN_KINDS)[number];
  service: string;
  start: number;
  duration: number;
  status: (typeof SPAN_STATUSES)[number];
  status_message: string;
  attributes: Record<string, string>;
  resource: Record<string, string>;
  scope_name: string;
  scope_version: string;
  events: OtlpSpanEventEvent[];
  links: OtlpSpanLink[];
}
