-- Raw projections of the event topics. Every column is present in every insert (18.16 fills
-- omitted JSONEachRow fields with zero values, not DEFAULTs). `ts` is the event start in UTC
-- seconds, `ts_us` the same instant in microseconds (no DateTime64 on 18.16).
-- ReplacingMergeTree with the event id last in the sort key collapses re-delivered events;
-- kafka_partition/kafka_offset record where each row came from, so ingest can resume from the
-- sink (the offset ledger) instead of trusting only Kafka's committed offsets.

CREATE TABLE IF NOT EXISTS access_logs (
  tenant String,
  ts DateTime('UTC'),
  ts_us UInt64,
  id String,
  trace_id String,
  span_id String,
  service String,
  upstream String,
  route String,
  method String,
  status UInt16,
  duration_ms Float64,
  upstream_ms Float64,
  bytes_in UInt64,
  bytes_out UInt64,
  consumer String,
  client_address String,
  server_address String,
  user_agent String,
  path String,
  query String,
  error_kind String,
  kafka_partition UInt32,
  kafka_offset UInt64
) ENGINE = ReplacingMergeTree()
PARTITION BY toYYYYMMDD(ts)
ORDER BY (tenant, service, route, ts, id)
SETTINGS index_granularity = 8192;

CREATE TABLE IF NOT EXISTS spans (
  tenant String,
  ts DateTime('UTC'),
  ts_us UInt64,
  id String,
  trace_id String,
  span_id String,
  parent_span_id String,
  name String,
  kind String,
  service String,
  duration_us UInt64,
  status String,
  status_message String,
  attr_keys Array(String),
  attr_values Array(String),
  kafka_partition UInt32,
  kafka_offset UInt64
) ENGINE = ReplacingMergeTree()
PARTITION BY toYYYYMMDD(ts)
ORDER BY (tenant, service, ts, id)
SETTINGS index_granularity = 8192;

CREATE TABLE IF NOT EXISTS saturation (
  tenant String,
  ts DateTime('UTC'),
  ts_us UInt64,
  id String,
  service String,
  instance String,
  interval_ms UInt32,
  upstream_names Array(String),
  upstream_in_flight Array(UInt32),
  upstream_concurrency_limit Array(UInt32),
  upstream_pool_size Array(UInt32),
  upstream_pool_busy Array(UInt32),
  upstream_pool_pending Array(UInt32),
  event_loop_utilization Float64,
  event_loop_delay_ms Float64,
  heap_used_bytes UInt64,
  heap_limit_bytes UInt64,
  rss_bytes UInt64,
  cpu_ratio Float64,
  producer_buffer_events UInt64,
  producer_buffer_capacity UInt64,
  spool_bytes UInt64,
  spool_capacity_bytes UInt64,
  kafka_partition UInt32,
  kafka_offset UInt64
) ENGINE = ReplacingMergeTree()
PARTITION BY toYYYYMMDD(ts)
ORDER BY (tenant, service, instance, ts, id)
SETTINGS index_granularity = 8192;
