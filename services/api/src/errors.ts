/** API_ERRORS is the catalogue of errors the API itself raises (the Store's come from @tapwire/analytics). */
export const API_ERRORS = {
  TAPWIRE_API_BAD_REQUEST: { message: 'invalid request', status: 400 },
  TAPWIRE_API_UNAUTHORIZED: { message: 'a valid bearer token is required', status: 401 },
  TAPWIRE_API_FORBIDDEN: { message: 'the token does not allow this', status: 403 },
  TAPWIRE_API_NOT_FOUND: { message: 'not found', status: 404 },
  TAPWIRE_API_METHOD_NOT_ALLOWED: { message: 'method not allowed on this path', status: 405 },
  TAPWIRE_API_REQUEST_TIMEOUT: { message: 'the request was not received in time', status: 408 },
  TAPWIRE_API_BODY_TOO_LARGE: { message: 'request body is too large', status: 413 },
  TAPWIRE_API_UNSUPPORTED_MEDIA_TYPE: { message: 'unsupported Content-Type', status: 415 },
  TAPWIRE_API_RATE_LIMITED: { message: 'too many requests for this token', status: 429 },
  TAPWIRE_API_HEADERS_TOO_LARGE: { message: 'request line and headers are too large', status: 431 },
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

const CODE_BY_STATUS = new Map<number, ApiErrorCode>(
  (Object.keys(API_ERRORS) as ApiErrorCode[]).map((code) => [API_ERRORS[code].status, code]),
);

/** apiErrorCodeFor names the catalogue entry for an HTTP status fastify or Node chose (400's for any other 4xx). */
export function apiErrorCodeFor(status: number): ApiErrorCode {
  return CODE_BY_STATUS.get(status) ?? (status >= 500 ? 'TAPWIRE_API_INTERNAL' : 'TAPWIRE_API_BAD_REQUEST');
}
