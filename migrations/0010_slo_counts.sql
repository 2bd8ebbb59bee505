-- Exact SLI counts for SLOs (issue #21): requests per exact status, with and without the
-- consumer, per minute and per hour, and per consumer and latency bucket per hour. A row counts
-- the requests of one key in one facet: 0 = per status over all consumers, 1 = per status of one
-- consumer, 2 = per latency bucket of one consumer (hourly only). `value` is the status (facets 0,
-- 1) or the bucket k holding (1.01^(k-1), 1.01^k] ms, computed as in 0007 (facet 2). Latency over
-- all consumers is route_histogram_1m / _1h (0007). A raw row lands once in every facet, so status
-- and bucket never multiply each other; a minute holds at most routes × statuses × (consumers + 1)
-- rows. Per-consumer buckets are kept per hour only (per minute they would be about as many rows
-- as access_logs); a per-consumer latency SLI reads raw rows for the parts of a window that are
-- not whole hours. `slo_consumer` is the consumer in facets 1 and 2 and '' in facet 0 (its own
-- name: an alias `consumer` over the column `consumer` is cyclic on 18.16). Rows stored before
-- this migration: `tapwire replay --clear`.

CREATE TABLE IF NOT EXISTS slo_counts_1m (
  tenant String,
  facet UInt8,
  slo_consumer String,
  service String,
  route String,
  method String,
  minute DateTime('UTC'),
  value Int16,
  requests UInt64
) ENGINE = SummingMergeTree()
PARTITION BY toYYYYMMDD(minute)
ORDER BY (tenant, facet, slo_consumer, service, route, method, minute, value);

CREATE MATERIALIZED VIEW IF NOT EXISTS slo_counts_1m_mv TO slo_counts_1m AS
SELECT
  tenant,
  tupleElement(f, 1) AS facet,
  tupleElement(f, 2) AS slo_consumer,
  service,
  route,
  method,
  toStartOfMinute(ts) AS minute,
  tupleElement(f, 3) AS value,
  count() AS requests
FROM access_logs
ARRAY JOIN [
  (toUInt8(0), '', toInt16(status)),
  (toUInt8(1), consumer, toInt16(status))
] AS f
GROUP BY tenant, facet, slo_consumer, service, route, method, minute, value;

CREATE TABLE IF NOT EXISTS slo_counts_1h (
  tenant String,
  facet UInt8,
  slo_consumer String,
  service String,
  route String,
  method String,
  hour DateTime('UTC'),
  value Int16,
  requests UInt64
) ENGINE = SummingMergeTree()
PARTITION BY toYYYYMMDD(hour)
ORDER BY (tenant, facet, slo_consumer, service, route, method, hour, value);

CREATE MATERIALIZED VIEW IF NOT EXISTS slo_counts_1h_mv TO slo_counts_1h AS
SELECT
  tenant,
  tupleElement(f, 1) AS facet,
  tupleElement(f, 2) AS slo_consumer,
  service,
  route,
  method,
  toStartOfHour(ts) AS hour,
  tupleElement(f, 3) AS value,
  count() AS requests
FROM access_logs
ARRAY JOIN [
  (toUInt8(0), '', toInt16(status)),
  (toUInt8(1), consumer, toInt16(status)),
  (toUInt8(2), consumer, toInt16(ceil(log(greatest(duration_ms, 0.001)) / log(1.01))))
] AS f
GROUP BY tenant, facet, slo_consumer, service, route, method, hour, value;
