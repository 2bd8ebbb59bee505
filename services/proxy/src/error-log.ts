import type { Logger } from '@tapwire/telemetry';
import { PROXY_ERRORS, type ProxyErrorCode } from './errors.js';

/** ERROR_LOG_INTERVAL_MS is the shortest gap between two log lines about one code and upstream. */
export const ERROR_LOG_INTERVAL_MS = 10_000;

/** ProxyErrorLog warns about responses the proxy generated itself, rate-limited per code and upstream. */
export interface ProxyErrorLog {
  /**
   * record notes one proxy-generated response; `cause` says what went wrong beyond the code and
   * `upstream` names the upstream the request was routed to ('' before routing).
   */
  record(code: ProxyErrorCode, cause: string, upstream?: string): void;
}

/**
 * createProxyErrorLog logs the first occurrence of each error code for each upstream, then at most
 * one line per code and upstream per interval carrying how many were suppressed since the previous
 * line: a flood of bad requests or a dead upstream must not turn into a flood of log lines, nor
 * hide that another upstream fails too. Upstream names come from config, so the keys are bounded.
 */
export function createProxyErrorLog(
  deps: { logger: Pick<Logger, 'warn'>; now: () => number },
  intervalMs: number = ERROR_LOG_INTERVAL_MS,
): ProxyErrorLog {
  const last = new Map<string, { atMs: number; suppressed: number }>();
  return {
    record(code, cause, upstream = '') {
      const now = deps.now();
      const key = `${code} ${upstream}`;
      const seen = last.get(key);
      if (seen && now - seen.atMs < intervalMs) {
        seen.suppressed++;
        return;
      }
      const suppressed = seen?.suppressed ?? 0;
      last.set(key, { atMs: now, suppressed: 0 });
      try {
        deps.logger.warn(
          { code, status: PROXY_ERRORS[code].status, upstream, cause, suppressed, intervalMs },
          'proxy answered a request itself',
        );
      } catch {
        // Logging never throws into the request path.
      }
    },
  };
}
