// The shape both decoders produce: protobufjs messages (bytes as Buffer, 64-bit integers as Long)
// and zod-checked OTLP/JSON (ids as hex, 64-bit integers as strings or numbers). The mapper reads
// either, so protobuf bodies are mapped straight from the decoded messages, without toObject.

/** WireInt64 is a 64-bit integer: a protobufjs Long, or a string or number from OTLP/JSON. */
export type WireInt64 = { low: number; high: number; toString(): string } | string | number;

/** WireAnyValue is OTLP's AnyValue; exactly one field is set (as an own property). */
export interface WireAnyValue {
  stringValue?: string | null;
  boolValue?: boolean | null;
  intValue?: WireInt64 | null;
  doubleValue?: number | string | null;
  bytesValue?: Uint8Array | string | null;
  arrayValue?: { values?: WireAnyValue[] | null } | null;
  kvlistValue?: { values?: WireKeyValue[] | null } | null;
}

/** WireKeyValue is one OTLP attribute. */
export interface WireKeyValue {
  key?: string | null;
  value?: WireAnyValue | null;
}

/** WireEvent is OTLP's Span.Event. */
export interface WireEvent {
  timeUnixNano?: WireInt64 | null;
  name?: string | null;
  attributes?: WireKeyValue[] | null;
  droppedAttributesCount?: number | null;
}

/** WireLink is OTLP's Span.Link. */
export interface WireLink {
  traceId?: Uint8Array | string | null;
  spanId?: Uint8Array | string | null;
  attributes?: WireKeyValue[] | null;
  droppedAttributesCount?: number | null;
}

/** WireSpan is OTLP's Span. */
export interface WireSpan {
  traceId?: Uint8Array | string | null;
  spanId?: Uint8Array | string | null;
  parentSpanId?: Uint8Array | string | null;
  name?: string | null;
  kind?: number | string | null;
  startTimeUnixNano?: WireInt64 | null;
  endTimeUnixNano?: WireInt64 | null;
  attributes?: WireKeyValue[] | null;
  droppedAttributesCount?: number | null;
  events?: WireEvent[] | null;
  droppedEventsCount?: number | null;
  links?: WireLink[] | null;
  droppedLinksCount?: number | null;
  status?: { message?: string | null; code?: number | string | null } | null;
}

/** WireScopeSpans is OTLP's ScopeSpans. */
export interface WireScopeSpans {
  scope?: { name?: string | null; version?: string | null } | null;
  spans?: WireSpan[] | null;
}

/** WireResourceSpans is OTLP's ResourceSpans. */
export interface WireResourceSpans {
  resource?: { attributes?: WireKeyValue[] | null; droppedAttributesCount?: number | null } | null;
  scopeSpans?: WireScopeSpans[] | null;
}

/** WireExportRequest is OTLP's ExportTraceServiceRequest. */
export interface WireExportRequest {
  resourceSpans?: WireResourceSpans[] | null;
}
