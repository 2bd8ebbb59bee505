/**
 * Tapwire's tables in DuckDB: the same raw tables and columns as the ClickHouse migrations, with
 * `ts` as UTC epoch seconds (BIGINT), the route latency histograms per minute and hour
 * (migrations/0007) and the SLO counts per minute and hour (migrations/0010), filled from each
 * insert's new rows in the same transaction instead of by a materialized view. Rows are written by `insertNdjson` / `insertJsonLines` (ingest's JSON rows).
 */

/** TableSpec is one table: its columns and whether rows are unique by event id. */
export interface TableSpec {
  readonly name: string;
  readonly columns: readonly (readonly [string, string])[];
  /** Unique by `id`: an insert skips ids already stored (ClickHouse's ReplacingMergeTree, exactly). */
  readonly uniqueId: boolean;
  /** The column of UTC epoch seconds that retention and replay cut days by. Default: ts. */
  readonly time?: string;
  /** Rollups filled from the rows an insert adds. */
  readonly rollups?: readonly Rollup[];
}

/** Rollup is a table filled from the rows an insert adds to another. */
export interface Rollup {
  readonly table: string;
  /** Its rows from the rows added, in `tapwire_new`. */
  readonly select: string;
  /** The columns summed when rows with the same key are merged; the others are the key. */
  readonly measures: readonly string[];
}

/** LATENCY_BUCKET_SQL is a row's latency bucket k, holding (1.01^(k-1), 1.01^k] ms, as in migrations/0007. */
export const LATENCY_BUCKET_SQL = 'CAST(ceil(ln(greatest(duration_ms, 0.001)) / ln(1.01)) AS SMALLINT)';

function routeHistogram(table: string, time: string): TableSpec {
  return {
    name: table,
    uniqueId: false,
    time,
    columns: [
      ['tenant', 'VARCHAR'],
      ['service', 'VARCHAR'],
      ['route', 'VARCHAR'],
      ['method', 'VARCHAR'],
      [time, 'BIGINT'],
      ['bucket', 'SMALLINT'],
      ['requests', 'UBIGINT'],
      ['errors_5xx', 'UBIGINT'],
      ['errors_4xx', 'UBIGINT'],
      ['duration_ms_sum', 'DOUBLE'],
      ['bytes_in', 'UBIGINT'],
      ['bytes_out', 'UBIGINT'],
    ],
  };
}

const HISTOGRAM_MEASURES = [
  'requests',
  'errors_5xx',
  'errors_4xx',
  'duration_ms_sum',
  'bytes_in',
  'bytes_out',
];

function routeHistogramSelect(time: string, seconds: number): string {
  return `SELECT tenant, service, route, method, ts // ${seconds} * ${seconds} AS ${time}, ${LATENCY_BUCKET_SQL} AS bucket,
    count(*) AS requests, count(*) FILTER (WHERE status >= 500) AS errors_5xx,
    count(*) FILTER (WHERE status >= 400 AND status < 500) AS errors_4xx, sum(duration_ms) AS duration_ms_sum,
    sum(bytes_in) AS bytes_in, sum(bytes_out) AS bytes_out
  FROM tapwire_new GROUP BY ALL`;
}

function sloCounts(table: string, time: string): TableSpec {
  return {
    name: table,
    uniqueId: false,
    time,
    columns: [
      ['tenant', 'VARCHAR'],
      ['facet', 'UTINYINT'],
      ['slo_consumer', 'VARCHAR'],
      ['service', 'VARCHAR'],
      ['route', 'VARCHAR'],
      ['method', 'VARCHAR'],
      [time, 'BIGINT'],
      ['value', 'SMALLINT'],
      ['requests', 'UBIGINT'],
    ],
  };
}

const POLICY_MEASURES = [
  'requests',
  'cache_hits',
  'cache_misses',
  'cache_stale',
  'cache_bypass',
  'auth_missing',
  'auth_invalid',
  'forbidden',
  'rate_limited',
  'no_healthy_target',
  'retries',
];

