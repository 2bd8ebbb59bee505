import {
  type AccessLogEvent,
  type AlertStateEvent,
  accessLogCodec,
  alertStateCodec,
  type DlqEvent,
  dlqCodec,
  type EventCodec,
  type SaturationEvent,
  type SpanEvent,
  saturationCodec,
  spanCodec,
  TOPICS,
} from '@tapwire/schema';

/** Row is one row for a ClickHouse JSONEachRow insert, every column present. */
export type Row = Record<string, unknown>;

/**
 * Rollup is a table a materialized view of the migrations fills from a raw table: what the view
 * counts per source row, and which time bucket a source row lands in (SQL over rollup or raw).
 */
export interface Rollup {
  readonly table: string;
  /** Rows of the raw table the rollup holds, as an aggregate over the rollup table. */
  readonly count: string;
  /** The rollup's time column. */
  readonly time: string;
  /** The same bucket computed from a raw row's `ts`. */
  readonly bucket: string;
}

/** Stream maps one topic to its table: how to validate an event and turn it into a row. */
export interface Stream {
  readonly topic: string;
  readonly table: string;
  readonly codec: EventCodec<unknown>;
  /** The rollups the raw table's materialized views fill. */
  readonly rollups: readonly Rollup[];
  /**
   * toRow maps a validated event read at (partition, offset); ts is UTC seconds so toYYYYMMDD(ts)
   * is the day partition. The event's ledger identity defaults to a single-event record's.
   */
  toRow(event: unknown, partition: number, offset: string, sourceId?: string, sourceSeq?: string): Row;
}

/**
 * singleSource is the ledger source of a single-event record: its Kafka partition (or embedded log
 * partition), whose offsets are its sequence numbers. migrations/0009 gives older rows the same.
 */
export function singleSource(partition: number): string {
  return `partition:${partition}`;
}

const perMinute = (table: string, count: string): Rollup => ({
  table,
  count,
  time: 'minute',
  bucket: 'toStartOfMinute(ts)',
});

const seconds = (us: number) => Math.floor(us / 1_000_000);

function stream<E>(
  topic: string,
  table: string,
  codec: EventCodec<E>,
  rollups: readonly Rollup[],
  map: (e: E) => Row,
): Stream {
  return {
    topic,
    table,
    codec: codec as EventCodec<unknown>,
    rollups,
    toRow: (event, partition, offset, sourceId = singleSource(partition), sourceSeq = offset) => {
      // One object per row, filled in place: ingest's profile showed the spread copy at ~10% of CPU.
      const row = map(event as E);
      row.kafka_partition = partition;
      row.kafka_offset = offset;
      // Last, in this order: the pipeline reads a buffered row's identity from the end of its line.
      row.source_id = sourceId;
      row.source_seq = sourceSeq;
      return row;
    },
  };
}

