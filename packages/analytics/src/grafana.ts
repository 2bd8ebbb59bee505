import { HISTOGRAM_WITH_SQL, quantileOfHistogram } from './histogram.js';

/**
 * The SQL of the Grafana dashboards in dashboards/, for the official ClickHouse datasource
 * (grafana-clickhouse-datasource). It lives here because this package writes every analytical
 * query. Only macros and variables that work on ClickHouse 18.16 and 24.x are used:
 * `$__timeFilter(col)`, `$__fromTime`, `$__toTime`, `$__interval_s`, and `${var:singlequote}`
 * (a variable's "All" value is `__all`). Time series return `time` first; series labels are
 * string columns.
 */

const ALL = "'__all'";

/** filter matches a column against a single-value dashboard variable, "All" matching everything. */
function filter(column: string, variable: string): string {
  return `(\${${variable}:singlequote} = ${ALL} OR ${column} = \${${variable}:singlequote})`;
}

const bucket = (column: string) => `toDateTime(intDiv(toUInt32(${column}), $__interval_s) * $__interval_s)`;

/** histogramQuantiles builds a time series of p50/p90/p99 per `series` column from a histogram table. */
function histogramQuantiles(table: string, timeColumn: string, where: string, series: string): string {
  return `WITH ${HISTOGRAM_WITH_SQL}
SELECT time, ${series}, ${quantileOfHistogram(0.5)} AS p50, ${quantileOfHistogram(0.9)} AS p90, ${quantileOfHistogram(0.99)} AS p99
FROM (
  SELECT time, ${series}, arraySort(groupArray((bucket, c))) AS pairs,
    (arrayMap(p -> tupleElement(p, 1), pairs), arrayMap(p -> tupleElement(p, 2), pairs)) AS h
  FROM (
    SELECT ${bucket(timeColumn)} AS time, ${series}, bucket, sum(requests) AS c
    FROM ${table}
    WHERE $__timeFilter(${timeColumn}) AND ${where}
    GROUP BY time, ${series}, bucket
  )
  GROUP BY time, ${series}
)
ORDER BY time`;
}

const tenantService = `${filter('tenant', 'tenant')} AND ${filter('service', 'service')}`;
const routeFilter = `${tenantService} AND ${filter('route', 'route')}`;

/*
 * The SLO dashboard. Grafana cannot read the alerting file, so the SLO comes from variables the
 * user sets to its values: the selector (tenant, service, route, method, consumer; "All" leaves a
 * field unpinned), `sli`, `objective` (percent), `window` (seconds), `threshold_ms`,
 * `bad_statuses` / `ignored_statuses` (comma-separated classes such as 5xx and codes such as 503)
 * and the burn-rate factors drawn as thresholds. Counts are exact, as the Store's sloCounts: a
 * window [end − w, end) ends at a whole minute and is summed from its whole hours and the minutes
 * left at its edges — statuses from slo_counts_1h / _1m, latency buckets over all consumers from
 * route_histogram_1h / _1m, a consumer's latency buckets from slo_counts_1h and, as there is no
 * per-minute rollup of those, its edge minutes from access_logs (migrations/0007, 0010).
 */

const sloVar = (name: string) => `\${${name}:singlequote}`;
const SLO_LATENCY = `${sloVar('sli')} = 'latency'`;
const SLO_BY_CONSUMER = `${sloVar('consumer')} != ${ALL}`;
const SLO_OBJECTIVE = `toFloat64OrZero(${sloVar('objective')})`;
const sloList = (name: string) => `splitByChar(',', replaceRegexpAll(lower(${sloVar(name)}), ' ', ''))`;
// The latency bucket edge the threshold is rounded down to, as latencyEdge (slo-windows.ts) does.
const SLO_MAX_BUCKET = `toInt32(floor(log(toFloat64OrZero(${sloVar('threshold_ms')})) / log(1.01) + 1e-9))`;
const SLO_BUCKET_RAW = 'toInt32(ceil(log(greatest(duration_ms, 0.001)) / log(1.01)))';
/** sloGood says whether a rollup row's status or latency bucket (`column`) is good for the SLI. */
const sloGood = (column: string) =>
  `if(${SLO_LATENCY}, ${column} <= ${SLO_MAX_BUCKET}, NOT (has(${sloList('bad_statuses')}, concat(toString(intDiv(${column}, 100)), 'xx')) OR has(${sloList('bad_statuses')}, toString(${column}))))`;
