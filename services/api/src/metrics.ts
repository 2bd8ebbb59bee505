import { Counter, collectDefaultMetrics, Histogram, Registry } from 'prom-client';

/** ApiMetrics holds the API's instruments. */
export interface ApiMetrics {
  readonly registry: Registry;
  request(route: string, status: number, durationS: number): void;
  storeQuery(outcome: string, durationS: number): void;
  cache(hit: boolean): void;
}

/** createApiMetrics registers the API's metrics on a fresh registry. */
export function createApiMetrics(): ApiMetrics {
  const registry = new Registry();
  collectDefaultMetrics({ register: registry, prefix: 'tapwire_api_process_' });
  const requests = new Counter({
    name: 'tapwire_api_requests_total',
    help: 'API requests answered, by route and status code.',
    labelNames: ['route', 'status'],
    registers: [registry],
  });
  const duration = new Histogram({
    name: 'tapwire_api_request_duration_seconds',
    help: 'API response time, by route.',
    labelNames: ['route'],
    buckets: [0.005, 0.01, 0.025, 0.05, 0.1, 0.15, 0.25, 0.5, 1, 2.5, 5, 10],
    registers: [registry],
  });
  const queries = new Counter({
    name: 'tapwire_api_store_queries_total',
    help: 'Store (ClickHouse) queries, by outcome: ok or the error code.',
    labelNames: ['outcome'],
    registers: [registry],
  });
  const queryDuration = new Histogram({
    name: 'tapwire_api_store_query_duration_seconds',
    help: 'Store (ClickHouse) query time.',
    buckets: [0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10],
    registers: [registry],
  });
  const cache = new Counter({
    name: 'tapwire_api_cache_lookups_total',
    help: 'Answer-cache lookups, by result (hit or miss).',
    labelNames: ['result'],
    registers: [registry],
  });
  return {
    registry,
    request(route, status, durationS) {
      requests.labels(route, String(status)).inc();
      duration.labels(route).observe(durationS);
    },
    storeQuery(outcome, durationS) {
      queries.labels(outcome).inc();
      queryDuration.observe(durationS);
    },
    cache(hit) {
      cache.labels(hit ? 'hit' : 'miss').inc();
    },
  };
}
