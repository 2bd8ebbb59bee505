/** OTLP_ERRORS is the catalogue of errors of the OTLP protocol library, with their HTTP status. */
export const OTLP_ERRORS = {
  TAPWIRE_OTLP_BAD_REQUEST: {
    status: 400,
    retryable: false,
    message: 'the OTLP export request cannot be accepted as sent',
  },
} as const;

/** OtlpErrorCode names one entry of OTLP_ERRORS. */
export type OtlpErrorCode = keyof typeof OTLP_ERRORS;

/** OtlpRequestError is input the OTLP spec says to refuse: malformed protobuf or JSON, too many spans. */
export class OtlpRequestError extends Error {
  readonly code = 'TAPWIRE_OTLP_BAD_REQUEST' as const;
  readonly status = OTLP_ERRORS.TAPWIRE_OTLP_BAD_REQUEST.status;
  readonly retryable = OTLP_ERRORS.TAPWIRE_OTLP_BAD_REQUEST.retryable;
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'OtlpRequestError';
  }
}