const SLO_NOT_IGNORED = `(${SLO_LATENCY} OR NOT has(${sloList('ignored_statuses')}, toString(value)))`;
/** SLO_FACET is the slo_counts facet of the SLI (migrations/0010): 0 status, 1 a consumer's status, 2 a consumer's latency buckets (hourly). */
const SLO_FACET = `if(${SLO_BY_CONSUMER}, if(${SLO_LATENCY}, 2, 1), 0)`;
const SLO_SELECTOR = `${filter('tenant', 'tenant')} AND ${filter('service', 'service')} AND ${filter('route', 'route')} AND ${filter('method', 'method')}`;
/** SLO_END is where the windows end: the dashboard's end, floored to the minute (epoch seconds). */
const SLO_END = 'toInt64(intDiv(toUInt32($__toTime), 60) * 60)';
const SLO_STEP = 'toInt64(greatest(60, intDiv($__interval_s + 59, 60) * 60))';
/** SLO_STEP_ENDS are the ends of the series' steps: every whole-minute step back from SLO_END to the dashboard's start (at most 1500). */
const SLO_STEP_ENDS = `arrayMap(i -> ${SLO_END} - i * ${SLO_STEP}, range(toUInt64(least(1500, greatest(0, intDiv(${SLO_END} - toInt64(toUInt32($__fromTime)), ${SLO_STEP})) + 1))))`;
const SLO_WINDOW = `toInt64(toUInt32OrZero(${sloVar('window')}))`;
/** SLO_BURN_WINDOWS are the burn-rate windows reported (as REPORT_WINDOWS_MS), seconds and label. */
const SLO_BURN_WINDOWS = [
  [300, '5m'],
  [1800, '30m'],
  [3600, '1h'],
  [21600, '6h'],
  [86400, '1d'],
  [259200, '3d'],
] as const;

/**
 * sloCounts sums good and total requests of the SLO per window `w` (seconds) ending at `at`, for
 * every window of `windows` and end of `ends` (a ClickHouse array of epoch seconds, newest first).
 * Minute rows are read only around the window edges (an hour either side of each start and end).
 */
