import { AnalyticsError } from './errors.js';
import type { SourceUsed } from './plan.js';
import {
  type ConsumersQuery,
  type LogsQuery,
  type OverviewQuery,
  type PipelineQuery,
  QUANTILES,
  type SaturationQuery,
  type SeriesQuery,
  type SignalQuery,
} from './queries.js';
import type {
  AccessLogRow,
  AlertHistoryResult,
  AlertsResult,
  ConsumersResult,
  LogsResult,
  OverviewResult,
  PipelineResult,
  RecentTracesResult,
  RedRow,
  SaturationResult,
  SeriesPoint,
  SignalResult,
} from './results.js';

/**
 * Turning stored rows into answers, shared by every Store: each store's SQL returns rows under
 * these aliases, so the answers are shaped (and rounded) by one piece of code.
 */

/** TIME_COLUMN is the time column of each source: a raw table's `ts`, a rollup's bucket start. */
export const TIME_COLUMN = { raw: 'ts', rollup_1m: 'minute', rollup_1h: 'hour' } as const satisfies Record<
  SourceUsed,
  string
>;

/**
 * spanOnlyServices says whether an overview also lists services that report only spans (apps
 * sending OTLP, no access logs): per service only, and only when no filter names an access-log
 * field spans do not have (route, method, consumer, status class).
 */
export function spanOnlyServices(q: OverviewQuery): boolean {
  const f = q.filters;
  return (
    q.groupBy === 'service' &&
    f.route === undefined &&
    f.method === undefined &&
    f.consumer === undefined &&
    f.statusClass === undefined
  );
}

/**
 * SPAN_STATUS_CODE_KEYS are the attributes a span's HTTP status code is read from, first present
 * wins: the current semantic convention, then the pre-1.21 one older SDKs still send.
 */
export const SPAN_STATUS_CODE_KEYS = ['http.response.status_code', 'http.status_code'] as const;

/** HISTOGRAM_TABLE is the route latency histogram each rollup source reads (same name in both stores). */
export const HISTOGRAM_TABLE = { rollup_1m: 'route_histogram_1m', rollup_1h: 'route_histogram_1h' } as const;

/** Num is a number as a database driver may return it (64-bit integers as strings). */
export type Num = number | string;

/** num reads a driver number; null, undefined and non-finite values read as 0. */
export function num(v: Num | null | undefined): number {
  if (v === null || v === undefined) return 0;
  const n = typeof v === 'number' ? v : Number(v);
  return Number.isFinite(n) ? n : 0;
}

/** ratio is part/whole, 0 for an empty whole. */
export function ratio(part: number, whole: number): number {
  return whole > 0 ? part / whole : 0;
}

/** quantileOrNull reads quantile i (1-based in QUANTILES) of q, rounded to microseconds; null without samples. */
export function quantileOrNull(q: readonly Num[] | undefined | null, i: number, count: Num): number | null {
  if (num(count) === 0 || !q) return null;
  const v = Number(q[i - 1]);
  return Number.isFinite(v) ? Math.round(v * 1000) / 1000 : null;
}

/** quantileIndex is the 1-based position of a level in QUANTILES (and in every row's `q`). */
export function quantileIndex(level: number): number {
  return QUANTILES.indexOf(level as (typeof QUANTILES)[number]) + 1;
}

/** RedAggregate is a group of requests: count, errors, the histogram's total and quantiles `q` (QUANTILES order), sums. */
export interface RedAggregate {
  n: Num;
  hn: Num;
  e5: Num;
  e4: Num;
  q: Num[] | null;
  dsum: Num;
  bin: Num;
  bout: Num;
}

/** OVERVIEW_ORDER_COLUMN maps an overview sort to the aggregate it orders by (q is 1-based). */
export const OVERVIEW_ORDER_COLUMN: Record<OverviewQuery['sort'], string> = {
  p99: 'q[4]',
  p95: 'q[3]',
  p90: 'q[2]',
  p50: 'q[1]',
  errors: 'e5',
  error_rate: 'e5 / n',
  rate: 'n',
  bytes: 'bin + bout',
};

