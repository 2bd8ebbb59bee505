import { LIMITS, tenantSchema, traceIdSchema } from '@tapwire/schema';
import { z } from 'zod';

/**
 * The questions the Store answers, as validated values. Times are whole epoch seconds (the
 * resolution of the tables' `ts` columns); callers resolve RFC 3339 / `now-1h` before this point.
 */

/** QUANTILES is the fixed set of latency quantiles every path can answer (the rollup keeps these four). */
export const QUANTILES = [0.5, 0.9, 0.95, 0.99] as const;

/** Quantile is one allowed latency quantile level. */
export type Quantile = (typeof QUANTILES)[number];

/** STATUS_CLASSES are the HTTP status classes a filter may name. */
export const STATUS_CLASSES = ['1xx', '2xx', '3xx', '4xx', '5xx'] as const;

/**
 * SOURCES names where an answer may come from: auto picks the coarsest rollup that answers the
 * query exactly (hourly, then 1-minute), else raw rows; `rollup` asks for a rollup without
 * choosing which; the others force one.
 */
export const SOURCES = ['auto', 'raw', 'rollup', 'rollup_1m', 'rollup_1h'] as const;

/** Source is a requested data source. */
export type Source = (typeof SOURCES)[number];

const epochSeconds = z.number().int().min(0).max(4_102_444_800);
const label = (max: number) => z.string().min(1).max(max);

/** scopeSchema says which tenants a query may read: one tenant, or every tenant (null). */
export const scopeSchema = z.object({ tenant: tenantSchema.nullable() });

/** Scope is the tenant restriction applied to every query. */
export type Scope = z.infer<typeof scopeSchema>;

/** rangeSchema is a half-open time window [from, to) in epoch seconds. */
export const rangeSchema = z
  .object({ from: epochSeconds, to: epochSeconds })
  .refine((r) => r.to > r.from, { message: 'to must be after from', path: ['to'] });

/** TimeRange is a half-open window [from, to) in epoch seconds. */
export type TimeRange = z.infer<typeof rangeSchema>;

/** filtersSchema narrows request rows; every field is optional and compared for equality. */
export const filtersSchema = z.object({
  service: label(LIMITS.serviceChars).optional(),
  route: label(LIMITS.routeChars).optional(),
  method: label(16).optional(),
  consumer: label(LIMITS.nameChars).optional(),
  statusClass: z.enum(STATUS_CLASSES).optional(),
});

/** Filters narrows request rows. */
export type Filters = z.infer<typeof filtersSchema>;

/** OVERVIEW_SORTS are the orderings of the RED overview. */
export const OVERVIEW_SORTS = ['p99', 'p95', 'p90', 'p50', 'errors', 'error_rate', 'rate', 'bytes'] as const;

/** overviewQuerySchema asks for RED metrics per service or per route (with method). */
export const overviewQuerySchema = z.object({
  range: rangeSchema,
  filters: filtersSchema,
  groupBy: z.enum(['service', 'route']),
  sort: z.enum(OVERVIEW_SORTS),
  order: z.enum(['desc', 'asc']),
  limit: z.number().int().min(1).max(1000),
  offset: z.number().int().min(0).max(100_000),
  source: z.enum(SOURCES),
});

/** OverviewQuery asks for RED metrics per service or per route. */
export type OverviewQuery = z.infer<typeof overviewQuerySchema>;

/** seriesQuerySchema asks for latency quantiles, error rate and throughput per step. */
export const seriesQuerySchema = z.object({
  range: rangeSchema,
  stepS: z.number().int().min(1).max(86_400),
  filters: filtersSchema,
  quantiles: z.array(z.literal(QUANTILES)).min(1).max(QUANTILES.length),
  source: z.enum(SOURCES),
});

/** SeriesQuery asks for a latency / error / throughput series. */
export type SeriesQuery = z.infer<typeof seriesQuerySchema>;

/** saturationQuerySchema asks for saturation series per proxy instance and per upstream. */
export const saturationQuerySchema = z.object({
  range: rangeSchema,
  stepS: z.number().int().min(1).max(86_400),
  service: label(LIMITS.serviceChars).optional(),
  instance: label(LIMITS.serviceChars).optional(),
  upstream: label(LIMITS.serviceChars).optional(),
  source: z.enum(SOURCES),
});

