import { z } from 'zod';
import { envelopeShape } from './envelope.js';
import { LIMITS, nonEmptyBoundedString } from './primitives.js';

const gauge = z.number().int().nonnegative().max(Number.MAX_SAFE_INTEGER);
const ratio = z.number().nonnegative().max(1024);

/** upstreamSaturationSchema is one upstream's concurrency and connection-pool state in a sample. */
export const upstreamSaturationSchema = z.object({
  upstream: nonEmptyBoundedString(LIMITS.serviceChars),
  in_flight: gauge,
  concurrency_limit: gauge,
  pool_size: gauge,
  pool_busy: gauge,
  pool_pending: gauge,
});

/**
 * TARGET_STATES: `healthy` takes traffic; `unhealthy` failed its active health checks
 * (unhealthyThreshold in a row) and takes none until it passes healthyThreshold in a row;
 * `ejected` failed consecutive proxied requests (passive) and takes none until its ejection ends.
 */
export const TARGET_STATES = ['healthy', 'unhealthy', 'ejected'] as const;

/** targetHealthSchema is one target of a load-balanced upstream in a sample. */
export const targetHealthSchema = z.object({
  upstream: nonEmptyBoundedString(LIMITS.serviceChars),
  /** host:port of the target. */
  target: nonEmptyBoundedString(LIMITS.serviceChars),
  state: z.enum(TARGET_STATES),
  in_flight: gauge,
  /** Consecutive failed requests or health checks, whichever moved it last; 0 when healthy. */
  consecutive_failures: gauge,
});

/** saturationV1Schema validates a saturation sample, version 1 (each proxy instance, every second). */
export const saturationV1Schema = z.object({
  ...envelopeShape,
  v: z.literal(1),
  service: nonEmptyBoundedString(LIMITS.serviceChars),
  instance: nonEmptyBoundedString(LIMITS.serviceChars),
  interval_ms: z.number().int().positive().max(3_600_000),
  upstreams: z.array(upstreamSaturationSchema).max(1024),
  event_loop_utilization: z.number().min(0).max(1),
  event_loop_delay_ms: z.number().nonnegative().max(3_600_000),
  heap_used_bytes: gauge,
  heap_limit_bytes: gauge,
  rss_bytes: gauge,
  cpu_ratio: ratio,
  producer_buffer_events: gauge,
  producer_buffer_capacity: gauge,
  spool_bytes: gauge,
  spool_capacity_bytes: gauge,
  /** Events this instance's producer dropped since it started (memory and spool full); absent from older producers. */
  producer_dropped_events: gauge.default(0),
  /** Every target of every upstream and its health; absent from older producers. */
  targets: z.array(targetHealthSchema).max(4096).default([]),
});

/** SaturationEvent is one proxy instance's resource and concurrency state over one interval. */
export type SaturationEvent = z.infer<typeof saturationV1Schema>;
