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
    log.record('TAPWIRE_PROXY_UPSTREAM_REFUSED', 'upstream a: connect ECONNREFUSED', 'a');
    log.record('TAPWIRE_PROXY_UPSTREAM_REFUSED', 'upstream a: connect ECONNREFUSED (2)', 'a');
    log.record('TAPWIRE_PROXY_BAD_HOST', 'the request must carry exactly one Host header');
    now = 999;
    log.record('TAPWIRE_PROXY_UPSTREAM_REFUSED', 'upstream a: connect ECONNREFUSED (3)', 'a');
    now = 1000;
    log.record('TAPWIRE_PROXY_UPSTREAM_REFUSED', 'upstream a: connect ECONNREFUSED (4)', 'a');
    log.record('TAPWIRE_PROXY_UPSTREAM_REFUSED', 'upstream a: connect ECONNREFUSED (5)', 'a');
    now = 5000;
    log.record('TAPWIRE_PROXY_UPSTREAM_REFUSED', 'upstream a: connect ECONNREFUSED (6)', 'a');
    expect(lines).toEqual([
      {
        code: 'TAPWIRE_PROXY_UPSTREAM_REFUSED',
        status: 502,
        upstream: 'a',
        cause: 'upstream a: connect ECONNREFUSED',
        suppressed: 0,
        intervalMs: 1000,
      },
      {
        code: 'TAPWIRE_PROXY_BAD_HOST',
        status: 400,
        upstream: '',
        cause: 'the request must carry exactly one Host header',
        suppressed: 0,
        intervalMs: 1000,
      },
      {
        code: 'TAPWIRE_PROXY_UPSTREAM_REFUSED',
        status: 502,
        upstream: 'a',
        cause: 'upstream a: connect ECONNREFUSED (4)',
        suppressed: 2,
        intervalMs: 1000,
      },
      {
        code: 'TAPWIRE_PROXY_UPSTREAM_REFUSED',
        status: 502,
        upstream: 'a',
        cause: 'upstream a: connect ECONNREFUSED (6)',
        suppressed: 1,
        intervalMs: 1000,
      },
    ]);
  });

  it('logs a second upstream’s failure while the first one keeps failing (was held back by the first’s interval)', () => {
    const lines: Record<string, unknown>[] = [];
    let now = 0;
    const log = createProxyErrorLog(
      { logger: { warn: (o: object) => lines.push({ ...o }) }, now: () => now },
      1000,
    );
    // Upstream a fails every 100 ms; upstream b fails once in between, then again.
    for (let i = 0; i < 25; i++) {
      now = i * 100;
      log.record('TAPWIRE_PROXY_UPSTREAM_REFUSED', 'upstream a: connect ECONNREFUSED', 'a');
      if (i === 3 || i === 4)
        log.record('TAPWIRE_PROXY_UPSTREAM_REFUSED', 'upstream b: connect ECONNREFUSED', 'b');
    }
    log.record('TAPWIRE_PROXY_UPSTREAM_TIMEOUT', 'upstream b: no response in 30000 ms', 'b');
    expect(lines.map((l) => [l.upstream, l.code, l.cause, l.suppressed])).toEqual([
      ['a', 'TAPWIRE_PROXY_UPSTREAM_REFUSED', 'upstream a: connect ECONNREFUSED', 0],
      ['b', 'TAPWIRE_PROXY_UPSTREAM_REFUSED', 'upstream b: connect ECONNREFUSED', 0],
      ['a', 'TAPWIRE_PROXY_UPSTREAM_REFUSED', 'upstream a: connect ECONNREFUSED', 9],
      ['a', 'TAPWIRE_PROXY_UPSTREAM_REFUSED', 'upstream a: connect ECONNREFUSED', 9],
      ['b', 'TAPWIRE_PROXY_UPSTREAM_TIMEOUT', 'upstream b: no response in 30000 ms', 0],
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
