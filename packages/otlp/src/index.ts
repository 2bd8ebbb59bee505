export { OTLP_ERRORS, type OtlpErrorCode, OtlpRequestError } from './errors.js';
export { type OtlpRedaction, secretHeaderKeys } from './redaction.js';
export { encodeStatus, encodeTraceResponse, TRACE_EXPORT_PATH } from './responses.js';
export type { OtlpSpanEvent, OtlpSpanEventEvent, OtlpSpanLink } from './span-event.js';
export {
  createTraceMapper,
  type MappedExport,
  type OtlpFormat,
  type OtlpLimits,
  type TraceMapper,
  UNKNOWN_SERVICE,
  UNNAMED_SPAN,
} from './trace-mapper.js';
export { cutText } from './values.js';
