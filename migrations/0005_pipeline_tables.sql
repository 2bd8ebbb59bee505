-- Pipeline health: dead-lettered events (projected from tapwire.dlq.v1), consumer lag samples,
-- and the retention job's runs. Dashboards and the API read these; nothing here is derived twice.

CREATE TABLE IF NOT EXISTS dlq_events (
  tenant String,
  ts DateTime('UTC'),
  ts_us UInt64,
  id String,
  source_topic String,
  source_partition UInt32,
  source_offset UInt64,
  reason String,
  raw_base64 String,
  consumer_group String,
  kafka_partition UInt32,
  kafka_offset UInt64
) ENGINE = ReplacingMergeTree()
PARTITION BY toYYYYMMDD(ts)
ORDER BY (tenant, source_topic, ts, id);

CREATE TABLE IF NOT EXISTS consumer_lag (
  ts DateTime('UTC'),
  consumer_group String,
  topic String,
  partition UInt32,
  high_watermark UInt64,
  consumed UInt64,
  lag UInt64,
  instance String
) ENGINE = MergeTree()
PARTITION BY toYYYYMMDD(ts)
ORDER BY (consumer_group, topic, partition, ts);

CREATE TABLE IF NOT EXISTS retention_runs (
  ts DateTime('UTC'),
  table_name String,
  retention_days UInt32,
  dropped_partitions Array(String),
  error String,
  instance String
) ENGINE = MergeTree()
PARTITION BY toYYYYMM(ts)
ORDER BY (table_name, ts);
