import { createRouteResolver, proxyConfigSchema, ROUTE_OTHER, type RouteBudget } from '@tapwire/proxy';
import { describe, expect, it } from 'vitest';

const MINUTE = 60_000;
const BUDGET: RouteBudget = {
  maxRoutes: 50,
  promoteHits: 3,
  promoteWindowMs: 10 * MINUTE,
  idleMs: 60 * MINUTE,
  // Every slot is earned here; the first-sight share has a test of its own.
  freeShare: 0,
  maxCandidates: 1000,
};

function fakeClock() {
  let t = 1_000_000;
  return {
    now: () => t,
    advance(ms: number) {
      t += ms;
    },
  };
}

describe('route budget', () => {
  it('after 10,000 one-off paths, a new endpoint with steady traffic gets its route at its third request', () => {
    const clock = fakeClock();
    const r = createRouteResolver(['/users/:id'], BUDGET, clock.now);
    const recorded = new Set<string>();
    let maxCandidates = 0;
    for (let i = 0; i < 10_000; i++) {
      recorded.add(r.resolve(`/scan/a${i}b/x${i}y`));
      if (i % 100 === 0) recorded.add(r.resolve(`/users/${i}`));
      maxCandidates = Math.max(maxCandidates, r.candidates);
      clock.advance(10);
    }
    expect([...recorded].sort()).toEqual(['/users/:id', ROUTE_OTHER]);
    expect(maxCandidates).toBe(1000);
    expect(r.distinct).toBe(0);
    const steady: string[] = [];
    for (let i = 0; i < 5; i++) {
      steady.push(r.resolve('/orders/summary'));
      clock.advance(1000);
    }
    expect(steady).toEqual([
      ROUTE_OTHER,
      ROUTE_OTHER,
      '/orders/summary',
      '/orders/summary',
      '/orders/summary',
    ]);
    expect(r.resolve('/users/7')).toBe('/users/:id');
  });

  it('promotes a steady endpoint while the flood goes on, and never records more than maxRoutes values', () => {
    const clock = fakeClock();
    const r = createRouteResolver(['/users/:id', '/files/*'], BUDGET, clock.now);
    const recorded = new Set<string>();
    const steady: string[] = [];
    for (let i = 0; i < 10_000; i++) {
      recorded.add(r.resolve(`/scan/a${i}b`));
      // Sixty real endpoints, each hit every 500 requests of the flood.
      if (i % 500 < 60) recorded.add(r.resolve(`/api/endpoint${i % 500}`));
      if (i % 100 === 0) steady.push(r.resolve('/orders/summary'));
      recorded.add(r.resolve(`/files/f${i}`));
      clock.advance(5);
    }
    expect(steady.slice(0, 3)).toEqual([ROUTE_OTHER, ROUTE_OTHER, '/orders/summary']);
    expect(new Set(steady.slice(2))).toEqual(new Set(['/orders/summary']));
    for (const s of steady) recorded.add(s);
    // 61 endpoints compete for the 47 slots left by two templates and __other__.
    expect(r.distinct).toBe(47);
    expect(recorded.size).toBe(49);
    recorded.add(r.resolve('/users/9'));
    expect(recorded.has('/users/:id')).toBe(true);
    expect(recorded.size).toBe(50);
  });

  it('counts hits within the window only: one request every 6 minutes never earns a slot', () => {
    const clock = fakeClock();
    const r = createRouteResolver([], BUDGET, clock.now);
    const spaced: string[] = [];
    for (let i = 0; i < 10; i++) {
      spaced.push(r.resolve('/reports/yearly'));
      clock.advance(6 * MINUTE);
    }
    expect(new Set(spaced)).toEqual(new Set([ROUTE_OTHER]));
    const close: string[] = [];
    for (let i = 0; i < 3; i++) {
      close.push(r.resolve('/reports/yearly'));
      clock.advance(4 * MINUTE);
    }
    expect(close).toEqual([ROUTE_OTHER, ROUTE_OTHER, '/reports/yearly']);
  });

  it('gives the slot of a route unseen for idleMs to the next route that earns one, and only then', () => {
    const clock = fakeClock();
    const r = createRouteResolver([], { ...BUDGET, maxRoutes: 4 }, clock.now);
    const hit3 = (path: string) => [r.resolve(path), r.resolve(path), r.resolve(path)];
    for (const p of ['/a', '/b', '/c']) expect(hit3(p)).toEqual([ROUTE_OTHER, ROUTE_OTHER, p]);
    // Every slot is taken and in use: /d has earned one but waits as __other__.
    expect(hit3('/d')).toEqual([ROUTE_OTHER, ROUTE_OTHER, ROUTE_OTHER]);
    clock.advance(30 * MINUTE);
    expect([r.resolve('/a'), r.resolve('/b')]).toEqual(['/a', '/b']);
    clock.advance(30 * MINUTE - 1);
    // Its hits of an hour ago are out of the window: /d earns a slot again, but /c is not idle yet.
    expect(hit3('/d')).toEqual([ROUTE_OTHER, ROUTE_OTHER, ROUTE_OTHER]);
    clock.advance(1);
    // /c was last seen 60 minutes ago: /d takes its slot; /c has to earn one again.
    expect(r.resolve('/d')).toBe('/d');
    expect(r.resolve('/c')).toBe(ROUTE_OTHER);
    expect([r.resolve('/a'), r.resolve('/b'), r.distinct]).toEqual(['/a', '/b', 3]);
  });

  it('gives routes their slot at first sight until freeShare of the slots is in use; a flood then holds no more', () => {
    const clock = fakeClock();
    // 50 routes: one template and __other__ leave 48 slots, 24 of them given at first sight.
    const r = createRouteResolver(['/users/:id'], { ...BUDGET, freeShare: 0.5 }, clock.now);
    expect(['/a', '/b', '/a'].map((p) => r.resolve(p))).toEqual(['/a', '/b', '/a']);
    const flood: string[] = [];
    for (let i = 0; i < 10_000; i++) {
      flood.push(r.resolve(`/scan/a${i}b/x${i}y`));
      clock.advance(10);
    }
    expect(flood.slice(0, 22)).toEqual(Array.from({ length: 22 }, (_, i) => `/scan/a${i}b/x${i}y`));
    expect(new Set(flood.slice(22))).toEqual(new Set([ROUTE_OTHER]));
    expect(r.distinct).toBe(24);
    const steady = Array.from({ length: 4 }, () => r.resolve('/orders/summary'));
    expect(steady).toEqual([ROUTE_OTHER, ROUTE_OTHER, '/orders/summary', '/orders/summary']);
    expect(r.distinct).toBe(25);
  });

  it('with promoteHits 1 serves the first routes first, as before', () => {
    const r = createRouteResolver([], { ...BUDGET, maxRoutes: 3, promoteHits: 1 });
    expect(['/a', '/b', '/c', '/a'].map((p) => r.resolve(p))).toEqual(['/a', '/b', ROUTE_OTHER, '/a']);
  });

  it('rejects a maxRoutes that leaves the route templates no room, naming the field', () => {
    const parsed = proxyConfigSchema.safeParse({
      upstreams: [{ name: 'u', url: 'http://127.0.0.1:1', routes: ['/a', '/b/:id'], maxRoutes: 2 }],
    });
    expect(parsed.success).toBe(false);
    expect(parsed.error?.issues.map((i) => [i.path.join('.'), i.message])).toEqual([
      ['upstreams.0.maxRoutes', 'must exceed the 2 route templates (one value is kept for __other__)'],
    ]);
  });
});
