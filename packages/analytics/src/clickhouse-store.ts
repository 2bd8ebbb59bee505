import {
  type ClickHouse,
  inline,
  joinSql,
  type QueryOptions,
  raw,
  type SqlFragment,
  sql,
  TapwireClickHouseError,
} from '@tapwire/clickhouse';
import { AnalyticsError } from './errors.js';
import { HISTOGRAM_WITH_SQL, quantileOfHistogram } from './histogram.js';
import { chooseSource, type SourceUsed } from './plan.js';
import {
  type AlertHistoryQuery,
  type AlertsQuery,
  type Filters,
  type LogCursor,
  type LogsQuery,
  type OverviewQuery,
  type PipelineQuery,
  QUANTILES,
  type RecentTracesQuery,
  type Scope,
  type SeriesQuery,
  type SignalQuery,
  type SloCountsQuery,
  type TimeRange,
  type TraceQuery,
} from './queries.js';
import type {
  AlertHistoryResult,
  AlertsResult,
  ConsumersResult,
  LogsResult,
  OverviewResult,
  PipelineResult,
  RecentTracesResult,
  SaturationResult,
  SeriesPoint,
  SeriesResult,
  SignalResult,
  SloCountsResult,
  TraceResult,
} from './results.js';
import {
  alertHistoryResult,
  alertsResult,
  applyExemplars,
  CONSUMER_KEYS,
  CONSUMER_ORDER_COLUMN,
  consumersResult,
  exemplarTargets,
  HISTOGRAM_TABLE,
  type InstanceSaturationRow,
  LOG_COLUMNS,
  logsResult,
  type Num,
  num,
  OVERVIEW_ORDER_COLUMN,
  overviewKeys,
  overviewResult,
  POLICY_KINDS,
  POLICY_ROLLUP_COLUMNS,
  POLICY_ROLLUP_TABLE,
  POLICY_SIGNAL_KINDS,
  type PolicyAggregate,
  pageValues,
  pipelineResult,
  policyMap,
  policySignal,
  RESOLVED_LISTED_S,
  type RedAggregate,
  recentTracesResult,
  requestSignal,
  SATURATION_SIGNAL,
  SPAN_STATUS_CODE_KEYS,
  type StoredAlert,
  type StoredAlertEvent,
  type StoredLog,
  saturationResult,
  saturationSignal,
  seriesPoints,
  signalDimensions,
  spanOnlyServices,
  TIME_COLUMN,
} from './shape.js';
import {
  badStatusParts,
  countSlos,
  type SloLevel,
  type SloLevelPart,
  type SloReadPlan,
  sloSource,
} from './slo-windows.js';
import type { Store } from './store.js';
import { buildSpanTree, type StoredSpan } from './trace-tree.js';

/** ClickHouseStoreOptions bounds every query the store sends. */
export interface ClickHouseStoreOptions {
  /** Server-side limit per query, in seconds (ClickHouse max_execution_time). */
  readonly maxExecutionTimeS: number;
  /** Server-side limit on result rows per query (max_result_rows, overflow throws). */
  readonly maxResultRows: number;
  /** Server-side memory limit per query in bytes (max_memory_usage); 0 leaves the server's. */
  readonly maxMemoryBytes: number;
  /** onQuery sees every statement with its duration and outcome (metrics, benchmarks). */
  readonly onQuery?: (event: {
    sql: string;
    ms: number;
    error?: AnalyticsError;
    serverCode?: number;
  }) => void;
}

const DEFAULT_OPTIONS: ClickHouseStoreOptions = {
  maxExecutionTimeS: 10,
  maxResultRows: 100_000,
  maxMemoryBytes: 0,
};

const STATUS_CLASS_DIGIT = { '1xx': 1, '2xx': 2, '3xx': 3, '4xx': 4, '5xx': 5 } as const;
// Log and trace searches walk back from the newest data in growing windows, so a page of the
// newest rows reads minutes of data, not the whole range.
const FIRST_WINDOW_S = 300;
const WINDOW_GROWTH = 4;
// LIMIT and OFFSET values are inline() literals in both renderings: a query-parameter placeholder
// there is checked on ClickHouse 26.9 only, not on every release that has query parameters.

function at(seconds: number): Date {
  return new Date(seconds * 1000);
}

function mapError(err: unknown): AnalyticsError {
  if (err instanceof AnalyticsError) return err;
  if (err instanceof TapwireClickHouseError) {
    if (err.serverCode === 158 || err.serverCode === 396)
      return new AnalyticsError('TAPWIRE_ANALYTICS_TOO_MANY_ROWS', undefined, { cause: err });
    if (err.code === 'TAPWIRE_CH_TIMEOUT')
      return new AnalyticsError('TAPWIRE_ANALYTICS_STORE_TIMEOUT', undefined, { cause: err });
    if (err.code === 'TAPWIRE_CH_UNREACHABLE' || err.code === 'TAPWIRE_CH_OVERLOADED')
      return new AnalyticsError('TAPWIRE_ANALYTICS_STORE_UNAVAILABLE', undefined, { cause: err });
    if (err.code === 'TAPWIRE_CH_UNSAFE_SQL_VALUE')
      return new AnalyticsError('TAPWIRE_ANALYTICS_INVALID_QUERY', err.message, { cause: err });
  }
  return new AnalyticsError('TAPWIRE_ANALYTICS_QUERY_FAILED', undefined, { cause: err });
}

