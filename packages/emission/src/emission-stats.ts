import type { EventSink } from '@tapwire/stream';

/**
 * EmissionStats is where a service's events are: written to the local log on the request path,
 * then (Kafka deployment) shipped. /metrics and the proxy's saturation samples report them.
 */
export interface EmissionStats {
  /** Events written to the local log. */
  readonly written: number;
  /** Events refused because they failed validation. */
  readonly invalid: number;
  /** Events lost because the local log could not be written (disk full, unwritable), or after close. */
  readonly writeDropped: number;
  /** Failed local-log writes (each lost the events of one write). */
  readonly writeErrors: number;
  /** Events acknowledged by Kafka (the Kafka deployment), or written (embedded: the local log is the log). */
  readonly delivered: number;
  /** Kafka records (batches) acknowledged. */
  readonly shippedBatches: number;
  /** Events written but not yet acknowledged by Kafka. */
  readonly unshippedEvents: number;
  /** Bytes of local log not yet shipped. */
  readonly unshippedBytes: number;
  /** The local log cap in bytes (0: embedded, where retention applies instead). */
  readonly capacityBytes: number;
  /** Age of the oldest unshipped event, in seconds (0 when none). */
  readonly lagSeconds: number;
  /** Unshipped events deleted because the local log went over its cap. */
  readonly capacityDropped: number;
  /** Failed produce attempts (each is retried). */
  readonly shipErrors: number;
}

/** writtenOnly reports a sink whose log is the log (embedded, tests): written means delivered. */
export function writtenOnly(sink: EventSink): () => EmissionStats {
  return () => {
    const s = sink.stats();
    return {
      written: s.delivered,
      invalid: s.invalid,
      writeDropped: s.dropped,
      writeErrors: s.sendErrors,
      delivered: s.delivered,
      shippedBatches: 0,
      unshippedEvents: s.buffered,
      unshippedBytes: 0,
      capacityBytes: 0,
      lagSeconds: 0,
      capacityDropped: 0,
      shipErrors: 0,
    };
  };
}
