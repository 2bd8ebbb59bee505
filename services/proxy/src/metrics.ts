import { type EmissionStats, registerEmissionMetrics } from '@tapwire/emission';
import { Counter, collectDefaultMetrics, Gauge, Histogram, Registry } from 'prom-client';
import { PROXY_ERRORS, type ProxyErrorCode } from './errors.js';
import type { CacheStoreStats } from './policy/cache-store.js';
import type { Upstream } from './upstreams.js';

const CLASSES = ['1xx', '2xx', '3xx', '4xx', '5xx'] as const;

/** REQUEST_DURATION_BUCKETS_S are the `le` edges of tapwire_proxy_request_duration_seconds (SLO export reads them). */
export const REQUEST_DURATION_BUCKETS_S = [
  0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10,
];

/** ProxyMetrics holds the pre-labelled instruments the request path increments. */
export interface ProxyMetrics {
  readonly registry: Registry;
  /** request records one finished request of an upstream ('' for unmatched). */
  request(upstream: string, status: number, durationS: number): void;
  /** errorResponse counts one response the proxy generated itself, by catalogue code. */
  errorResponse(code: ProxyErrorCode): void;
  /** policyDecision counts one auth or rate-limit decision of an upstream's route. */
  policyDecision(upstream: string, policy: 'auth' | 'rate_limit', decision: PolicyDecision): void;
  /** cacheRequest counts one request of a route with a cache policy by what the cache did. */
  cacheRequest(upstream: string, result: CacheResult): void;
}

/** PolicyDecision is a decision label of tapwire_proxy_policy_decisions_total. */
export type PolicyDecision = 'allowed' | 'missing' | 'invalid' | 'forbidden' | 'limited';

const POLICY_DECISIONS = {
  auth: ['allowed', 'missing', 'invalid', 'forbidden'],
  rate_limit: ['allowed', 'limited'],
} as const;

const CACHE_RESULTS = ['hit', 'miss', 'bypass', 'stale'] as const;
type CacheResult = (typeof CACHE_RESULTS)[number];