function sloCounts(windows: readonly string[], ends: string): string {
  const pairs = `arrayMap(i -> (toInt64([${windows.join(', ')}][i % ${windows.length} + 1]), toInt64(${ends}[intDiv(i, ${windows.length}) + 1])), range(toUInt64(length(${ends}) * ${windows.length})))`;
  const first = `arrayReduce('min', ${ends})`;
  const last = `${ends}[1]`;
  const near = (col: string) =>
    [...windows, '0']
      .map(
        (w) =>
          `(${col} >= toDateTime(${first} - ${w} - 3600) AND ${col} < toDateTime(${last} - ${w} + 3600))`,
      )
      .join(' OR ');
  const span = (col: string) =>
    `${col} >= toDateTime(${first} - ${windows.map((w) => `${w}`).reduce((a, b) => `greatest(${a}, ${b})`)} - 3600) AND ${col} < toDateTime(${last})`;
  const counts = (table: string, col: string, unit: number, where: string) =>
    `SELECT toInt64(toUInt32(${col})) AS t, toInt64(${unit}) AS unit, sum(if(${sloGood('value')}, requests, 0)) AS good, sum(requests) AS total
    FROM ${table}
    WHERE ${where} AND facet = ${SLO_FACET} AND slo_consumer = if(${SLO_BY_CONSUMER}, ${sloVar('consumer')}, '') AND ${SLO_SELECTOR} AND ${SLO_NOT_IGNORED} AND ${span(col)}
    GROUP BY t`;
  const histogram = (table: string, col: string, unit: number, where: string) =>
    `SELECT toInt64(toUInt32(${col})) AS t, toInt64(${unit}) AS unit, sum(if(bucket <= ${SLO_MAX_BUCKET}, requests, 0)) AS good, sum(requests) AS total
    FROM ${table}
    WHERE ${where} AND ${SLO_LATENCY} AND NOT ${SLO_BY_CONSUMER} AND ${SLO_SELECTOR} AND ${span(col)}
    GROUP BY t`;
  // A row counts in window (w, at) when it is a whole hour of the window's whole hours, or a
  // minute of [at − w, at) outside them. 18.16 drops a subquery's columns that only a lambda
  // uses, or that the query above does not read: unit picks the lambda, and the outer WHERE
  // reads t and unit to keep them.
  const w = 'tupleElement(p, 1)';
  const at = 'tupleElement(p, 2)';
  const inHours = `t >= intDiv(${at} - ${w} + 3599, 3600) * 3600 AND t < intDiv(${at}, 3600) * 3600`;
  const inEdges = `t >= ${at} - ${w} AND t < ${at} AND NOT (${inHours})`;
  return `SELECT tupleElement(p, 1) AS w, tupleElement(p, 2) AS at, sum(good) AS good, sum(total) AS total
FROM (
  SELECT t, unit, good, total, if(unit = 3600, arrayFilter(p -> ${inHours}, ${pairs}), arrayFilter(p -> ${inEdges}, ${pairs})) AS ps
  FROM (
    ${counts('slo_counts_1h', 'hour', 3600, `(${SLO_BY_CONSUMER} OR NOT ${SLO_LATENCY})`)}
    UNION ALL
    ${counts('slo_counts_1m', 'minute', 60, `NOT ${SLO_LATENCY} AND (${near('minute')})`)}
    UNION ALL
    ${histogram('route_histogram_1h', 'hour', 3600, '1')}
    UNION ALL
    ${histogram('route_histogram_1m', 'minute', 60, `(${near('minute')})`)}
    UNION ALL
    SELECT toInt64(toUInt32(toStartOfMinute(ts))) AS t, toInt64(60) AS unit, sum(if(${SLO_BUCKET_RAW} <= ${SLO_MAX_BUCKET}, 1, 0)) AS good, count() AS total
    FROM access_logs
    WHERE ${SLO_BY_CONSUMER} AND ${SLO_LATENCY} AND consumer = ${sloVar('consumer')} AND ${SLO_SELECTOR} AND ${span('ts')} AND (${near('ts')})
    GROUP BY t
  )
)
ARRAY JOIN ps AS p
WHERE t >= 0 AND unit > 0
GROUP BY w, at`;
}

/** sloBurn is the burn rate of good/total against the objective: (bad/total)/(1 − objective); 0 without traffic. */
const sloBurn = `if(total = 0, 0, (total - good) / total / (1 - ${SLO_OBJECTIVE} / 100))`;
/** sloRemaining is the error budget remaining in percent, as errorBudgetOf: 100 without traffic, negative once overspent. */
const sloRemaining = `if(total = 0, 100, 100 * (1 - (total - good) / (total * (1 - ${SLO_OBJECTIVE} / 100))))`;
const burnLabel = `multiIf(${SLO_BURN_WINDOWS.map(([s, l]) => `w = ${s}, '${l}'`).join(', ')}, toString(w))`;
const sloThresholds = (ends: string) =>
  `SELECT toDateTime(e) AS time, tupleElement(x, 1) AS series, tupleElement(x, 2) AS burn_rate
  FROM (SELECT arrayJoin(${ends}) AS e)
  ARRAY JOIN [('page: 1h and 5m above', toFloat64OrZero(${sloVar('page_1h_5m')})), ('page: 6h and 30m above', toFloat64OrZero(${sloVar('page_6h_30m')})), ('ticket: 3d and 6h above', toFloat64OrZero(${sloVar('ticket_3d_6h')}))] AS x`;
