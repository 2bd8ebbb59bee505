export { OTLP_ERRORS, type OtlpErrorCode, OtlpRequestError } from './errors.js';
export { type OtlpRedaction, secretHeaderKeys } from './redaction.js';
export {
  encodeRetryStatus,
  encodeStatus,
  encodeTraceResponse,
  RETRY_INFO_TYPE_URL,
  TRACE_EXPORT_PATH,
} from './responses.js';
export {
  createTraceMapper,
  MAX_REQUEST_EVENT_BYTES,
  MAX_RESOURCE_BYTES,
  MAX_SPAN_EVENT_BYTES,
  MAX_TIME_MICROS,
  type MappedExport,
  MIN_TIME_MICROS,
  type OtlpFormat,
  type OtlpLimits,
  type TraceMapper,
  UNKNOWN_SERVICE,
  UNNAMED_SPAN,
} from './trace-mapper.js';
export { cutText } from './values.js';
