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

/** RETRY_INFO_TYPE_URL is the google.protobuf.Any type URL of google.rpc.RetryInfo. */
export const RETRY_INFO_TYPE_URL = 'type.googleapis.com/google.rpc.RetryInfo';

/**
 * encodeRetryStatus renders a google.rpc.Status whose details hold one google.rpc.RetryInfo: the
 * OTLP throttling answer (RESOURCE_EXHAUSTED is retryable only with it), the body of an OTLP/HTTP
 * 429 or a gRPC `grpc-status-details-bin` trailer. In JSON, proto3's mapping: the Any with
 * `@type`, the Duration as "<n>s". https://opentelemetry.io/docs/specs/otlp/#failures
 */
export function encodeRetryStatus(
  s: { code: number; message: string; retryAfterS: number },
  format: OtlpFormat,
): Uint8Array | string {
  if (format === 'json') {
    return JSON.stringify({
      code: s.code,
      message: s.message,
      details: [{ '@type': RETRY_INFO_TYPE_URL, retryDelay: `${s.retryAfterS}s` }],
    });
  }
  const { status, retryInfo } = otlpProtos();
  const detail = retryInfo.encode({ retryDelay: { seconds: s.retryAfterS } }).finish();
  return status
    .encode({ code: s.code, message: s.message, details: [{ type_url: RETRY_INFO_TYPE_URL, value: detail }] })
    .finish();
}