/** STREAMS are the topics ingest projects, each into its raw table. */
export const STREAMS: readonly Stream[] = [
  stream<AccessLogEvent>(
    TOPICS.accessLogs,
    'access_logs',
    accessLogCodec,
    [
      perMinute('route_stats_1m', 'countMerge(requests)'),
      perMinute('route_histogram_1m', 'sum(requests)'),
      { table: 'route_histogram_1h', count: 'sum(requests)', time: 'hour', bucket: 'toStartOfHour(ts)' },
      // Every access-log row is counted once per facet; facet 0 (per status) counts each once.
      perMinute('slo_counts_1m', 'sumIf(requests, facet = 0)'),
      {
        table: 'slo_counts_1h',
        count: 'sumIf(requests, facet = 0)',
        time: 'hour',
        bucket: 'toStartOfHour(ts)',
      },
      perMinute('policy_stats_1m', 'sum(requests)'),
      { table: 'policy_stats_1h', count: 'sum(requests)', time: 'hour', bucket: 'toStartOfHour(ts)' },
    ],
    (e) => ({
      tenant: e.tenant,
      ts: seconds(e.ts),
      ts_us: e.ts,
      id: e.id,
      trace_id: e.trace_id,
      span_id: e.span_id,
      service: e.service,
      upstream: e.upstream,
      route: e.route,
      method: e.method,
      status: e.status,
      duration_ms: e.duration_ms,
      upstream_ms: e.upstream_ms,
      bytes_in: e.bytes_in,
      bytes_out: e.bytes_out,
      consumer: e.consumer,
      client_address: e.client_address,
      server_address: e.server_address,
      user_agent: e.user_agent,
      path: e.path,
      query: e.query,
      error_kind: e.error_kind,
      cache: e.cache,
      target: e.target,
      retries: e.retries,
      ratelimit_limit: e.ratelimit_limit,
      ratelimit_remaining: e.ratelimit_remaining,
    }),
  ),
  stream<SpanEvent>(
    TOPICS.spans,
    'spans',
    spanCodec,
    [{ table: 'trace_index', count: 'countMerge(span_count)', time: 'day', bucket: 'toDate(ts)' }],
    (e) => ({
      tenant: e.tenant,
      ts: seconds(e.ts),
      ts_us: e.ts,
      id: e.id,
      trace_id: e.trace_id,
      span_id: e.span_id,
      parent_span_id: e.parent_span_id,
      name: e.name,
      kind: e.kind,
      service: e.service,
      duration_us: e.duration,
      status: e.status,
      status_message: e.status_message,
      attr_keys: Object.keys(e.attributes),
      attr_values: Object.values(e.attributes),
      resource_keys: Object.keys(e.resource),
      resource_values: Object.values(e.resource),
      scope_name: e.scope_name,
      scope_version: e.scope_version,
      // Read back whole with their span only (migrations/0011): one JSON array each.
      events_json: e.events.length === 0 ? '[]' : JSON.stringify(e.events),
      links_json: e.links.length === 0 ? '[]' : JSON.stringify(e.links),
    }),
  ),
  stream<SaturationEvent>(
    TOPICS.saturation,
    'saturation',
    saturationCodec,
    // One upstream sample per upstream of a saturation row.
    [
      perMinute('saturation_1m', 'countMerge(samples)'),
      perMinute('upstream_saturation_1m', 'countMerge(samples)'),
    ],
    (e) => ({
      tenant: e.tenant,
      ts: seconds(e.ts),
      ts_us: e.ts,
      id: e.id,
      service: e.service,
      instance: e.instance,
      interval_ms: e.interval_ms,
      upstream_names: e.upstreams.map((u) => u.upstream),
      upstream_in_flight: e.upstreams.map((u) => u.in_flight),
      upstream_concurrency_limit: e.upstreams.map((u) => u.concurrency_limit),
      upstream_pool_size: e.upstreams.map((u) => u.pool_size),
      upstream_pool_busy: e.upstreams.map((u) => u.pool_busy),
      upstream_pool_pending: e.upstreams.map((u) => u.pool_pending),
      target_upstreams: e.targets.map((t) => t.upstream),
      target_addresses: e.targets.map((t) => t.target),
      target_states: e.targets.map((t) => t.state),
      target_in_flight: e.targets.map((t) => t.in_flight),
      target_consecutive_failures: e.targets.map((t) => t.consecutive_failures),
      event_loop_utilization: e.event_loop_utilization,
      event_loop_delay_ms: e.event_loop_delay_ms,
      heap_used_bytes: e.heap_used_bytes,
      heap_limit_bytes: e.heap_limit_bytes,
      rss_bytes: e.rss_bytes,
      cpu_ratio: e.cpu_ratio,
      producer_buffer_events: e.producer_buffer_events,
      producer_buffer_capacity: e.producer_buffer_capacity,
      spool_bytes: e.spool_bytes,
      spool_capacity_bytes: e.spool_capacity_bytes,
      producer_dropped_events: e.producer_dropped_events,
    }),
  ),
  stream<DlqEvent>(TOPICS.dlq, 'dlq_events', dlqCodec, [], (e) => ({
    tenant: e.tenant,
    ts: seconds(e.ts),
    ts_us: e.ts,
    id: e.id,
    source_topic: e.source_topic,
    source_partition: e.source_partition,
    source_offset: e.source_offset,
    source_index: e.source_index ?? null,
    reason: e.reason,
    raw_base64: e.raw_base64,
    consumer_group: e.consumer_group,
  })),
  stream<AlertStateEvent>(TOPICS.alertState, 'alert_history', alertStateCodec, [], (e) => ({
    tenant: e.tenant,
    ts: seconds(e.ts),
    ts_us: e.ts,
    id: e.id,
    rule_id: e.rule_id,
    fingerprint: e.fingerprint,
    label_keys: Object.keys(e.labels),
    label_values: Object.values(e.labels),
    state: e.state,
    value: e.value ?? 0,
    has_value: e.value === null ? 0 : 1,
    threshold: e.threshold,
    since_us: e.since,
    active_at_us: e.active_at ?? 0,
    fired_at_us: e.fired_at ?? 0,
    last_notified_us: e.last_notified ?? 0,
    receiver: e.receiver ?? '',
  })),
];

/** dayOf returns the UTC day number of a row (the ClickHouse day partition it lands in). */
export function dayOf(row: Row): number {
  return Math.floor((row.ts as number) / 86_400);
}
