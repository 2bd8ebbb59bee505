import { performance } from 'node:perf_hooks';
import type { TARGET_STATES } from '@tapwire/schema';
import { Pool } from 'undici';
import type { UpstreamConfig } from './config.js';

/** TargetState is a target's health as recorded in saturation samples. */
export type TargetState = (typeof TARGET_STATES)[number];

/** Target is one server behind an upstream: where requests go, its own pool and its health. */
export interface Target {
  /** host:port, as recorded on the access log and in saturation samples. */
  readonly address: string;
  readonly origin: string;
  /** Target URL's path without a trailing slash ('' for /). */
  readonly basePath: string;
  readonly hostHeader: string;
  readonly serverAddress: string;
  readonly serverPort: number;
  readonly pool: Pool;
  /** Requests in flight to this target (counted only when the upstream has several targets). */
  inFlight: number;
  /** Proxied requests that failed in a row (passive); reset by a success. */
  consecutiveFailures: number;
  /** performance.now() until which the target is ejected; 0 when it never was. */
  ejectedUntil: number;
  ejections: number;
  /** Active health: false once unhealthyThreshold checks failed in a row, until healthyThreshold pass. */
  checkedHealthy: boolean;
  checkFailures: number;
  checkPasses: number;
}

/** Balancer chooses a target per request and keeps the passive-ejection and retry-budget state. */
export interface Balancer {
  readonly targets: readonly Target[];
  /** multi: more than one target; ejection, retries and per-target in-flight counts apply only then. */
  readonly multi: boolean;
  /** pick returns the next target that takes traffic, other than those in `tried`; undefined when none. */
  pick(tried?: readonly Target[]): Target | undefined;
  state(t: Target): TargetState;
  /** failed records a failed proxied request (connect failure, reset, timeout, 502/503/504); true when it ejected the target. */
  failed(t: Target): boolean;
  /** succeeded records an answered request that was no failure. */
  succeeded(t: Target): void;
  /** countRequest adds one request (not a retry) to the retry budget's window. */
  countRequest(): void;
  /** tryRetry takes one retry from the budget for a request already retried `done` times: false when attempts or the budget forbid it. */
  tryRetry(done: number): boolean;
  /** retries sent since start. */
  readonly retries: number;
}

/** RETRY_WINDOW_S is the window the retry budget counts requests and retries over. */
export const RETRY_WINDOW_S = 10;

/** RetryBudget bounds retries over the last 10 s to max(minPerSecond × 10, budgetPercent % of requests). */
export interface RetryBudget {
  countRequest(nowMs: number): void;
  /** tryRetry counts one retry and returns true when it stays within the budget. */
  tryRetry(nowMs: number): boolean;
}

/** createRetryBudget keeps per-second counters of requests and retries in a ring of RETRY_WINDOW_S slots. */
export function createRetryBudget(budgetPercent: number, minPerSecond: number): RetryBudget {
  const seconds = new Float64Array(RETRY_WINDOW_S).fill(-1);
  const requests = new Uint32Array(RETRY_WINDOW_S);
  const retries = new Uint32Array(RETRY_WINDOW_S);
  const slot = (second: number): number => {
    const i = second % RETRY_WINDOW_S;
    if (seconds[i] !== second) {
      seconds[i] = second;
      requests[i] = 0;
      retries[i] = 0;
    }
    return i;
  };
  return {
    countRequest(nowMs) {
      requests[slot(Math.floor(nowMs / 1000))]!++;
    },
    tryRetry(nowMs) {
      const second = Math.floor(nowMs / 1000);
      const i = slot(second);
      let req = 0;
      let ret = 0;
      for (let j = 0; j < RETRY_WINDOW_S; j++) {
        if (seconds[j]! > second - RETRY_WINDOW_S) {
          req += requests[j]!;
          ret += retries[j]!;
        }
      }
      // Counting this one, retries stay within the floor or the share of requests.
      if (ret + 1 > minPerSecond * RETRY_WINDOW_S && (ret + 1) * 100 > budgetPercent * req) return false;
      retries[i]!++;
      return true;
    },
  };
}

