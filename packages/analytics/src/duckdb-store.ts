import {
  type DuckDb,
  type DuckSql,
  DuckSqlError,
  joinSql,
  LATENCY_BUCKET_SQL,
  raw,
  sql,
  TapwireDuckDbError,
} from '@tapwire/duckdb';
import { AnalyticsError } from './errors.js';
import { chooseSource, type SourceUsed } from './plan.js';
import {
  type Filters,
  type OverviewQuery,
  QUANTILES,
  type Scope,
  type SeriesQuery,
  type SloCountsQuery,
  type TimeRange,
} from './queries.js';
import type { SeriesPoint, SloCountsResult, TraceResult } from './results.js';
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

/** DuckDbStoreOptions bounds every query the store runs. */
export interface DuckDbStoreOptions {
  /** A query is interrupted after this many seconds. */
  readonly maxExecutionTimeS: number;
  /** An answer with more rows than this is refused (TOO_MANY_ROWS). */
  readonly maxResultRows: number;
  /** onQuery sees every statement with its duration and outcome (metrics, benchmarks). */
  readonly onQuery?: (event: { sql: string; ms: number; error?: AnalyticsError }) => void;
}

const DEFAULT_OPTIONS: DuckDbStoreOptions = { maxExecutionTimeS: 10, maxResultRows: 100_000 };

const STATUS_CLASS_DIGIT = { '1xx': 1, '2xx': 2, '3xx': 3, '4xx': 4, '5xx': 5 } as const;

// A latency bucket k (LATENCY_BUCKET_SQL, as the rollups bucket rows) is read back as its midpoint.
const midpoint = (k: string) => `(2 * pow(1.01, ${k}) / 2.01)`;

function mapError(err: unknown): AnalyticsError {
  if (err instanceof AnalyticsError) return err;
  if (err instanceof DuckSqlError)
    return new AnalyticsError('TAPWIRE_ANALYTICS_INVALID_QUERY', err.message, { cause: err });
  if (err instanceof TapwireDuckDbError) {
    if (err.code === 'TAPWIRE_DUCKDB_TIMEOUT')
      return new AnalyticsError('TAPWIRE_ANALYTICS_STORE_TIMEOUT', undefined, { cause: err });
    if (err.code === 'TAPWIRE_DUCKDB_CLOSED')
      return new AnalyticsError('TAPWIRE_ANALYTICS_STORE_UNAVAILABLE', undefined, { cause: err });
  }
  return new AnalyticsError('TAPWIRE_ANALYTICS_QUERY_FAILED', undefined, { cause: err });
}

function where(parts: readonly DuckSql[]): DuckSql {
  return parts.length === 0 ? raw('TRUE') : joinSql(parts, ' AND ');
}

function timeConditions(range: TimeRange, column: 'ts' | 'minute' | 'hour' = 'ts'): DuckSql[] {
  const col = raw(column);
  return [sql`${col} >= ${range.from}`, sql`${col} < ${range.to}`];
}

function tenantCondition(scope: Scope): DuckSql[] {
  return scope.tenant !== null ? [sql`tenant = ${scope.tenant}`] : [];
}

/** requestConditions renders the tenant scope and filters over access_logs. */
function requestConditions(scope: Scope, filters: Filters): DuckSql[] {
  const c = tenantCondition(scope);
  if (filters.service !== undefined) c.push(sql`service = ${filters.service}`);
  if (filters.route !== undefined) c.push(sql`route = ${filters.route}`);
  if (filters.method !== undefined) c.push(sql`method = ${filters.method}`);
  if (filters.consumer !== undefined) c.push(sql`consumer = ${filters.consumer}`);
  if (filters.statusClass !== undefined)
    c.push(sql`status // 100 = ${STATUS_CLASS_DIGIT[filters.statusClass]}`);
  return c;
}

// A span's HTTP status code (0 without one), from the first of SPAN_STATUS_CODE_KEYS it has.
const SPAN_CODE = `coalesce(TRY_CAST(coalesce(${SPAN_STATUS_CODE_KEYS.map(
  (key) => `attr_values[list_position(attr_keys, '${key}')]`,
).join(', ')}) AS BIGINT), 0)`;
const SPAN_ERROR = `(status = 'ERROR' OR ${SPAN_CODE} >= 500)`;

