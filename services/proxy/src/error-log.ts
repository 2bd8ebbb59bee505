import type { Logger } from '@tapwire/telemetry';
import { PROXY_ERRORS, type ProxyErrorCode } from './errors.js';

/** ERROR_LOG_INTERVAL_MS is the shortest gap between two log lines about the same error code. */
export const ERROR_LOG_INTERVAL_MS = 10_000;

/** ProxyErrorLog warns about responses the proxy generated itself, rate-limited per error code. */
export interface ProxyErrorLog {
  /** record notes one proxy-generated response; `cause` says what went wrong beyond the code. */
  record(code: ProxyErrorCode, cause: string): void;
}

/**
 * createProxyErrorLog logs the first occurrence of each error code, then at most one line per code
 * per interval carrying how many were suppressed since the previous line: a flood of bad requests
 * or a dead upstream must not turn into a flood of log lines, yet every cause shows up.
 */
export function createProxyErrorLog(
  deps: { logger: Pick<Logger, 'warn'>; now: () => number },
  intervalMs: number = ERROR_LOG_INTERVAL_MS,
): ProxyErrorLog {
  const last = new Map<ProxyErrorCode, { atMs: number; suppressed: number }>();
  return {
    record(code, cause) {
      const now = deps.now();
      const seen = last.get(code);
      if (seen && now - seen.atMs < intervalMs) {
        seen.suppressed++;
        return;
      }
      const suppressed = seen?.suppressed ?? 0;
      last.set(code, { atMs: now, suppressed: 0 });
      try {
        deps.logger.warn(
          { code, status: PROXY_ERRORS[code].status, cause, suppressed, intervalMs },
          'proxy answered a request itself',
        );
      } catch {
        // Logging never throws into the request path.
      }
    },
  };
}
