-- The per-event ledger (issue #18). Every raw row carries its identity: the source it was written
-- to first (a proxy's local log, from a batched record's headers) and its sequence number there.
-- A single-event Kafka record has the source `partition:<kafka_partition>` and its offset as
-- sequence; the DEFAULTs give rows stored before this migration that same identity (computed on
-- read, on 18.16 and current servers alike). Ingest writes both columns explicitly: 18.16 fills
-- omitted JSONEachRow fields with zero values, not DEFAULTs.
-- dlq_events.source_index is a rejected event's index within its batched record (NULL: the whole
-- record). 18.16 has no ADD COLUMN IF NOT EXISTS; the runner records this file once.

ALTER TABLE access_logs ADD COLUMN source_id String DEFAULT concat('partition:', toString(kafka_partition)) AFTER kafka_offset;
ALTER TABLE access_logs ADD COLUMN source_seq UInt64 DEFAULT kafka_offset AFTER source_id;
ALTER TABLE spans ADD COLUMN source_id String DEFAULT concat('partition:', toString(kafka_partition)) AFTER kafka_offset;
ALTER TABLE spans ADD COLUMN source_seq UInt64 DEFAULT kafka_offset AFTER source_id;
ALTER TABLE saturation ADD COLUMN source_id String DEFAULT concat('partition:', toString(kafka_partition)) AFTER kafka_offset;
ALTER TABLE saturation ADD COLUMN source_seq UInt64 DEFAULT kafka_offset AFTER source_id;
ALTER TABLE dlq_events ADD COLUMN source_id String DEFAULT concat('partition:', toString(kafka_partition)) AFTER kafka_offset;
ALTER TABLE dlq_events ADD COLUMN source_seq UInt64 DEFAULT kafka_offset AFTER source_id;
ALTER TABLE dlq_events ADD COLUMN source_index Nullable(UInt32) AFTER source_offset;
ALTER TABLE alert_history ADD COLUMN source_id String DEFAULT concat('partition:', toString(kafka_partition)) AFTER kafka_offset;
ALTER TABLE alert_history ADD COLUMN source_seq UInt64 DEFAULT kafka_offset AFTER source_id;