/** requestConditions renders the tenant scope and filters over access_logs or a route histogram rollup. */
function requestConditions(scope: Scope, filters: Filters, table: SourceUsed): SqlFragment[] {
  const c: SqlFragment[] = [];
  if (scope.tenant !== null) c.push(sql`tenant = ${scope.tenant}`);
  if (filters.service !== undefined) c.push(sql`service = ${filters.service}`);
  if (filters.route !== undefined) c.push(sql`route = ${filters.route}`);
  if (filters.method !== undefined) c.push(sql`method = ${filters.method}`);
  if (table === 'raw') {
    if (filters.consumer !== undefined) c.push(sql`consumer = ${filters.consumer}`);
    if (filters.statusClass !== undefined)
      c.push(sql`intDiv(status, 100) = ${STATUS_CLASS_DIGIT[filters.statusClass]}`);
  }
  return c;
}

function where(parts: readonly SqlFragment[]): SqlFragment {
  return parts.length === 0 ? raw('1') : joinSql(parts, ' AND ');
}

function timeConditions(column: 'ts' | 'minute' | 'hour', range: TimeRange): SqlFragment[] {
  const col = raw(column);
  return [sql`${col} >= ${at(range.from)}`, sql`${col} < ${at(range.to)}`];
}

// Latency histogram bucket of a row: k holds (1.01^(k-1), 1.01^k] ms. The same expression fills
// route_histogram_1m and _1h (migrations/0007), so raw rows and rollups bucket identically.
const BUCKET = 'toInt16(ceil(log(greatest(duration_ms, 0.001)) / log(1.01)))';

// RED aggregates over raw rows under the aliases the rollup path uses too; `h` is the histogram
// as (bucket keys, counts), sorted by key.
const RED_RAW = raw(
  `count() AS n, sum(toUInt64(status >= 500)) AS e5, sum(toUInt64(status >= 400 AND status < 500)) AS e4, sumMap([${BUCKET}], [toUInt64(1)]) AS h, sum(duration_ms) AS dsum, sum(bytes_in) AS bin, sum(bytes_out) AS bout`,
);

const HISTOGRAM_WITH = raw(HISTOGRAM_WITH_SQL);
const QUANTILES_FROM_HISTOGRAM = raw(`hn, [${QUANTILES.map(quantileOfHistogram).join(', ')}] AS q`);
const RED_OUTER = raw('n, e5, e4, dsum, bin, bout');

const RED_COLUMNS = 'n, e5, e4, h, dsum, bin, bout';

// A span's HTTP status code (0 without one), from the first of SPAN_STATUS_CODE_KEYS it has; `arr[0]` is ''.
const SPAN_CODE = `toUInt32OrZero(${SPAN_STATUS_CODE_KEYS.reduceRight(
  (rest, key) => `if(has(attr_keys, '${key}'), attr_values[indexOf(attr_keys, '${key}')], ${rest})`,
  "''",
)})`;
const SPAN_ERROR = `(status = 'ERROR' OR ${SPAN_CODE} >= 500)`;

// RED aggregates of SERVER spans under the names RED_RAW uses: a span is a request, errors from its
// status and status code (disjoint, like access logs': an ERROR span with a 4xx code is a 5xx), its
// duration bucketed like duration_ms; bytes are unknown (0).
const RED_SPANS = raw(
  `count() AS n, sum(toUInt64(${SPAN_ERROR})) AS e5, sum(toUInt64(NOT ${SPAN_ERROR} AND ${SPAN_CODE} >= 400 AND ${SPAN_CODE} < 500)) AS e4, sumMap([${BUCKET.replace('duration_ms', '(duration_us / 1000)')}], [toUInt64(1)]) AS h, sum(duration_us) / 1000 AS dsum, toUInt64(0) AS bin, toUInt64(0) AS bout`,
);

/**
 * spanOnlyAggregation is the RED aggregation per (tenant, service) of SERVER spans of services
 * with no row in `accessTable` under `accessConditions` (the overview's own source and filters):
 * services that report only spans, each span once. Columns as `SELECT tenant, service, RED_COLUMNS, spans`.
 */
function spanOnlyAggregation(
  scope: Scope,
  q: OverviewQuery,
  accessTable: string,
  accessConditions: SqlFragment,
): SqlFragment {
  const c = [raw("kind = 'SERVER'"), ...timeConditions('ts', q.range)];
  if (scope.tenant !== null) c.push(sql`tenant = ${scope.tenant}`);
  if (q.filters.service !== undefined) c.push(sql`service = ${q.filters.service}`);
  c.push(
    sql`(tenant, service) NOT IN (SELECT tenant, service FROM ${raw(accessTable)} WHERE ${accessConditions})`,
  );
  // An app's retried export stores a span twice until ReplacingMergeTree merges: one row per id.
  return sql`SELECT tenant, service, ${RED_SPANS}, toUInt8(1) AS spans
    FROM (SELECT tenant, service, status, attr_keys, attr_values, duration_us FROM spans WHERE ${where(c)} LIMIT 1 BY id)
    GROUP BY tenant, service`;
}

