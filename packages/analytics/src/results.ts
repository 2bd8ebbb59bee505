import { z } from 'zod';

/**
 * The answers the Store gives, as zod schemas so the API documents them in OpenAPI and tests can
 * check them. Rates are per second over the window or step; latencies are milliseconds; a
 * quantile is null when there was no request to measure.
 */

const nullableMs = z.number().nullable();

/** latencySchema holds the four latency quantiles in milliseconds. */
export const latencySchema = z.object({
  p50: nullableMs,
  p90: nullableMs,
  p95: nullableMs,
  p99: nullableMs,
});

/** redShape is the rate, errors and latency of a group of requests, shared by overview and consumer rows. */
const redShape = {
  requests: z.number().int(),
  rate_rps: z.number(),
  errors_5xx: z.number().int(),
  errors_4xx: z.number().int(),
  error_rate_5xx: z.number(),
  error_rate_4xx: z.number(),
  latency_ms: latencySchema,
};

/** authFailuresSchema counts requests the proxy refused for their credentials, by error kind. */
export const authFailuresSchema = z.object({
  missing: z.number().int().describe('401 auth_missing: no credentials where the route requires them'),
  invalid: z.number().int().describe('401 auth_invalid: unknown API key, bad or expired JWT'),
  forbidden: z
    .number()
    .int()
    .describe("403 forbidden: a valid consumer without the route's required scope or claim"),
});

/** policyShape is what the proxy's policies decided for a group of requests (access logs version 2). */
const policyShape = {
  rate_limited: z.number().int().describe('Requests refused with 429 rate_limited'),
  auth_failures: authFailuresSchema,
  cache_hit_ratio: z
    .number()
    .nullable()
    .describe(
      '(hit + stale) / (hit + miss + stale) of the response cache; null when no request had a cache policy',
    ),
  retries: z.number().int().describe('Retries on another target, summed over the requests'),
  no_healthy_target: z.number().int().describe('Requests refused with 503 no_healthy_target'),
};

/** redRowSchema is one group of the RED overview (per service, or per route and method). */
export const redRowSchema = z.object({
  tenant: z.string(),
  service: z.string(),
  route: z.string().optional(),
  method: z.string().optional(),
  ...redShape,
  avg_ms: z.number().nullable(),
  bytes_in: z.number().int(),
  bytes_out: z.number().int(),
  ...policyShape,
  /**
   * basis is 'spans' on a per-service row of a service that reports spans but no access logs (an
   * app sending OTLP): requests, errors and latency come from its SERVER spans, bytes are unknown
   * and read 0. Absent on rows from access logs.
   */
  basis: z
    .literal('spans')
    .optional()
    .describe(
      "'spans': computed from the service's SERVER spans (it has no access logs); bytes_in and bytes_out are unknown and read 0",
    ),
});

/** RedRow is one group of the RED overview. */
export type RedRow = z.infer<typeof redRowSchema>;

const sourceUsed = z.enum(['raw', 'rollup_1m', 'rollup_1h']);

/** overviewResultSchema is one page of the RED overview. */
export const overviewResultSchema = z.object({
  source: sourceUsed,
  from: z.number().int(),
  to: z.number().int(),
  rows: z.array(redRowSchema),
  has_more: z.boolean(),
});

/** OverviewResult is one page of the RED overview. */
export type OverviewResult = z.infer<typeof overviewResultSchema>;

/** exemplarSchema is a real request whose duration is close to a quantile of its step. */
export const exemplarSchema = z.object({ trace_id: z.string(), duration_ms: z.number() });

/** seriesPointSchema is one step of a series; `t` is the step's start in epoch seconds. */
export const seriesPointSchema = z.object({
  t: z.number().int(),
  requests: z.number().int(),
  rate_rps: z.number(),
  errors_5xx: z.number().int(),
  errors_4xx: z.number().int(),
  error_rate_5xx: z.number(),
  error_rate_4xx: z.number(),
  latency_ms: z.record(z.string(), z.number().nullable()),
  exemplars: z.record(z.string(), z.array(exemplarSchema)),
});

/** SeriesPoint is one step of a series. */
export type SeriesPoint = z.infer<typeof seriesPointSchema>;

