/** RETRY_INFO_TYPE_URL is the Any type URL of google.rpc.RetryInfo. */
export const RETRY_INFO_TYPE_URL = 'type.googleapis.com/google.rpc.RetryInfo';

function varint(n: number): number[] {
  const out: number[] = [];
  let v = n;
  while (v > 0x7f) {
    out.push((v & 0x7f) | 0x80);
    v = Math.floor(v / 128);
  }
  out.push(v);
  return out;
}

function field(number: number, bytes: Uint8Array): number[] {
  return [...varint((number << 3) | 2), ...varint(bytes.length), ...bytes];
}

/**
 * encodeRetryStatus encodes a google.rpc.Status whose details hold one google.rpc.RetryInfo: the
 * OTLP specification's throttling answer (a RESOURCE_EXHAUSTED is retryable only with it). Hand
 * encoded: three nested messages of one or two fields, built once per refusal.
 * https://opentelemetry.io/docs/specs/otlp/#failures
 */
export function encodeRetryStatus(code: number, message: string, retryAfterS: number): Buffer {
  // google.protobuf.Duration { int64 seconds = 1; } inside RetryInfo { Duration retry_delay = 1; }
  const duration = Uint8Array.from([...varint(1 << 3), ...varint(retryAfterS)]);
  const retryInfo = Uint8Array.from(field(1, duration));
  // google.protobuf.Any { string type_url = 1; bytes value = 2; }
  const any = Uint8Array.from([...field(1, Buffer.from(RETRY_INFO_TYPE_URL)), ...field(2, retryInfo)]);
  // google.rpc.Status { int32 code = 1; string message = 2; repeated Any details = 3; }
  return Buffer.from([
    ...varint(1 << 3),
    ...varint(code),
    ...field(2, Buffer.from(message, 'utf8')),
    ...field(3, any),
  ]);
}

/** retryStatusJson is encodeRetryStatus in OTLP/JSON (proto3 JSON mapping: Any with @type, Duration as "5s"). */
export function retryStatusJson(code: number, message: string, retryAfterS: number): string {
  return JSON.stringify({
    code,
    message,
    details: [{ '@type': RETRY_INFO_TYPE_URL, retryDelay: `${retryAfterS}s` }],
  });
}
