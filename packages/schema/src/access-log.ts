import { z } from 'zod';
import { envelopeShape } from './envelope.js';
import { boundedString, LIMITS, nonEmptyBoundedString, spanIdSchema, traceIdSchema } from './primitives.js';

/** ERROR_KINDS_V1 are the error kinds access logs of version 1 may carry. */
export const ERROR_KINDS_V1 = [
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

/**
 * ERROR_KINDS classify why a request did not get an upstream answer; `none` when it did. Version 2
 * adds the proxy's policy decisions: credentials missing or invalid (401), a consumer without the
 * route's required scope or claim (403), a consumer or client over its rate limit (429), and no
 * healthy target left to forward to (503).
 */
export const ERROR_KINDS = [
  ...ERROR_KINDS_V1,
  'auth_missing',
  'auth_invalid',
  'forbidden',
  'rate_limited',
  'no_healthy_target',
] as const;

/**
 * CACHE_STATUSES say what the response cache did for a request: '' when the route has no cache
 * policy; `hit` served from a fresh entry; `miss` forwarded (and stored when cacheable); `bypass`
 * forwarded without looking (not GET/HEAD, credentialed, or `Cache-Control: no-cache`/`no-store`
 * asked by the client); `stale` an expired entry served because the upstream failed (stale-if-error).
 */
export const CACHE_STATUSES = ['', 'hit', 'miss', 'bypass', 'stale'] as const;

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

const accessLogV1Shape = {
  ...envelopeShape,
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
};

/** accessLogV1Schema validates an access-log event, version 1 (one per proxied request, never sampled). */
export const accessLogV1Schema = z.object({
  ...accessLogV1Shape,
  v: z.literal(1),
  error_kind: z.enum(ERROR_KINDS_V1),
});

const smallCount = z.number().int().nonnegative().max(255);
const quota = z.number().int().nonnegative().max(0xffff_ffff);

/**
 * accessLogV2Schema validates an access-log event, version 2: version 1 plus the proxy's policy
 * decisions — what the cache did, the upstream target that was forwarded to (host:port, '' when
 * none), how many times the request was retried on another target, and the rate limit that applied
 * (its quota per window and what was left after this request; both 0 when no limit applies).
 */
export const accessLogV2Schema = z.object({
  ...accessLogV1Shape,
  v: z.literal(2),
  error_kind: z.enum(ERROR_KINDS),
  cache: z.enum(CACHE_STATUSES),
  target: boundedString(LIMITS.serviceChars),
  retries: smallCount,
  ratelimit_limit: quota,
  ratelimit_remaining: quota,
});

/** AccessLogEvent is one proxied request as an access-log line (route template, never the raw path). */
export type AccessLogEvent = z.infer<typeof accessLogV2Schema>;

/** AccessLogEventV1 is an access log at version 1 (ingest upgrades it to AccessLogEvent). */
export type AccessLogEventV1 = z.infer<typeof accessLogV1Schema>;

/** upgradeAccessLogV1 upgrades a version-1 access log to version 2: no policy decided anything. */
export function upgradeAccessLogV1(event: Record<string, unknown>): Record<string, unknown> {
  return { ...event, v: 2, cache: '', target: '', retries: 0, ratelimit_limit: 0, ratelimit_remaining: 0 };
}
