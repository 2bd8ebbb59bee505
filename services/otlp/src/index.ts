export { createTokenLookup, type Exporter, type TokenLookup } from './auth.js';
export { type OtlpConfig, type OtlpToken, otlpConfigSchema, otlpTokenSchema } from './config.js';
export { OTLP_HTTP_TRACES_PATH } from './http-receiver.js';
export {
  OUTCOMES,
  type Outcome,
  REQUEST_DURATION_BUCKETS_S,
  TRANSPORTS,
  type Transport,
} from './metrics.js';
export {
  buildOtlpReceiver,
  type OtlpReceiver,
  type OtlpReceiverStats,
  type OtlpReceiverUrls,
} from './receiver.js';
export { encodeRetryStatus, RETRY_INFO_TYPE_URL } from './retry-status.js';
export {
  type OtlpServiceConfig,
  otlpServiceConfigSchema,
  type RunningOtlpService,
  runOtlpService,
} from './service.js';
export { THROTTLE_REASONS, type ThrottleReason } from './throttle.js';
