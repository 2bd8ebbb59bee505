import type { ClickHouse } from '@tapwire/clickhouse';
import type { DuckDb } from '@tapwire/duckdb';

/**
 * A seeded analytics world: access logs, spans, saturation samples, dead letters and lag rows
 * written straight into the raw tables (the materialized views fill the rollups), with every
 * sample kept in memory so tests compute the exact answers themselves.
 */

/** mulberry32 is a small deterministic PRNG, so seeded data and expected answers are reproducible. */
export function mulberry32(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** SeedLog is one seeded access log (the fields tests compare). */
export interface SeedLog {
  tenant: string;
  tsUs: number;
  id: string;
  traceId: string;
  service: string;
  route: string;
  method: string;
  status: number;
  durationMs: number;
  consumer: string;
  bytesIn: number;
  bytesOut: number;
  errorKind: string;
  /** Access logs version 2: the proxy's policy decisions (absent: none decided anything). */
  cache?: '' | 'hit' | 'miss' | 'bypass' | 'stale';
  target?: string;
  retries?: number;
  ratelimitLimit?: number;
  ratelimitRemaining?: number;
}

/** RouteMix describes one route's traffic: how many requests, its latency distribution and error mix. */
export interface RouteMix {
  tenant: string;
  service: string;
  route: string;
  method: string;
  count: number;
  /** Median latency in ms of a lognormal distribution with the given sigma. */
  medianMs: number;
  sigma: number;
  rate5xx: number;
  rate4xx: number;
  consumers: readonly string[];
}

const hex = (rand: () => number, chars: number) => {
  let s = '';
  while (s.length < chars)
    s += Math.floor(rand() * 0x100000000)
      .toString(16)
      .padStart(8, '0');
  return s.slice(0, chars);
};

/** dateTime renders epoch seconds the way 18.16 accepts DateTime in JSONEachRow. */
export function dateTime(seconds: number): string {
  return new Date(seconds * 1000).toISOString().slice(0, 19).replace('T', ' ');
}

/** generateLogs draws every route's requests uniformly over [fromS, fromS + spanS). */
export function generateLogs(mixes: readonly RouteMix[], fromS: number, spanS: number, seed = 42): SeedLog[] {
  const rand = mulberry32(seed);
  const logs: SeedLog[] = [];
  for (const m of mixes) {
    for (let i = 0; i < m.count; i++) {
      // Box-Muller normal → lognormal latency, rounded to microseconds like the proxy's.
      const u = Math.max(rand(), 1e-12);
      const v = rand();
      const z = Math.sqrt(-2 * Math.log(u)) * Math.cos(2 * Math.PI * v);
      const durationMs = Math.round(m.medianMs * Math.exp(m.sigma * z) * 1000) / 1000;
      const r = rand();
      const status = r < m.rate5xx ? 503 : r < m.rate5xx + m.rate4xx ? 404 : 200;
      logs.push({
        tenant: m.tenant,
        tsUs: fromS * 1_000_000 + Math.floor(rand() * spanS * 1_000_000),
        id: hex(rand, 32),
        traceId: hex(rand, 32),
        service: m.service,
        route: m.route,
        method: m.method,
        status,
        durationMs,
        consumer: m.consumers[Math.floor(rand() * m.consumers.length)] ?? '',
        bytesIn: Math.floor(rand() * 2000),
        bytesOut: Math.floor(rand() * 20_000),
        errorKind: status === 503 ? 'upstream_refused' : 'none',
      });
    }
  }
  return logs;
}

/** accessLogRow renders a seeded log as a complete access_logs row. */
export function accessLogRow(l: SeedLog, offset: number): Record<string, unknown> {
  return {
    tenant: l.tenant,
    ts: dateTime(Math.floor(l.tsUs / 1_000_000)),
    ts_us: l.tsUs,
    id: l.id,
    trace_id: l.traceId,
    span_id: l.traceId.slice(0, 16),
    service: l.service,
    upstream: `${l.service}-upstream`,
    route: l.route,
    method: l.method,
    status: l.status,
    duration_ms: l.durationMs,
    upstream_ms: Math.round(l.durationMs * 0.9 * 1000) / 1000,
    bytes_in: l.bytesIn,
    bytes_out: l.bytesOut,
    consumer: l.consumer,
    client_address: '10.0.0.1',
    server_address: 'api.example.com',
    user_agent: 'seed/1.0',
    path: l.route.replace(':id', '42'),
    query: '',
    error_kind: l.errorKind,
    cache: l.cache ?? '',
    target: l.target ?? '',
    retries: l.retries ?? 0,
    ratelimit_limit: l.ratelimitLimit ?? 0,
    ratelimit_remaining: l.ratelimitRemaining ?? 0,
    kafka_partition: 0,
    kafka_offset: offset,
  };
}

/** insertLogs writes seeded logs into access_logs in chunks. */
export async function insertLogs(ch: ClickHouse, logs: readonly SeedLog[]): Promise<void> {
  for (let i = 0; i < logs.length; i += 5000) {
    await ch.insert(
      'access_logs',
      logs.slice(i, i + 5000).map((l, j) => accessLogRow(l, i + j)),
    );
  }
}

/**
 * insertLogsInBoth writes seeded logs into the access_logs of a ClickHouse database and of a
 * DuckDB file alike (ts as epoch seconds, which both take, as the access-log ingest writes it).
 */
export async function insertLogsInBoth(
  ch: ClickHouse,
  duck: DuckDb,
  logs: readonly SeedLog[],
): Promise<void> {
  const rows = logs.map((l, i) => ({ ...accessLogRow(l, i), ts: Math.floor(l.tsUs / 1_000_000) }));
  for (let i = 0; i < rows.length; i += 5000) {
    const chunk = rows.slice(i, i + 5000);
    await ch.insert('access_logs', chunk);
    await duck.insertJsonLines(
      'access_logs',
      chunk.map((r) => JSON.stringify(r)),
    );
  }
}

/** SeedSpan is one seeded span row. */
export interface SeedSpan {
  tenant: string;
  traceId: string;
  spanId: string;
  parentSpanId: string;
  name: string;
  kind: 'SERVER' | 'CLIENT' | 'INTERNAL';
  service: string;
  startUs: number;
  durationUs: number;
  status: 'UNSET' | 'OK' | 'ERROR';
  attributes: Record<string, string>;
  /** Span version 2 (apps' OTLP spans); absent: what the proxy's v1 spans store. */
  resource?: Record<string, string>;
  scopeName?: string;
  scopeVersion?: string;
  events?: { time: number; name: string; attributes: Record<string, string> }[];
  links?: { trace_id: string; span_id: string; attributes: Record<string, string> }[];
}

/** spanRow renders a seeded span as a complete spans row. */
export function spanRow(s: SeedSpan, offset: number): Record<string, unknown> {
  return {
    tenant: s.tenant,
    ts: dateTime(Math.floor(s.startUs / 1_000_000)),
    ts_us: s.startUs,
    id: `${s.traceId}${s.spanId}`,
    trace_id: s.traceId,
    span_id: s.spanId,
    parent_span_id: s.parentSpanId,
    name: s.name,
    kind: s.kind,
    service: s.service,
    duration_us: s.durationUs,
    status: s.status,
    status_message: '',
    attr_keys: Object.keys(s.attributes),
    attr_values: Object.values(s.attributes),
    resource_keys: Object.keys(s.resource ?? {}),
    resource_values: Object.values(s.resource ?? {}),
    scope_name: s.scopeName ?? '',
    scope_version: s.scopeVersion ?? '',
    events_json: JSON.stringify(s.events ?? []),
    links_json: JSON.stringify(s.links ?? []),
    kafka_partition: 0,
    kafka_offset: offset,
  };
}

/** SeedSample is one saturation sample of one proxy instance with one upstream. */
export interface SeedSample {
  tenant: string;
  service: string;
  instance: string;
  upstream: string;
  tsS: number;
  inFlight: number;
  limit: number;
  poolSize: number;
  poolBusy: number;
  elu: number;
  heapUsed: number;
  spoolBytes: number;
  dropped: number;
  /** Targets of load-balanced upstreams (absent: none). */
  targets?: { upstream: string; target: string; state: string; inFlight: number; failures: number }[];
}

/**
 * tenMinutesOfSamples is one-second saturation samples from `fromS` for ten minutes: an acme
 * instance whose load, heap, spool and drops climb, and a steady, busy globex instance.
 */
export function tenMinutesOfSamples(fromS: number): SeedSample[] {
  const samples: SeedSample[] = [];
  for (let s = 0; s < 600; s++) {
    samples.push({
      tenant: 'acme',
      service: 'edge',
      instance: 'proxy-1',
      upstream: 'users',
      tsS: fromS + s,
      inFlight: s % 10,
      limit: 100,
      poolSize: 8,
      poolBusy: s % 5,
      elu: (s % 100) / 100,
      heapUsed: 50_000_000 + s * 1000,
      spoolBytes: s * 100,
      dropped: s < 300 ? 0 : s - 300,
    });
    samples.push({
      tenant: 'globex',
      service: 'edge',
      instance: 'proxy-g',
      upstream: 'shop',
      tsS: fromS + s,
      inFlight: 50,
      limit: 64,
      poolSize: 16,
      poolBusy: 16,
      elu: 0.9,
      heapUsed: 90_000_000,
      spoolBytes: 0,
      dropped: 0,
    });
  }
  return samples;
}

/** saturationRow renders a seeded sample as a complete saturation row. */
export function saturationRow(s: SeedSample, offset: number): Record<string, unknown> {
  return {
    tenant: s.tenant,
    ts: dateTime(s.tsS),
    ts_us: s.tsS * 1_000_000,
    id: `${s.instance}-${s.tsS}`,
    service: s.service,
    instance: s.instance,
    interval_ms: 1000,
    upstream_names: [s.upstream],
    upstream_in_flight: [s.inFlight],
    upstream_concurrency_limit: [s.limit],
    upstream_pool_size: [s.poolSize],
    upstream_pool_busy: [s.poolBusy],
    upstream_pool_pending: [0],
    event_loop_utilization: s.elu,
    event_loop_delay_ms: 1.5,
    heap_used_bytes: s.heapUsed,
    heap_limit_bytes: 4_000_000_000,
    rss_bytes: s.heapUsed * 2,
    cpu_ratio: 0.25,
    producer_buffer_events: 10,
    producer_buffer_capacity: 10_000,
    spool_bytes: s.spoolBytes,
    spool_capacity_bytes: 1_000_000,
    producer_dropped_events: s.dropped,
    target_upstreams: (s.targets ?? []).map((t) => t.upstream),
    target_addresses: (s.targets ?? []).map((t) => t.target),
    target_states: (s.targets ?? []).map((t) => t.state),
    target_in_flight: (s.targets ?? []).map((t) => t.inFlight),
    target_consecutive_failures: (s.targets ?? []).map((t) => t.failures),
    kafka_partition: 0,
    kafka_offset: offset,
  };
}

/** exactQuantile is the linearly interpolated quantile of sorted values (the definition t-digests approximate). */
export function exactQuantile(sorted: readonly number[], q: number): number {
  const pos = (sorted.length - 1) * q;
  const lo = Math.floor(pos);
  const hi = Math.ceil(pos);
  return sorted[lo]! + (sorted[hi]! - sorted[lo]!) * (pos - lo);
}