function policyStats(table: string, time: string): TableSpec {
  return {
    name: table,
    uniqueId: false,
    time,
    columns: [
      ['tenant', 'VARCHAR'],
      ['service', 'VARCHAR'],
      ['route', 'VARCHAR'],
      ['method', 'VARCHAR'],
      [time, 'BIGINT'],
      ...POLICY_MEASURES.map((m) => [m, 'UBIGINT'] as const),
    ],
  };
}

/** policyStatsSelect fills policy_stats_1m / _1h as migrations/0012 does: policy decisions per route. */
function policyStatsSelect(time: string, seconds: number): string {
  const kind = (k: string) => `count(*) FILTER (WHERE error_kind = '${k}') AS ${k}`;
  return `SELECT tenant, service, route, method, ts // ${seconds} * ${seconds} AS ${time}, count(*) AS requests,
    count(*) FILTER (WHERE "cache" = 'hit') AS cache_hits, count(*) FILTER (WHERE "cache" = 'miss') AS cache_misses,
    count(*) FILTER (WHERE "cache" = 'stale') AS cache_stale, count(*) FILTER (WHERE "cache" = 'bypass') AS cache_bypass,
    ${['auth_missing', 'auth_invalid', 'forbidden', 'rate_limited', 'no_healthy_target'].map(kind).join(', ')},
    sum(retries) AS retries
  FROM tapwire_new GROUP BY ALL`;
}

/**
 * sloCountsSelect fills slo_counts_1m / _1h as migrations/0010 does: each new row once per facet
 * (0 status, 1 status per consumer, 2 latency bucket per consumer: hourly only).
 */
function sloCountsSelect(time: string, seconds: number, perConsumerLatency: boolean): string {
  const facet = (n: number, consumer: string, value: string) =>
    `SELECT tenant, CAST(${n} AS UTINYINT) AS facet, ${consumer} AS slo_consumer, service, route, method, ts, CAST(${value} AS SMALLINT) AS value FROM tapwire_new`;
  const facets = [
    facet(0, "''", 'status'),
    facet(1, 'consumer', 'status'),
    ...(perConsumerLatency ? [facet(2, 'consumer', LATENCY_BUCKET_SQL)] : []),
  ];
  return `SELECT tenant, facet, slo_consumer, service, route, method, ts // ${seconds} * ${seconds} AS ${time}, value,
    count(*) AS requests
  FROM (${facets.join(' UNION ALL ')}) GROUP BY ALL`;
}

// Where a row was read (Kafka partition and offset), then its identity in the per-event ledger:
// its source (a proxy's local log, or `partition:<p>` for a single-event record) and sequence there.
const KAFKA = [
  ['kafka_partition', 'UINTEGER'],
  ['kafka_offset', 'UBIGINT'],
  ['source_id', 'VARCHAR'],
  ['source_seq', 'UBIGINT'],
] as const;
const EVENT = [
  ['tenant', 'VARCHAR'],
  ['ts', 'BIGINT'],
  ['ts_us', 'UBIGINT'],
  ['id', 'VARCHAR'],
] as const;

