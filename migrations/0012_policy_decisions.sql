-- The proxy's policy decisions (issue #23): access logs version 2 carry what the response cache
-- did (`cache`: '' without a cache policy, hit, miss, bypass, stale), the upstream target forwarded
-- to (host:port, '' when none), the retries on other targets, and the rate limit that applied (its
-- quota per window and what was left after the request; 0 and 0 when none applied). Saturation
-- samples carry every target of every load-balanced upstream as parallel arrays, like upstreams.
-- Rows stored before this migration read '' and 0 (no policy decided anything) and empty arrays.
-- 18.16 has no ADD COLUMN IF NOT EXISTS; the runner records this file once.

ALTER TABLE access_logs ADD COLUMN cache String AFTER error_kind;
ALTER TABLE access_logs ADD COLUMN target String AFTER cache;
ALTER TABLE access_logs ADD COLUMN retries UInt8 AFTER target;
ALTER TABLE access_logs ADD COLUMN ratelimit_limit UInt32 AFTER retries;
ALTER TABLE access_logs ADD COLUMN ratelimit_remaining UInt32 AFTER ratelimit_limit;

ALTER TABLE saturation ADD COLUMN target_upstreams Array(String) AFTER upstream_pool_pending;
ALTER TABLE saturation ADD COLUMN target_addresses Array(String) AFTER target_upstreams;
ALTER TABLE saturation ADD COLUMN target_states Array(String) AFTER target_addresses;
ALTER TABLE saturation ADD COLUMN target_in_flight Array(UInt32) AFTER target_states;
ALTER TABLE saturation ADD COLUMN target_consecutive_failures Array(UInt32) AFTER target_in_flight;

-- Policy decisions per route and minute or hour, beside route_histogram_1m / _1h (0007), so the
-- overview reads them from the same level as its RED figures. Plain counts, summed on merge.
-- `cache_*` count requests by what the cache did (a request without a cache policy is in none);
-- `auth_*`, `forbidden`, `rate_limited` and `no_healthy_target` by error kind; `retries` sums
-- the retries. Rows stored before this migration are not in it: `tapwire replay --clear`.

CREATE TABLE IF NOT EXISTS policy_stats_1m (
  tenant String,
  service String,
  route String,
  method String,
  minute DateTime('UTC'),
  requests UInt64,
  cache_hits UInt64,
  cache_misses UInt64,
  cache_stale UInt64,
  cache_bypass UInt64,
  auth_missing UInt64,
  auth_invalid UInt64,
  forbidden UInt64,
  rate_limited UInt64,
  no_healthy_target UInt64,
  retries UInt64
) ENGINE = SummingMergeTree()
PARTITION BY toYYYYMMDD(minute)
ORDER BY (tenant, service, route, method, minute);

CREATE MATERIALIZED VIEW IF NOT EXISTS policy_stats_1m_mv TO policy_stats_1m AS
SELECT
  tenant,
  service,
  route,
  method,
  toStartOfMinute(ts) AS minute,
  count() AS requests,
  sum(toUInt64(cache = 'hit')) AS cache_hits,
  sum(toUInt64(cache = 'miss')) AS cache_misses,
  sum(toUInt64(cache = 'stale')) AS cache_stale,
  sum(toUInt64(cache = 'bypass')) AS cache_bypass,
  sum(toUInt64(error_kind = 'auth_missing')) AS auth_missing,
  sum(toUInt64(error_kind = 'auth_invalid')) AS auth_invalid,
  sum(toUInt64(error_kind = 'forbidden')) AS forbidden,
  sum(toUInt64(error_kind = 'rate_limited')) AS rate_limited,
  sum(toUInt64(error_kind = 'no_healthy_target')) AS no_healthy_target,
  sum(toUInt64(retries)) AS retries
FROM access_logs
GROUP BY tenant, service, route, method, minute;

CREATE TABLE IF NOT EXISTS policy_stats_1h (
  tenant String,
  service String,
  route String,
  method String,
  hour DateTime('UTC'),
  requests UInt64,
  cache_hits UInt64,
  cache_misses UInt64,
  cache_stale UInt64,
  cache_bypass UInt64,
  auth_missing UInt64,
  auth_invalid UInt64,
  forbidden UInt64,
  rate_limited UInt64,
  no_healthy_target UInt64,
  retries UInt64
) ENGINE = SummingMergeTree()
PARTITION BY toYYYYMMDD(hour)
ORDER BY (tenant, service, route, method, hour);

CREATE MATERIALIZED VIEW IF NOT EXISTS policy_stats_1h_mv TO policy_stats_1h AS
SELECT
  tenant,
  service,
  route,
  method,
  toStartOfHour(ts) AS hour,
  count() AS requests,
  sum(toUInt64(cache = 'hit')) AS cache_hits,
  sum(toUInt64(cache = 'miss')) AS cache_misses,
  sum(toUInt64(cache = 'stale')) AS cache_stale,
  sum(toUInt64(cache = 'bypass')) AS cache_bypass,
  sum(toUInt64(error_kind = 'auth_missing')) AS auth_missing,
  sum(toUInt64(error_kind = 'auth_invalid')) AS auth_invalid,
  sum(toUInt64(error_kind = 'forbidden')) AS forbidden,
  sum(toUInt64(error_kind = 'rate_limited')) AS rate_limited,
  sum(toUInt64(error_kind = 'no_healthy_target')) AS no_healthy_target,
  sum(toUInt64(retries)) AS retries
FROM access_logs
GROUP BY tenant, service, route, method, hour;
