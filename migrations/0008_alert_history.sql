-- Alert history: every transition and every delivered notification of the alerter, projected by
-- ingest from the compacted tapwire.alert-state.v1 topic. Delivery records have a receiver; state
-- records do not. Times are epoch microseconds (0 = not set).

CREATE TABLE IF NOT EXISTS alert_history (
  tenant String,
  ts DateTime('UTC'),
  ts_us UInt64,
  id String,
  rule_id String,
  fingerprint String,
  label_keys Array(String),
  label_values Array(String),
  state String,
  value Float64,
  has_value UInt8,
  threshold Float64,
  since_us UInt64,
  active_at_us UInt64,
  fired_at_us UInt64,
  last_notified_us UInt64,
  receiver String,
  kafka_partition UInt32,
  kafka_offset UInt64
) ENGINE = ReplacingMergeTree()
PARTITION BY toYYYYMMDD(ts)
ORDER BY (tenant, rule_id, ts, id);
