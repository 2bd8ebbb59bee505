import { Counter, Gauge, type Registry } from 'prom-client';
import type { EmissionStats } from './emission-stats.js';

/** EmissionMetricNames says how a service's emission metrics are named and described. */
export interface EmissionMetricNames {
  /** Metric name prefix, e.g. tapwire_proxy: the metrics are `<prefix>_events_emitted_total` and so on. */
  readonly prefix: string;
  /** What the service's events are called in help texts, capitalized, e.g. "Events", "Span events". */
  readonly events: string;
  /** What a failed write meant for the request that made it, for the dropped counter's help, if anything. */
  readonly writeFailed?: string;
}

/**
 * registerEmissionMetrics registers, in `registry`, the metrics of a service's write-first path,
 * read from `stats` at each scrape: events written, delivered, dropped by reason, invalid; local
 * log write errors; shipped batches, producer errors; unshipped events and bytes, the local log
 * cap and the shipping lag.
 */
export function registerEmissionMetrics(
  registry: Registry,
  names: EmissionMetricNames,
  stats: () => EmissionStats,
): void {
  const { prefix, events } = names;
  const counter = (name: string, help: string, pick: (s: EmissionStats) => number) =>
    new Counter({
      name: `${prefix}_${name}`,
      help,
      registers: [registry],
      collect() {
        this.reset();
        this.inc(pick(stats()));
      },
    });
  const gauge = (name: string, help: string, pick: (s: EmissionStats) => number) =>
    new Gauge({
      name: `${prefix}_${name}`,
      help,
      registers: [registry],
      collect() {
        this.set(pick(stats()));
      },
    });
  counter('events_emitted_total', `${events} written to the local log.`, (s) => s.written);
  counter(
    'events_delivered_total',
    `${events} acknowledged by Kafka (embedded deployment: written to the log).`,
    (s) => s.delivered,
  );
  const writeFailed = names.writeFailed ? `write_failed; ${names.writeFailed}` : 'write_failed';
  new Counter({
    name: `${prefix}_events_dropped_total`,
    help: `${events} lost: the local log could not be written (${writeFailed}), or it went over its cap while Kafka was away and the oldest unshipped events were deleted (over_capacity).`,
    labelNames: ['reason'],
    registers: [registry],
    collect() {
      const s = stats();
      this.reset();
      this.inc({ reason: 'write_failed' }, s.writeDropped);
      this.inc({ reason: 'over_capacity' }, s.capacityDropped);
    },
  });
  counter('events_invalid_total', `${events} refused by schema validation.`, (s) => s.invalid);
  counter(
    'local_log_write_errors_total',
    'Failed writes to the local log (disk full, unwritable); each lost the events of one write.',
    (s) => s.writeErrors,
  );
  counter('shipped_batches_total', 'Kafka records (event batches) acknowledged.', (s) => s.shippedBatches);
  counter('producer_errors_total', 'Failed produce attempts (retried).', (s) => s.shipErrors);
  gauge(
    'unshipped_events',
    `${events} in the local log not yet acknowledged by Kafka.`,
    (s) => s.unshippedEvents,
  );
  gauge('unshipped_bytes', 'Bytes of local log not yet shipped to Kafka.', (s) => s.unshippedBytes);
  gauge(
    'local_log_capacity_bytes',
    'Local log cap in bytes (0 in the embedded deployment).',
    (s) => s.capacityBytes,
  );
  gauge(
    'shipping_lag_seconds',
    'Age of the oldest event not yet acknowledged by Kafka, in seconds (0 when all are shipped).',
    (s) => s.lagSeconds,
  );
}