/** CONSUMER_ORDER_COLUMN maps a consumer sort to the aggregate it orders by. */
export const CONSUMER_ORDER_COLUMN: Record<ConsumersQuery['sort'], string> = {
  rate: 'n',
  errors: 'e5',
  error_rate: 'e5 / n',
  p99: 'q[4]',
};

function latencyOf(row: RedAggregate): RedRow['latency_ms'] {
  return {
    p50: quantileOrNull(row.q, 1, row.hn),
    p90: quantileOrNull(row.q, 2, row.hn),
    p95: quantileOrNull(row.q, 3, row.hn),
    p99: quantileOrNull(row.q, 4, row.hn),
  };
}

/** redValues turns a RED aggregate row into rate, errors and latency over `seconds`. */
export function redValues(r: RedAggregate, seconds: number) {
  const n = num(r.n);
  const e5 = num(r.e5);
  const e4 = num(r.e4);
  return {
    requests: n,
    rate_rps: n / seconds,
    errors_5xx: e5,
    errors_4xx: e4,
    error_rate_5xx: ratio(e5, n),
    error_rate_4xx: ratio(e4, n),
    latency_ms: latencyOf(r),
  };
}

/**
 * PolicyAggregate is what the proxy's policies decided for a group of requests, under the aliases
 * every store's policy query returns: cache hits, misses and stale answers, auth failures by kind,
 * rate-limited and no-healthy-target refusals, summed retries; per consumer also the requests a
 * rate limit applied to (ql), the highest share of a quota used (qu) and the largest limit (lim).
 */
export interface PolicyAggregate {
  c_hit: Num;
  c_miss: Num;
  c_stale: Num;
  a_missing: Num;
  a_invalid: Num;
  a_forbidden: Num;
  rl: Num;
  nht: Num;
  rt: Num;
  ql?: Num;
  qu?: Num | null;
  lim?: Num;
}

/** POLICY_KINDS are the error kinds a policy aggregate counts, with their aliases. */
export const POLICY_KINDS = {
  a_missing: 'auth_missing',
  a_invalid: 'auth_invalid',
  a_forbidden: 'forbidden',
  rl: 'rate_limited',
  nht: 'no_healthy_target',
} as const;

/** POLICY_ROLLUP_TABLE is the policy rollup each rollup source reads (same name in both stores). */
export const POLICY_ROLLUP_TABLE = { rollup_1m: 'policy_stats_1m', rollup_1h: 'policy_stats_1h' } as const;

/** POLICY_ROLLUP_COLUMNS sums a policy rollup's counts under PolicyAggregate's aliases (both stores). */
export const POLICY_ROLLUP_COLUMNS =
  'sum(cache_hits) AS c_hit, sum(cache_misses) AS c_miss, sum(cache_stale) AS c_stale, sum(auth_missing) AS a_missing, sum(auth_invalid) AS a_invalid, sum(forbidden) AS a_forbidden, sum(rate_limited) AS rl, sum(no_healthy_target) AS nht, sum(retries) AS rt';

/** policyValues shapes a policy aggregate (none: a group no policy row was found for). */
export function policyValues(p: PolicyAggregate | undefined) {
  const hit = num(p?.c_hit) + num(p?.c_stale);
  const lookups = hit + num(p?.c_miss);
  return {
    rate_limited: num(p?.rl),
    auth_failures: {
      missing: num(p?.a_missing),
      invalid: num(p?.a_invalid),
      forbidden: num(p?.a_forbidden),
    },
    cache_hit_ratio: lookups > 0 ? hit / lookups : null,
    retries: num(p?.rt),
    no_healthy_target: num(p?.nht),
  };
}

/** policyKey is the key a policy row is matched to its RED row by. */
export function policyKey(row: object, keys: readonly string[]): string {
  const r = row as Record<string, unknown>;
  return JSON.stringify(keys.map((k) => String(r[k] ?? '')));
}