/** seriesResultSchema is a series of every step in the window, empty steps included. */
export const seriesResultSchema = z.object({
  source: sourceUsed,
  from: z.number().int(),
  to: z.number().int(),
  step: z.number().int(),
  points: z.array(seriesPointSchema),
});

/** SeriesResult is a latency / error / throughput series. */
export type SeriesResult = z.infer<typeof seriesResultSchema>;

/** instancePointSchema is one step of a proxy instance's process saturation. */
export const instancePointSchema = z.object({
  t: z.number().int(),
  samples: z.number().int(),
  event_loop_utilization_avg: z.number(),
  event_loop_utilization_max: z.number(),
  event_loop_delay_ms_max: z.number(),
  heap_used_bytes_max: z.number(),
  heap_limit_bytes: z.number(),
  rss_bytes_max: z.number(),
  cpu_ratio_avg: z.number(),
  producer_buffer_events_max: z.number(),
  producer_buffer_capacity: z.number(),
  spool_bytes_max: z.number(),
  spool_capacity_bytes: z.number(),
});

/** upstreamPointSchema is one step of an upstream's concurrency and pool use on one instance. */
export const upstreamPointSchema = z.object({
  t: z.number().int(),
  samples: z.number().int(),
  in_flight_avg: z.number(),
  in_flight_max: z.number(),
  concurrency_limit: z.number(),
  pool_size_max: z.number(),
  pool_busy_avg: z.number(),
  pool_busy_max: z.number(),
  pool_pending_max: z.number(),
});

/** targetPointSchema is one step of a load-balanced upstream's target as one instance saw it. */
export const targetPointSchema = z.object({
  t: z.number().int(),
  samples: z.number().int(),
  state: z.enum(['healthy', 'unhealthy', 'ejected']).describe("The state in the step's last sample"),
  healthy_samples: z.number().int(),
  unhealthy_samples: z.number().int(),
  ejected_samples: z.number().int(),
  in_flight_max: z.number(),
  consecutive_failures_max: z.number(),
});

/**
 * saturationResultSchema holds one series per proxy instance, one per (instance, upstream) and
 * one per (instance, upstream, target) of load-balanced upstreams.
 */
export const saturationResultSchema = z.object({
  source: sourceUsed,
  from: z.number().int(),
  to: z.number().int(),
  step: z.number().int(),
  instances: z.array(
    z.object({
      tenant: z.string(),
      service: z.string(),
      instance: z.string(),
      points: z.array(instancePointSchema),
    }),
  ),
  upstreams: z.array(
    z.object({
      tenant: z.string(),
      service: z.string(),
      instance: z.string(),
      upstream: z.string(),
      points: z.array(upstreamPointSchema),
    }),
  ),
  targets: z
    .array(
      z.object({
        tenant: z.string(),
        service: z.string(),
        instance: z.string(),
        upstream: z.string(),
        target: z.string(),
        points: z.array(targetPointSchema),
      }),
    )
    .describe('Read from raw samples at any source: steps without a sample of the target are absent'),
});

/** SaturationResult holds saturation series. */
export type SaturationResult = z.infer<typeof saturationResultSchema>;

/** consumerRowSchema is one consumer's usage over the window. */
export const consumerRowSchema = z.object({
  tenant: z.string(),
  consumer: z.string(),
  ...redShape,
  ...policyShape,
  quota_used: z
    .number()
    .nullable()
    .describe(
      'Highest share of a rate limit used, (ratelimit_limit − ratelimit_remaining) / ratelimit_limit, among requests a limit applied to; null when none had one',
    ),
  ratelimit_limit: z
    .number()
    .int()
    .describe('Largest rate-limit quota seen on its requests; 0 when none applied'),
});

/** consumersResultSchema is one page of per-consumer usage. */
export const consumersResultSchema = z.object({
  from: z.number().int(),
  to: z.number().int(),
  rows: z.array(consumerRowSchema),
  has_more: z.boolean(),
});

/** ConsumersResult is one page of per-consumer usage. */
export type ConsumersResult = z.infer<typeof consumersResultSchema>;