const burnSeconds = SLO_BURN_WINDOWS.map(([s]) => String(s));

/** SLO_SQL holds the SLO dashboard's panel queries. */
const SLO_SQL = {
  sloSli: `SELECT 100 * good / total AS sli FROM (${sloCounts([SLO_WINDOW], `[${SLO_END}]`)})`,
  sloBudgetRemaining: `SELECT ${sloRemaining} AS budget_remaining FROM (${sloCounts([SLO_WINDOW], `[${SLO_END}]`)})`,
  sloBurnRatesNow: `SELECT ${SLO_BURN_WINDOWS.map(([s, l]) => `sumIf(${sloBurn}, w = ${s}) AS \`${l}\``).join(', ')}
FROM (${sloCounts(burnSeconds, `[${SLO_END}]`)})`,
  sloBudgetSeries: `SELECT toDateTime(at) AS time, ${sloRemaining} AS budget_remaining
FROM (${sloCounts([SLO_WINDOW], SLO_STEP_ENDS)})
ORDER BY time`,
  sloSliSeries: `SELECT toDateTime(at) AS time, 100 * good / total AS sli
FROM (${sloCounts([SLO_WINDOW], SLO_STEP_ENDS)})
WHERE total > 0
ORDER BY time`,
  sloBurnSeries: `SELECT time, series, burn_rate FROM (
  SELECT toDateTime(at) AS time, ${burnLabel} AS series, ${sloBurn} AS burn_rate
  FROM (${sloCounts(burnSeconds, SLO_STEP_ENDS)})
  UNION ALL
  ${sloThresholds(SLO_STEP_ENDS)}
)
ORDER BY time, series`,
} as const;

/** GRAFANA_SQL holds every panel's and variable's query, by name. */
export const GRAFANA_SQL = {
  // Variables.
  varTenant: 'SELECT DISTINCT tenant FROM route_histogram_1h WHERE $__timeFilter(hour) ORDER BY tenant',
  varService: `SELECT DISTINCT service FROM route_histogram_1h WHERE $__timeFilter(hour) AND ${filter('tenant', 'tenant')} ORDER BY service`,
  varRoute: `SELECT DISTINCT route FROM route_histogram_1h WHERE $__timeFilter(hour) AND ${tenantService} ORDER BY route`,
  varConsumer: `SELECT DISTINCT consumer FROM access_logs WHERE $__timeFilter(ts) AND ${tenantService} AND consumer != '' ORDER BY consumer LIMIT 1000`,

  // API overview.
  overviewRps: `SELECT ${bucket('minute')} AS time, service, sum(requests) / $__interval_s AS rps
FROM route_histogram_1m WHERE $__timeFilter(minute) AND ${tenantService}
GROUP BY time, service ORDER BY time`,
  overviewErrorRate: `SELECT ${bucket('minute')} AS time, service, sum(errors_5xx) / sum(requests) AS error_rate_5xx
FROM route_histogram_1m WHERE $__timeFilter(minute) AND ${tenantService}
GROUP BY time, service ORDER BY time`,
  overviewLatency: histogramQuantiles('route_histogram_1m', 'minute', tenantService, 'service'),
  overviewTopRoutes: `SELECT service, route, method, sum(requests) AS total_requests,
  sum(errors_5xx) / total_requests AS error_rate_5xx, sum(duration_ms_sum) / total_requests AS avg_ms
FROM route_histogram_1h WHERE $__timeFilter(hour) AND ${tenantService}
GROUP BY service, route, method ORDER BY total_requests DESC LIMIT 50`,

  // Route drill-down.
  routeLatency: histogramQuantiles('route_histogram_1m', 'minute', routeFilter, 'route'),
  routeRps: `SELECT ${bucket('minute')} AS time, method, sum(requests) / $__interval_s AS rps
FROM route_histogram_1m WHERE $__timeFilter(minute) AND ${routeFilter}
GROUP BY time, method ORDER BY time`,
  routeStatusClasses: `SELECT ${bucket('ts')} AS time, concat(toString(intDiv(status, 100)), 'xx') AS class, count() / $__interval_s AS rps
