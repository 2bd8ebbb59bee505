import { describe, expect, it } from 'vitest';
import { rateLimitPolicySchema } from '../../src/policy/config.js';
import { createRateLimiter } from '../../src/policy/rate-limit.js';

function clock(start = 0) {
  let t = start;
  return {
    now: () => t,
    set(ms: number) {
      t = ms;
    },
  };
}

const policy = (p: Record<string, unknown>) => rateLimitPolicySchema.parse(p);

describe('sliding-window rate limiter', () => {
  it('allows exactly `limit` requests in the first window, refuses the next, and says so in the headers', () => {
    const c = clock(60_000); // window index 1, 0 s into it
    const limiter = createRateLimiter({ now: c.now });
    const p = policy({ limit: 3, windowSeconds: 60 });
    const seen = [1, 2, 3].map(() => limiter.take(p, 'alice', '10.0.0.1'));
    expect(seen.map((d) => [d.allowed, d.remaining])).toEqual([
      [true, 2],
      [true, 1],
      [true, 0],
    ]);
    expect(seen[2]).toMatchObject({
      limit: 3,
      policyHeader: '"default";q=3;w=60',
      stateHeader: '"default";r=0;t=60',
    });
    c.set(60_000 + 20_500);
    const refused = limiter.take(p, 'alice', '10.0.0.1');
    // Nothing was counted in the previous window: the quota comes back when this one ends, in 39.5 s.
    expect(refused).toMatchObject({
      allowed: false,
      limit: 3,
      remaining: 0,
      retryAfterSeconds: 40,
      stateHeader: '"default";r=0;t=40',
    });
    // A refused request does not count: the next window starts with previous = 3 (4 would leave 0).
    c.set(120_000 + 20_001); // floor(3 × 39.999/60) = 1 used, this one, 1 left
    expect(limiter.take(p, 'alice', '10.0.0.1')).toMatchObject({ allowed: true, remaining: 1 });
  });

  it('weights the previous window by how much of it the sliding window still covers', () => {
    const c = clock(0);
    const limiter = createRateLimiter({ now: c.now });
    const p = policy({ limit: 10, windowSeconds: 10 });
    for (let i = 0; i < 10; i++) expect(limiter.take(p, 'bob', '').allowed).toBe(true);
    // 2.5 s into the next window: 10 × 0.75 = 7.5 → 7 used, 3 left.
    c.set(12_500);
    const d = [1, 2, 3, 4].map(() => limiter.take(p, 'bob', ''));
    expect(d.map((x) => x.allowed)).toEqual([true, true, true, false]);
    // current 3 + floor(10 × w) < 10 once 10 × w < 7, i.e. past 3 s into the window: 0.5 s → 1 s.
    expect(d[3]!.retryAfterSeconds).toBe(1);
    c.set(13_001);
    expect(limiter.take(p, 'bob', '')).toMatchObject({ allowed: true, remaining: 0 });
    // Two windows later nothing is left of the old counts: the whole quota is back.
    c.set(30_000);
    expect(limiter.take(p, 'bob', '')).toMatchObject({ allowed: true, remaining: 9 });
  });

  it('gives an overridden consumer its own limit, and counts each consumer apart', () => {
    const limiter = createRateLimiter({ now: () => 0 });
    const p = policy({ limit: 1, overrides: [{ consumer: 'gold', limit: 3 }], policyName: 'per-key' });
    expect(limiter.take(p, 'gold', 'a')).toMatchObject({
      allowed: true,
      limit: 3,
      remaining: 2,
      policyHeader: '"per-key";q=3;w=60',
    });
    expect(limiter.take(p, 'gold', 'a').allowed).toBe(true);
    expect(limiter.take(p, 'gold', 'a').allowed).toBe(true);
    expect(limiter.take(p, 'gold', 'a').allowed).toBe(false);
    expect(limiter.take(p, 'silver', 'a')).toMatchObject({ allowed: true, limit: 1, remaining: 0 });
    expect(limiter.take(p, 'silver', 'a').allowed).toBe(false);
  });

  it('counts anonymous and unknown consumers by client address, and everyone by address with by: client', () => {
    const limiter = createRateLimiter({ now: () => 0 });
    const p = policy({ limit: 1, overrides: [{ consumer: 'gold', limit: 5 }] });
    expect(limiter.take(p, '', '10.0.0.1').allowed).toBe(true);
    expect(limiter.take(p, 'unknown', '10.0.0.1').allowed).toBe(false);
    expect(limiter.take(p, '', '10.0.0.2').allowed).toBe(true);
    // A consumer named like an address is not that address.
    expect(limiter.take(p, '10.0.0.1', '10.0.0.9').allowed).toBe(true);

    const byClient = policy({ limit: 2, by: 'client', overrides: [{ consumer: 'gold', limit: 5 }] });
    expect(limiter.take(byClient, 'alice', '10.0.0.1').allowed).toBe(true);
    expect(limiter.take(byClient, 'bob', '10.0.0.1').allowed).toBe(true);
    // Overrides still pick the limit, the address the counter.
    expect(limiter.take(byClient, 'gold', '10.0.0.1')).toMatchObject({
      allowed: true,
      limit: 5,
      remaining: 2,
    });
    expect(limiter.take(byClient, 'carol', '10.0.0.1').allowed).toBe(false);
  });

  it('keeps separate counters per policy object', () => {
    const limiter = createRateLimiter({ now: () => 0 });
    const a = policy({ limit: 1 });
    const b = policy({ limit: 1 });
    expect(limiter.take(a, 'x', '').allowed).toBe(true);
    expect(limiter.take(a, 'x', '').allowed).toBe(false);
    expect(limiter.take(b, 'x', '').allowed).toBe(true);
  });

  it('drops keys idle for two windows and evicts the least recently counted past maxKeys', () => {
    const c = clock(0);
    const limiter = createRateLimiter({ now: c.now, maxKeys: 3 });
    const p = policy({ limit: 1, windowSeconds: 1 });
    for (const k of ['a', 'b', 'c']) limiter.take(p, k, '');
    expect(limiter.keys(p)).toBe(3);
    c.set(1000);
    limiter.take(p, 'a', ''); // a moves to the back, counted in window 1
    limiter.take(p, 'd', ''); // over the cap: b (oldest) goes
    expect(limiter.keys(p)).toBe(3);
    // b was evicted, so it starts afresh (kept, its last window's 1 would still weigh 1 and refuse it).
    expect(limiter.take(p, 'b', '').allowed).toBe(true);
    expect(limiter.take(p, 'a', '').allowed).toBe(false);
    expect(limiter.keys(p)).toBe(3);
    c.set(3000); // window 3: every key last counted in window ≤ 1 is idle for two windows
    limiter.take(p, 'e', '');
    expect(limiter.keys(p)).toBe(1);
  });
});