/** createProxyMetrics registers the proxy's metrics; label children are created here, not per request. */
export function createProxyMetrics(
  upstreams: readonly Upstream[],
  emission: () => EmissionStats,
  inFlightTotal: () => number,
  cacheStats: () => CacheStoreStats = () => ({ entries: 0, bytes: 0, evictions: 0 }),
): ProxyMetrics {
  const registry = new Registry();
  collectDefaultMetrics({ register: registry, prefix: 'tapwire_proxy_process_' });
  const requests = new Counter({
    name: 'tapwire_proxy_requests_total',
    help: 'Requests answered, by upstream and status class (499 client aborts count as 4xx).',
    labelNames: ['upstream', 'class'],
    registers: [registry],
  });
  const duration = new Histogram({
    name: 'tapwire_proxy_request_duration_seconds',
    help: 'Whole-request duration seen by the proxy, by upstream.',
    labelNames: ['upstream'],
    buckets: REQUEST_DURATION_BUCKETS_S,
    registers: [registry],
  });
  const errorResponses = new Counter({
    name: 'tapwire_proxy_error_responses_total',
    help: 'Responses the proxy answered itself instead of an upstream (400, 401, 403, 404, 405, 408, 413, 414, 417, 429, 431, 502, 503, 504), by error code.',
    labelNames: ['code'],
    registers: [registry],
  });
  // Every code is exported from the start, at 0, so a rate() over it has a baseline.
  const errorChildren = new Map(
    (Object.keys(PROXY_ERRORS) as ProxyErrorCode[]).map((code) => {
      const child = errorResponses.labels(code);
      child.inc(0);
      return [code, child];
    }),
  );
  const names = ['', ...upstreams.map((u) => u.name)];
  const children = new Map(
    names.map((n) => [
      n,
      {
        classes: CLASSES.map((c) => requests.labels(n || 'unmatched', c)),
        duration: duration.labels(n || 'unmatched'),
      },
    ]),
  );
  new Gauge({
    name: 'tapwire_proxy_in_flight_requests',
    help: 'Requests in flight, by upstream.',
    labelNames: ['upstream'],
    registers: [registry],
    collect() {
      this.reset();
      for (const u of upstreams) this.set({ upstream: u.name }, u.inFlight);
      this.set({ upstream: 'all' }, inFlightTotal());
    },
  });
  const decisions = new Counter({
    name: 'tapwire_proxy_policy_decisions_total',
    help: 'Auth and rate-limit decisions, by upstream, policy (auth, rate_limit) and decision (allowed, missing, invalid, forbidden, limited).',
    labelNames: ['upstream', 'policy', 'decision'],
    registers: [registry],
  });
  // Children per upstream, policy and decision, created here: the request path only looks them up.
  const decisionChildren = new Map(
    upstreams.map((u) => [
      u.name,
      new Map(
        (Object.keys(POLICY_DECISIONS) as (keyof typeof POLICY_DECISIONS)[]).flatMap((policy) =>
          POLICY_DECISIONS[policy].map(
            (d) => [`${policy}:${d}`, decisions.labels(u.name, policy, d)] as const,
          ),
        ),
      ),
    ]),
  );
  // Targets are configured, so these label sets are bounded; values are read at scrape time.
  new Gauge({
    name: 'tapwire_proxy_target_healthy',
    help: 'Whether a target takes traffic (1) or is unhealthy or ejected (0), by upstream and target (host:port).',
    labelNames: ['upstream', 'target'],
    registers: [registry],
    collect() {
      for (const u of upstreams)
        for (const t of u.balancer.targets)
          this.set({ upstream: u.name, target: t.address }, u.balancer.state(t) === 'healthy' ? 1 : 0);
    },
  });
  new Counter({
    name: 'tapwire_proxy_target_ejections_total',
    help: 'Passive ejections of a target after consecutive failed requests, by upstream and target (host:port).',
    labelNames: ['upstream', 'target'],
    registers: [registry],
    collect() {
      this.reset();
      for (const u of upstreams)
        for (const t of u.balancer.targets) this.inc({ upstream: u.name, target: t.address }, t.ejections);
    },
  });
  new Counter({
    name: 'tapwire_proxy_retries_total',
    help: 'Requests sent again to another target after a connect failure, by upstream.',
    labelNames: ['upstream'],
    registers: [registry],
    collect() {
      this.reset();
      for (const u of upstreams) this.inc({ upstream: u.name }, u.balancer.retries);
    },
  });
  const cacheRequests = new Counter({
    name: 'tapwire_proxy_cache_requests_total',
    help: 'Requests of routes with a cache policy, by upstream and result (hit, miss, bypass, stale).',
    labelNames: ['upstream', 'result'],
    registers: [registry],
  });
  const cacheChildren = new Map(
    upstreams.map((u) => [u.name, CACHE_RESULTS.map((r) => cacheRequests.labels(u.name, r))]),
  );
  new Gauge({
    name: 'tapwire_proxy_cache_entries',
    help: 'Responses held by the response cache (all upstreams).',
    registers: [registry],
    collect() {
      this.set(cacheStats().entries);
    },
  });
  new Gauge({
    name: 'tapwire_proxy_cache_bytes',
    help: 'Bytes the response cache holds (keys, headers and bodies), bounded by cache.maxBytes.',
    registers: [registry],
    collect() {
      this.set(cacheStats().bytes);
    },
  });
  new Counter({
    name: 'tapwire_proxy_cache_evictions_total',
    help: 'Entries the response cache evicted to stay within cache.maxBytes (least recently used first).',
    registers: [registry],
    collect() {
      this.reset();
      this.inc(cacheStats().evictions);
    },
  });
  registerEmissionMetrics(registry, { prefix: 'tapwire_proxy', events: 'Events' }, emission);

  return {
    registry,
    request(upstream, status, durationS) {
      const c = children.get(upstream) ?? children.get('')!;
      const cls = status >= 100 && status < 600 ? Math.floor(status / 100) - 1 : 4;
      c.classes[cls]!.inc();
      c.duration.observe(durationS);
    },
    errorResponse(code) {
      errorChildren.get(code)?.inc();
    },
    policyDecision(upstream, policy, decision) {
      decisionChildren.get(upstream)?.get(`${policy}:${decision}`)?.inc();
    },
    cacheRequest(upstream, result) {
      cacheChildren.get(upstream)?.[CACHE_RESULTS.indexOf(result)]?.inc();
    },
  };
}