/**
 * spanOnlyHistogram is redQuery's `hist` rows (tenant, service, from_spans = 1, bucket, ...) of
 * SERVER spans of services with no row in `accessTable` under `accessConditions` (the overview's
 * own source and filters): services that report only spans. A span is a request, errors come from
 * its status and status code (disjoint, as the ClickHouse store counts them), bytes are unknown (0).
 */
function spanOnlyHistogram(
  scope: Scope,
  q: OverviewQuery,
  accessTable: string,
  accessConditions: DuckSql,
): DuckSql {
  const c = [raw("kind = 'SERVER'"), ...timeConditions(q.range), ...tenantCondition(scope)];
  if (q.filters.service !== undefined) c.push(sql`service = ${q.filters.service}`);
  c.push(
    sql`(tenant, service) NOT IN (SELECT (tenant, service) FROM ${raw(accessTable)} WHERE ${accessConditions})`,
  );
  return sql`SELECT tenant, service, 1 AS from_spans, ${raw(LATENCY_BUCKET_SQL.replace('duration_ms', '(duration_us / 1000)'))} AS bucket,
      count(*) AS c, count(*) FILTER (WHERE ${raw(SPAN_ERROR)}) AS be5,
      count(*) FILTER (WHERE NOT ${raw(SPAN_ERROR)} AND ${raw(SPAN_CODE)} >= 400 AND ${raw(SPAN_CODE)} < 500) AS be4,
      sum(duration_us) / 1000 AS bdsum, 0 AS bbin, 0 AS bbout
    FROM spans WHERE ${where(c)} GROUP BY tenant, service, bucket`;
}

/**
 * redQuery groups requests by `keys` (expressions with aliases; `names` the aliases) into n, e5,
 * e4, dsum, bin, bout and the quantiles `q` of the same histogram the ClickHouse path reads:
 * requests per latency bucket — bucketed from raw rows, or summed from a rollup's bucket rows —
 * cumulated per group; a quantile interpolates between the samples at ranks floor and ceil of
 * q·(n−1), each read as its bucket's midpoint.
 */
function redQuery(
  keys: DuckSql,
  names: string,
  source: SourceUsed,
  conditions: DuckSql,
  tail: DuckSql = raw(''),
  more?: DuckSql,
): DuckSql {
  const rank = (level: number) => `(${level}::DOUBLE * greatest(tot - 1, 0)::DOUBLE)`;
  const picks = QUANTILES.map(
    (level, i) =>
      `min(bucket) FILTER (WHERE cum > floor(${rank(level)})) AS lo${i}, min(bucket) FILTER (WHERE cum > ceil(${rank(level)})) AS hi${i}, any_value(${rank(level)}) AS r${i}`,
  ).join(', ');
  const quantiles = QUANTILES.map(
    (_, i) =>
      `${midpoint(`lo${i}`)} + (${midpoint(`hi${i}`)} - ${midpoint(`lo${i}`)}) * (r${i} - floor(r${i}))`,
  ).join(', ');
  const hist =
    source === 'raw'
      ? sql`SELECT ${keys}, ${raw(LATENCY_BUCKET_SQL)} AS bucket, count(*) AS c, count(*) FILTER (WHERE status >= 500) AS be5,
          count(*) FILTER (WHERE status >= 400 AND status < 500) AS be4, sum(duration_ms) AS bdsum,
          sum(bytes_in) AS bbin, sum(bytes_out) AS bbout
        FROM access_logs WHERE ${conditions} GROUP BY ${raw(names)}, bucket`
      : sql`SELECT ${keys}, bucket, sum(requests) AS c, sum(errors_5xx) AS be5, sum(errors_4xx) AS be4,
          sum(duration_ms_sum) AS bdsum, sum(bytes_in) AS bbin, sum(bytes_out) AS bbout
        FROM ${raw(HISTOGRAM_TABLE[source])} WHERE ${conditions} GROUP BY ${raw(names)}, bucket`;
  return sql`WITH hist AS (${hist}${more ? sql` UNION ALL ${more}` : raw('')}),
    cum AS (
      SELECT *, sum(c) OVER (PARTITION BY ${raw(names)} ORDER BY bucket) AS cum, sum(c) OVER (PARTITION BY ${raw(names)}) AS tot FROM hist),
    agg AS (
      SELECT ${raw(names)}, sum(c) AS n, sum(be5) AS e5, sum(be4) AS e4, sum(bdsum) AS dsum, sum(bbin) AS bin,
        sum(bbout) AS bout, ${raw(picks)}
      FROM cum GROUP BY ${raw(names)})
    SELECT ${raw(names)}, n, n AS hn, e5, e4, dsum, bin, bout, [${raw(quantiles)}] AS q FROM agg ${tail}`;
}

