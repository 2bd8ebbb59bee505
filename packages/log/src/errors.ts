/** LogErrorCode names what the embedded log refused or failed to do. */
export type LogErrorCode =
  | 'TAPWIRE_LOG_LOCKED'
  | 'TAPWIRE_LOG_BAD_TOPIC'
  | 'TAPWIRE_LOG_BAD_ID'
  | 'TAPWIRE_LOG_CLOSED'
  | 'TAPWIRE_LOG_WRITE_FAILED';

/**
 * LogError is a refusal or failure of the embedded log, with a code to act on. A
 * TAPWIRE_LOG_WRITE_FAILED left the log as it was before the append; the next append retries.
 */
export class LogError extends Error {
  constructor(
    readonly code: LogErrorCode,
    message: string,
    options?: { cause?: unknown },
  ) {
    super(`${code}: ${message}`, options);
    this.name = 'LogError';
  }
}
