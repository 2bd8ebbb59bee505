import { HISTOGRAM_WITH_SQL, quantileOfHistogram } from './histogram.js';

/**
 * The SQL of the Grafana dashboards in dashboards/, for the official ClickHouse datasource
 * (grafana-clickhouse-datasource). It lives here because this package writes every analytical
 * query. Only macros and variables that work on ClickHouse 18.16 and 24.x are used:
 * `$__timeFilter(col)`, `$__interval_s`, and `${var:singlequote}` (a variable's "All" value is
 * `__all`). Time series return `time` first; series labels are string columns.
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
} as const;

/** GrafanaQueryName names one dashboard query. */
export type GrafanaQueryName = keyof typeof GRAFANA_SQL;
