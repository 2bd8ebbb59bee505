export { type AdminServer, createAdminServer, type Readiness } from './admin-server.js';
export {
  type ConnectionRefusals,
  createConnectionRefusals,
  REFUSAL_LINGER_MS,
} from './connection-refusals.js';
export { stopOnSignals } from './lifecycle.js';
export {
  explainListenError,
  ListenError,
  type ListenErrorCode,
  type ListenerSetting,
  listenAt,
} from './listen.js';
export {
  createLogger,
  type Logger,
  type LoggerOptions,
  prettyLogs,
  REDACTED,
  REDACTED_KEYS,
} from './logger.js';
export {
  ALWAYS_REDACTED_HEADERS,
  createQueryRedactor,
  DEFAULT_REDACTED_QUERY_PARAMS,
  type QueryRedactor,
} from './redact.js';
export { startTracing, type Tracing, type TracingOptions } from './tracing.js';