/** SaturationQuery asks for saturation series. */
export type SaturationQuery = z.infer<typeof saturationQuerySchema>;

/** CONSUMER_SORTS are the orderings of per-consumer usage. */
export const CONSUMER_SORTS = ['rate', 'errors', 'error_rate', 'p99'] as const;

/** consumersQuerySchema asks for usage per API consumer (API-key id or JWT subject). */
export const consumersQuerySchema = z.object({
  range: rangeSchema,
  filters: filtersSchema,
  sort: z.enum(CONSUMER_SORTS),
  order: z.enum(['desc', 'asc']),
  limit: z.number().int().min(1).max(1000),
  offset: z.number().int().min(0).max(100_000),
});

/** ConsumersQuery asks for usage per consumer. */
export type ConsumersQuery = z.infer<typeof consumersQuerySchema>;

/** traceQuerySchema looks one trace up by id. */
export const traceQuerySchema = z.object({ traceId: traceIdSchema });

/** TraceQuery looks one trace up by id. */
export type TraceQuery = z.infer<typeof traceQuerySchema>;

/** recentTracesQuerySchema lists recent requests (with their trace ids) of a service or route. */
export const recentTracesQuerySchema = z.object({
  range: rangeSchema,
  filters: filtersSchema,
  status: z.number().int().min(100).max(599).optional(),
  minDurationMs: z.number().min(0).max(86_400_000).optional(),
  limit: z.number().int().min(1).max(500),
});

/** RecentTracesQuery lists recent traces. */
export type RecentTracesQuery = z.infer<typeof recentTracesQuerySchema>;

/** logCursorSchema is the position after the last row of a log page: (ts_us, id), newest first. */
export const logCursorSchema = z.object({
  tsUs: z.number().int().min(0).max(Number.MAX_SAFE_INTEGER),
  id: z.string().min(1).max(LIMITS.idChars),
});

/** LogCursor is the position after the last row of a log page. */
export type LogCursor = z.infer<typeof logCursorSchema>;

/** logsQuerySchema searches access logs newest first with keyset (cursor) pagination. */
export const logsQuerySchema = z.object({
  range: rangeSchema,
  filters: filtersSchema,
  status: z.number().int().min(100).max(599).optional(),
  errorKind: z.string().min(1).max(64).optional(),
  traceId: traceIdSchema.optional(),
  minDurationMs: z.number().min(0).max(86_400_000).optional(),
  /** Only requests whose (redacted) path starts with this. */
  pathPrefix: z.string().min(1).max(LIMITS.pathChars).optional(),
  limit: z.number().int().min(1).max(1000),
  cursor: logCursorSchema.optional(),
});

/** LogsQuery searches access logs. */
export type LogsQuery = z.infer<typeof logsQuerySchema>;

/** pipelineQuerySchema asks for pipeline health over a window. */
export const pipelineQuerySchema = z.object({ range: rangeSchema });

/** PipelineQuery asks for pipeline health. */
export type PipelineQuery = z.infer<typeof pipelineQuerySchema>;

/**
 * SIGNAL_KINDS are what an alert rule measures per series. The proxy's policy decisions (access
 * logs version 2): `rate_limited` is the share of requests refused with 429 rate_limited;
 * `quota_used` the highest share of a rate limit's quota used, (limit − remaining) / limit, among
 * requests a limit applied to (no data without one); `auth_failures` the share of requests refused
 * as auth_missing, auth_invalid or forbidden; `cache_hit_ratio` (hit + stale) / (hit + miss +
 * stale) among requests with a cache policy (no data without one).
 */
export const SIGNAL_KINDS = [
  'latency_quantile',
  'error_rate',
  'request_rate',
  'absence',
  'saturation',
  'rate_limited',
  'quota_used',
  'auth_failures',
  'cache_hit_ratio',
] as const;

/** SIGNAL_SATURATION_METRICS are the saturation values a rule can watch. */
export const SIGNAL_SATURATION_METRICS = [
  'event_loop_utilization',
  'event_loop_delay_ms',
  'heap_used_ratio',
  'cpu_ratio',
  'producer_buffer_ratio',
  'spool_fill_ratio',
  'upstream_in_flight_ratio',
  'upstream_pool_busy_ratio',
  'targets_unhealthy',
] as const;