/** overviewResult shapes one page of overview rows (fetched with limit + 1 to learn has_more). */
export function overviewResult(
  q: OverviewQuery,
  source: SourceUsed,
  rows: readonly (RedAggregate & {
    tenant: string;
    service: string;
    route?: string;
    method?: string;
    /** 1 for a row computed from SERVER spans (a service without access logs). */
    spans?: Num;
  })[],
  policies: ReadonlyMap<string, PolicyAggregate> = new Map(),
): OverviewResult {
  const byRoute = q.groupBy === 'route';
  const keys = overviewKeys(q);
  const seconds = q.range.to - q.range.from;
  return {
    source,
    from: q.range.from,
    to: q.range.to,
    has_more: rows.length > q.limit,
    rows: rows.slice(0, q.limit).map((r) => {
      const n = num(r.n);
      const fromSpans = num(r.spans ?? 0) === 1;
      return {
        tenant: r.tenant,
        service: r.service,
        ...(byRoute ? { route: r.route ?? '', method: r.method ?? '' } : {}),
        ...redValues(r, seconds),
        // Sums of floats differ in the last digit with summation order; microseconds are plenty.
        avg_ms: n > 0 ? Math.round((num(r.dsum) / n) * 1000) / 1000 : null,
        bytes_in: num(r.bin),
        bytes_out: num(r.bout),
        ...policyValues(fromSpans ? undefined : policies.get(policyKey(r, keys))),
        ...(fromSpans ? { basis: 'spans' as const } : {}),
      };
    }),
  };
}

/** overviewKeys are the columns an overview groups by. */
export function overviewKeys(q: OverviewQuery): readonly string[] {
  return q.groupBy === 'route' ? ['tenant', 'service', 'route', 'method'] : ['tenant', 'service'];
}

/** pageValues lists the distinct values of `key` among a page's rows (to narrow its policy query). */
export function pageValues(rows: readonly object[], key: string, limit: number): string[] {
  return [...new Set(rows.slice(0, limit).map((r) => String((r as Record<string, unknown>)[key] ?? '')))];
}

/** policyMap indexes policy rows by their key columns. */
export function policyMap(
  rows: readonly (PolicyAggregate & Record<string, unknown>)[],
  keys: readonly string[],
): Map<string, PolicyAggregate> {
  return new Map(rows.map((r) => [policyKey(r, keys), r]));
}

/** seriesPoints shapes every step of the window from per-step rows (`b` = step index); empty steps are zeros. */
export function seriesPoints(q: SeriesQuery, rows: readonly (RedAggregate & { b: Num })[]): SeriesPoint[] {
  const { from, to } = q.range;
  const step = q.stepS;
  const count = Math.ceil((to - from) / step);
  const byBucket = new Map(rows.map((r) => [num(r.b), r]));
  const levels = [...q.quantiles].sort((a, b) => a - b);
  const points: SeriesPoint[] = [];
  for (let b = 0; b < count; b++) {
    const r = byBucket.get(b);
    const n = r ? num(r.n) : 0;
    const e5 = r ? num(r.e5) : 0;
    const e4 = r ? num(r.e4) : 0;
    const latency: Record<string, number | null> = {};
    for (const level of levels)
      latency[`p${Math.round(level * 100)}`] = r ? quantileOrNull(r.q, quantileIndex(level), r.hn) : null;
    points.push({
      t: from + b * step,
      requests: n,
      rate_rps: n / Math.min(step, to - (from + b * step)),
      errors_5xx: e5,
      errors_4xx: e4,
      error_rate_5xx: ratio(e5, n),
      error_rate_4xx: ratio(e4, n),
      latency_ms: latency,
      exemplars: {},
    });
  }
  return points;
}

/** ExemplarTarget is one quantile level's value per step, which an exemplar should be nearest to. */
export interface ExemplarTarget {
  readonly key: string;
  readonly values: number[];
}

/** exemplarTargets lists, per requested level, the quantile of every step (null steps as 0); none without data. */
export function exemplarTargets(q: SeriesQuery, points: readonly SeriesPoint[]): ExemplarTarget[] {
  if (!points.some((p) => p.requests > 0)) return [];
  return [...q.quantiles]
    .sort((a, b) => a - b)
    .map((level) => {
      const key = `p${Math.round(level * 100)}`;
      return { key, values: points.map((p) => p.latency_ms[key] ?? 0) };
    });
}

