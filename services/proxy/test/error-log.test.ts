import { describe, expect, it } from 'vitest';
import { createProxyErrorLog } from '../src/error-log.js';

describe('createProxyErrorLog', () => {
  it('logs each code at most once per interval, then with the count suppressed since its last line', () => {
    const lines: Record<string, unknown>[] = [];
    let now = 0;
    const log = createProxyErrorLog(
      { logger: { warn: (o: object) => lines.push({ ...o }) }, now: () => now },
      1000,
    );
    log.record('TAPWIRE_PROXY_UPSTREAM_REFUSED', 'upstream a: connect ECONNREFUSED');
    log.record('TAPWIRE_PROXY_UPSTREAM_REFUSED', 'upstream a: connect ECONNREFUSED');
    log.record('TAPWIRE_PROXY_BAD_HOST', 'the request must carry exactly one Host header');
    now = 999;
    log.record('TAPWIRE_PROXY_UPSTREAM_REFUSED', 'upstream b: connect ECONNREFUSED');
    now = 1000;
    log.record('TAPWIRE_PROXY_UPSTREAM_REFUSED', 'upstream b: connect ECONNREFUSED');
    log.record('TAPWIRE_PROXY_UPSTREAM_REFUSED', 'upstream b: connect ECONNREFUSED');
    now = 5000;
    log.record('TAPWIRE_PROXY_UPSTREAM_REFUSED', 'upstream c: connect ECONNREFUSED');
    expect(lines).toEqual([
      {
        code: 'TAPWIRE_PROXY_UPSTREAM_REFUSED',
        status: 502,
        cause: 'upstream a: connect ECONNREFUSED',
        suppressed: 0,
        intervalMs: 1000,
      },
      {
        code: 'TAPWIRE_PROXY_BAD_HOST',
        status: 400,
        cause: 'the request must carry exactly one Host header',
        suppressed: 0,
        intervalMs: 1000,
      },
      {
        code: 'TAPWIRE_PROXY_UPSTREAM_REFUSED',
        status: 502,
        cause: 'upstream b: connect ECONNREFUSED',
        suppressed: 2,
        intervalMs: 1000,
      },
      {
        code: 'TAPWIRE_PROXY_UPSTREAM_REFUSED',
        status: 502,
        cause: 'upstream c: connect ECONNREFUSED',
        suppressed: 1,
        intervalMs: 1000,
      },
    ]);
  });

  it('never throws when the logger does', () => {
    const log = createProxyErrorLog({
      logger: {
        warn: () => {
          throw new Error('disk full');
        },
      },
      now: () => 0,
    });
    expect(() => log.record('TAPWIRE_PROXY_BAD_URL', 'x')).not.toThrow();
  });
});
