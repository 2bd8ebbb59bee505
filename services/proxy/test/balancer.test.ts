import {
  type Balancer,
  createBalancer,
  createRetryBudget,
  proxyConfigSchema,
  type Target,
  upstreamSchema,
} from '@tapwire/proxy';
import { afterEach, describe, expect, it } from 'vitest';

const THREE = ['http://10.0.0.1:8080', 'http://10.0.0.2:8080', 'http://10.0.0.3:8080'];
const built: Balancer[] = [];

function balancer(upstream: Record<string, unknown>, clock = { ms: 0 }): Balancer {
  const b = createBalancer(upstreamSchema.parse({ name: 'api', ...upstream }), { now: () => clock.ms });
  built.push(b);
  return b;
}

function picks(b: Balancer, n: number): string[] {
  return Array.from({ length: n }, () => b.pick()?.address ?? 'none');
}

afterEach(async () => {
  for (const b of built.splice(0)) await Promise.all(b.targets.map((t) => t.pool.close()));
});

describe('createBalancer', () => {
  it('names each target host:port, with the scheme default port when the URL has none', () => {
    const b = balancer({ targets: ['http://a.internal', 'https://b.internal/api/', 'http://[::1]:9000'] });
    expect(b.targets.map((t) => [t.address, t.basePath, t.hostHeader])).toEqual([
      ['a.internal:80', '', 'a.internal'],
      ['b.internal:443', '/api', 'b.internal'],
      ['[::1]:9000', '', '[::1]:9000'],
    ]);
    expect(b.multi).toBe(true);
  });

  it('refuses two targets with the same host:port, and an upstream with both or neither of url and targets', () => {
    const issues = (u: Record<string, unknown>) => {
      const r = proxyConfigSchema.safeParse({ upstreams: [{ name: 'a', ...u }] });
      return r.success ? [] : r.error.issues.map((i) => `${i.path.join('.')}: ${i.message}`);
    };
    expect(issues({ targets: ['http://h:80', 'http://h/x'] })).toEqual([
      'upstreams.0.targets: targets must have distinct host:port',
    ]);
    expect(issues({ targets: ['http://h:80', 'http://h:81'] })).toEqual([]);
    expect(issues({ url: 'http://h', targets: ['http://h:81'] })).toEqual([
      'upstreams.0.url: set exactly one of url and targets',
    ]);
    expect(issues({})).toEqual(['upstreams.0.url: set exactly one of url and targets']);
  });

  it('round-robin goes through the targets in order and skips an unhealthy one', () => {
    const b = balancer({ targets: THREE });
    expect(picks(b, 4)).toEqual(['10.0.0.1:8080', '10.0.0.2:8080', '10.0.0.3:8080', '10.0.0.1:8080']);
    b.targets[2]!.checkedHealthy = false;
    expect(picks(b, 4)).toEqual(['10.0.0.2:8080', '10.0.0.1:8080', '10.0.0.2:8080', '10.0.0.1:8080']);
    expect(b.state(b.targets[2]!)).toBe('unhealthy');
  });

  it('least-requests picks the target with the fewest in flight, ties in round-robin order', () => {
    const b = balancer({ targets: THREE, balancer: 'least-requests' });
    const [a, , c] = b.targets as Target[];
    a!.inFlight = 2;
    c!.inFlight = 1;
    expect(b.pick()?.address).toBe('10.0.0.2:8080');
    b.targets[1]!.inFlight = 3;
    expect(b.pick()?.address).toBe('10.0.0.3:8080');
    c!.inFlight = 2;
    // a and c tie at 2: round-robin order continues after c.
    expect(b.pick()?.address).toBe('10.0.0.1:8080');
    expect(b.pick()?.address).toBe('10.0.0.3:8080');
  });

  it('pick leaves out the targets already tried, and returns undefined when none is left', () => {
    const b = balancer({ targets: THREE.slice(0, 2) });
    const [a, c] = b.targets as Target[];
    expect(b.pick([a!])).toBe(c);
    expect(b.pick([a!, c!])).toBeUndefined();
  });

  it('ejects a target after consecutiveFailures in a row for ejectMs, then one failure ejects it again', () => {
    const clock = { ms: 1000 };
    const b = balancer({ targets: THREE, passive: { consecutiveFailures: 3, ejectMs: 5000 } }, clock);
    const t = b.targets[0]!;
    expect([b.failed(t), b.failed(t)]).toEqual([false, false]);
    b.succeeded(t); // a success resets the count
    expect([b.failed(t), b.failed(t), b.failed(t)]).toEqual([false, false, true]);
    expect(b.state(t)).toBe('ejected');
    expect(t.ejections).toBe(1);
    expect(picks(b, 3)).toEqual(['10.0.0.2:8080', '10.0.0.3:8080', '10.0.0.2:8080']);
    clock.ms = 5999;
    expect(b.state(t)).toBe('ejected');
    clock.ms = 6000;
    expect(b.state(t)).toBe('healthy');
    expect(picks(b, 3)).toContain('10.0.0.1:8080');
    // Half-open: the first failure back ejects it again.
    expect(b.failed(t)).toBe(true);
    expect(t.ejections).toBe(2);
    expect(b.state(t)).toBe('ejected');
  });

  it('never ejects the last target that takes traffic', () => {
    const clock = { ms: 0 };
    const b = balancer(
      { targets: THREE.slice(0, 2), passive: { consecutiveFailures: 1, ejectMs: 1000 } },
      clock,
    );
    const [a, c] = b.targets as Target[];
    expect(b.failed(a!)).toBe(true);
    expect(b.failed(c!)).toBe(false);
    expect(b.state(c!)).toBe('healthy');
    expect(c!.consecutiveFailures).toBe(1);
    expect(b.pick()).toBe(c);
  });

  it('consecutiveFailures 0 never ejects', () => {
    const b = balancer({ targets: THREE, passive: { consecutiveFailures: 0 } });
    for (let i = 0; i < 100; i++) expect(b.failed(b.targets[0]!)).toBe(false);
    expect(b.state(b.targets[0]!)).toBe('healthy');
  });

  it('a single url: always that target, never ejected, no retries; unhealthy only with health checks', () => {
    const b = balancer({ url: 'http://10.0.0.9:7000/base', passive: { consecutiveFailures: 1 } });
    const only = b.targets[0]!;
    expect(b.multi).toBe(false);
    expect(only.address).toBe('10.0.0.9:7000');
    expect(b.failed(only)).toBe(false);
    expect(b.pick()).toBe(only);
    expect(b.tryRetry(0)).toBe(false);
    only.checkedHealthy = false;
    expect(b.pick()).toBe(only); // no healthCheck configured: its state is never consulted
    const checked = balancer({ url: 'http://10.0.0.9:7000', healthCheck: {} });
    checked.targets[0]!.checkedHealthy = false;
    expect(checked.pick()).toBeUndefined();
  });

  it('tryRetry stops at retries.attempts per request', () => {
    const b = balancer({ targets: THREE, retries: { attempts: 2, minPerSecond: 100 } });
    expect([b.tryRetry(0), b.tryRetry(1), b.tryRetry(2)]).toEqual([true, true, false]);
    expect(b.retries).toBe(2);
  });
});

