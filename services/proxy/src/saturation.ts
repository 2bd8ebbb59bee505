import { monitorEventLoopDelay, performance } from 'node:perf_hooks';
import { getHeapStatistics } from 'node:v8';
import type { EmissionStats } from '@tapwire/emission';
import { type SaturationEvent, TOPICS } from '@tapwire/schema';
import type { EventSink } from '@tapwire/stream';
import type { IdSource } from './trace-context.js';
import type { Upstream } from './upstreams.js';

/** SaturationSampler emits one sample per tenant every interval; start/close are idempotent. */
export interface SaturationSampler {
  start(): void;
  /** sampleNow builds the samples of the current interval (and resets it), for tests and the timer. */
  sampleNow(): SaturationEvent[];
  close(): void;
}

/**
 * createSaturationSampler measures this process (event-loop utilization and delay, heap, RSS, CPU,
 * the local log's unshipped part) and each upstream (in flight vs limit, connection pool).
 */
export function createSaturationSampler(
  deps: { sink: EventSink; emission: () => EmissionStats; upstreams: readonly Upstream[]; ids: IdSource },
  config: { service: string; instance: string; defaultTenant: string; intervalMs: number },
): SaturationSampler {
  const histogram = monitorEventLoopDelay({ resolution: 10 });
  let elu = performance.eventLoopUtilization();
  let cpu = process.cpuUsage();
  let last = performance.now();
  let timer: NodeJS.Timeout | undefined;
  const tenants = [...new Set([config.defaultTenant, ...deps.upstreams.map((u) => u.tenant)])];

  function sampleNow(): SaturationEvent[] {
    const now = performance.now();
    const elapsedMs = Math.max(1, now - last);
    const eluDelta = performance.eventLoopUtilization(elu);
    const cpuDelta = process.cpuUsage(cpu);
    elu = performance.eventLoopUtilization();
    cpu = process.cpuUsage();
    last = now;
    const delayMs = Number.isFinite(histogram.percentile(99)) ? histogram.percentile(99) / 1e6 : 0;
    histogram.reset();
    const heap = getHeapStatistics();
    const mem = process.memoryUsage();
    const stats = deps.emission();
    const ts = Math.round((performance.timeOrigin + now) * 1000);
    return tenants.map((tenant) => ({
      v: 1,
      id: `${deps.ids.spanId()}${deps.ids.spanId()}`,
      ts,
      tenant,
      service: config.service,
      instance: config.instance,
      interval_ms: Math.round(elapsedMs),
      upstreams: deps.upstreams
        .filter((u) => u.tenant === tenant)
        .map((u) => {
          // Pool figures are summed over the upstream's targets.
          let connected = 0;
          let free = 0;
          let pending = 0;
          for (const t of u.balancer.targets) {
            const s = t.pool.stats;
            connected += s.connected;
            free += s.free;
            pending += s.pending + s.queued;
          }
          return {
            upstream: u.name,
            in_flight: u.inFlight,
            concurrency_limit: u.config.maxConcurrency,
            pool_size: connected,
            pool_busy: Math.max(0, connected - free),
            pool_pending: pending,
          };
        }),
      targets: deps.upstreams
        .filter((u) => u.tenant === tenant)
        .flatMap((u) =>
          u.balancer.targets.map((t) => {
            const state = u.balancer.state(t);
            return {
              upstream: u.name,
              target: t.address,
              state,
              // A single target's requests are the upstream's: it keeps no count of its own.
              in_flight: u.balancer.multi ? t.inFlight : u.inFlight,
              consecutive_failures:
                state === 'unhealthy' ? t.checkFailures : state === 'ejected' ? t.consecutiveFailures : 0,
            };
          }),
        ),
      event_loop_utilization: Math.min(1, Math.max(0, eluDelta.utilization)),
      event_loop_delay_ms: Math.round(delayMs * 1000) / 1000,
      heap_used_bytes: mem.heapUsed,
      heap_limit_bytes: heap.heap_size_limit,
      rss_bytes: mem.rss,
      cpu_ratio: Math.round(((cpuDelta.user + cpuDelta.system) / 1000 / elapsedMs) * 1000) / 1000,
      // The field names are the event schema's (v1); since the local log, "buffer" and "spool"
      // are both the not-yet-shipped part of it.
      producer_buffer_events: stats.unshippedEvents,
      producer_buffer_capacity: 0,
      spool_bytes: stats.unshippedBytes,
      spool_capacity_bytes: stats.capacityBytes,
      producer_dropped_events: stats.writeDropped + stats.capacityDropped,
    }));
  }

  return {
    start() {
      if (timer) return;
      histogram.enable();
      timer = setInterval(() => {
        for (const s of sampleNow()) deps.sink.emit(TOPICS.saturation, s);
      }, config.intervalMs);
      timer.unref();
    },
    sampleNow,
    close() {
      if (timer) clearInterval(timer);
      timer = undefined;
      histogram.disable();
    },
  };
}
