/** PROXY_ERRORS is the catalogue of errors the proxy answers itself, with their HTTP status. */
export const PROXY_ERRORS = {
  TAPWIRE_PROXY_NO_ROUTE: { status: 404, message: 'no upstream matches this host and path' },
  TAPWIRE_PROXY_UPSTREAM_REFUSED: { status: 502, message: 'the upstream refused the connection' },
  TAPWIRE_PROXY_UPSTREAM_RESET: { status: 502, message: 'the upstream closed the connection' },
  TAPWIRE_PROXY_UPSTREAM_ERROR: { status: 502, message: 'the upstream sent an invalid response' },
  TAPWIRE_PROXY_UPSTREAM_TIMEOUT: { status: 504, message: 'the upstream did not answer in time' },
  TAPWIRE_PROXY_OVER_LIMIT: { status: 503, message: 'too many requests in flight to this upstream' },
  TAPWIRE_PROXY_BODY_TOO_LARGE: { status: 413, message: 'request body too large' },
  TAPWIRE_PROXY_BAD_REQUEST: { status: 400, message: 'malformed request' },
  TAPWIRE_PROXY_BAD_REQUEST_LINE: {
    status: 400,
    message: 'malformed request line: expected "METHOD target HTTP/1.x" separated by single spaces',
  },
  TAPWIRE_PROXY_BAD_HOST: { status: 400, message: 'the request must carry exactly one Host header' },
  TAPWIRE_PROXY_BAD_URL: { status: 400, message: 'the request target is not valid percent-encoding' },
  TAPWIRE_PROXY_NOT_FORWARDABLE: { status: 400, message: 'the request cannot be forwarded as sent' },
  TAPWIRE_PROXY_URI_TOO_LONG: { status: 414, message: 'the request target is too long' },
  TAPWIRE_PROXY_METHOD_NOT_ALLOWED: { status: 405, message: 'the proxy does not tunnel CONNECT requests' },
  TAPWIRE_PROXY_EXPECTATION_FAILED: { status: 417, message: 'only "Expect: 100-continue" is supported' },
  TAPWIRE_PROXY_HEADERS_TOO_LARGE: { status: 431, message: 'request headers too large' },
  TAPWIRE_PROXY_CLIENT_TIMEOUT: { status: 408, message: 'the client did not send its request in time' },
  TAPWIRE_PROXY_SHUTTING_DOWN: { status: 503, message: 'the proxy is shutting down' },
  TAPWIRE_PROXY_AUTH_MISSING: { status: 401, message: 'this route needs credentials' },
  TAPWIRE_PROXY_AUTH_INVALID: { status: 401, message: 'the credentials are not valid' },
  TAPWIRE_PROXY_FORBIDDEN: { status: 403, message: 'the consumer may not use this route' },
  TAPWIRE_PROXY_RATE_LIMITED: { status: 429, message: 'rate limit exceeded' },
  TAPWIRE_PROXY_NO_HEALTHY_TARGET: { status: 503, message: 'no healthy target for this upstream' },
} as const;

/** ProxyErrorCode names one entry of PROXY_ERRORS. */
export type ProxyErrorCode = keyof typeof PROXY_ERRORS;

/** proxyErrorBody renders the JSON body of a proxy-generated error. */
export function proxyErrorBody(code: ProxyErrorCode, requestId: string): string {
  return JSON.stringify({ error: { code, message: PROXY_ERRORS[code].message, request_id: requestId } });
}