/** TABLES are every table the embedded store holds. */
export const TABLES: readonly TableSpec[] = [
  {
    name: 'access_logs',
    uniqueId: true,
    rollups: [
      {
        table: 'route_histogram_1m',
        select: routeHistogramSelect('minute', 60),
        measures: HISTOGRAM_MEASURES,
      },
      {
        table: 'route_histogram_1h',
        select: routeHistogramSelect('hour', 3600),
        measures: HISTOGRAM_MEASURES,
      },
      { table: 'slo_counts_1m', select: sloCountsSelect('minute', 60, false), measures: ['requests'] },
      { table: 'slo_counts_1h', select: sloCountsSelect('hour', 3600, true), measures: ['requests'] },
      { table: 'policy_stats_1m', select: policyStatsSelect('minute', 60), measures: POLICY_MEASURES },
      { table: 'policy_stats_1h', select: policyStatsSelect('hour', 3600), measures: POLICY_MEASURES },
    ],
    columns: [
      ...EVENT,
      ['trace_id', 'VARCHAR'],
      ['span_id', 'VARCHAR'],
      ['service', 'VARCHAR'],
      ['upstream', 'VARCHAR'],
      ['route', 'VARCHAR'],
      ['method', 'VARCHAR'],
      ['status', 'USMALLINT'],
      ['duration_ms', 'DOUBLE'],
      ['upstream_ms', 'DOUBLE'],
      ['bytes_in', 'UBIGINT'],
      ['bytes_out', 'UBIGINT'],
      ['consumer', 'VARCHAR'],
      ['client_address', 'VARCHAR'],
      ['server_address', 'VARCHAR'],
      ['user_agent', 'VARCHAR'],
      ['path', 'VARCHAR'],
      ['query', 'VARCHAR'],
      ['error_kind', 'VARCHAR'],
      ...KAFKA,
      // Access logs version 2 (migrations/0012): the proxy's policy decisions.
      ['cache', 'VARCHAR'],
      ['target', 'VARCHAR'],
      ['retries', 'UTINYINT'],
      ['ratelimit_limit', 'UINTEGER'],
      ['ratelimit_remaining', 'UINTEGER'],
    ],
  },
  {
    name: 'spans',
    uniqueId: true,
    columns: [
      ...EVENT,
      ['trace_id', 'VARCHAR'],
      ['span_id', 'VARCHAR'],
      ['parent_span_id', 'VARCHAR'],
      ['name', 'VARCHAR'],
      ['kind', 'VARCHAR'],
      ['service', 'VARCHAR'],
      ['duration_us', 'UBIGINT'],
      ['status', 'VARCHAR'],
      ['status_message', 'VARCHAR'],
      ['attr_keys', 'VARCHAR[]'],
      ['attr_values', 'VARCHAR[]'],
      ...KAFKA,
      // Span version 2 (migrations/0011): resource attributes, scope, events and links as JSON arrays.
      ['resource_keys', 'VARCHAR[]'],
      ['resource_values', 'VARCHAR[]'],
      ['scope_name', 'VARCHAR'],
      ['scope_version', 'VARCHAR'],
      ['events_json', 'VARCHAR'],
      ['links_json', 'VARCHAR'],
    ],
  },
  {
    name: 'saturation',
    uniqueId: true,
    columns: [
      ...EVENT,
      ['service', 'VARCHAR'],
      ['instance', 'VARCHAR'],
      ['interval_ms', 'UINTEGER'],
      ['upstream_names', 'VARCHAR[]'],
      ['upstream_in_flight', 'UINTEGER[]'],
      ['upstream_concurrency_limit', 'UINTEGER[]'],
      ['upstream_pool_size', 'UINTEGER[]'],
      ['upstream_pool_busy', 'UINTEGER[]'],
      ['upstream_pool_pending', 'UINTEGER[]'],
      ['event_loop_utilization', 'DOUBLE'],
      ['event_loop_delay_ms', 'DOUBLE'],
      ['heap_used_bytes', 'UBIGINT'],
      ['heap_limit_bytes', 'UBIGINT'],
      ['rss_bytes', 'UBIGINT'],
      ['cpu_ratio', 'DOUBLE'],
      ['producer_buffer_events', 'UBIGINT'],
      ['producer_buffer_capacity', 'UBIGINT'],
      ['spool_bytes', 'UBIGINT'],
      ['spool_capacity_bytes', 'UBIGINT'],
      ['producer_dropped_events', 'UBIGINT'],
      ...KAFKA,
      // Every target of every load-balanced upstream (migrations/0012), parallel like upstream_*.
      ['target_upstreams', 'VARCHAR[]'],
      ['target_addresses', 'VARCHAR[]'],
      ['target_states', 'VARCHAR[]'],
      ['target_in_flight', 'UINTEGER[]'],
      ['target_consecutive_failures', 'UINTEGER[]'],
    ],
  },
  {
    name: 'dlq_events',
    uniqueId: true,
    columns: [
      ...EVENT,
      ['source_topic', 'VARCHAR'],
      ['source_partition', 'UINTEGER'],
      ['source_offset', 'UBIGINT'],
      ['reason', 'VARCHAR'],
      ['raw_base64', 'VARCHAR'],
      ['consumer_group', 'VARCHAR'],
      ...KAFKA,
      // A rejected event's index within its batched record; NULL for a whole record.
      ['source_index', 'UINTEGER'],
    ],
  },
  {
    name: 'alert_history',
    uniqueId: true,
    columns: [
      ...EVENT,
      ['rule_id', 'VARCHAR'],
      ['fingerprint', 'VARCHAR'],
      ['label_keys', 'VARCHAR[]'],
      ['label_values', 'VARCHAR[]'],
      ['state', 'VARCHAR'],
      ['value', 'DOUBLE'],
      ['has_value', 'UTINYINT'],
      ['threshold', 'DOUBLE'],
      ['since_us', 'UBIGINT'],
      ['active_at_us', 'UBIGINT'],
      ['fired_at_us', 'UBIGINT'],
      ['last_notified_us', 'UBIGINT'],
      ['receiver', 'VARCHAR'],
      ...KAFKA,
    ],
  },
  routeHistogram('route_histogram_1m', 'minute'),
  routeHistogram('route_histogram_1h', 'hour'),
  sloCounts('slo_counts_1m', 'minute'),
  sloCounts('slo_counts_1h', 'hour'),
  policyStats('policy_stats_1m', 'minute'),
  policyStats('policy_stats_1h', 'hour'),
  {
    name: 'consumer_lag',
    uniqueId: false,
    columns: [
      ['ts', 'BIGINT'],
      ['consumer_group', 'VARCHAR'],
      ['topic', 'VARCHAR'],
      ['partition', 'UINTEGER'],
      ['high_watermark', 'UBIGINT'],
      ['consumed', 'UBIGINT'],
      ['lag', 'UBIGINT'],
      ['instance', 'VARCHAR'],
    ],
  },
  {
    name: 'retention_runs',
    uniqueId: false,
    columns: [
      ['ts', 'BIGINT'],
      ['table_name', 'VARCHAR'],
      ['retention_days', 'UINTEGER'],
      ['dropped_partitions', 'VARCHAR[]'],
      ['error', 'VARCHAR'],
      ['instance', 'VARCHAR'],
    ],
  },
];

