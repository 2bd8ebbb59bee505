export { ERROR_KINDS, HTTP_METHODS, accessLogV1Schema, type AccessLogEvent } from './access-log.js';
export { ALERT_STATES, alertStateV1Schema, type AlertStateEvent } from './alert-state.js';
export {
  createEventCodec,
  EventValidationError,
  formatZodIssues,
  type DecodeFailureCode,
  type DecodeResult,
  type EventCodec,
  type EventDefinition,
  type Upgrader,
} from './codec.js';
export { dlqV1Schema, type DlqEvent } from './dlq.js';
export { envelopeSchema, type Envelope } from './envelope.js';
export {
  accessLogCodec,
  alertStateCodec,
  CODECS,
  codecForTopic,
  dlqCodec,
  saturationCodec,
  spanCodec,
  TOPICS,
  type EventByTopic,
  type TopicName,
} from './events.js';
export {
  attributesSchema,
  DEFAULT_TENANT,
  epochMicrosSchema,
  eventIdSchema,
  LIMITS,
  spanIdSchema,
  tenantSchema,
  traceIdSchema,
} from './primitives.js';
export { saturationV1Schema, upstreamSaturationSchema, type SaturationEvent } from './saturation.js';
export { SPAN_KINDS, SPAN_STATUSES, spanV1Schema, type SpanEvent } from './span.js';
