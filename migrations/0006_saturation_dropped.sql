-- Each saturation sample carries its producer's cumulative dropped-event count, so pipeline
-- health can show proxy-side drops next to lag and dead letters. Rows stored before this
-- migration read 0. (18.16 has no ADD COLUMN IF NOT EXISTS; the runner records this file once.)

ALTER TABLE saturation ADD COLUMN producer_dropped_events UInt64 AFTER spool_capacity_bytes;
