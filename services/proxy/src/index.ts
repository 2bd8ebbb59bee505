export { buildProxy, type TapwireProxy } from './app.js';
export {
  type Balancer,
  createBalancer,
  createRetryBudget,
  RETRY_WINDOW_S,
  type RetryBudget,
  type Target,
  type TargetState,
} from './balancer.js';
export {
  ALWAYS_REDACTED_HEADERS,
  DEFAULT_REDACTED_QUERY_PARAMS,
  type ProxyConfig,
  proxyConfigSchema,
  type UpstreamConfig,
  upstreamSchema,
} from './config.js';
export { PROXY_ERRORS, type ProxyErrorCode } from './errors.js';
export {
  createHealthChecker,
  type HealthChecker,
  httpTargetCheck,
  recordCheck,
  type TargetCheck,
} from './health-check.js';
export { REQUEST_DURATION_BUCKETS_S } from './metrics.js';
export {
  createRouteResolver,
  normalizePath,
  ROUTE_OTHER,
  ROUTE_UNMATCHED,
  type RouteBudget,
} from './routes.js';
export {
  type ProxyServiceConfig,
  proxyServiceConfigSchema,
  type RunningProxy,
  runProxyService,
} from './service.js';
export { formatTraceParent, parseTraceParent } from './trace-context.js';
