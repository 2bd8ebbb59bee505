import type { EmissionStats } from '@tapwire/emission';
import { Counter, collectDefaultMetrics, Gauge, Histogram, Registry } from 'prom-client';
import { THROTTLE_REASONS, type ThrottleReason } from './throttle.js';

/** TRANSPORTS are OTLP's two transports (the `transport` label). */
export const TRANSPORTS = ['grpc', 'http'] as const;

/** Transport is one of TRANSPORTS. */
export type Transport = (typeof TRANSPORTS)[number];

/**
 * OUTCOMES are how an export ended (the `outcome` label): stored whole, stored with spans
 * rejected, refused (bad request, no token, too large, unsupported media type, throttled), or the
 * local log failed to write it.
 */
export const OUTCOMES = [
  'ok',
  'partial',
  'bad_request',
  'unauthenticated',
  'too_large',
  'unsupported',
  'throttled',
  'unavailable',
] as const;

/** Outcome is one of OUTCOMES. */
export type Outcome = (typeof OUTCOMES)[number];

/** REQUEST_DURATION_BUCKETS_S are the `le` edges of tapwire_otlp_request_duration_seconds. */
export const REQUEST_DURATION_BUCKETS_S = [
  0.0005, 0.001, 0.0025, 0.005, 0.01, 0.02, 0.05, 0.1, 0.25, 0.5, 1, 2.5,
];

/** OtlpMetrics holds the receiver's pre-labelled instruments. */
export interface OtlpMetrics {
  readonly registry: Registry;
  /** request records one answered export. */
  request(transport: Transport, outcome: Outcome, durationS: number): void;
  spans(transport: Transport, accepted: number, rejected: number): void;
  bytes(transport: Transport, bytes: number): void;
  throttled(transport: Transport, reason: ThrottleReason): void;
}

/** OtlpCounts are the receiver's totals since it started, for stats() and the shutdown log line. */
export interface OtlpCounts {
  readonly requests: number;
  readonly spansAccepted: number;
  readonly spansRejected: number;
  readonly throttled: number;
}

