-- trace id -> time range, span count and services, so a trace lookup reads a few index rows
-- and then only the day partitions of `spans` that the trace touches.

CREATE TABLE IF NOT EXISTS trace_index (
  tenant String,
  trace_id String,
  day Date,
  start_us AggregateFunction(min, UInt64),
  end_us AggregateFunction(max, UInt64),
  span_count AggregateFunction(count),
  services AggregateFunction(groupUniqArray, String)
) ENGINE = AggregatingMergeTree()
PARTITION BY toYYYYMMDD(day)
ORDER BY (tenant, trace_id, day);

CREATE MATERIALIZED VIEW IF NOT EXISTS trace_index_mv TO trace_index AS
SELECT
  tenant,
  trace_id,
  toDate(ts) AS day,
  minState(ts_us) AS start_us,
  maxState(ts_us + duration_us) AS end_us,
  countState() AS span_count,
  groupUniqArrayState(service) AS services
FROM spans
GROUP BY tenant, trace_id, day;
