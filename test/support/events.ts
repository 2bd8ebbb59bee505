import { randomBytes, randomUUID } from 'node:crypto';
import type {
  AccessLogEvent,
  AlertStateEvent,
  DlqEvent,
  SaturationEvent,
  SpanEvent,
  SpanEventV1,
} from '@tapwire/schema';

/** hex returns n random bytes as lowercase hex. */
export function hex(bytes: number): string {
  return randomBytes(bytes).toString('hex');
}

const T0 = 1_795_651_200_000_000; // 2026-11-26T00:00:00Z in µs

/** exampleSpan returns a valid SERVER span (version 2, as the proxy's v1 upgrades to), overridden by `over`. */
export function exampleSpan(over: Partial<SpanEvent> = {}): SpanEvent {
  const { v: _v, ...v1 } = exampleSpanV1({ ...(over.ts === undefined ? {} : { ts: over.ts }) });
  return {
    v: 2,
    ...v1,
    resource: {},
    scope_name: '',
    scope_version: '',
    events: [],
    links: [],
    ...over,
  };
}

/** exampleSpanV1 returns a valid SERVER span at version 1 (what the proxy writes), overridden by `over`. */
export function exampleSpanV1(over: Partial<SpanEventV1> = {}): SpanEventV1 {
  const ts = over.ts ?? T0;
  return {
    v: 1,
    id: randomUUID(),
    ts,
    tenant: 'default',
    trace_id: hex(16),
    span_id: hex(8),
    parent_span_id: '',
    name: 'GET /users/:id',
    kind: 'SERVER',
    service: 'users-api',
    start: ts,
    duration: 12_345,
    status: 'UNSET',
    status_message: '',
    attributes: {
      'http.request.method': 'GET',
      'http.route': '/users/:id',
      'http.response.status_code': '200',
    },
    ...over,
  };
}

/** exampleAccessLog returns a valid access-log event, overridden by `over`. */
export function exampleAccessLog(over: Partial<AccessLogEvent> = {}): AccessLogEvent {
  return {
    v: 2,
    id: randomUUID(),
    ts: T0,
    tenant: 'default',
    trace_id: hex(16),
    span_id: hex(8),
    service: 'users-api',
    upstream: 'users',
    route: '/users/:id',
    method: 'GET',
    status: 200,
    duration_ms: 12.5,
    upstream_ms: 11.25,
    bytes_in: 0,
    bytes_out: 512,
    consumer: 'key_7f3a',
    client_address: '127.0.0.1',
    server_address: 'api.example.com',
    user_agent: 'curl/8.5.0',
    path: '/users/42',
    query: 'expand=[REDACTED]',
    error_kind: 'none',
    cache: '',
    target: '',
    retries: 0,
    ratelimit_limit: 0,
    ratelimit_remaining: 0,
    ...over,
  };
}

/** exampleSaturation returns a valid saturation sample, overridden by `over`. */
export function exampleSaturation(over: Partial<SaturationEvent> = {}): SaturationEvent {
  return {
    v: 1,
    id: randomUUID(),
    ts: T0,
    tenant: 'default',
    service: 'tapwire-proxy',
    instance: 'proxy-1',
    interval_ms: 1000,
    upstreams: [
      {
        upstream: 'users',
        in_flight: 3,
        concurrency_limit: 100,
        pool_size: 10,
        pool_busy: 3,
        pool_pending: 0,
      },
    ],
    event_loop_utilization: 0.25,
    event_loop_delay_ms: 1.5,
    heap_used_bytes: 50_000_000,
    heap_limit_bytes: 4_000_000_000,
    rss_bytes: 120_000_000,
    cpu_ratio: 0.3,
    producer_buffer_events: 10,
    producer_buffer_capacity: 10_000,
    spool_bytes: 0,
    spool_capacity_bytes: 1_073_741_824,
    producer_dropped_events: 0,
    targets: [],
    ...over,
  };
}

/** exampleDlq returns a valid dead-letter record, overridden by `over`. */
export function exampleDlq(over: Partial<DlqEvent> = {}): DlqEvent {
  return {
    v: 1,
    id: randomUUID(),
    ts: T0,
    tenant: 'default',
    raw_base64: Buffer.from('{"v":1,').toString('base64'),
    source_topic: 'tapwire.spans.v1',
    source_partition: 0,
    source_offset: '42',
    reason: 'not JSON: Unexpected end of JSON input',
    consumer_group: 'tapwire-ingest',
    ...over,
  };
}

/** exampleAlertState returns a valid alert-state event, overridden by `over`. */
export function exampleAlertState(over: Partial<AlertStateEvent> = {}): AlertStateEvent {
  return {
    v: 1,
    id: randomUUID(),
    ts: T0,
    tenant: 'default',
    rule_id: 'high-p99',
    fingerprint: hex(8),
    labels: { service: 'users-api', severity: 'page' },
    state: 'firing',
    value: 812.5,
    threshold: 500,
    since: T0 - 60_000_000,
    last_notified: T0,
    ...over,
  };
}
