import { otlpProtos } from './protos.js';
import type { OtlpFormat } from './trace-mapper.js';

/** TRACE_EXPORT_PATH is the gRPC method path of OTLP trace export. */
export const TRACE_EXPORT_PATH = '/opentelemetry.proto.collector.trace.v1.TraceService/Export';

/**
 * encodeTraceResponse renders an ExportTraceServiceResponse, with partial_success only when spans
 * were rejected or there is a message (the spec's "full success" is an empty response).
 */
export function encodeTraceResponse(
  r: { rejectedSpans: number; errorMessage: string },
  format: OtlpFormat,
): Uint8Array | string {
  const partial = r.rejectedSpans > 0 || r.errorMessage !== '';
  if (format === 'json') {
    // int64 as a string, as proto3 JSON writes it.
    return partial
      ? JSON.stringify({
          partialSuccess: { rejectedSpans: String(r.rejectedSpans), errorMessage: r.errorMessage },
        })
      : '{}';
  }
  const { exportResponse } = otlpProtos();
  return exportResponse
    .encode(
      partial ? { partialSuccess: { rejectedSpans: r.rejectedSpans, errorMessage: r.errorMessage } } : {},
    )
    .finish();
}

/** encodeStatus renders a google.rpc.Status, the body of an OTLP/HTTP error (code is the gRPC code number). */
export function encodeStatus(s: { code: number; message: string }, format: OtlpFormat): Uint8Array | string {
  if (format === 'json') return JSON.stringify({ code: s.code, message: s.message });
  return otlpProtos().status.encode({ code: s.code, message: s.message }).finish();
}
