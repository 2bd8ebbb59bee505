import type { EmissionStats } from '@tapwire/emission';

/** THROTTLE_REASONS say why an export was refused as retryable (the `reason` label of the metric). */
export const THROTTLE_REASONS = ['in_flight', 'backlog', 'write_failing'] as const;

/** ThrottleReason is one of THROTTLE_REASONS. */
export type ThrottleReason = (typeof THROTTLE_REASONS)[number];

/** Throttle decides whether the write path can take an export now, and tracks the bytes in flight. */
export interface Throttle {
  /** refusal returns why an export of `bytes` must be refused now, or undefined when it may proceed. */
  refusal(bytes: number): ThrottleReason | undefined;
  acquire(bytes: number): void;
  release(bytes: number): void;
  /** writeFailed marks that the local log just failed a write: refuse for retryAfterS. */
  writeFailed(): void;
  readonly inFlightBytes: number;
}

/** ThrottleConfig is the receiver's throttle section. */
export interface ThrottleConfig {
  readonly maxInFlightBytes: number;
  readonly maxLogBacklogRatio: number;
  readonly retryAfterS: number;
}

// The emission's stats walk the local log's segments: looked at no more often than this.
const SAMPLE_MS = 200;

/**
 * createThrottle refuses exports while the write path is saturated: more request bytes in flight
 * than maxInFlightBytes, the unshipped local log past maxLogBacklogRatio of its cap (Kafka slow or
 * away), or the log failing writes or dropping events over its cap within the last retryAfterS.
 * Refusing early keeps exporters' spans in their own retry queues instead of losing them here.
 */
export function createThrottle(
  deps: { emission: () => EmissionStats; now: () => number },
  config: ThrottleConfig,
): Throttle {
  let inFlight = 0;
  let sampledAt = Number.NEGATIVE_INFINITY;
  let backlogged = false;
  let failingUntil = Number.NEGATIVE_INFINITY;
  let lastDropped = -1;
  const holdMs = config.retryAfterS * 1000;

  function sample(now: number): void {
    sampledAt = now;
    const s = deps.emission();
    backlogged = s.capacityBytes > 0 && s.unshippedBytes >= config.maxLogBacklogRatio * s.capacityBytes;
    const dropped = s.writeDropped + s.capacityDropped;
    if (lastDropped >= 0 && dropped > lastDropped) failingUntil = now + holdMs;
    lastDropped = dropped;
  }

  return {
    refusal(bytes) {
      if (inFlight > 0 && inFlight + bytes > config.maxInFlightBytes) return 'in_flight';
      const now = deps.now();
      if (now - sampledAt >= SAMPLE_MS) sample(now);
      if (now < failingUntil) return 'write_failing';
      if (backlogged) return 'backlog';
      return undefined;
    },
    acquire(bytes) {
      inFlight += bytes;
    },
    release(bytes) {
      inFlight -= bytes;
    },
    writeFailed() {
      failingUntil = deps.now() + holdMs;
      // Already held off for: the next sample must not count the same drops again.
      const s = deps.emission();
      lastDropped = s.writeDropped + s.capacityDropped;
    },
    get inFlightBytes() {
      return inFlight;
    },
  };
}
