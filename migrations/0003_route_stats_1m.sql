-- Per-minute RED rollup of access logs. Error classes are sums of 0/1 flags (countIfState cannot
-- be merged with countMerge). Latency keeps a t-digest state; -Merge may ask for any level.

CREATE TABLE IF NOT EXISTS route_stats_1m (
  tenant String,
  service String,
  route String,
  method String,
  minute DateTime('UTC'),
  requests AggregateFunction(count),
  errors_5xx AggregateFunction(sum, UInt64),
  errors_4xx AggregateFunction(sum, UInt64),
  latency_ms AggregateFunction(quantilesTDigest(0.5, 0.9, 0.95, 0.99), Float64),
  duration_ms_sum AggregateFunction(sum, Float64),
  duration_ms_max AggregateFunction(max, Float64),
  upstream_ms_sum AggregateFunction(sum, Float64),
  bytes_in AggregateFunction(sum, UInt64),
  bytes_out AggregateFunction(sum, UInt64)
) ENGINE = AggregatingMergeTree()
PARTITION BY toYYYYMMDD(minute)
ORDER BY (tenant, service, route, method, minute);

CREATE MATERIALIZED VIEW IF NOT EXISTS route_stats_1m_mv TO route_stats_1m AS
SELECT
  tenant,
  service,
  route,
  method,
  toStartOfMinute(ts) AS minute,
  countState() AS requests,
  sumState(toUInt64(status >= 500)) AS errors_5xx,
  sumState(toUInt64(status >= 400 AND status < 500)) AS errors_4xx,
  quantilesTDigestState(0.5, 0.9, 0.95, 0.99)(duration_ms) AS latency_ms,
  sumState(duration_ms) AS duration_ms_sum,
  maxState(duration_ms) AS duration_ms_max,
  sumState(upstream_ms) AS upstream_ms_sum,
  sumState(bytes_in) AS bytes_in,
  sumState(bytes_out) AS bytes_out
FROM access_logs
GROUP BY tenant, service, route, method, minute;