/** redSql wraps a RED aggregation so the outer query turns its histogram into quantiles `q`. */
function redSql(keys: SqlFragment, inner: SqlFragment, tail: SqlFragment = raw('')): SqlFragment {
  return sql`WITH ${HISTOGRAM_WITH} SELECT ${keys}, ${RED_OUTER}, ${QUANTILES_FROM_HISTOGRAM} FROM (${inner}) ${tail}`;
}

/**
 * redAggregation groups requests by `keys` (expressions with aliases; `names` are the aliases)
 * into n, e5, e4, dsum, bin, bout and the histogram h, from raw rows or from a rollup's
 * per-bucket rows (summed per bucket, then gathered into arrays sorted by bucket).
 */
function redAggregation(
  keys: SqlFragment,
  names: SqlFragment,
  source: SourceUsed,
  conditions: SqlFragment,
  having: SqlFragment = raw(''),
): SqlFragment {
  if (source === 'raw')
    return sql`SELECT ${keys}, ${RED_RAW} FROM access_logs WHERE ${conditions} GROUP BY ${names}${having}`;

  return sql`SELECT ${names}, sum(bn) AS n, sum(be5) AS e5, sum(be4) AS e4, sum(bdsum) AS dsum, sum(bbin) AS bin,
      sum(bbout) AS bout, arraySort(groupArray((bucket, bn))) AS pairs,
      (arrayMap(p -> tupleElement(p, 1), pairs), arrayMap(p -> tupleElement(p, 2), pairs)) AS h
    FROM (
      SELECT ${keys}, bucket, sum(requests) AS bn, sum(errors_5xx) AS be5, sum(errors_4xx) AS be4,
        sum(duration_ms_sum) AS bdsum, sum(bytes_in) AS bbin, sum(bytes_out) AS bbout
            FROM ${raw(HISTOGRAM_TABLE[source])} WHERE ${conditions} GROUP BY ${names}, bucket)
    GROUP BY ${names}`;
}

// The proxy's policy decisions over raw rows, under PolicyAggregate's aliases (as the policy
// rollups of migrations/0012 count them).
const POLICY_RAW = raw(
  [
    "sum(toUInt64(cache = 'hit')) AS c_hit",
    "sum(toUInt64(cache = 'miss')) AS c_miss",
    "sum(toUInt64(cache = 'stale')) AS c_stale",
    ...Object.entries(POLICY_KINDS).map(
      ([alias, kind]) => `sum(toUInt64(error_kind = '${kind}')) AS ${alias}`,
    ),
    'sum(toUInt64(retries)) AS rt',
  ].join(', '),
);

// Rate-limit use per group: requests a limit applied to, the highest share of a quota used (the
// remaining count is after the request, so a request that used the last unit reads 1), the largest limit.
const QUOTA_RAW = raw(
  'sum(toUInt64(ratelimit_limit > 0)) AS ql, max(if(ratelimit_limit > 0, (toFloat64(ratelimit_limit) - ratelimit_remaining) / ratelimit_limit, 0)) AS qu, max(ratelimit_limit) AS lim',
);

// Every target sample of a saturation row: its upstream, address, state and gauges.
const TARGET_SAMPLES = raw(`saturation ARRAY JOIN target_upstreams AS upstream, target_addresses AS target,
  target_states AS one_state, target_in_flight AS one_target_in_flight, target_consecutive_failures AS one_failures`);

/** inList renders `column IN (values)` for a non-empty list of strings. */
function inList(column: string, values: readonly string[]): SqlFragment {
  return sql`${raw(column)} IN (${joinSql(
    values.map((v) => sql`${v}`),
    ', ',
  )})`;
}

/** anyRange renders "column in one of the ranges" (sorted, disjoint) for a WHERE clause. */
function anyRange(column: string, ranges: readonly TimeRange[]): SqlFragment {
  const col = raw(column);
  return sql`(${joinSql(
    ranges.map((r) => sql`(${col} >= ${at(r.from)} AND ${col} < ${at(r.to)})`),
    ' OR ',
  )})`;
}

const ints = (values: readonly number[]) =>
  joinSql(
    values.map((v) => inline(v)),
    ', ',
  );

/**
 * sloLevelSql counts an SLO's good and total requests per time unit of one level, over `ranges`:
 * rollup rows carry the status or bucket in a column; raw rows compute them as the views do.
 */