/** applyExemplars puts each step's picks (`x_i` = [trace id, duration] for target i) on the points. */
export function applyExemplars(
  points: SeriesPoint[],
  targets: readonly ExemplarTarget[],
  rows: readonly (Record<string, unknown> & { b: Num })[],
): void {
  for (const r of rows) {
    const point = points[num(r.b)];
    if (!point) continue;
    targets.forEach((t, i) => {
      const pick = r[`x_${i}`] as [string, Num] | null | undefined;
      if (pick && point.latency_ms[t.key] !== null)
        point.exemplars[t.key] = [{ trace_id: pick[0], duration_ms: num(pick[1]) }];
    });
  }
}

/** InstanceSaturationRow is one instance's aggregate over one step (`b`). */
export type InstanceSaturationRow = Record<string, Num> & {
  tenant: string;
  service: string;
  instance: string;
};

/** saturationResult groups per-step instance and upstream rows (ordered by series, then step) into series. */
export function saturationResult(
  q: SaturationQuery,
  source: SourceUsed,
  instances: readonly InstanceSaturationRow[],
  upstreams: readonly (InstanceSaturationRow & { upstream: string })[],
  targets: readonly (InstanceSaturationRow & { upstream: string; target: string; state: string })[] = [],
): SaturationResult {
  const { from, to } = q.range;
  const step = q.stepS;
  const result: SaturationResult = { source, from, to, step, instances: [], upstreams: [], targets: [] };
  const instanceSeries = new Map<string, SaturationResult['instances'][number]>();
  for (const r of instances) {
    const key = JSON.stringify([r.tenant, r.service, r.instance]);
    let series = instanceSeries.get(key);
    if (!series) {
      series = { tenant: r.tenant, service: r.service, instance: r.instance, points: [] };
      instanceSeries.set(key, series);
      result.instances.push(series);
    }
    series.points.push({
      t: from + num(r.b) * step,
      samples: num(r.n),
      event_loop_utilization_avg: num(r.elu_avg),
      event_loop_utilization_max: num(r.elu_max),
      event_loop_delay_ms_max: num(r.delay_max),
      heap_used_bytes_max: num(r.heap_used),
      heap_limit_bytes: num(r.heap_limit),
      rss_bytes_max: num(r.rss),
      cpu_ratio_avg: num(r.cpu),
      producer_buffer_events_max: num(r.buffered),
      producer_buffer_capacity: num(r.buffer_cap),
      spool_bytes_max: num(r.spool),
      spool_capacity_bytes: num(r.spool_cap),
    });
  }
  const upstreamSeries = new Map<string, SaturationResult['upstreams'][number]>();
  for (const r of upstreams) {
    const key = JSON.stringify([r.tenant, r.service, r.instance, r.upstream]);
    let series = upstreamSeries.get(key);
    if (!series) {
      series = {
        tenant: r.tenant,
        service: r.service,
        instance: r.instance,
        upstream: r.upstream,
        points: [],
      };
      upstreamSeries.set(key, series);
      result.upstreams.push(series);
    }
    series.points.push({
      t: from + num(r.b) * step,
      samples: num(r.n),
      in_flight_avg: num(r.if_avg),
      in_flight_max: num(r.if_max),
      concurrency_limit: num(r.lim),
      pool_size_max: num(r.ps),
      pool_busy_avg: num(r.pb_avg),
      pool_busy_max: num(r.pb_max),
      pool_pending_max: num(r.pp),
    });
  }
  const targetSeries = new Map<string, SaturationResult['targets'][number]>();
  for (const r of targets) {
    const key = JSON.stringify([r.tenant, r.service, r.instance, r.upstream, r.target]);
    let series = targetSeries.get(key);
    if (!series) {
      series = {
        tenant: r.tenant,
        service: r.service,
        instance: r.instance,
        upstream: r.upstream,
        target: r.target,
        points: [],
      };
      targetSeries.set(key, series);
      result.targets.push(series);
    }
    series.points.push({
      t: from + num(r.b) * step,
      samples: num(r.n),
      state: r.state === 'unhealthy' || r.state === 'ejected' ? r.state : 'healthy',
      healthy_samples: num(r.healthy),
      unhealthy_samples: num(r.unhealthy),
      ejected_samples: num(r.ejected),
      in_flight_max: num(r.if_max),
      consecutive_failures_max: num(r.cf_max),
    });
  }
  return result;
}