const INSTANCE_SATURATION = raw(`count(*) AS n, avg(event_loop_utilization) AS elu_avg,
  max(event_loop_utilization) AS elu_max, max(event_loop_delay_ms) AS delay_max,
  max(heap_used_bytes) AS heap_used, max(heap_limit_bytes) AS heap_limit,
  max(rss_bytes) AS rss, avg(cpu_ratio) AS cpu,
  max(producer_buffer_events) AS buffered, max(producer_buffer_capacity) AS buffer_cap,
  max(spool_bytes) AS spool, max(spool_capacity_bytes) AS spool_cap`);

const UPSTREAM_SATURATION = raw(`count(*) AS n, avg(one_in_flight) AS if_avg, max(one_in_flight) AS if_max,
  max(one_limit) AS lim, max(one_pool_size) AS ps, avg(one_pool_busy) AS pb_avg,
  max(one_pool_busy) AS pb_max, max(one_pool_pending) AS pp`);

/** One row per upstream sample of each saturation row matching `conditions` (filters on `upstream` apply after). */
function upstreamSamples(columns: DuckSql, conditions: DuckSql): DuckSql {
  return sql`(SELECT ${columns}, unnest(upstream_names) AS upstream, unnest(upstream_in_flight) AS one_in_flight,
      unnest(upstream_concurrency_limit) AS one_limit, unnest(upstream_pool_size) AS one_pool_size,
      unnest(upstream_pool_busy) AS one_pool_busy, unnest(upstream_pool_pending) AS one_pool_pending
    FROM saturation WHERE ${conditions})`;
}

// The proxy's policy decisions over raw rows, under PolicyAggregate's aliases (as the policy
// rollups count them).
const POLICY_RAW = raw(
  [
    `count(*) FILTER (WHERE "cache" = 'hit') AS c_hit`,
    `count(*) FILTER (WHERE "cache" = 'miss') AS c_miss`,
    `count(*) FILTER (WHERE "cache" = 'stale') AS c_stale`,
    ...Object.entries(POLICY_KINDS).map(
      ([alias, kind]) => `count(*) FILTER (WHERE error_kind = '${kind}') AS ${alias}`,
    ),
    'coalesce(sum(retries), 0) AS rt',
  ].join(', '),
);

// Rate-limit use per group: requests a limit applied to, the highest share of a quota used, the largest limit.
const QUOTA_RAW = raw(
  'count(*) FILTER (WHERE ratelimit_limit > 0) AS ql, coalesce(max((ratelimit_limit::DOUBLE - ratelimit_remaining) / ratelimit_limit) FILTER (WHERE ratelimit_limit > 0), 0) AS qu, coalesce(max(ratelimit_limit), 0) AS lim',
);

/** One row per target sample of each saturation row matching `conditions` (filters on upstream and target apply after). */
function targetSamples(columns: DuckSql, conditions: DuckSql): DuckSql {
  return sql`(SELECT ${columns}, unnest(target_upstreams) AS upstream, unnest(target_addresses) AS target,
      unnest(target_states) AS one_state, unnest(target_in_flight) AS one_target_in_flight,
      unnest(target_consecutive_failures) AS one_failures
    FROM saturation WHERE ${conditions})`;
}

/** inList renders `column IN (values)` for a non-empty list of strings. */
function inList(column: string, values: readonly string[]): DuckSql {
  return sql`${raw(column)} IN (${joinSql(
    values.map((v) => sql`${v}`),
    ', ',
  )})`;
}