function sloLevelSql(
  scope: Scope,
  q: SloCountsQuery,
  level: SloLevel,
  ranges: readonly TimeRange[],
  plan: SloReadPlan,
): SqlFragment {
  const source = sloSource(level, plan);
  const c: SqlFragment[] = [];
  if (scope.tenant !== null) c.push(sql`tenant = ${scope.tenant}`);
  const s = q.selector;
  if (s.tenant !== undefined) c.push(sql`tenant = ${s.tenant}`);
  if (source.facet !== undefined)
    c.push(sql`facet = ${inline(source.facet)}`, sql`slo_consumer = ${s.consumer ?? ''}`);
  else if (s.consumer !== undefined) c.push(sql`consumer = ${s.consumer}`);
  if (s.service !== undefined) c.push(sql`service = ${s.service}`);
  if (s.route !== undefined) c.push(sql`route = ${s.route}`);
  if (s.method !== undefined) c.push(sql`method = ${s.method}`);
  c.push(anyRange(source.time, ranges));
  const n = raw(source.value ? 'requests' : 'toUInt64(1)');
  let good: SqlFragment;
  if (q.sli.kind === 'latency') {
    good = sql`${raw(source.value ?? BUCKET)} <= ${inline(plan.maxBucket ?? 0)}`;
  } else {
    const status = raw(source.value ?? 'status');
    if (q.sli.ignoredStatuses.length > 0) c.push(sql`${status} NOT IN (${ints(q.sli.ignoredStatuses)})`);
    const { classes, codes } = badStatusParts(q.sli.badStatuses);
    const bad: SqlFragment[] = [];
    if (classes.length > 0) bad.push(sql`intDiv(${status}, 100) IN (${ints(classes)})`);
    if (codes.length > 0) bad.push(sql`${status} IN (${ints(codes)})`);
    good = sql`NOT (${joinSql(bad, ' OR ')})`;
  }
  return sql`SELECT toUInt32(${raw(source.time)}) AS t, sum(if(${good}, ${n}, toUInt64(0))) AS good, sum(${n}) AS total
    FROM ${raw(source.table)} WHERE ${where(c)} GROUP BY t`;
}

/** sloLevelsSql reads one level for several SLOs: a branch each, its rows tagged q (the part's index). */
function sloLevelsSql(scope: Scope, level: SloLevel, parts: readonly SloLevelPart[]): SqlFragment {
  return joinSql(
    parts.map(
      (p) =>
        sql`SELECT toUInt16(${inline(p.index)}) AS q, t, good, total FROM (${sloLevelSql(scope, p.query, level, p.ranges, p.plan)})`,
    ),
    ' UNION ALL ',
  );
}

