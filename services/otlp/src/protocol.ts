// TEMPORARY stand-in for @tapwire/otlp (branch i22-otlp-lib), with exactly its API; deleted when that branch is merged.
import type { SpanEvent } from '@tapwire/schema';
import protobuf from 'protobufjs';

export const DEFAULT_REDACTED_QUERY_PARAMS = [
  'token',
  'access_token',
  'api_key',
  'apikey',
  'key',
  'password',
  'secret',
  'signature',
] as const;

export type OtlpFormat = 'protobuf' | 'json';
export const TRACE_EXPORT_PATH = '/opentelemetry.proto.collector.trace.v1.TraceService/Export';
export class OtlpRequestError extends Error {
  readonly code = 'TAPWIRE_OTLP_BAD_REQUEST' as const;
}
export interface OtlpLimits {
  maxSpansPerRequest: number;
  maxAttributesPerSpan: number;
  maxAttributeValueChars: number;
  maxEventsPerSpan: number;
  maxLinksPerSpan: number;
}
export interface OtlpRedaction {
  attributeKeys: readonly string[];
  queryParams: readonly string[];
}
export type OtlpSpanEvent = SpanEvent;
export interface MappedExport {
  spans: OtlpSpanEvent[];
  rejected: number;
  errorMessage: string;
}

const root = protobuf.parse(`
syntax = "proto3";
message AnyValue { oneof value { string string_value = 1; bool bool_value = 2; int64 int_value = 3; double double_value = 4; } }
message KeyValue { string key = 1; AnyValue value = 2; }
message Resource { repeated KeyValue attributes = 1; }
message Status { string message = 2; int32 code = 3; }
message Span { bytes trace_id = 1; bytes span_id = 2; bytes parent_span_id = 4; string name = 5; int32 kind = 6;
  fixed64 start_time_unix_nano = 7; fixed64 end_time_unix_nano = 8; repeated KeyValue attributes = 9; Status status = 15; }
message ScopeSpans { repeated Span spans = 2; }
message ResourceSpans { Resource resource = 1; repeated ScopeSpans scope_spans = 2; }
message ExportTraceServiceRequest { repeated ResourceSpans resource_spans = 1; }
message ExportTracePartialSuccess { int64 rejected_spans = 1; string error_message = 2; }
message ExportTraceServiceResponse { ExportTracePartialSuccess partial_success = 1; }
message GStatus { int32 code = 1; string message = 2; }
`).root;
const Request = root.lookupType('ExportTraceServiceRequest');
const Response = root.lookupType('ExportTraceServiceResponse');
const GStatus = root.lookupType('GStatus');
const KINDS = ['INTERNAL', 'INTERNAL', 'SERVER', 'CLIENT', 'PRODUCER', 'CONSUMER'] as const;

type Raw = {
  resourceSpans?: {
    resource?: { attributes?: { key: string; value?: Record<string, unknown> }[] };
    scopeSpans?: {
      spans?: {
        traceId?: string;
        spanId?: string;
        parentSpanId?: string;
        name?: string;
        kind?: number;
        startTimeUnixNano?: string;
        endTimeUnixNano?: string;
        attributes?: { key: string; value?: Record<string, unknown> }[];
        status?: { code?: number; message?: string };
      }[];
    }[];
  }[];
};

export function createTraceMapper(config: { limits: OtlpLimits; redaction: OtlpRedaction }): {
  map(body: Uint8Array, format: OtlpFormat, tenant: string): MappedExport;
} {
  return {
    map(body, format, tenant) {
      let raw: Raw;
      try {
        raw =
          format === 'json'
            ? (JSON.parse(Buffer.from(body).toString('utf8')) as Raw)
            : (Request.toObject(Request.decode(body), { longs: String, bytes: String }) as Raw);
      } catch (err) {
        throw new OtlpRequestError(`cannot decode the request: ${(err as Error).message}`);
      }
      const hex = (v: string | undefined) =>
        format === 'json' ? (v ?? '').toLowerCase() : Buffer.from(v ?? '', 'base64').toString('hex');
      const spans: OtlpSpanEvent[] = [];
      let rejected = 0;
      let errorMessage = '';
      let count = 0;
      for (const rs of raw.resourceSpans ?? []) {
        const serviceAttr = rs.resource?.attributes?.find((a) => a.key === 'service.name');
        const service = String(serviceAttr?.value?.stringValue ?? 'unknown_service');
        for (const ss of rs.scopeSpans ?? [])
          for (const s of ss.spans ?? []) {
            if (++count > config.limits.maxSpansPerRequest)
              throw new OtlpRequestError(`more than ${config.limits.maxSpansPerRequest} spans`);
            const traceId = hex(s.traceId);
            const spanId = hex(s.spanId);
            if (!/^[0-9a-f]{32}$/.test(traceId) || /^0+$/.test(traceId) || !/^[0-9a-f]{16}$/.test(spanId)) {
              rejected++;
              errorMessage ||= `span ${s.name ?? ''}: invalid trace or span id`;
              continue;
            }
            const attributes: Record<string, string> = {};
            for (const a of s.attributes ?? [])
              attributes[a.key] = String(Object.values(a.value ?? {})[0] ?? '');
            const startNs = BigInt(s.startTimeUnixNano ?? '0');
            const endNs = BigInt(s.endTimeUnixNano ?? '0');
            const start = Number(startNs / 1000n);
            spans.push({
              v: 1,
              id: traceId + spanId,
              ts: start,
              tenant,
              trace_id: traceId,
              span_id: spanId,
              parent_span_id: hex(s.parentSpanId),
              name: s.name || 'unnamed',
              kind: KINDS[s.kind ?? 0] ?? 'INTERNAL',
              service,
              start,
              duration: endNs > startNs ? Number((endNs - startNs) / 1000n) : 0,
              status: (['UNSET', 'OK', 'ERROR'] as const)[s.status?.code ?? 0] ?? 'UNSET',
              status_message: s.status?.message ?? '',
              attributes,
            } as OtlpSpanEvent);
          }
      }
      return { spans, rejected, errorMessage };
    },
  };
}

export function encodeTraceResponse(
  r: { rejectedSpans: number; errorMessage: string },
  format: OtlpFormat,
): Uint8Array | string {
  const partial = r.rejectedSpans > 0 || r.errorMessage !== '';
  if (format === 'json')
    return JSON.stringify(
      partial
        ? { partialSuccess: { rejectedSpans: String(r.rejectedSpans), errorMessage: r.errorMessage } }
        : {},
    );
  return Response.encode(partial ? { partialSuccess: r } : {}).finish();
}

export function encodeStatus(s: { code: number; message: string }, format: OtlpFormat): Uint8Array | string {
  return format === 'json' ? JSON.stringify(s) : GStatus.encode(s).finish();
}