/**
 * SIGNAL_DIMENSIONS are the labels a signal can be filtered and grouped by: request signals by
 * tenant, service, route, method and consumer; saturation by tenant, service, instance, upstream
 * (upstream metrics) and target (targets_unhealthy).
 */
export const SIGNAL_DIMENSIONS = [
  'tenant',
  'service',
  'route',
  'method',
  'consumer',
  'instance',
  'upstream',
  'target',
] as const;

/** signalQuerySchema asks for one value per series of an alert rule, over one window. */
export const signalQuerySchema = z.object({
  kind: z.enum(SIGNAL_KINDS),
  quantile: z.literal(QUANTILES).optional(),
  metric: z.enum(SIGNAL_SATURATION_METRICS).optional(),
  range: rangeSchema,
  filters: z.partialRecord(z.enum(SIGNAL_DIMENSIONS), z.string().min(1).max(LIMITS.routeChars)),
  groupBy: z.array(z.enum(SIGNAL_DIMENSIONS)).max(SIGNAL_DIMENSIONS.length),
});

/** SignalQuery asks for one value per series of an alert rule. */
export type SignalQuery = z.infer<typeof signalQuerySchema>;

/** ALERT_STATES_LISTED are the states /v1/alerts can filter on. */
export const ALERT_STATES_LISTED = ['pending', 'firing', 'recovering', 'resolved'] as const;

/** alertsQuerySchema lists current alert series (resolved ones for 15 minutes after resolving). */
export const alertsQuerySchema = z.object({
  state: z.enum(ALERT_STATES_LISTED).optional(),
  ruleId: z.string().min(1).max(128).optional(),
  /** The present, in epoch seconds (the API's clock). */
  now: epochSeconds,
});

/** AlertsQuery lists current alert series. */
export type AlertsQuery = z.infer<typeof alertsQuerySchema>;

/** alertHistoryQuerySchema lists transitions and deliveries, newest first. */
export const alertHistoryQuerySchema = z.object({
  range: rangeSchema,
  ruleId: z.string().min(1).max(128).optional(),
  fingerprint: z
    .string()
    .regex(/^[0-9a-f]{16}$/)
    .optional(),
  limit: z.number().int().min(1).max(1000),
});

/** AlertHistoryQuery lists alert history. */
export type AlertHistoryQuery = z.infer<typeof alertHistoryQuerySchema>;

/** sloSelectorSchema says which requests an SLO counts; every field optional, equality. */
export const sloSelectorSchema = z.object({
  tenant: tenantSchema.optional(),
  service: label(LIMITS.serviceChars).optional(),
  route: label(LIMITS.routeChars).optional(),
  method: label(16).optional(),
  consumer: label(LIMITS.nameChars).optional(),
});

/** SloSelector says which requests an SLO counts. */
export type SloSelector = z.infer<typeof sloSelectorSchema>;

/**
 * sloSliSchema says what counts as a good request. availability: bad = a status in badStatuses
 * (a class like '5xx' or an exact code like 429); statuses in ignoredStatuses count neither as
 * good nor in total (they win over badStatuses). latency: good = duration at most the latency
 * bucket edge at or below thresholdMs (the edge applied is returned, see slo-windows.ts).
 */
export const sloSliSchema = z.discriminatedUnion('kind', [
  z.object({
    kind: z.literal('availability'),
    badStatuses: z
      .array(z.union([z.enum(STATUS_CLASSES), z.number().int().min(100).max(599)]))
      .min(1)
      .default(['5xx']),
    ignoredStatuses: z.array(z.number().int().min(100).max(599)).default([]),
  }),
  z.object({ kind: z.literal('latency'), thresholdMs: z.number().positive().max(3_600_000) }),
]);

/** SloSli says what counts as a good request. */
export type SloSli = z.infer<typeof sloSliSchema>;

/**
 * sloCountsQuerySchema asks for the good and total requests of an SLO over each of a list of
 * half-open windows (they may overlap; all are answered from one scan per data level).
 */
export const sloCountsQuerySchema = z.object({
  selector: sloSelectorSchema,
  sli: sloSliSchema,
  windows: z.array(rangeSchema).min(1).max(512),
});

/** SloCountsQuery asks for an SLO's good and total requests per window. */
export type SloCountsQuery = z.infer<typeof sloCountsQuerySchema>;