function compileTarget(raw: string, config: UpstreamConfig): Target {
  const url = new URL(raw);
  const port = Number(url.port || (url.protocol === 'https:' ? 443 : 80));
  return {
    address: `${url.hostname}:${port}`,
    origin: url.origin,
    basePath: url.pathname.replace(/\/+$/, ''),
    hostHeader: url.host,
    serverAddress: url.hostname,
    serverPort: port,
    pool: new Pool(url.origin, {
      connections: config.maxConnections,
      connectTimeout: config.connectTimeoutMs,
      headersTimeout: config.timeoutMs,
      bodyTimeout: config.timeoutMs,
      keepAliveTimeout: 30_000,
      pipelining: 1,
    }),
    inFlight: 0,
    consecutiveFailures: 0,
    ejectedUntil: 0,
    ejections: 0,
    checkedHealthy: true,
    checkFailures: 0,
    checkPasses: 0,
  };
}

/**
 * createBalancer compiles an upstream's targets (one undici Pool each) and chooses among them:
 * round-robin skips targets that take no traffic; least-requests picks the fewest in flight, ties
 * in round-robin order. Passive ejection never takes out the last target that takes traffic.
 * `now` (ms, default performance.now) and `onEject` are for tests and logging.
 */
export function createBalancer(
  config: UpstreamConfig,
  deps: { now?: () => number; onEject?: (t: Target) => void } = {},
): Balancer {
  const now = deps.now ?? (() => performance.now());
  const targets = (config.url !== undefined ? [config.url] : config.targets!).map((u) =>
    compileTarget(u, config),
  );
  const multi = targets.length > 1;
  const leastRequests = config.balancer === 'least-requests';
  const threshold = config.passive.consecutiveFailures;
  const ejectMs = config.passive.ejectMs;
  const attempts = config.retries.attempts;
  const budget = createRetryBudget(config.retries.budgetPercent, config.retries.minPerSecond);
  const checked = config.healthCheck !== undefined;
  let cursor = 0;
  let retries = 0;

  const takes = (t: Target, at: number): boolean => t.checkedHealthy && t.ejectedUntil <= at;

  return {
    targets,
    multi,
    get retries() {
      return retries;
    },
    pick(tried) {
      if (!multi) {
        const only = targets[0]!;
        return (!checked || only.checkedHealthy) && tried === undefined ? only : undefined;
      }
      const at = now();
      const n = targets.length;
      let best: Target | undefined;
      let bestIndex = 0;
      for (let k = 0; k < n; k++) {
        const i = (cursor + k) % n;
        const t = targets[i]!;
        if (!takes(t, at) || tried?.includes(t)) continue;
        if (!leastRequests) {
          best = t;
          bestIndex = i;
          break;
        }
        if (best === undefined || t.inFlight < best.inFlight) {
          best = t;
          bestIndex = i;
        }
      }
      if (best !== undefined) cursor = (bestIndex + 1) % n;
      return best;
    },
    state(t) {
      if (!t.checkedHealthy) return 'unhealthy';
      return t.ejectedUntil > now() ? 'ejected' : 'healthy';
    },
    failed(t) {
      if (!multi || threshold === 0) return false;
      t.consecutiveFailures++;
      if (t.consecutiveFailures < threshold) return false;
      const at = now();
      if (t.ejectedUntil > at) return false;
      // An ejection that would leave nothing to forward to is worse than a failing target.
      if (!targets.some((o) => o !== t && takes(o, at))) return false;
      // Back from an ejection, the count is still at the threshold: one more failure ejects again.
      t.ejectedUntil = at + ejectMs;
      t.ejections++;
      deps.onEject?.(t);
      return true;
    },
    succeeded(t) {
      t.consecutiveFailures = 0;
    },
    countRequest() {
      if (multi && attempts > 0) budget.countRequest(now());
    },
    tryRetry(done) {
      if (!multi || done >= attempts || !budget.tryRetry(now())) return false;
      retries++;
      return true;
    },
  };
}
