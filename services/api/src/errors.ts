/** API_ERRORS is the catalogue of errors the API itself raises (the Store's come from @tapwire/analytics). */
export const API_ERRORS = {
  TAPWIRE_API_BAD_REQUEST: { message: 'invalid request', status: 400 },
  TAPWIRE_API_UNAUTHORIZED: { message: 'a valid bearer token is required', status: 401 },
  TAPWIRE_API_FORBIDDEN: { message: 'the token does not allow this', status: 403 },
  TAPWIRE_API_NOT_FOUND: { message: 'not found', status: 404 },
  TAPWIRE_API_RATE_LIMITED: { message: 'too many requests for this token', status: 429 },
  TAPWIRE_API_INTERNAL: { message: 'internal error', status: 500 },
} as const;

/** ApiErrorCode names one entry of API_ERRORS. */
export type ApiErrorCode = keyof typeof API_ERRORS;

/** ApiError is a coded API error; `field` names the request field at fault. */
export class ApiError extends Error {
  readonly code: ApiErrorCode;
  readonly status: number;
  readonly field: string | undefined;
  constructor(code: ApiErrorCode, detail?: string, options: { field?: string; cause?: unknown } = {}) {
    super(detail ?? API_ERRORS[code].message, { cause: options.cause });
    this.name = 'ApiError';
    this.code = code;
    this.status = API_ERRORS[code].status;
    this.field = options.field;
  }
}