/** consumersResult shapes one page of per-consumer rows (fetched with limit + 1). */
export function consumersResult(
  q: ConsumersQuery,
  rows: readonly (RedAggregate & { tenant: string; consumer: string })[],
  policies: ReadonlyMap<string, PolicyAggregate> = new Map(),
): ConsumersResult {
  const seconds = q.range.to - q.range.from;
  return {
    from: q.range.from,
    to: q.range.to,
    has_more: rows.length > q.limit,
    rows: rows.slice(0, q.limit).map((r) => {
      const p = policies.get(policyKey(r, CONSUMER_KEYS));
      return {
        tenant: r.tenant,
        consumer: r.consumer,
        ...redValues(r, seconds),
        ...policyValues(p),
        quota_used: num(p?.ql) > 0 ? num(p?.qu) : null,
        ratelimit_limit: num(p?.lim),
      };
    }),
  };
}

/** CONSUMER_KEYS are the columns per-consumer rows are grouped by. */
export const CONSUMER_KEYS = ['tenant', 'consumer'] as const;

/** LOG_COLUMNS are the access-log columns a log page or recent-trace list reads. */
export const LOG_COLUMNS =
  'id, tenant, ts_us, trace_id, span_id, service, upstream, route, method, status, duration_ms, upstream_ms, bytes_in, bytes_out, consumer, client_address, user_agent, path, query, error_kind, "cache", target, retries, ratelimit_limit, ratelimit_remaining';

/** StoredLog is an access-log row as a driver returns it. */
export interface StoredLog
  extends Omit<
    AccessLogRow,
    'ts_us' | 'bytes_in' | 'bytes_out' | 'status' | 'retries' | 'ratelimit_limit' | 'ratelimit_remaining'
  > {
  ts_us: Num;
  bytes_in: Num;
  bytes_out: Num;
  status: Num;
  retries: Num;
  ratelimit_limit: Num;
  ratelimit_remaining: Num;
}

/** recentTracesResult shapes the newest matching requests as trace summaries. */
export function recentTracesResult(rows: readonly StoredLog[]): RecentTracesResult {
  return {
    traces: rows.map((r) => ({
      trace_id: r.trace_id,
      tenant: r.tenant,
      ts_us: num(r.ts_us),
      service: r.service,
      route: r.route,
      method: r.method,
      status: num(r.status),
      duration_ms: num(r.duration_ms),
      error_kind: r.error_kind,
    })),
  };
}

/** logsResult shapes a log page; a full page carries the cursor of its last row. */
export function logsResult(q: LogsQuery, stored: readonly StoredLog[]): LogsResult {
  const rows: AccessLogRow[] = stored.map((r) => ({
    ...r,
    ts_us: num(r.ts_us),
    status: num(r.status),
    duration_ms: num(r.duration_ms),
    upstream_ms: num(r.upstream_ms),
    bytes_in: num(r.bytes_in),
    bytes_out: num(r.bytes_out),
    retries: num(r.retries),
    ratelimit_limit: num(r.ratelimit_limit),
    ratelimit_remaining: num(r.ratelimit_remaining),
  }));
  const last = rows[rows.length - 1];
  return { rows, next_cursor: rows.length === q.limit && last ? { ts_us: last.ts_us, id: last.id } : null };
}

/** pipelineResult shapes lag, dead letters and proxy drops over a window. */
export function pipelineResult(
  q: PipelineQuery,
  lag: readonly (Record<string, Num> & { consumer_group: string; topic: string })[],
  dlq: readonly { source_topic: string; n: Num; reason: string }[],
  proxies: readonly (Record<string, Num> & { tenant: string; service: string; instance: string })[],
): PipelineResult {
  const seconds = q.range.to - q.range.from;
  return {
    from: q.range.from,
    to: q.range.to,
    lag: lag.map((r) => ({
      consumer_group: r.consumer_group,
      topic: r.topic,
      partition: num(r.partition),
      lag: num(r.l),
      high_watermark: num(r.hw),
      sampled_at: num(r.at),
    })),
    dlq: dlq.map((r) => ({
      source_topic: r.source_topic,
      events: num(r.n),
      rate_per_s: num(r.n) / seconds,
      last_reason: r.reason,
    })),
    proxies: proxies.map((r) => ({
      tenant: r.tenant,
      service: r.service,
      instance: r.instance,
      dropped_events: num(r.dropped),
      producer_buffer_events_max: num(r.buffered),
      producer_buffer_capacity: num(r.buffer_cap),
      spool_bytes_max: num(r.spool),
      spool_capacity_bytes: num(r.spool_cap),
      spool_fill_ratio_max: num(r.fill),
      last_seen: num(r.last_seen),
    })),
  };
}