/**
 * ADDED_COLUMN_FILL says how rows stored before a column existed get its value when an older
 * database file is opened (columns not listed read NULL there): the ledger identity of a row read
 * from a single-event record, as ClickHouse's DEFAULTs of migrations/0009 give it.
 */
export const ADDED_COLUMN_FILL: Readonly<Record<string, string>> = {
  source_id: `'partition:' || kafka_partition`,
  source_seq: 'kafka_offset',
  resource_keys: '[]::VARCHAR[]',
  resource_values: '[]::VARCHAR[]',
  scope_name: `''`,
  scope_version: `''`,
  events_json: `'[]'`,
  links_json: `'[]'`,
  cache: `''`,
  target: `''`,
  retries: '0',
  ratelimit_limit: '0',
  ratelimit_remaining: '0',
  target_upstreams: '[]::VARCHAR[]',
  target_addresses: '[]::VARCHAR[]',
  target_states: '[]::VARCHAR[]',
  target_in_flight: '[]::UINTEGER[]',
  target_consecutive_failures: '[]::UINTEGER[]',
};

/** tableSpec returns a table's spec, or undefined for a table the embedded store does not have. */
export function tableSpec(name: string): TableSpec | undefined {
  return TABLES.find((t) => t.name === name);
}

/** createTableSql is the CREATE TABLE IF NOT EXISTS statement of a table. */
export function createTableSql(t: TableSpec): string {
  return `CREATE TABLE IF NOT EXISTS "${t.name}" (${t.columns.map(([c, type]) => `"${c}" ${type}`).join(', ')})`;
}