describe('createRetryBudget', () => {
  it('allows minPerSecond × 10 retries over 10 s whatever the traffic', () => {
    const budget = createRetryBudget(0, 2);
    const allowed = Array.from({ length: 25 }, (_, i) => budget.tryRetry(i * 100));
    expect(allowed.filter(Boolean)).toHaveLength(20);
    expect(allowed.slice(0, 20).every(Boolean)).toBe(true);
    // At 10 s the 10 retries of second 0 have left the window; the 10 of second 1 are still in it.
    const later = Array.from({ length: 11 }, () => budget.tryRetry(10_000));
    expect(later.filter(Boolean)).toHaveLength(10);
    expect(later[10]).toBe(false);
  });

  it('allows budgetPercent of the requests of the last 10 s when that is more', () => {
    const budget = createRetryBudget(20, 0);
    for (let i = 0; i < 100; i++) budget.countRequest(500);
    for (let i = 0; i < 50; i++) budget.countRequest(9_500);
    // 150 requests in the window: 20 % is 30 retries.
    const allowed = Array.from({ length: 35 }, () => budget.tryRetry(9_600));
    expect(allowed.filter(Boolean)).toHaveLength(30);
    // At 10.0 s the requests of second 0 are out of the window: 50 requests, 10 retries allowed,
    // and the 30 of second 9 are still counted.
    expect(budget.tryRetry(10_000)).toBe(false);
  });

  it('the larger of the two bounds applies', () => {
    const budget = createRetryBudget(10, 1);
    for (let i = 0; i < 300; i++) budget.countRequest(0);
    // max(1 × 10, 10 % of 300) = 30
    const allowed = Array.from({ length: 31 }, () => budget.tryRetry(0));
    expect(allowed.filter(Boolean)).toHaveLength(30);
  });
});