/** SATURATION_SIGNAL is what a saturation rule watches, per sample row (upstream metrics per upstream sample). */
export const SATURATION_SIGNAL: Record<
  NonNullable<SignalQuery['metric']>,
  { expr: string; upstream: boolean; target?: boolean }
> = {
  event_loop_utilization: { expr: 'avg(event_loop_utilization)', upstream: false },
  event_loop_delay_ms: { expr: 'max(event_loop_delay_ms)', upstream: false },
  heap_used_ratio: { expr: 'max(heap_used_bytes / greatest(heap_limit_bytes, 1))', upstream: false },
  cpu_ratio: { expr: 'avg(cpu_ratio)', upstream: false },
  producer_buffer_ratio: {
    expr: 'max(producer_buffer_events / greatest(producer_buffer_capacity, 1))',
    upstream: false,
  },
  spool_fill_ratio: { expr: 'max(spool_bytes / greatest(spool_capacity_bytes, 1))', upstream: false },
  upstream_in_flight_ratio: { expr: 'max(one_in_flight / greatest(one_limit, 1))', upstream: true },
  upstream_pool_busy_ratio: { expr: 'max(one_pool_busy / greatest(one_pool_size, 1))', upstream: true },
  // The most targets not healthy in one sample (per upstream, or 0/1 per target): each store
  // counts them per sample (`bad`) first.
  targets_unhealthy: { expr: 'max(bad)', upstream: true, target: true },
};

/** POLICY_SIGNAL_KINDS are the request signals read from the proxy's policy decisions. */
export const POLICY_SIGNAL_KINDS: readonly SignalQuery['kind'][] = [
  'rate_limited',
  'quota_used',
  'auth_failures',
  'cache_hit_ratio',
];

/**
 * signalDimensions checks a signal's dimensions (they become column names: only those of the
 * table the signal reads are accepted) and returns its distinct group-by dimensions.
 */
export function signalDimensions(q: SignalQuery): string[] {
  const metric = SATURATION_SIGNAL[q.metric ?? 'event_loop_utilization'];
  const allowed: readonly string[] =
    q.kind === 'saturation'
      ? [
          'tenant',
          'service',
          'instance',
          ...(metric.upstream ? ['upstream'] : []),
          ...(metric.target ? ['target'] : []),
        ]
      : ['tenant', 'service', 'route', 'method', 'consumer'];
  const dims = [...new Set(q.groupBy)];
  for (const d of [...dims, ...Object.keys(q.filters)])
    if (!allowed.includes(d))
      throw new AnalyticsError('TAPWIRE_ANALYTICS_INVALID_QUERY', `${d} is not a dimension of ${q.kind}`, {
        field: 'group_by',
      });
  return dims;
}

function labelsOf(dims: readonly string[], row: Record<string, unknown>): Record<string, string> {
  return Object.fromEntries(dims.map((d) => [d, String(row[d] ?? '')]));
}

/** bySeries orders series by their label values, so every store lists them alike. */
function bySeries<T extends { labels: Record<string, string> }>(series: T[]): T[] {
  const key = (s: T) => JSON.stringify(Object.values(s.labels));
  return series.sort((a, b) => (key(a) < key(b) ? -1 : key(a) > key(b) ? 1 : 0));
}

/** saturationSignal shapes one value per series of a saturation rule. */
export function saturationSignal(
  dims: readonly string[],
  rows: readonly (Record<string, unknown> & { v: Num; n: Num })[],
): SignalResult {
  return {
    series: bySeries(rows.map((r) => ({ labels: labelsOf(dims, r), value: num(r.v), samples: num(r.n) }))),
  };
}

/**
 * requestSignal shapes one value per series of a request rule. A rate counts an empty window as
 * 0 (no traffic is the truth); a latency or an error rate without requests is no data.
 */