/**
 * sloLevelSql counts an SLO's good and total requests per time unit of one level, over `ranges`:
 * rollup rows carry the status or bucket in a column; raw rows compute them as the rollups do.
 */
function sloLevelSql(
  scope: Scope,
  q: SloCountsQuery,
  level: SloLevel,
  ranges: readonly TimeRange[],
  plan: SloReadPlan,
): DuckSql {
  const source = sloSource(level, plan);
  const time = raw(source.time);
  const c = tenantCondition(scope);
  const s = q.selector;
  if (s.tenant !== undefined) c.push(sql`tenant = ${s.tenant}`);
  if (source.facet !== undefined)
    c.push(sql`facet = ${source.facet}`, sql`slo_consumer = ${s.consumer ?? ''}`);
  else if (s.consumer !== undefined) c.push(sql`consumer = ${s.consumer}`);
  if (s.service !== undefined) c.push(sql`service = ${s.service}`);
  if (s.route !== undefined) c.push(sql`route = ${s.route}`);
  if (s.method !== undefined) c.push(sql`method = ${s.method}`);
  c.push(
    sql`(${joinSql(
      ranges.map((r) => sql`(${time} >= ${r.from} AND ${time} < ${r.to})`),
      ' OR ',
    )})`,
  );
  const n = raw(source.value ? 'requests' : '1');
  let good: DuckSql;
  if (q.sli.kind === 'latency') {
    good = sql`${raw(source.value ?? LATENCY_BUCKET_SQL)} <= ${plan.maxBucket ?? 0}`;
  } else {
    const status = raw(source.value ?? 'status');
    const list = (values: readonly number[]) =>
      joinSql(
        values.map((v) => sql`${v}`),
        ', ',
      );
    if (q.sli.ignoredStatuses.length > 0) c.push(sql`${status} NOT IN (${list(q.sli.ignoredStatuses)})`);
    const { classes, codes } = badStatusParts(q.sli.badStatuses);
    const bad: DuckSql[] = [];
    if (classes.length > 0) bad.push(sql`${status} // 100 IN (${list(classes)})`);
    if (codes.length > 0) bad.push(sql`${status} IN (${list(codes)})`);
    good = sql`NOT (${joinSql(bad, ' OR ')})`;
  }
  return sql`SELECT ${time} AS t, sum(CASE WHEN ${good} THEN ${n} ELSE 0 END) AS good, sum(${n}) AS total
    FROM ${raw(source.table)} WHERE ${where(c)} GROUP BY t`;
}

/** sloLevelsSql reads one level for several SLOs: a branch each, its rows tagged q (the part's index). */
function sloLevelsSql(scope: Scope, level: SloLevel, parts: readonly SloLevelPart[]): DuckSql {
  return joinSql(
    parts.map(
      (p) =>
        sql`SELECT ${p.index} AS q, t, good, total FROM (${sloLevelSql(scope, p.query, level, p.ranges, p.plan)})`,
    ),
    ' UNION ALL ',
  );
}

/**
 * createDuckDbStore answers the Store's questions from the embedded DuckDB database, with the
 * same answers as the ClickHouse store (the analytics contract suite runs both): RED overviews and
 * series read the route latency histograms per hour or minute when they answer exactly (as on
 * ClickHouse), else raw rows; saturation is read from raw samples (a few per instance and second)
 * at any resolution. The database belongs to its opener: close() leaves it open.
 */
