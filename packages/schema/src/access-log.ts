import { z } from 'zod';
import { envelopeShape } from './envelope.js';
import { boundedString, LIMITS, nonEmptyBoundedString, spanIdSchema, traceIdSchema } from './primitives.js';

/** ERROR_KINDS classify why a request did not get an upstream answer; `none` when it did. */
export const ERROR_KINDS = [
  'none',
  'upstream_timeout',
  'upstream_refused',
  'upstream_reset',
  'upstream_error',
  'client_aborted',
  'over_limit',
  'unmatched',
  'proxy_error',
  'bad_request',
  'body_too_large',
  'client_timeout',
] as const;

/** HTTP_METHODS are the request methods access logs record; anything else is recorded as `OTHER`. */
export const HTTP_METHODS = [
  'GET',
  'HEAD',
  'POST',
  'PUT',
  'DELETE',
  'CONNECT',
  'OPTIONS',
  'TRACE',
  'PATCH',
  'OTHER',
] as const;

const nonNegative = z.number().nonnegative().max(Number.MAX_SAFE_INTEGER);
const byteCount = z.number().int().nonnegative().max(Number.MAX_SAFE_INTEGER);

/** accessLogV1Schema validates an access-log event, version 1 (one per proxied request, never sampled). */
export const accessLogV1Schema = z.object({
  ...envelopeShape,
  v: z.literal(1),
  trace_id: traceIdSchema,
  span_id: spanIdSchema,
  service: nonEmptyBoundedString(LIMITS.serviceChars),
  upstream: boundedString(LIMITS.serviceChars),
  route: nonEmptyBoundedString(LIMITS.routeChars),
  method: z.enum(HTTP_METHODS),
  status: z.number().int().min(0).max(999),
  duration_ms: nonNegative,
  upstream_ms: nonNegative,
  bytes_in: byteCount,
  bytes_out: byteCount,
  consumer: boundedString(LIMITS.serviceChars),
  client_address: boundedString(64),
  server_address: boundedString(256),
  user_agent: boundedString(LIMITS.userAgentChars),
  path: boundedString(LIMITS.pathChars),
  query: boundedString(LIMITS.pathChars),
  error_kind: z.enum(ERROR_KINDS),
});

/** AccessLogEvent is one proxied request as an access-log line (route template, never the raw path). */
export type AccessLogEvent = z.infer<typeof accessLogV1Schema>;