FROM access_logs WHERE $__timeFilter(ts) AND ${routeFilter} AND ${filter('consumer', 'consumer')}
GROUP BY time, class ORDER BY time`,
  routeSlowest: `SELECT ts AS time, trace_id, method, status, duration_ms, consumer, error_kind
FROM access_logs WHERE $__timeFilter(ts) AND ${routeFilter} AND ${filter('consumer', 'consumer')} AND trace_id != ''
ORDER BY duration_ms DESC LIMIT 20`,

  // The trace panel: one trace's spans across services (the proxy's and apps' OTLP spans), in the
  // ClickHouse plugin's trace format (times in ms). With no trace_id it shows the slowest request's
  // trace of the route. Tags, service tags and logs need Map or named tuples, which 18.16 lacks:
  // the span's attributes, resource and events are in GET /v1/traces/{id}.
  routeTrace: `SELECT trace_id AS traceID, span_id AS spanID, parent_span_id AS parentSpanID, service AS serviceName,
  name AS operationName, ts_us / 1000 AS startTime, duration_us / 1000 AS duration, kind, status AS statusCode,
  status_message AS statusMessage, scope_name AS instrumentationLibraryName, scope_version AS instrumentationLibraryVersion
FROM spans
WHERE $__timeFilter(ts) AND ${filter('tenant', 'tenant')} AND trace_id = if(\${trace_id:singlequote} != '', \${trace_id:singlequote}, (
  SELECT argMax(trace_id, duration_us) FROM spans
  WHERE $__timeFilter(ts) AND kind = 'SERVER' AND ${tenantService} AND ${filter("attr_values[indexOf(attr_keys, 'http.route')]", 'route')}))
ORDER BY ts_us, span_id LIMIT 1 BY id LIMIT 1000`,

  // Saturation.
  saturationEventLoop: `SELECT ${bucket('minute')} AS time, instance, avgMerge(event_loop_utilization_avg) AS utilization
FROM saturation_1m WHERE $__timeFilter(minute) AND ${tenantService}
GROUP BY time, instance ORDER BY time`,
  saturationHeap: `SELECT ${bucket('minute')} AS time, instance, maxMerge(heap_used_bytes_max) AS heap_used
FROM saturation_1m WHERE $__timeFilter(minute) AND ${tenantService}
GROUP BY time, instance ORDER BY time`,
  saturationUpstreams: `SELECT ${bucket('minute')} AS time, concat(instance, ' ', upstream) AS upstream,
  maxMerge(in_flight_max) / greatest(maxMerge(concurrency_limit_max), 1) AS in_flight_ratio
FROM upstream_saturation_1m WHERE $__timeFilter(minute) AND ${tenantService}
GROUP BY time, upstream ORDER BY time`,

  // A load-balanced upstream's targets (saturation samples, migrations/0012): each target's state
  // in the step's last sample.
  saturationTargets: `SELECT ${bucket('ts')} AS time, concat(instance, ' ', upstream, ' ', one_target) AS series,
  argMax(one_state, ts_us) AS state
FROM saturation ARRAY JOIN target_upstreams AS upstream, target_addresses AS one_target, target_states AS one_state
WHERE $__timeFilter(ts) AND ${tenantService}
GROUP BY time, series ORDER BY time`,
  saturationTargetsUnhealthy: `SELECT time, upstream, max(bad) AS targets_unhealthy FROM (
  SELECT ${bucket('ts')} AS time, upstream, id, sum(toUInt64(one_state != 'healthy')) AS bad
  FROM saturation ARRAY JOIN target_upstreams AS upstream, target_states AS one_state
  WHERE $__timeFilter(ts) AND ${tenantService}
  GROUP BY time, upstream, id)
GROUP BY time, upstream ORDER BY time`,

  // The proxy's policy decisions (access logs version 2; per route from policy_stats_1m).
  policyCacheHitRatio: `SELECT ${bucket('minute')} AS time, route,
  (sum(cache_hits) + sum(cache_stale)) / (sum(cache_hits) + sum(cache_misses) + sum(cache_stale)) AS cache_hit_ratio