/** createClickHouseStore answers the Store's questions with SQL over Tapwire's ClickHouse tables. */
export function createClickHouseStore(ch: ClickHouse, options: Partial<ClickHouseStoreOptions> = {}): Store {
  const opts: ClickHouseStoreOptions = { ...DEFAULT_OPTIONS, ...options };
  const queryOptions: QueryOptions = {
    maxExecutionTimeS: opts.maxExecutionTimeS,
    maxResultRows: opts.maxResultRows,
    readonly: 2,
    ...(opts.maxMemoryBytes > 0 ? { maxMemoryBytes: opts.maxMemoryBytes } : {}),
  };

  async function run<T>(statement: SqlFragment): Promise<T[]> {
    const started = performance.now();
    try {
      const rows = await ch.query<T>(statement, queryOptions);
      opts.onQuery?.({ sql: statement.text, ms: performance.now() - started });
      return rows;
    } catch (err) {
      const mapped = mapError(err);
      const serverCode = err instanceof TapwireClickHouseError ? err.serverCode : undefined;
      opts.onQuery?.({
        sql: statement.text,
        ms: performance.now() - started,
        error: mapped,
        ...(serverCode !== undefined ? { serverCode } : {}),
      });
      throw mapped;
    }
  }

  /** newestAccessLogs walks back from `to` in growing windows until `limit` rows are found. */
  async function newestAccessLogs(
    scope: Scope,
    range: TimeRange,
    conditions: SqlFragment[],
    limit: number,
    cursor: LogCursor | undefined,
  ): Promise<StoredLog[]> {
    const rows: StoredLog[] = [];
    let end = range.to;
    const extra = [...conditions];
    if (cursor) {
      end = Math.min(end, Math.floor(cursor.tsUs / 1_000_000) + 1);
      extra.push(sql`(ts_us < ${cursor.tsUs} OR (ts_us = ${cursor.tsUs} AND id < ${cursor.id}))`);
    }
    let size = FIRST_WINDOW_S;
    while (end > range.from && rows.length < limit) {
      const start = Math.max(range.from, end - size);
      const found = await run<StoredLog>(sql`SELECT ${raw(LOG_COLUMNS)} FROM access_logs
        WHERE ${where([...(scope.tenant !== null ? [sql`tenant = ${scope.tenant}`] : []), ...timeConditions('ts', { from: start, to: end }), ...extra])}
        ORDER BY ts_us DESC, id DESC
        LIMIT 1 BY id
        LIMIT ${inline(limit - rows.length)}`);
      rows.push(...found);
      end = start;
      size *= WINDOW_GROWTH;
    }
    return rows;
  }

  return {
    kind: 'clickhouse',
    async overview(scope, q): Promise<OverviewResult> {
      const source = chooseSource(q.source, q.range, undefined, q.filters, { hourly: true });
      const byRoute = q.groupBy === 'route';
      const keys = raw(byRoute ? 'tenant, service, route, method' : 'tenant, service');
      const conditions = where([
        ...requestConditions(scope, q.filters, source),
        ...timeConditions(TIME_COLUMN[source], q.range),
      ]);
      const dir = raw(q.order === 'asc' ? 'ASC' : 'DESC');
      const tail = sql`ORDER BY ${raw(OVERVIEW_ORDER_COLUMN[q.sort])} ${dir}, ${keys} LIMIT ${inline(q.limit + 1)} OFFSET ${inline(q.offset)}`;
      type Row = RedAggregate & {
        tenant: string;
        service: string;
        route?: string;
        method?: string;
        spans?: Num;
      };
      const fromAccessLogs = redAggregation(keys, keys, source, conditions);
      let rows: Row[];
      if (!spanOnlyServices(q)) rows = await run<Row>(redSql(keys, fromAccessLogs, tail));
      else {
        // Services with access logs, then services that report only SERVER spans, paged together.
        const accessTable = source === 'raw' ? 'access_logs' : HISTOGRAM_TABLE[source];
        const both = sql`SELECT ${keys}, ${raw(RED_COLUMNS)}, toUInt8(0) AS spans FROM (${fromAccessLogs})
          UNION ALL ${spanOnlyAggregation(scope, q, accessTable, conditions)}`;
        rows = await run<Row>(redSql(raw('tenant, service, spans'), both, tail));
      }
      // The page's policy decisions from the same level (policy rollup or raw rows), narrowed to its services.
      const services = pageValues(rows, 'service', q.limit);
      const policies =
        services.length === 0
          ? []
          : await run<PolicyAggregate & Record<string, unknown>>(
              sql`SELECT ${keys}, ${source === 'raw' ? POLICY_RAW : raw(POLICY_ROLLUP_COLUMNS)}
              FROM ${raw(source === 'raw' ? 'access_logs' : POLICY_ROLLUP_TABLE[source])}
              WHERE ${conditions} AND ${inList('service', services)} GROUP BY ${keys}`,
            );
      return overviewResult(q, source, rows, policyMap(policies, overviewKeys(q)));
    },

    async series(scope, q): Promise<SeriesResult> {
      const source = chooseSource(q.source, q.range, q.stepS, q.filters, { hourly: true });
      const { from, to } = q.range;
      const step = q.stepS;
      const timeCol = TIME_COLUMN[source];
      const bucket = sql`intDiv(toUInt32(${raw(timeCol)}) - ${from}, ${step})`;
      const conditions = [
        ...requestConditions(scope, q.filters, source),
        ...timeConditions(timeCol, q.range),
      ];
      const rows = await run<RedAggregate & { b: Num }>(
        redSql(
          raw('b'),
          redAggregation(sql`${bucket} AS b`, raw('b'), source, where(conditions)),
          raw('ORDER BY b'),
        ),
      );
      const points = seriesPoints(q, rows);
      await attachExemplars(scope, q, points);
      return { source, from, to, step, points };
    },

    async saturation(scope, q): Promise<SaturationResult> {
      // Saturation has only a 1-minute rollup (a few rows per instance and minute).
      const source = chooseSource(
        q.source === 'rollup_1h' ? 'rollup_1m' : q.source,
        q.range,
        q.stepS,
        undefined,
      );
      const rollup = source !== 'raw';
      const { from } = q.range;
      const step = q.stepS;
      const timeCol = rollup ? 'minute' : 'ts';
      const bucket = sql`intDiv(toUInt32(${raw(timeCol)}) - ${from}, ${step})`;
      const scoped: SqlFragment[] = [];
      if (scope.tenant !== null) scoped.push(sql`tenant = ${scope.tenant}`);
      if (q.service !== undefined) scoped.push(sql`service = ${q.service}`);
      if (q.instance !== undefined) scoped.push(sql`instance = ${q.instance}`);
      const base: SqlFragment[] = [...timeConditions(timeCol, q.range), ...scoped];
      const upstreamConditions = [...base];
      if (q.upstream !== undefined) upstreamConditions.push(sql`upstream = ${q.upstream}`);
      const instanceSelect = rollup
        ? raw(`countMerge(samples) AS n, avgMerge(event_loop_utilization_avg) AS elu_avg,
              maxMerge(event_loop_utilization_max) AS elu_max, maxMerge(event_loop_delay_ms_max) AS delay_max,
              maxMerge(heap_used_bytes_max) AS heap_used, maxMerge(heap_limit_bytes_max) AS heap_limit,
              maxMerge(rss_bytes_max) AS rss, avgMerge(cpu_ratio_avg) AS cpu,
              maxMerge(producer_buffer_events_max) AS buffered, maxMerge(producer_buffer_capacity_max) AS buffer_cap,
              maxMerge(spool_bytes_max) AS spool, maxMerge(spool_capacity_bytes_max) AS spool_cap`)
        : raw(`count() AS n, avg(event_loop_utilization) AS elu_avg,
              max(event_loop_utilization) AS elu_max, max(event_loop_delay_ms) AS delay_max,
              max(heap_used_bytes) AS heap_used, max(heap_limit_bytes) AS heap_limit,
              max(rss_bytes) AS rss, avg(cpu_ratio) AS cpu,
              max(producer_buffer_events) AS buffered, max(producer_buffer_capacity) AS buffer_cap,
              max(spool_bytes) AS spool, max(spool_capacity_bytes) AS spool_cap`);
      const upstreamSelect = rollup
        ? raw(`countMerge(samples) AS n, avgMerge(in_flight_avg) AS if_avg, maxMerge(in_flight_max) AS if_max,
              maxMerge(concurrency_limit_max) AS lim, maxMerge(pool_size_max) AS ps, avgMerge(pool_busy_avg) AS pb_avg,
              maxMerge(pool_busy_max) AS pb_max, maxMerge(pool_pending_max) AS pp`)
        : raw(`count() AS n, avg(one_in_flight) AS if_avg, max(one_in_flight) AS if_max,
              max(one_limit) AS lim, max(one_pool_size) AS ps, avg(one_pool_busy) AS pb_avg,
              max(one_pool_busy) AS pb_max, max(one_pool_pending) AS pp`);
      const upstreamFrom = rollup
        ? raw('upstream_saturation_1m')
        : raw(`saturation ARRAY JOIN upstream_names AS upstream, upstream_in_flight AS one_in_flight,
              upstream_concurrency_limit AS one_limit, upstream_pool_size AS one_pool_size,
              upstream_pool_busy AS one_pool_busy, upstream_pool_pending AS one_pool_pending`);
      // Targets are read from raw samples at any source (no rollup keeps their states).
      const rawBucket = sql`intDiv(toUInt32(ts) - ${from}, ${step})`;
      const targetConditions: SqlFragment[] = [...timeConditions('ts', q.range), ...scoped];
      if (q.upstream !== undefined) targetConditions.push(sql`upstream = ${q.upstream}`);
      const [instances, upstreams, targets] = await Promise.all([
        run<InstanceSaturationRow>(sql`SELECT tenant, service, instance, ${bucket} AS b, ${instanceSelect}
          FROM ${raw(rollup ? 'saturation_1m' : 'saturation')} WHERE ${where(base)}
          GROUP BY tenant, service, instance, b ORDER BY tenant, service, instance, b`),
        run<
          InstanceSaturationRow & { upstream: string }
        >(sql`SELECT tenant, service, instance, upstream, ${bucket} AS b, ${upstreamSelect}
          FROM ${upstreamFrom} WHERE ${where(upstreamConditions)}
          GROUP BY tenant, service, instance, upstream, b ORDER BY tenant, service, instance, upstream, b`),
        run<
          InstanceSaturationRow & { upstream: string; target: string; state: string }
        >(sql`SELECT tenant, service, instance, upstream, target, ${rawBucket} AS b, count() AS n,
            sum(toUInt64(one_state = 'healthy')) AS healthy, sum(toUInt64(one_state = 'unhealthy')) AS unhealthy,
            sum(toUInt64(one_state = 'ejected')) AS ejected, argMax(one_state, ts_us) AS state,
            max(one_target_in_flight) AS if_max, max(one_failures) AS cf_max
          FROM ${TARGET_SAMPLES} WHERE ${where(targetConditions)}
          GROUP BY tenant, service, instance, upstream, target, b ORDER BY tenant, service, instance, upstream, target, b`),
      ]);
      return saturationResult(q, source, instances, upstreams, targets);
    },

    async consumers(scope, q): Promise<ConsumersResult> {
      const conditions = [
        ...requestConditions(scope, q.filters, 'raw'),
        ...timeConditions('ts', q.range),
        raw("consumer != ''"),
      ];
      const dir = raw(q.order === 'asc' ? 'ASC' : 'DESC');
      const keys = raw('tenant, consumer');
      const rows = await run<RedAggregate & { tenant: string; consumer: string }>(
        redSql(
          keys,
          redAggregation(keys, keys, 'raw', where(conditions)),
          sql`ORDER BY ${raw(CONSUMER_ORDER_COLUMN[q.sort])} ${dir}, ${keys} LIMIT ${inline(q.limit + 1)} OFFSET ${inline(q.offset)}`,
        ),
      );
      const consumers = pageValues(rows, 'consumer', q.limit);
      const policies =
        consumers.length === 0
          ? []
          : await run<PolicyAggregate & Record<string, unknown>>(
              sql`SELECT ${keys}, ${POLICY_RAW}, ${QUOTA_RAW} FROM access_logs
              WHERE ${where(conditions)} AND ${inList('consumer', consumers)} GROUP BY ${keys}`,
            );
      return consumersResult(q, rows, policyMap(policies, CONSUMER_KEYS));
    },

    async trace(scope, q: TraceQuery): Promise<TraceResult | null> {
      const indexConditions = [sql`trace_id = ${q.traceId}`];
      if (scope.tenant !== null) indexConditions.push(sql`tenant = ${scope.tenant}`);
      const index = await run<{ tenant: string; s: Num; e: Num }>(
        sql`SELECT tenant, minMerge(start_us) AS s, maxMerge(end_us) AS e FROM trace_index
        WHERE ${where(indexConditions)} GROUP BY tenant ORDER BY s LIMIT 1`,
      );
      const found = index[0];
      if (!found) return null;
      const startS = Math.floor(num(found.s) / 1_000_000);
      const endS = Math.floor(num(found.e) / 1_000_000) + 1;
      const spans = await run<StoredSpan>(
        sql`SELECT id, span_id, parent_span_id, name, kind, service, status, status_message, ts_us, duration_us, attr_keys, attr_values,
          resource_keys, resource_values, scope_name, scope_version, events_json, links_json
        FROM spans
        WHERE tenant = ${found.tenant} AND trace_id = ${q.traceId} AND ts >= ${at(startS)} AND ts < ${at(endS)}
        ORDER BY ts_us, span_id
        LIMIT 1 BY id`,
      );
      if (spans.length === 0) return null;
      return buildSpanTree(q.traceId, found.tenant, spans);
    },

    async recentTraces(scope, q: RecentTracesQuery): Promise<RecentTracesResult> {
      const conditions = [...requestConditions(scope, q.filters, 'raw'), raw("trace_id != ''")];
      if (q.status !== undefined) conditions.push(sql`status = ${q.status}`);
      if (q.minDurationMs !== undefined) conditions.push(sql`duration_ms >= ${q.minDurationMs}`);
      const rows = await newestAccessLogs(scope, q.range, conditions, q.limit, undefined);
      return recentTracesResult(rows);
    },

    async logs(scope, q: LogsQuery): Promise<LogsResult> {
      const conditions = requestConditions(scope, q.filters, 'raw');
      if (q.status !== undefined) conditions.push(sql`status = ${q.status}`);
      if (q.errorKind !== undefined) conditions.push(sql`error_kind = ${q.errorKind}`);
      if (q.traceId !== undefined) conditions.push(sql`trace_id = ${q.traceId}`);
      if (q.minDurationMs !== undefined) conditions.push(sql`duration_ms >= ${q.minDurationMs}`);
      // A prefix compare that needs no LIKE escaping (and no startsWith, which 18.16 lacks).
      if (q.pathPrefix !== undefined)
        conditions.push(sql`substring(path, 1, ${Buffer.byteLength(q.pathPrefix)}) = ${q.pathPrefix}`);
      return logsResult(q, await newestAccessLogs(scope, q.range, conditions, q.limit, q.cursor));
    },

    async pipeline(scope, q: PipelineQuery): Promise<PipelineResult> {
      const window = timeConditions('ts', q.range);
      const tenant = scope.tenant !== null ? [sql`tenant = ${scope.tenant}`] : [];
      const [lag, dlq, proxies] = await Promise.all([
        // Topics are shared by every tenant: their lag and high-watermarks are installation-wide figures.
        scope.tenant !== null
          ? []
          : run<Record<string, Num> & { consumer_group: string; topic: string }>(
              sql`SELECT consumer_group, topic, partition, argMax(lag, ts) AS l, argMax(high_watermark, ts) AS hw, max(toUInt32(ts)) AS at
          FROM consumer_lag WHERE ${where(window)}
          GROUP BY consumer_group, topic, partition ORDER BY consumer_group, topic, partition`,
            ),
        run<{ source_topic: string; n: Num; reason: string }>(
          sql`SELECT source_topic, count() AS n, argMax(reason, ts_us) AS reason
          FROM dlq_events WHERE ${where([...window, ...tenant])}
          GROUP BY source_topic ORDER BY source_topic`,
        ),
        run<Record<string, Num> & { tenant: string; service: string; instance: string }>(
          sql`SELECT tenant, service, instance,
            max(producer_dropped_events) - min(producer_dropped_events) AS dropped,
            max(producer_buffer_events) AS buffered, max(producer_buffer_capacity) AS buffer_cap,
            max(spool_bytes) AS spool, max(spool_capacity_bytes) AS spool_cap,
            max(spool_bytes / greatest(spool_capacity_bytes, 1)) AS fill, max(toUInt32(ts)) AS last_seen
          FROM saturation WHERE ${where([...window, ...tenant])}
          GROUP BY tenant, service, instance ORDER BY tenant, service, instance`,
        ),
      ]);
      return pipelineResult(q, lag, dlq, proxies);
    },

    async signal(scope, q: SignalQuery): Promise<SignalResult> {
      const dims = signalDimensions(q);
      const keyNames = raw(dims.length > 0 ? dims.join(', ') : '_all');
      const keyExprs = raw(dims.length > 0 ? dims.join(', ') : 'toUInt8(0) AS _all');
      // Without dimensions the key is a constant: over no rows 18.16 still returns one group (of
      // zeros) and ClickHouse 20.x+ none (empty_result_for_aggregation_by_constant_keys_on_empty_set).
      // The HAVING makes both return none, as DuckDB does.
      const nonEmpty = raw(' HAVING count() > 0');
      const conditions: SqlFragment[] = [...timeConditions('ts', q.range)];
      if (scope.tenant !== null) conditions.push(sql`tenant = ${scope.tenant}`);
      for (const [dim, value] of Object.entries(q.filters))
        conditions.push(sql`${raw(dim)} = ${value as string}`);
      if (q.kind === 'saturation' && q.metric === 'targets_unhealthy') {
        // Targets not healthy per sample (`bad`), then the most in any sample of the window.
        const rows = await run<Record<string, unknown> & { v: Num; n: Num }>(
          sql`SELECT ${keyNames}, max(bad) AS v, count() AS n FROM (
            SELECT ${keyExprs}, id, sum(toUInt64(one_state != 'healthy')) AS bad FROM ${TARGET_SAMPLES}
            WHERE ${where(conditions)} GROUP BY ${keyNames}, id)
          GROUP BY ${keyNames}${nonEmpty}`,
        );
        return saturationSignal(dims, rows);
      }
      if (POLICY_SIGNAL_KINDS.includes(q.kind)) {
        const rows = await run<PolicyAggregate & Record<string, unknown> & { n: Num }>(
          sql`SELECT ${keyExprs}, count() AS n, ${POLICY_RAW}, ${QUOTA_RAW} FROM access_logs
          WHERE ${where(conditions)} GROUP BY ${keyNames}${nonEmpty}`,
        );
        return policySignal(q, dims, rows);
      }
      if (q.kind === 'saturation') {
        const metric = SATURATION_SIGNAL[q.metric ?? 'event_loop_utilization'];
        const from = metric.upstream
          ? raw(`saturation ARRAY JOIN upstream_names AS upstream, upstream_in_flight AS one_in_flight,
              upstream_concurrency_limit AS one_limit, upstream_pool_size AS one_pool_size, upstream_pool_busy AS one_pool_busy`)
          : raw('saturation');
        const rows = await run<Record<string, unknown> & { v: Num; n: Num }>(
          sql`SELECT ${keyExprs}, ${raw(metric.expr)} AS v, count() AS n FROM ${from}
          WHERE ${where(conditions)} GROUP BY ${keyNames}${nonEmpty}`,
        );
        return saturationSignal(dims, rows);
      }
      const rows = await run<RedAggregate & Record<string, unknown>>(
        redSql(keyNames, redAggregation(keyExprs, keyNames, 'raw', where(conditions), nonEmpty)),
      );
      return requestSignal(q, dims, rows);
    },

    async alerts(scope, q: AlertsQuery): Promise<AlertsResult> {
      // The latest state record of each series over the last 30 days (delivery records excluded).
      const conditions = [raw("receiver = ''"), sql`ts >= ${at(q.now - 30 * 86_400)}`];
      if (scope.tenant !== null) conditions.push(sql`tenant = ${scope.tenant}`);
      if (q.ruleId !== undefined) conditions.push(sql`rule_id = ${q.ruleId}`);
      const having = [
        raw(
          `(st IN ('pending', 'firing', 'recovering') OR (st = 'resolved' AND since >= ${(q.now - RESOLVED_LISTED_S) * 1_000_000}))`,
        ),
      ];
      if (q.state !== undefined) having.push(sql`st = ${q.state}`);
      const rows = await run<StoredAlert>(
        sql`SELECT fingerprint, argMax(tenant, ts_us) AS tn, argMax(rule_id, ts_us) AS rid, argMax(state, ts_us) AS st,
          argMax(label_keys, ts_us) AS k, argMax(label_values, ts_us) AS lv, argMax(value, ts_us) AS v, argMax(has_value, ts_us) AS hv,
          argMax(threshold, ts_us) AS th, argMax(since_us, ts_us) AS since, argMax(active_at_us, ts_us) AS act,
          argMax(fired_at_us, ts_us) AS fired, max(ts_us) AS updated
        FROM alert_history WHERE ${where(conditions)}
        GROUP BY fingerprint HAVING ${where(having)}
        ORDER BY rid, fingerprint LIMIT 10000`,
      );
      return alertsResult(rows);
    },

    async alertHistory(scope, q: AlertHistoryQuery): Promise<AlertHistoryResult> {
      const conditions = timeConditions('ts', q.range);
      if (scope.tenant !== null) conditions.push(sql`tenant = ${scope.tenant}`);
      if (q.ruleId !== undefined) conditions.push(sql`rule_id = ${q.ruleId}`);
      if (q.fingerprint !== undefined) conditions.push(sql`fingerprint = ${q.fingerprint}`);
      const rows = await run<StoredAlertEvent>(
        sql`SELECT id, tenant, ts_us, rule_id, fingerprint, label_keys, label_values, state, value, has_value, threshold, since_us, receiver
        FROM alert_history WHERE ${where(conditions)}
        ORDER BY ts_us DESC, id DESC LIMIT 1 BY id LIMIT ${inline(q.limit)}`,
      );
      return alertHistoryResult(rows);
    },

    async sloCounts(scope, q): Promise<SloCountsResult> {
      const [result] = await countSlos([q], (level, parts) => run(sloLevelsSql(scope, level, parts)));
      return result as SloCountsResult;
    },

    async sloCountsMany(scope, queries): Promise<SloCountsResult[]> {
      return countSlos(queries, (level, parts) => run(sloLevelsSql(scope, level, parts)));
    },

    async ping() {
      return ch.ping();
    },

    async close() {
      await ch.close();
    },
  };

  /**
   * attachExemplars picks, per step and quantile, the real request whose duration is closest to
   * that step's quantile (one raw query for every step and level; the quantiles are literals).
   */
  async function attachExemplars(scope: Scope, q: SeriesQuery, points: SeriesPoint[]): Promise<void> {
    const targets = exemplarTargets(q, points);
    if (targets.length === 0) return;
    const { from } = q.range;
    const withClauses = joinSql(
      targets.map((t, i) => sql`${t.values} AS ${raw(`target_${i}`)}`),
      ', ',
    );
    const picks = joinSql(
      targets.map((_, i) =>
        raw(`argMin((trace_id, duration_ms), abs(duration_ms - target_${i}[b + 1])) AS x_${i}`),
      ),
      ', ',
    );
    const conditions = [
      ...requestConditions(scope, q.filters, 'raw'),
      ...timeConditions('ts', q.range),
      raw("trace_id != ''"),
    ];
    const rows = await run<Record<string, unknown> & { b: Num }>(
      sql`WITH ${withClauses}
      SELECT intDiv(toUInt32(ts) - ${from}, ${q.stepS}) AS b, ${picks}
      FROM access_logs WHERE ${where(conditions)} GROUP BY b`,
    );
    applyExemplars(points, targets, rows);
  }
}