/** createOtlpMetrics registers the receiver's metrics; label children are created here, not per request. */
export function createOtlpMetrics(
  emission: () => EmissionStats,
  inFlightBytes: () => number,
): OtlpMetrics & { counts(): OtlpCounts } {
  const registry = new Registry();
  collectDefaultMetrics({ register: registry, prefix: 'tapwire_otlp_process_' });
  const requests = new Counter({
    name: 'tapwire_otlp_requests_total',
    help: 'Export requests answered, by transport and outcome (ok, partial, bad_request, unauthenticated, too_large, unsupported, throttled, unavailable).',
    labelNames: ['transport', 'outcome'],
    registers: [registry],
  });
  const duration = new Histogram({
    name: 'tapwire_otlp_request_duration_seconds',
    help: 'Time from a request’s arrival to its answer, by transport (for accepted exports: decode, map and write to the local log).',
    labelNames: ['transport'],
    buckets: REQUEST_DURATION_BUCKETS_S,
    registers: [registry],
  });
  const accepted = new Counter({
    name: 'tapwire_otlp_spans_accepted_total',
    help: 'Spans written to the local log, by transport.',
    labelNames: ['transport'],
    registers: [registry],
  });
  const rejected = new Counter({
    name: 'tapwire_otlp_spans_rejected_total',
    help: 'Spans of accepted exports that were rejected (invalid ids, too many attributes), by transport; reported to the exporter as partial_success.',
    labelNames: ['transport'],
    registers: [registry],
  });
  const received = new Counter({
    name: 'tapwire_otlp_received_bytes_total',
    help: 'Request bytes received (after decompression), by transport.',
    labelNames: ['transport'],
    registers: [registry],
  });
  const throttled = new Counter({
    name: 'tapwire_otlp_throttled_total',
    help: 'Exports refused as retryable because the write path was saturated (429 / RESOURCE_EXHAUSTED), by transport and reason (in_flight, backlog, write_failing).',
    labelNames: ['transport', 'reason'],
    registers: [registry],
  });
  new Gauge({
    name: 'tapwire_otlp_in_flight_bytes',
    help: 'Request bytes being received, decoded and written now.',
    registers: [registry],
    collect() {
      this.set(inFlightBytes());
    },
  });
  const children = new Map(
    TRANSPORTS.map((t) => [
      t,
      {
        outcomes: new Map(OUTCOMES.map((o) => [o, requests.labels(t, o)] as const)),
        duration: duration.labels(t),
        accepted: accepted.labels(t),
        rejected: rejected.labels(t),
        received: received.labels(t),
        throttled: new Map(THROTTLE_REASONS.map((r) => [r, throttled.labels(t, r)] as const)),
      },
    ]),
  );
  // Every series is exported from the start, at 0, so a rate() over it has a baseline.
  for (const c of children.values()) {
    for (const o of c.outcomes.values()) o.inc(0);
    for (const r of c.throttled.values()) r.inc(0);
    c.accepted.inc(0);
    c.rejected.inc(0);
    c.received.inc(0);
  }

  const counter = (name: string, help: string, pick: (s: EmissionStats) => number) =>
    new Counter({
      name,
      help,
      registers: [registry],
      collect() {
        this.reset();
        this.inc(pick(emission()));
      },
    });
  const gauge = (name: string, help: string, pick: (s: EmissionStats) => number) =>
    new Gauge({
      name,
      help,
      registers: [registry],
      collect() {
        this.set(pick(emission()));
      },
    });
  counter('tapwire_otlp_events_emitted_total', 'Span events written to the local log.', (s) => s.written);
  counter(
    'tapwire_otlp_events_delivered_total',
    'Span events acknowledged by Kafka (embedded deployment: written to the log).',
    (s) => s.delivered,
  );
  new Counter({
    name: 'tapwire_otlp_events_dropped_total',
    help: 'Span events lost: the local log could not be written (write_failed; the export was answered UNAVAILABLE / 503), or it went over its cap while Kafka was away and the oldest unshipped events were deleted (over_capacity).',
    labelNames: ['reason'],
    registers: [registry],
    collect() {
      const s = emission();
      this.reset();
      this.inc({ reason: 'write_failed' }, s.writeDropped);
      this.inc({ reason: 'over_capacity' }, s.capacityDropped);
    },
  });
  counter('tapwire_otlp_events_invalid_total', 'Span events refused by schema validation.', (s) => s.invalid);
  counter(
    'tapwire_otlp_local_log_write_errors_total',
    'Failed writes to the local log (disk full, unwritable).',
    (s) => s.writeErrors,
  );
  counter(
    'tapwire_otlp_shipped_batches_total',
    'Kafka records (event batches) acknowledged.',
    (s) => s.shippedBatches,
  );
  counter('tapwire_otlp_producer_errors_total', 'Failed produce attempts (retried).', (s) => s.shipErrors);
  gauge(
    'tapwire_otlp_unshipped_events',
    'Span events in the local log not yet acknowledged by Kafka.',
    (s) => s.unshippedEvents,
  );
  gauge(
    'tapwire_otlp_unshipped_bytes',
    'Bytes of local log not yet shipped to Kafka.',
    (s) => s.unshippedBytes,
  );
  gauge(
    'tapwire_otlp_local_log_capacity_bytes',
    'Local log cap in bytes (0 in the embedded deployment).',
    (s) => s.capacityBytes,
  );
  gauge(
    'tapwire_otlp_shipping_lag_seconds',
    'Age of the oldest span event not yet acknowledged by Kafka (0 when all are shipped).',
    (s) => s.lagSeconds,
  );

  let requestCount = 0;
  let spansAccepted = 0;
  let spansRejected = 0;
  let throttledCount = 0;
  return {
    registry,
    request(transport, outcome, durationS) {
      const c = children.get(transport)!;
      c.outcomes.get(outcome)!.inc();
      c.duration.observe(durationS);
      requestCount++;
    },
    spans(transport, acceptedN, rejectedN) {
      const c = children.get(transport)!;
      if (acceptedN > 0) c.accepted.inc(acceptedN);
      if (rejectedN > 0) c.rejected.inc(rejectedN);
      spansAccepted += acceptedN;
      spansRejected += rejectedN;
    },
    bytes(transport, bytes) {
      children.get(transport)!.received.inc(bytes);
    },
    throttled(transport, reason) {
      children.get(transport)!.throttled.get(reason)!.inc();
      throttledCount++;
    },
    counts() {
      return { requests: requestCount, spansAccepted, spansRejected, throttled: throttledCount };
    },
  };
}