export function createDuckDbStore(db: DuckDb, options: Partial<DuckDbStoreOptions> = {}): Store {
  const opts: DuckDbStoreOptions = { ...DEFAULT_OPTIONS, ...options };

  async function run<T>(statement: DuckSql): Promise<T[]> {
    const started = performance.now();
    const text = statement.render().text;
    try {
      const rows = await db.query<T>(statement, { timeoutMs: opts.maxExecutionTimeS * 1000 });
      if (rows.length > opts.maxResultRows) throw new AnalyticsError('TAPWIRE_ANALYTICS_TOO_MANY_ROWS');
      opts.onQuery?.({ sql: text, ms: performance.now() - started });
      return rows;
    } catch (err) {
      const mapped = mapError(err);
      opts.onQuery?.({ sql: text, ms: performance.now() - started, error: mapped });
      throw mapped;
    }
  }

  function newestAccessLogs(conditions: DuckSql[], limit: number): Promise<StoredLog[]> {
    return run<StoredLog>(sql`SELECT ${raw(LOG_COLUMNS)} FROM access_logs WHERE ${where(conditions)}
      ORDER BY ts_us DESC, id DESC LIMIT ${limit}`);
  }

  async function attachExemplars(scope: Scope, q: SeriesQuery, points: SeriesPoint[]): Promise<void> {
    const targets = exemplarTargets(q, points);
    if (targets.length === 0) return;
    const b = sql`(ts - ${q.range.from}) // ${q.stepS}`;
    const picks = joinSql(
      targets.map(
        (t, i) =>
          sql`arg_min(struct_pack(t := trace_id, d := duration_ms), abs(duration_ms - list_extract(${t.values}::DOUBLE[], (${b} + 1)::INTEGER))) AS ${raw(`x_${i}`)}`,
      ),
      ', ',
    );
    const conditions = [
      ...requestConditions(scope, q.filters),
      ...timeConditions(q.range),
      raw("trace_id <> ''"),
    ];
    const rows = await run<Record<string, unknown> & { b: Num }>(
      sql`SELECT ${b} AS b, ${picks} FROM access_logs WHERE ${where(conditions)} GROUP BY 1`,
    );
    const picked = rows.map((r) => {
      const out: Record<string, unknown> & { b: Num } = { b: r.b };
      targets.forEach((_, i) => {
        const x = r[`x_${i}`] as { t: string; d: Num } | null;
        out[`x_${i}`] = x ? [x.t, x.d] : null;
      });
      return out;
    });
    applyExemplars(points, targets, picked);
  }

  return {
    kind: 'duckdb',
    async overview(scope, q) {
      const source = chooseSource(q.source, q.range, undefined, q.filters, { hourly: true });
      const names = q.groupBy === 'route' ? 'tenant, service, route, method' : 'tenant, service';
      const conditions = where([
        ...requestConditions(scope, q.filters),
        ...timeConditions(q.range, TIME_COLUMN[source]),
      ]);
      const dir = q.order === 'asc' ? 'ASC' : 'DESC';
      const tail = sql`ORDER BY ${raw(`${OVERVIEW_ORDER_COLUMN[q.sort]} ${dir}`)}, ${raw(names)} LIMIT ${q.limit + 1} OFFSET ${q.offset}`;
      type Row = RedAggregate & {
        tenant: string;
        service: string;
        route?: string;
        method?: string;
        spans?: Num;
      };
      let rows: Row[];
      if (!spanOnlyServices(q)) rows = await run<Row>(redQuery(raw(names), names, source, conditions, tail));
      else {
        // Services with access logs, then services that report only SERVER spans, paged together.
        const accessTable = source === 'raw' ? 'access_logs' : HISTOGRAM_TABLE[source];
        const both = await run<Row & { from_spans: Num }>(
          redQuery(
            raw(`${names}, 0 AS from_spans`),
            `${names}, from_spans`,
            source,
            conditions,
            tail,
            spanOnlyHistogram(scope, q, accessTable, conditions),
          ),
        );
        rows = both.map((r) => ({ ...r, spans: r.from_spans }));
      }
      // The page's policy decisions from the same level (policy rollup or raw rows), narrowed to its services.
      const services = pageValues(rows, 'service', q.limit);
      const policies =
        services.length === 0
          ? []
          : await run<PolicyAggregate & Record<string, unknown>>(
              sql`SELECT ${raw(names)}, ${source === 'raw' ? POLICY_RAW : raw(POLICY_ROLLUP_COLUMNS)}
              FROM ${raw(source === 'raw' ? 'access_logs' : POLICY_ROLLUP_TABLE[source])}
              WHERE ${conditions} AND ${inList('service', services)} GROUP BY ${raw(names)}`,
            );
      return overviewResult(q, source, rows, policyMap(policies, overviewKeys(q)));
    },

    async series(scope, q) {
      const source = chooseSource(q.source, q.range, q.stepS, q.filters, { hourly: true });
      const time = TIME_COLUMN[source];
      const conditions = where([...requestConditions(scope, q.filters), ...timeConditions(q.range, time)]);
      const rows = await run<RedAggregate & { b: Num }>(
        redQuery(
          sql`(${raw(time)} - ${q.range.from}) // ${q.stepS} AS b`,
          'b',
          source,
          conditions,
          raw('ORDER BY b'),
        ),
      );
      const points = seriesPoints(q, rows);
      await attachExemplars(scope, q, points);
      return { source, from: q.range.from, to: q.range.to, step: q.stepS, points };
    },

    async saturation(scope, q) {
      const source = chooseSource(
        q.source === 'rollup_1h' ? 'rollup_1m' : q.source,
        q.range,
        q.stepS,
        undefined,
      );
      const b = sql`(ts - ${q.range.from}) // ${q.stepS} AS b`;
      const base = [...timeConditions(q.range), ...tenantCondition(scope)];
      if (q.service !== undefined) base.push(sql`service = ${q.service}`);
      if (q.instance !== undefined) base.push(sql`instance = ${q.instance}`);
      const upstream = q.upstream !== undefined ? sql`upstream = ${q.upstream}` : raw('TRUE');
      const [instances, upstreams, targets] = await Promise.all([
        run<InstanceSaturationRow>(sql`SELECT tenant, service, instance, ${b}, ${INSTANCE_SATURATION}
          FROM saturation WHERE ${where(base)}
          GROUP BY tenant, service, instance, b ORDER BY tenant, service, instance, b`),
        run<
          InstanceSaturationRow & { upstream: string }
        >(sql`SELECT tenant, service, instance, upstream, b, ${UPSTREAM_SATURATION}
          FROM ${upstreamSamples(sql`tenant, service, instance, ${b}`, where(base))}
          WHERE ${upstream}
          GROUP BY tenant, service, instance, upstream, b ORDER BY tenant, service, instance, upstream, b`),
        run<
          InstanceSaturationRow & { upstream: string; target: string; state: string }
        >(sql`SELECT tenant, service, instance, upstream, target, b, count(*) AS n,
            count(*) FILTER (WHERE one_state = 'healthy') AS healthy, count(*) FILTER (WHERE one_state = 'unhealthy') AS unhealthy,
            count(*) FILTER (WHERE one_state = 'ejected') AS ejected, arg_max(one_state, ts_us) AS state,
            max(one_target_in_flight) AS if_max, max(one_failures) AS cf_max
          FROM ${targetSamples(sql`tenant, service, instance, ts_us, ${b}`, where(base))}
          WHERE ${upstream}
          GROUP BY tenant, service, instance, upstream, target, b ORDER BY tenant, service, instance, upstream, target, b`),
      ]);
      return saturationResult(q, source, instances, upstreams, targets);
    },

    async consumers(scope, q) {
      const conditions = where([
        ...requestConditions(scope, q.filters),
        ...timeConditions(q.range),
        raw("consumer <> ''"),
      ]);
      const names = 'tenant, consumer';
      const dir = q.order === 'asc' ? 'ASC' : 'DESC';
      const rows = await run<RedAggregate & { tenant: string; consumer: string }>(
        redQuery(
          raw(names),
          names,
          'raw',
          conditions,
          sql`ORDER BY ${raw(`${CONSUMER_ORDER_COLUMN[q.sort]} ${dir}`)}, ${raw(names)} LIMIT ${q.limit + 1} OFFSET ${q.offset}`,
        ),
      );
      const consumers = pageValues(rows, 'consumer', q.limit);
      const policies =
        consumers.length === 0
          ? []
          : await run<PolicyAggregate & Record<string, unknown>>(
              sql`SELECT ${raw(names)}, ${POLICY_RAW}, ${QUOTA_RAW} FROM access_logs
              WHERE ${conditions} AND ${inList('consumer', consumers)} GROUP BY ${raw(names)}`,
            );
      return consumersResult(q, rows, policyMap(policies, CONSUMER_KEYS));
    },

    async trace(scope, q): Promise<TraceResult | null> {
      const [found] = await run<{ tenant: string }>(
        sql`SELECT tenant, min(ts_us) AS s FROM spans WHERE ${where([sql`trace_id = ${q.traceId}`, ...tenantCondition(scope)])}
        GROUP BY tenant ORDER BY s LIMIT 1`,
      );
      if (!found) return null;
      const spans = await run<StoredSpan>(
        sql`SELECT id, span_id, parent_span_id, name, kind, service, status, status_message, ts_us, duration_us, attr_keys, attr_values,
          resource_keys, resource_values, scope_name, scope_version, events_json, links_json
        FROM spans WHERE tenant = ${found.tenant} AND trace_id = ${q.traceId} ORDER BY ts_us, span_id`,
      );
      if (spans.length === 0) return null;
      return buildSpanTree(q.traceId, found.tenant, spans);
    },

    async recentTraces(scope, q) {
      const conditions = [
        ...requestConditions(scope, q.filters),
        ...timeConditions(q.range),
        raw("trace_id <> ''"),
      ];
      if (q.status !== undefined) conditions.push(sql`status = ${q.status}`);
      if (q.minDurationMs !== undefined) conditions.push(sql`duration_ms >= ${q.minDurationMs}`);
      return recentTracesResult(await newestAccessLogs(conditions, q.limit));
    },

    async logs(scope, q) {
      const conditions = [...requestConditions(scope, q.filters), ...timeConditions(q.range)];
      if (q.status !== undefined) conditions.push(sql`status = ${q.status}`);
      if (q.errorKind !== undefined) conditions.push(sql`error_kind = ${q.errorKind}`);
      if (q.traceId !== undefined) conditions.push(sql`trace_id = ${q.traceId}`);
      if (q.minDurationMs !== undefined) conditions.push(sql`duration_ms >= ${q.minDurationMs}`);
      if (q.pathPrefix !== undefined) conditions.push(sql`starts_with(path, ${q.pathPrefix})`);
      if (q.cursor)
        conditions.push(
          sql`(ts_us < ${q.cursor.tsUs} OR (ts_us = ${q.cursor.tsUs} AND id < ${q.cursor.id}))`,
        );
      return logsResult(q, await newestAccessLogs(conditions, q.limit));
    },

    async pipeline(scope, q) {
      const window = timeConditions(q.range);
      const scoped = where([...window, ...tenantCondition(scope)]);
      const [lag, dlq, proxies] = await Promise.all([
        // Topics are shared by every tenant: their lag and high-watermarks are installation-wide figures.
        scope.tenant !== null
          ? []
          : run<Record<string, Num> & { consumer_group: string; topic: string }>(
              sql`SELECT consumer_group, topic, partition, arg_max(lag, ts) AS l, arg_max(high_watermark, ts) AS hw, max(ts) AS at
          FROM consumer_lag WHERE ${where(window)}
          GROUP BY consumer_group, topic, partition ORDER BY consumer_group, topic, partition`,
            ),
        run<{ source_topic: string; n: Num; reason: string }>(
          sql`SELECT source_topic, count(*) AS n, arg_max(reason, ts_us) AS reason
          FROM dlq_events WHERE ${scoped} GROUP BY source_topic ORDER BY source_topic`,
        ),
        run<Record<string, Num> & { tenant: string; service: string; instance: string }>(
          sql`SELECT tenant, service, instance,
            max(producer_dropped_events) - min(producer_dropped_events) AS dropped,
            max(producer_buffer_events) AS buffered, max(producer_buffer_capacity) AS buffer_cap,
            max(spool_bytes) AS spool, max(spool_capacity_bytes) AS spool_cap,
            max(spool_bytes / greatest(spool_capacity_bytes, 1)) AS fill, max(ts) AS last_seen
          FROM saturation WHERE ${scoped}
          GROUP BY tenant, service, instance ORDER BY tenant, service, instance`,
        ),
      ]);
      return pipelineResult(q, lag, dlq, proxies);
    },

    async signal(scope, q) {
      const dims = signalDimensions(q);
      const names = dims.length > 0 ? dims.join(', ') : '_all';
      const keys = raw(dims.length > 0 ? names : '0 AS _all');
      const conditions = [...timeConditions(q.range), ...tenantCondition(scope)];
      for (const [dim, value] of Object.entries(q.filters))
        conditions.push(sql`${raw(dim)} = ${value as string}`);
      if (q.kind === 'saturation' && q.metric === 'targets_unhealthy') {
        // Targets not healthy per sample (`bad`), then the most in any sample of the window.
        const rows = await run<Record<string, unknown> & { v: Num; n: Num }>(
          sql`SELECT ${raw(names)}, max(bad) AS v, count(*) AS n FROM (
            SELECT ${keys}, id, count(*) FILTER (WHERE one_state <> 'healthy') AS bad
            FROM ${targetSamples(raw('*'), raw('TRUE'))} s WHERE ${where(conditions)} GROUP BY ${raw(names)}, id)
          GROUP BY ${raw(names)}`,
        );
        return saturationSignal(dims, rows);
      }
      if (POLICY_SIGNAL_KINDS.includes(q.kind)) {
        const rows = await run<PolicyAggregate & Record<string, unknown> & { n: Num }>(
          sql`SELECT ${keys}, count(*) AS n, ${POLICY_RAW}, ${QUOTA_RAW} FROM access_logs
          WHERE ${where(conditions)} GROUP BY ${raw(names)}`,
        );
        return policySignal(q, dims, rows);
      }
      if (q.kind === 'saturation') {
        const metric = SATURATION_SIGNAL[q.metric ?? 'event_loop_utilization'];
        const from = metric.upstream ? sql`${upstreamSamples(raw('*'), raw('TRUE'))} s` : raw('saturation');
        const rows = await run<Record<string, unknown> & { v: Num; n: Num }>(
          sql`SELECT ${keys}, ${raw(metric.expr)} AS v, count(*) AS n FROM ${from} WHERE ${where(conditions)} GROUP BY ${raw(names)}`,
        );
        return saturationSignal(dims, rows);
      }
      const rows = await run<RedAggregate & Record<string, unknown>>(
        redQuery(keys, names, 'raw', where(conditions)),
      );
      return requestSignal(q, dims, rows);
    },

    async alerts(scope, q) {
      // The latest state record of each series over the last 30 days (delivery records excluded).
      const conditions = [raw("receiver = ''"), sql`ts >= ${q.now - 30 * 86_400}`, ...tenantCondition(scope)];
      if (q.ruleId !== undefined) conditions.push(sql`rule_id = ${q.ruleId}`);
      const listed = [
        sql`(st IN ('pending', 'firing', 'recovering') OR (st = 'resolved' AND since >= ${(q.now - RESOLVED_LISTED_S) * 1_000_000}))`,
      ];
      if (q.state !== undefined) listed.push(sql`st = ${q.state}`);
      const rows = await run<StoredAlert>(
        sql`SELECT * FROM (
          SELECT fingerprint, arg_max(tenant, ts_us) AS tn, arg_max(rule_id, ts_us) AS rid, arg_max(state, ts_us) AS st,
            arg_max(label_keys, ts_us) AS k, arg_max(label_values, ts_us) AS lv, arg_max(value, ts_us) AS v,
            arg_max(has_value, ts_us) AS hv, arg_max(threshold, ts_us) AS th, arg_max(since_us, ts_us) AS since,
            arg_max(active_at_us, ts_us) AS act, arg_max(fired_at_us, ts_us) AS fired, max(ts_us) AS updated
          FROM alert_history WHERE ${where(conditions)} GROUP BY fingerprint)
        WHERE ${where(listed)} ORDER BY rid, fingerprint LIMIT 10000`,
      );
      return alertsResult(rows);
    },

    async alertHistory(scope, q) {
      const conditions = [...timeConditions(q.range), ...tenantCondition(scope)];
      if (q.ruleId !== undefined) conditions.push(sql`rule_id = ${q.ruleId}`);
      if (q.fingerprint !== undefined) conditions.push(sql`fingerprint = ${q.fingerprint}`);
      const rows = await run<StoredAlertEvent>(
        sql`SELECT id, tenant, ts_us, rule_id, fingerprint, label_keys, label_values, state, value, has_value, threshold, since_us, receiver
        FROM alert_history WHERE ${where(conditions)} ORDER BY ts_us DESC, id DESC LIMIT ${q.limit}`,
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
      try {
        await db.query(raw('SELECT 1'));
        return true;
      } catch {
        return false;
      }
    },

    async close() {
      // The database is shared with ingest in the embedded deployment; its opener closes it.
    },
  };
}