export function requestSignal(
  q: SignalQuery,
  dims: readonly string[],
  rows: readonly (RedAggregate & Record<string, unknown>)[],
): SignalResult {
  const seconds = q.range.to - q.range.from;
  const counted = q.kind === 'request_rate' || q.kind === 'absence';
  const series = rows
    .filter((r) => counted || num(r.n) > 0)
    .map((r) => {
      const n = num(r.n);
      const value =
        q.kind === 'latency_quantile'
          ? (quantileOrNull(r.q, quantileIndex(q.quantile ?? 0.99), r.hn) ?? 0)
          : q.kind === 'error_rate'
            ? ratio(num(r.e5), n)
            : n / seconds;
      return { labels: labelsOf(dims, r), value, samples: n };
    });
  if (counted && dims.length === 0 && series.length === 0) series.push({ labels: {}, value: 0, samples: 0 });
  return { series: bySeries(series) };
}

/**
 * policySignal shapes one value per series of a policy rule: rate_limited and auth_failures are
 * shares of the series' requests; quota_used (among requests a limit applied to) and
 * cache_hit_ratio (among cache lookups) are no data for a series without any.
 */
export function policySignal(
  q: SignalQuery,
  dims: readonly string[],
  rows: readonly (PolicyAggregate & Record<string, unknown> & { n: Num })[],
): SignalResult {
  const series: SignalResult['series'] = [];
  for (const r of rows) {
    const n = num(r.n);
    if (q.kind === 'quota_used') {
      if (num(r.ql) > 0) series.push({ labels: labelsOf(dims, r), value: num(r.qu), samples: num(r.ql) });
    } else if (q.kind === 'cache_hit_ratio') {
      const hit = num(r.c_hit) + num(r.c_stale);
      const lookups = hit + num(r.c_miss);
      if (lookups > 0) series.push({ labels: labelsOf(dims, r), value: hit / lookups, samples: lookups });
    } else if (n > 0) {
      const part =
        q.kind === 'rate_limited' ? num(r.rl) : num(r.a_missing) + num(r.a_invalid) + num(r.a_forbidden);
      series.push({ labels: labelsOf(dims, r), value: part / n, samples: n });
    }
  }
  return { series: bySeries(series) };
}

/** StoredAlert is the latest state record of one alert series, under the aliases an alerts query returns. */
export type StoredAlert = Record<string, Num> & {
  fingerprint: string;
  tn: string;
  rid: string;
  st: string;
  k: string[];
  lv: string[];
};

/** RESOLVED_LISTED_S is how long a resolved alert stays listed. */
export const RESOLVED_LISTED_S = 900;

/** alertsResult shapes the latest state of each alert series. */
export function alertsResult(rows: readonly StoredAlert[]): AlertsResult {
  return {
    alerts: rows.map((r) => ({
      tenant: String(r.tn),
      rule_id: String(r.rid),
      fingerprint: r.fingerprint,
      labels: Object.fromEntries(r.k.map((key, i) => [key, r.lv[i] ?? ''])),
      state: r.st,
      value: num(r.hv) === 1 ? num(r.v) : null,
      threshold: num(r.th),
      since_us: num(r.since),
      active_at_us: num(r.act),
      fired_at_us: num(r.fired) > 0 ? num(r.fired) : null,
      updated_us: num(r.updated),
    })),
  };
}

/** StoredAlertEvent is one alert_history row as a driver returns it. */
export type StoredAlertEvent = Record<string, Num> & {
  tenant: string;
  rule_id: string;
  fingerprint: string;
  state: string;
  receiver: string;
  label_keys: string[];
  label_values: string[];
};

/** alertHistoryResult shapes transitions and deliveries. */
export function alertHistoryResult(rows: readonly StoredAlertEvent[]): AlertHistoryResult {
  return {
    events: rows.map((r) => ({
      tenant: r.tenant,
      ts_us: num(r.ts_us),
      rule_id: r.rule_id,
      fingerprint: r.fingerprint,
      labels: Object.fromEntries(r.label_keys.map((key, i) => [key, r.label_values[i] ?? ''])),
      state: r.state,
      value: num(r.has_value) === 1 ? num(r.value) : null,
      threshold: num(r.threshold),
      since_us: num(r.since_us),
      receiver: r.receiver === '' ? null : r.receiver,
    })),
  };
}
