/** ANALYTICS_ERRORS is the catalogue of coded errors the Store raises, with the HTTP status each maps to. */
export const ANALYTICS_ERRORS = {
  TAPWIRE_ANALYTICS_INVALID_QUERY: { message: 'invalid query', status: 400, retryable: false },
  TAPWIRE_ANALYTICS_NOT_FOUND: { message: 'not found', status: 404, retryable: false },
  TAPWIRE_ANALYTICS_TOO_MANY_ROWS: {
    message: 'the answer is larger than the configured row limit; narrow the window or the filters',
    status: 422,
    retryable: false,
  },
  TAPWIRE_ANALYTICS_STORE_UNAVAILABLE: {
    message: 'the analytics store is unavailable',
    status: 503,
    retryable: true,
  },
  TAPWIRE_ANALYTICS_STORE_TIMEOUT: {
    message: 'the analytics store did not answer in time',
    status: 504,
    retryable: true,
  },
  TAPWIRE_ANALYTICS_QUERY_FAILED: { message: 'the analytics query failed', status: 500, retryable: false },
} as const;

/** AnalyticsErrorCode names one entry of ANALYTICS_ERRORS. */
export type AnalyticsErrorCode = keyof typeof ANALYTICS_ERRORS;

/** AnalyticsError is a coded Store error; `field` names the query field at fault for INVALID_QUERY. */
export class AnalyticsError extends Error {
  readonly code: AnalyticsErrorCode;
  readonly status: number;
  readonly retryable: boolean;
  readonly field: string | undefined;
  constructor(code: AnalyticsErrorCode, detail?: string, options: { cause?: unknown; field?: string } = {}) {
    super(detail ? `${ANALYTICS_ERRORS[code].message}: ${detail}` : ANALYTICS_ERRORS[code].message, {
      cause: options.cause,
    });
    this.name = 'AnalyticsError';
    this.code = code;
    this.status = ANALYTICS_ERRORS[code].status;
    this.retryable = ANALYTICS_ERRORS[code].retryable;
    this.field = options.field;
  }
}
