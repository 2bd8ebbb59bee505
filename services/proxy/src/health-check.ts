import type { Logger } from '@tapwire/telemetry';
import { Client } from 'undici';
import type { Target } from './balancer.js';
import type { UpstreamConfig } from './config.js';

/** HealthCheckConfig is an upstream's validated active health-check settings. */
export type HealthCheckConfig = NonNullable<UpstreamConfig['healthCheck']>;

/** TargetCheck runs one health check of a target: true when it passed. */
export type TargetCheck = (t: Target) => Promise<boolean>;

/** HealthChecker checks every target of one upstream each interval; start/close are idempotent. */
export interface HealthChecker {
  start(): void;
  /** runOnce checks every target not already being checked and applies the results. */
  runOnce(): Promise<void>;
  close(): Promise<void>;
}

/**
 * recordCheck applies one check result to a target's active health: unhealthyThreshold failures
 * in a row take it out, healthyThreshold passes in a row bring it back. Returns the new state
 * when it changed.
 */
export function recordCheck(
  t: Target,
  passed: boolean,
  config: Pick<HealthCheckConfig, 'healthyThreshold' | 'unhealthyThreshold'>,
): 'healthy' | 'unhealthy' | undefined {
  if (passed) {
    t.checkFailures = 0;
    if (t.checkedHealthy) return undefined;
    t.checkPasses++;
    if (t.checkPasses < config.healthyThreshold) return undefined;
    t.checkPasses = 0;
    t.checkedHealthy = true;
    return 'healthy';
  }
  t.checkPasses = 0;
  t.checkFailures++;
  if (!t.checkedHealthy || t.checkFailures < config.unhealthyThreshold) return undefined;
  t.checkedHealthy = false;
  return 'unhealthy';
}

/**
 * httpTargetCheck GETs `path` on the target's origin with a small client of its own (one
 * connection per target), so checks never take a request's connection; 2xx and 3xx pass.
 */
export function httpTargetCheck(config: HealthCheckConfig): { check: TargetCheck; close(): Promise<void> } {
  const clients = new Map<Target, Client>();
  return {
    async check(t) {
      let client = clients.get(t);
      if (!client) {
        client = new Client(t.origin, {
          connectTimeout: config.timeoutMs,
          headersTimeout: config.timeoutMs,
          bodyTimeout: config.timeoutMs,
          pipelining: 1,
        });
        clients.set(t, client);
      }
      try {
        const res = await client.request({
          path: config.path,
          method: 'GET',
          headers: { host: t.hostHeader, 'user-agent': 'tapwire-health-check' },
          signal: AbortSignal.timeout(config.timeoutMs),
        });
        await res.body.dump();
        return res.statusCode >= 200 && res.statusCode < 400;
      } catch {
        return false;
      }
    },
    async close() {
      await Promise.all([...clients.values()].map((c) => c.destroy().catch(() => {})));
      clients.clear();
    },
  };
}

/**
 * createHealthChecker checks an upstream's targets every intervalMs (the first round at start);
 * each transition is logged at info with the upstream and the target. `check` defaults to
 * httpTargetCheck.
 */
export function createHealthChecker(
  deps: { upstream: string; targets: readonly Target[]; logger: Logger; check?: TargetCheck },
  config: HealthCheckConfig,
): HealthChecker {
  const http = deps.check ? undefined : httpTargetCheck(config);
  const check = deps.check ?? http!.check;
  const running = new Set<Target>();
  let timer: NodeJS.Timeout | undefined;
  let closed = false;

  async function checkOne(t: Target): Promise<void> {
    running.add(t);
    try {
      const passed = await check(t).catch(() => false);
      if (closed) return;
      const changed = recordCheck(t, passed, config);
      if (changed)
        deps.logger.info(
          { upstream: deps.upstream, target: t.address, state: changed, path: config.path },
          changed === 'unhealthy' ? 'target failed its health checks' : 'target passed its health checks',
        );
    } finally {
      running.delete(t);
    }
  }

  async function runOnce(): Promise<void> {
    await Promise.all(deps.targets.filter((t) => !running.has(t)).map(checkOne));
  }

  return {
    start() {
      if (timer || closed) return;
      void runOnce();
      timer = setInterval(() => void runOnce(), config.intervalMs);
      timer.unref();
    },
    runOnce,
    async close() {
      closed = true;
      if (timer) clearInterval(timer);
      timer = undefined;
      await http?.close();
    },
  };
}