/** SpanNode is one span of a trace with its children, timed relative to the trace start. */
export interface SpanNode {
  span_id: string;
  parent_span_id: string;
  name: string;
  kind: string;
  service: string;
  status: string;
  status_message: string;
  start_us: number;
  offset_us: number;
  duration_us: number;
  attributes: Record<string, string>;
  /** Resource attributes other than service.name (apps' OTLP spans; {} for the proxy's). */
  resource: Record<string, string>;
  /** Instrumentation scope ('' name and version for the proxy's spans). */
  scope: SpanScope;
  events: SpanNodeEvent[];
  links: SpanNodeLink[];
  children: SpanNode[];
}

/** SpanScope is the instrumentation scope that made a span. */
export interface SpanScope {
  name: string;
  version: string;
}

/** SpanNodeEvent is one timed event of a span; offset_us is from the trace's start, like the span's. */
export interface SpanNodeEvent {
  time_us: number;
  offset_us: number;
  name: string;
  attributes: Record<string, string>;
}

/** SpanNodeLink is one link from a span to another span (possibly of another trace). */
export interface SpanNodeLink {
  trace_id: string;
  span_id: string;
  attributes: Record<string, string>;
}

/** spanNodeSchema validates a SpanNode (recursive). */
export const spanNodeSchema: z.ZodType<SpanNode> = z.lazy(() =>
  z.object({
    span_id: z.string(),
    parent_span_id: z.string(),
    name: z.string(),
    kind: z.string(),
    service: z.string(),
    status: z.string(),
    status_message: z.string(),
    start_us: z.number().int(),
    offset_us: z.number().int(),
    duration_us: z.number().int(),
    attributes: z.record(z.string(), z.string()),
    resource: z.record(z.string(), z.string()),
    scope: z.object({ name: z.string(), version: z.string() }),
    events: z.array(
      z.object({
        time_us: z.number().int(),
        offset_us: z.number().int(),
        name: z.string(),
        attributes: z.record(z.string(), z.string()),
      }),
    ),
    links: z.array(
      z.object({ trace_id: z.string(), span_id: z.string(), attributes: z.record(z.string(), z.string()) }),
    ),
    children: z.array(spanNodeSchema),
  }),
);

/** traceResultSchema is one trace as a tree (roots are spans whose parent is not in the trace). */
export const traceResultSchema = z.object({
  trace_id: z.string(),
  tenant: z.string(),
  start_us: z.number().int(),
  duration_us: z.number().int(),
  span_count: z.number().int(),
  services: z.array(z.string()),
  roots: z.array(spanNodeSchema),
});

/** TraceResult is one trace as a tree. */
export type TraceResult = z.infer<typeof traceResultSchema>;

/** traceSummarySchema is one recent request and its trace. */
export const traceSummarySchema = z.object({
  trace_id: z.string(),
  tenant: z.string(),
  ts_us: z.number().int(),
  service: z.string(),
  route: z.string(),
  method: z.string(),
  status: z.number().int(),
  duration_ms: z.number(),
  error_kind: z.string(),
});

/** recentTracesResultSchema lists recent traces, newest first. */
export const recentTracesResultSchema = z.object({ traces: z.array(traceSummarySchema) });

/** RecentTracesResult lists recent traces. */
export type RecentTracesResult = z.infer<typeof recentTracesResultSchema>;

/** accessLogRowSchema is one stored access-log event (redacted path and query, no secrets). */
export const accessLogRowSchema = z.object({
  id: z.string(),
  tenant: z.string(),
  ts_us: z.number().int(),
  trace_id: z.string(),
  span_id: z.string(),
  service: z.string(),
  upstream: z.string(),
  route: z.string(),
  method: z.string(),
  status: z.number().int(),
  duration_ms: z.number(),
  upstream_ms: z.number(),
  bytes_in: z.number().int(),
  bytes_out: z.number().int(),
  consumer: z.string(),
  client_address: z.string(),
  user_agent: z.string(),
  path: z.string(),
  query: z.string(),
  error_kind: z.string(),
  cache: z
    .string()
    .describe("What the response cache did: hit, miss, bypass, stale; '' without a cache policy"),
  target: z.string().describe("The upstream target forwarded to (host:port); '' when none"),
  retries: z.number().int().describe('Retries on another target'),
  ratelimit_limit: z.number().int().describe('Quota per window of the rate limit applied; 0 when none'),
  ratelimit_remaining: z.number().int().describe('What was left of it after this request'),
});

