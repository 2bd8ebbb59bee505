-- Per-minute saturation rollups: one for each proxy instance's process, one per upstream of each
-- instance (samples carry upstreams as parallel arrays, expanded with ARRAY JOIN).

CREATE TABLE IF NOT EXISTS saturation_1m (
  tenant String,
  service String,
  instance String,
  minute DateTime('UTC'),
  samples AggregateFunction(count),
  event_loop_utilization_avg AggregateFunction(avg, Float64),
  event_loop_utilization_max AggregateFunction(max, Float64),
  event_loop_delay_ms_max AggregateFunction(max, Float64),
  heap_used_bytes_max AggregateFunction(max, UInt64),
  heap_limit_bytes_max AggregateFunction(max, UInt64),
  rss_bytes_max AggregateFunction(max, UInt64),
  cpu_ratio_avg AggregateFunction(avg, Float64),
  producer_buffer_events_max AggregateFunction(max, UInt64),
  producer_buffer_capacity_max AggregateFunction(max, UInt64),
  spool_bytes_max AggregateFunction(max, UInt64),
  spool_capacity_bytes_max AggregateFunction(max, UInt64)
) ENGINE = AggregatingMergeTree()
PARTITION BY toYYYYMMDD(minute)
ORDER BY (tenant, service, instance, minute);

CREATE MATERIALIZED VIEW IF NOT EXISTS saturation_1m_mv TO saturation_1m AS
SELECT
  tenant,
  service,
  instance,
  toStartOfMinute(ts) AS minute,
  countState() AS samples,
  avgState(event_loop_utilization) AS event_loop_utilization_avg,
  maxState(event_loop_utilization) AS event_loop_utilization_max,
  maxState(event_loop_delay_ms) AS event_loop_delay_ms_max,
  maxState(heap_used_bytes) AS heap_used_bytes_max,
  maxState(heap_limit_bytes) AS heap_limit_bytes_max,
  maxState(rss_bytes) AS rss_bytes_max,
  avgState(cpu_ratio) AS cpu_ratio_avg,
  maxState(producer_buffer_events) AS producer_buffer_events_max,
  maxState(producer_buffer_capacity) AS producer_buffer_capacity_max,
  maxState(spool_bytes) AS spool_bytes_max,
  maxState(spool_capacity_bytes) AS spool_capacity_bytes_max
FROM saturation
GROUP BY tenant, service, instance, minute;

CREATE TABLE IF NOT EXISTS upstream_saturation_1m (
  tenant String,
  service String,
  instance String,
  upstream String,
  minute DateTime('UTC'),
  samples AggregateFunction(count),
  in_flight_avg AggregateFunction(avg, UInt32),
  in_flight_max AggregateFunction(max, UInt32),
  concurrency_limit_max AggregateFunction(max, UInt32),
  pool_size_max AggregateFunction(max, UInt32),
  pool_busy_avg AggregateFunction(avg, UInt32),
  pool_busy_max AggregateFunction(max, UInt32),
  pool_pending_max AggregateFunction(max, UInt32)
) ENGINE = AggregatingMergeTree()
PARTITION BY toYYYYMMDD(minute)
ORDER BY (tenant, service, instance, upstream, minute);

CREATE MATERIALIZED VIEW IF NOT EXISTS upstream_saturation_1m_mv TO upstream_saturation_1m AS
SELECT
  tenant,
  service,
  instance,
  upstream,
  toStartOfMinute(ts) AS minute,
  countState() AS samples,
  avgState(one_in_flight) AS in_flight_avg,
  maxState(one_in_flight) AS in_flight_max,
  maxState(one_limit) AS concurrency_limit_max,
  maxState(one_pool_size) AS pool_size_max,
  avgState(one_pool_busy) AS pool_busy_avg,
  maxState(one_pool_busy) AS pool_busy_max,
  maxState(one_pool_pending) AS pool_pending_max
FROM saturation
-- Aliases must not reuse a column name, and `inf` would parse as infinity on 18.16.
ARRAY JOIN
  upstream_names AS upstream,
  upstream_in_flight AS one_in_flight,
  upstream_concurrency_limit AS one_limit,
  upstream_pool_size AS one_pool_size,
  upstream_pool_busy AS one_pool_busy,
  upstream_pool_pending AS one_pool_pending
GROUP BY tenant, service, instance, upstream, minute;
