export {
  type AccessLogEvent,
  type AccessLogEventV1,
  accessLogV1Schema,
  accessLogV2Schema,
  CACHE_STATUSES,
  ERROR_KINDS,
  ERROR_KINDS_V1,
  HTTP_METHODS,
  upgradeAccessLogV1,
} from './access-log.js';
export { ALERT_STATES, type AlertStateEvent, alertStateV1Schema } from './alert-state.js';
export {
  createEventCodec,
  type DecodeFailureCode,
  type DecodeResult,
  type EventCodec,
  type EventDefinition,
  EventValidationError,
  formatZodIssues,
  type Upgrader,
} from './codec.js';
export { type DlqEvent, dlqV1Schema } from './dlq.js';
export { type Envelope, envelopeSchema } from './envelope.js';
export {
  accessLogCodec,
  alertStateCodec,
  CODECS,
  codecForTopic,
  dlqCodec,
  type EmittedByTopic,
  type EventByTopic,
  saturationCodec,
  silenceCodec,
  spanCodec,
  TOPICS,
  type TopicName,
} from './events.js';
export {
  attributesSchema,
  DEFAULT_TENANT,
  epochMicrosSchema,
  eventIdSchema,
  LIMITS,
  spanAttributesSchema,
  spanIdSchema,
  tenantSchema,
  traceIdSchema,
} from './primitives.js';
export {
  type SaturationEvent,
  saturationV1Schema,
  TARGET_STATES,
  targetHealthSchema,
  upstreamSaturationSchema,
} from './saturation.js';
export { SILENCE_MATCHER, type SilenceEvent, silenceV1Schema } from './silence.js';
export {
  SPAN_KINDS,
  SPAN_STATUSES,
  type SpanEvent,
  type SpanEventV1,
  type SpanLink,
  type SpanTimedEvent,
  spanEventSchema,
  spanLinkSchema,
  spanV1Schema,
  spanV2Schema,
  upgradeSpanV1,
} from './span.js';
export { parseTime } from './time.js';