FROM policy_stats_1m WHERE $__timeFilter(minute) AND ${routeFilter}
GROUP BY time, route HAVING sum(cache_hits) + sum(cache_misses) + sum(cache_stale) > 0 ORDER BY time`,
  policyAuthFailures: `SELECT ${bucket('minute')} AS time, tupleElement(k, 1) AS kind, sum(tupleElement(k, 2)) AS requests
FROM policy_stats_1m
ARRAY JOIN [('auth_missing', auth_missing), ('auth_invalid', auth_invalid), ('forbidden', forbidden)] AS k
WHERE $__timeFilter(minute) AND ${routeFilter}
GROUP BY time, kind ORDER BY time`,
  policyRateLimited: `SELECT ${bucket('ts')} AS time, consumer, count() AS rate_limited
FROM access_logs WHERE $__timeFilter(ts) AND ${routeFilter} AND error_kind = 'rate_limited'
GROUP BY time, consumer ORDER BY time`,
  policyQuotaUse: `SELECT consumer, max(ratelimit_limit) AS quota_limit,
  max(if(ratelimit_limit > 0, (toFloat64(ratelimit_limit) - ratelimit_remaining) / ratelimit_limit, 0)) AS quota_used_peak,
  sum(toUInt64(error_kind = 'rate_limited')) AS rate_limited, count() AS requests
FROM access_logs WHERE $__timeFilter(ts) AND ${routeFilter} AND consumer != ''
GROUP BY consumer HAVING max(ratelimit_limit) > 0 ORDER BY quota_used_peak DESC, rate_limited DESC LIMIT 50`,

  // Alerts.
  alertsTimeline: `SELECT ts AS time, concat(rule_id, ' ', fingerprint) AS series, state
FROM alert_history WHERE $__timeFilter(ts) AND receiver = '' AND ${filter('tenant', 'tenant')}
ORDER BY time`,
  alertsNotifications: `SELECT ${bucket('ts')} AS time, receiver, count() AS notifications
FROM alert_history WHERE $__timeFilter(ts) AND receiver != '' AND ${filter('tenant', 'tenant')}
GROUP BY time, receiver ORDER BY time`,

  // Pipeline health.
  pipelineLag: `SELECT ${bucket('ts')} AS time, topic, max(lag) AS lag
FROM consumer_lag WHERE $__timeFilter(ts)
GROUP BY time, topic ORDER BY time`,
  pipelineDlq: `SELECT ${bucket('ts')} AS time, source_topic, count() AS dead_letters
FROM dlq_events WHERE $__timeFilter(ts)
GROUP BY time, source_topic ORDER BY time`,
  pipelineDrops: `SELECT ${bucket('ts')} AS time, instance, max(producer_dropped_events) - min(producer_dropped_events) AS dropped
FROM saturation WHERE $__timeFilter(ts) AND ${filter('tenant', 'tenant')}
GROUP BY time, instance ORDER BY time`,
  pipelineSpool: `SELECT ${bucket('ts')} AS time, instance, max(spool_bytes / greatest(spool_capacity_bytes, 1)) AS spool_fill
FROM saturation WHERE $__timeFilter(ts) AND ${filter('tenant', 'tenant')}
GROUP BY time, instance ORDER BY time`,

  // SLO (the SLO's selector variables read the SLO counts).
  varSloMethod: `SELECT DISTINCT method FROM slo_counts_1h WHERE $__timeFilter(hour) AND ${routeFilter} AND facet = 0 ORDER BY method`,
  varSloConsumer: `SELECT DISTINCT slo_consumer FROM slo_counts_1h WHERE $__timeFilter(hour) AND ${routeFilter} AND facet = 1 ORDER BY slo_consumer LIMIT 1000`,
  ...SLO_SQL,
} as const;

/** GrafanaQueryName names one dashboard query. */
export type GrafanaQueryName = keyof typeof GRAFANA_SQL;
