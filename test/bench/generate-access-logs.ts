import { type ClickHouse, raw, sql } from '@tapwire/clickhouse';

/** STATUS_SQL is the status mix of the generated rows: 5% 503, 5% 404, the rest 200. */
export const STATUS_SQL =
  'toUInt16(multiIf(cityHash64(number, 5) % 100 < 5, 503, cityHash64(number, 5) % 100 < 10, 404, 200))';

/**
 * generateAccessLogs writes `rows` access-log rows spread evenly over [start, start + spanS) inside
 * ClickHouse (INSERT … SELECT FROM numbers(), 1M rows per statement), so the materialized views
 * fill the rollups as ingest would: ten services × five routes, lognormal latency (median
 * 20-200 ms by route), 200 consumers, one POST in seven, statuses from `statusSql`, no policy
 * decisions. The columns are in the table's order (migrations/0012 put the policy columns after
 * error_kind).
 */
export async function generateAccessLogs(
  ch: ClickHouse,
  o: { rows: number; start: number; spanS: number; statusSql?: string },
): Promise<void> {
  const CHUNK = 1_000_000;
  for (let offset = 0; offset < o.rows; offset += CHUNK) {
    const n = Math.min(CHUNK, o.rows - offset);
    await ch.command(
      sql`INSERT INTO access_logs
      SELECT
        'default' AS tenant,
        toDateTime(intDiv(ts_us, 1000000), 'UTC') AS ts,
        ${o.start} * 1000000 + intDiv(toUInt64(number) * ${o.spanS * 1_000_000}, ${o.rows}) AS ts_us,
        lower(hex(cityHash64(number, 1))) AS id,
        concat(lower(hex(cityHash64(number, 2))), lower(hex(cityHash64(number, 3)))) AS trace_id,
        lower(hex(cityHash64(number, 4))) AS span_id,
        concat('svc-', toString(number % 10)) AS service,
        concat('svc-', toString(number % 10), '-upstream') AS upstream,
        concat('/api/v1/r', toString(intDiv(number, 10) % 5), '/:id') AS route,
        if(number % 7 = 0, 'POST', 'GET') AS method,
        ${raw(o.statusSql ?? STATUS_SQL)} AS status,
        round((20 + 40 * (number % 5)) * exp(0.6 * sqrt(-2 * log((cityHash64(number, 6) % 1000000 + 1) / 1000001)) * cos(2 * pi() * (cityHash64(number, 7) % 1000000) / 1000000)), 3) AS duration_ms,
        round(duration_ms * 0.9, 3) AS upstream_ms,
        cityHash64(number, 8) % 2000 AS bytes_in,
        cityHash64(number, 9) % 20000 AS bytes_out,
        concat('key-', toString(cityHash64(number, 10) % 200)) AS consumer,
        '10.0.0.1' AS client_address,
        'api.example.com' AS server_address,
        'bench/1.0' AS user_agent,
        '/api/v1/x/42' AS path,
        '' AS query,
        if(status = 503, 'upstream_refused', 'none') AS error_kind,
        '' AS cache,
        '' AS target,
        toUInt8(0) AS retries,
        toUInt32(0) AS ratelimit_limit,
        toUInt32(0) AS ratelimit_remaining,
        toUInt32(0) AS kafka_partition,
        toUInt64(number) AS kafka_offset,
        'partition:0' AS source_id,
        toUInt64(number) AS source_seq
      FROM numbers(${offset}, ${n})`,
    );
  }
}