/** AccessLogRow is one stored access-log event. */
export type AccessLogRow = z.infer<typeof accessLogRowSchema>;

/** logsResultSchema is one page of access logs, newest first; `next_cursor` continues it. */
export const logsResultSchema = z.object({
  rows: z.array(accessLogRowSchema),
  next_cursor: z.object({ ts_us: z.number().int(), id: z.string() }).nullable(),
});

/** LogsResult is one page of access logs (the cursor is still structured; the API encodes it). */
export type LogsResult = z.infer<typeof logsResultSchema>;

/** pipelineResultSchema summarizes ingest lag, dead letters and proxy-side drops and spool fill. */
export const pipelineResultSchema = z.object({
  from: z.number().int(),
  to: z.number().int(),
  lag: z.array(
    z.object({
      consumer_group: z.string(),
      topic: z.string(),
      partition: z.number().int(),
      lag: z.number().int(),
      high_watermark: z.number().int(),
      sampled_at: z.number().int(),
    }),
  ),
  dlq: z.array(
    z.object({
      source_topic: z.string(),
      events: z.number().int(),
      rate_per_s: z.number(),
      last_reason: z.string(),
    }),
  ),
  proxies: z.array(
    z.object({
      tenant: z.string(),
      service: z.string(),
      instance: z.string(),
      dropped_events: z.number().int(),
      producer_buffer_events_max: z.number(),
      producer_buffer_capacity: z.number(),
      spool_bytes_max: z.number(),
      spool_capacity_bytes: z.number(),
      spool_fill_ratio_max: z.number(),
      last_seen: z.number().int(),
    }),
  ),
});

/** PipelineResult summarizes pipeline health. */
export type PipelineResult = z.infer<typeof pipelineResultSchema>;

/** signalResultSchema is one value (with its sample count) per series. */
export const signalResultSchema = z.object({
  series: z.array(
    z.object({ labels: z.record(z.string(), z.string()), value: z.number(), samples: z.number().int() }),
  ),
});

/** SignalResult is one value per series of an alert rule. */
export type SignalResult = z.infer<typeof signalResultSchema>;

const alertShape = {
  tenant: z.string(),
  rule_id: z.string(),
  fingerprint: z.string(),
  labels: z.record(z.string(), z.string()),
  state: z.string(),
  value: z.number().nullable(),
  threshold: z.number(),
  since_us: z.number().int(),
};

/** alertsResultSchema lists current alert series. */
export const alertsResultSchema = z.object({
  alerts: z.array(
    z.object({
      ...alertShape,
      active_at_us: z.number().int(),
      fired_at_us: z.number().int().nullable(),
      updated_us: z.number().int(),
    }),
  ),
});

/** AlertsResult lists current alert series. */
export type AlertsResult = z.infer<typeof alertsResultSchema>;

/** alertHistoryResultSchema is transitions (receiver null) and deliveries (receiver set), newest first. */
export const alertHistoryResultSchema = z.object({
  events: z.array(z.object({ ...alertShape, ts_us: z.number().int(), receiver: z.string().nullable() })),
});

/** AlertHistoryResult is alert history, newest first. */
export type AlertHistoryResult = z.infer<typeof alertHistoryResultSchema>;

/**
 * sloCountsResultSchema is an SLO's good and total requests per asked window, in the order asked;
 * `thresholdMs` (latency SLIs) is the latency bucket edge actually applied: good = duration ≤ it.
 */
export const sloCountsResultSchema = z.object({
  windows: z.array(
    z.object({
      from: z.number().int(),
      to: z.number().int(),
      good: z.number().int(),
      total: z.number().int(),
    }),
  ),
  thresholdMs: z.number().positive().optional(),
});

/** SloCountsResult is an SLO's good and total requests per window. */
export type SloCountsResult = z.infer<typeof sloCountsResultSchema>;
