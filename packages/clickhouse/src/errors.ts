/** CH_ERRORS is the catalogue of coded errors this package raises. */
export const CH_ERRORS = {
  TAPWIRE_CH_UNREACHABLE: { message: 'ClickHouse is unreachable', retryable: true },
  TAPWIRE_CH_QUERY_FAILED: { message: 'ClickHouse query failed', retryable: false },
  TAPWIRE_CH_TIMEOUT: { message: 'ClickHouse query timed out', retryable: true },
  TAPWIRE_CH_OVERLOADED: { message: 'ClickHouse is overloaded', retryable: true },
  TAPWIRE_CH_INSERT_FAILED: { message: 'ClickHouse insert failed', retryable: true },
  TAPWIRE_CH_UNSAFE_SQL_VALUE: { message: 'value cannot be used in SQL', retryable: false },
  TAPWIRE_CH_MIGRATION_CHECKSUM_MISMATCH: { message: 'a landed migration was edited', retryable: false },
  TAPWIRE_CH_MIGRATION_MISSING: {
    message: 'an applied migration is missing from the migrations folder',
    retryable: false,
  },
  TAPWIRE_CH_MIGRATION_INVALID: { message: 'invalid migration file', retryable: false },
  TAPWIRE_CH_MIGRATION_FAILED: { message: 'a migration statement failed', retryable: false },
  TAPWIRE_CH_MIGRATION_LOCKED: { message: 'another process holds the migration lock', retryable: true },
  TAPWIRE_CH_PARTITION_DROP_INCOMPLETE: {
    message: 'a dropped partition could still come back after a server restart',
    retryable: true,
  },
} as const;

/** ClickHouseErrorCode names one entry of CH_ERRORS. */
export type ClickHouseErrorCode = keyof typeof CH_ERRORS;

/** TapwireClickHouseError is a coded error of this package; `serverCode` is ClickHouse's numeric code. */
export class TapwireClickHouseError extends Error {
  readonly code: ClickHouseErrorCode;
  readonly retryable: boolean;
  readonly serverCode: number | undefined;
  constructor(
    code: ClickHouseErrorCode,
    detail?: string,
    options: { cause?: unknown; serverCode?: number } = {},
  ) {
    super(detail ? `${CH_ERRORS[code].message}: ${detail}` : CH_ERRORS[code].message, {
      cause: options.cause,
    });
    this.name = 'TapwireClickHouseError';
    this.code = code;
    this.retryable = CH_ERRORS[code].retryable;
    this.serverCode = options.serverCode;
  }
}

// Server codes worth retrying: timeouts, memory and part pressure, too many queries, table read-only
// during startup. Everything else (syntax, unknown table, type errors) will fail again.
const TIMEOUT_CODES = new Set([159, 160, 209, 210]);
const OVERLOAD_CODES = new Set([202, 241, 252, 242, 425]);

/** serverCodeOf extracts ClickHouse's numeric error code from a message in the 18.x or modern form. */
export function serverCodeOf(message: string): number | undefined {
  const m = /Code: (\d+)[.,]/.exec(message);
  return m ? Number(m[1]) : undefined;
}

const NETWORK_ERRNOS = new Set([
  'ECONNREFUSED',
  'ECONNRESET',
  'EHOSTUNREACH',
  'ENOTFOUND',
  'EPIPE',
  'ETIMEDOUT',
  'EAI_AGAIN',
]);

/** classifyError maps any error from the HTTP client to a coded TapwireClickHouseError. */
export function classifyError(
  err: unknown,
  fallback: ClickHouseErrorCode = 'TAPWIRE_CH_QUERY_FAILED',
): TapwireClickHouseError {
  if (err instanceof TapwireClickHouseError) return err;
  const e = err as { message?: string; code?: string; cause?: { code?: string } };
  const message = e?.message ?? String(err);
  const errno = e?.code ?? e?.cause?.code;
  if ((errno && NETWORK_ERRNOS.has(errno)) || /socket hang up|ECONNREFUSED|ECONNRESET/.test(message)) {
    return new TapwireClickHouseError('TAPWIRE_CH_UNREACHABLE', message, { cause: err });
  }
  // @clickhouse/client parses a modern error body (`Code: N. DB::Exception: … (NAME)`) into an
  // error whose message lacks the `Code: N` prefix and whose `code` is N; an 18.16 body (no
  // `(NAME)`) stays whole in the message.
  const serverCode = serverCodeOf(message) ?? (/^\d+$/.test(errno ?? '') ? Number(errno) : undefined);
  if (/Timeout error|timed out/i.test(message) && serverCode === undefined) {
    return new TapwireClickHouseError('TAPWIRE_CH_TIMEOUT', message, { cause: err });
  }
  if (serverCode !== undefined && TIMEOUT_CODES.has(serverCode)) {
    return new TapwireClickHouseError('TAPWIRE_CH_TIMEOUT', message, { cause: err, serverCode });
  }
  if (serverCode !== undefined && OVERLOAD_CODES.has(serverCode)) {
    return new TapwireClickHouseError('TAPWIRE_CH_OVERLOADED', message, { cause: err, serverCode });
  }
  return new TapwireClickHouseError(
    fallback,
    message,
    serverCode === undefined ? { cause: err } : { cause: err, serverCode },
  );
}
