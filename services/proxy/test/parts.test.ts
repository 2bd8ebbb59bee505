import {
  createRouteResolver,
  formatTraceParent,
  normalizePath,
  parseTraceParent,
  proxyConfigSchema,
} from '@tapwire/proxy';
import { describe, expect, it } from 'vitest';

describe('normalizePath', () => {
  it('replaces numeric, UUID, long hex and opaque token segments with :id', () => {
    expect(normalizePath('/users/42')).toBe('/users/:id');
    expect(normalizePath('/orders/3f2504e0-4f89-11d3-9a0c-0305e82c3301/items')).toBe('/orders/:id/items');
    expect(normalizePath('/blobs/deadbeefdeadbeef00')).toBe('/blobs/:id');
    expect(normalizePath('/s/aGVsbG8gd29ybGQxMjM0NTY3OA')).toBe('/s/:id');
    expect(normalizePath('/api/v1/health-check')).toBe('/api/v1/health-check');
    expect(normalizePath('//a///b/')).toBe('/a/b');
    expect(normalizePath('/')).toBe('/');
  });
  it('bounds the number of segments', () => {
    expect(normalizePath(`/${Array.from({ length: 40 }, () => 'a').join('/')}`)).toBe(
      `/${Array(32).fill('a').join('/')}/*`,
    );
  });
});

describe('createRouteResolver', () => {
  it('prefers templates, literal segments over parameters, and supports a trailing wildcard', () => {
    const r = createRouteResolver(['/users/:id', '/users/me', '/users/:id/orders/:orderId', '/files/*'], {
      maxRoutes: 10,
      promoteHits: 1,
      promoteWindowMs: 60_000,
      idleMs: 3_600_000,
      freeShare: 0,
      maxCandidates: 100,
    });
    expect(r.resolve('/users/42')).toBe('/users/:id');
    expect(r.resolve('/users/me')).toBe('/users/me');
    expect(r.resolve('/users/7/orders/9')).toBe('/users/:id/orders/:orderId');
    expect(r.resolve('/files/a/b/c.txt')).toBe('/files/*');
    expect(r.resolve('/users/7/unknown')).toBe('/users/:id/unknown');
    expect(r.distinct).toBe(1);
  });
  it('with promoteHits 1, turns new values into __other__ once the limit is reached, __other__ included', () => {
    const r = createRouteResolver([], {
      maxRoutes: 5,
      promoteHits: 1,
      promoteWindowMs: 60_000,
      idleMs: 3_600_000,
      freeShare: 0,
      maxCandidates: 100,
    });
    const routes = new Set(Array.from({ length: 10_000 }, (_, i) => r.resolve(`/p/x${i}y`)));
    expect(routes.size).toBe(5);
    expect(routes.has('__other__')).toBe(true);
    expect(r.resolve('/p/x0y')).toBe('/p/x0y');
  });
});

describe('trace context', () => {
  it('parses valid traceparents, including future versions with extra fields', () => {
    expect(parseTraceParent('00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01')).toEqual({
      traceId: '4bf92f3577b34da6a3ce929d0e0e4736',
      parentId: '00f067aa0ba902b7',
      sampled: true,
    });
    expect(parseTraceParent('01-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-00-extra')?.sampled).toBe(
      false,
    );
  });
  it('rejects malformed ones', () => {
    for (const bad of [
      undefined,
      '',
      '00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01-extra',
      'ff-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01',
      '00-00000000000000000000000000000000-00f067aa0ba902b7-01',
      '00-4bf92f3577b34da6a3ce929d0e0e4736-0000000000000000-01',
      '00-4BF92F3577B34DA6A3CE929D0E0E4736-00f067aa0ba902b7-01',
      '00_4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01',
    ]) {
      expect(parseTraceParent(bad), String(bad)).toBeUndefined();
    }
  });
  it('formats version 00', () => {
    expect(formatTraceParent('a'.repeat(32), 'b'.repeat(16), false)).toBe(
      `00-${'a'.repeat(32)}-${'b'.repeat(16)}-00`,
    );
  });
});

describe('proxy config', () => {
  it('names every bad field', () => {
    const r = proxyConfigSchema.safeParse({
      upstreams: [
        { name: 'a', url: 'ftp://x', routes: ['users/:id'] },
        { name: 'a', url: 'http://x', match: { pathPrefix: 'api' }, consumers: 1 },
      ],
      sampling: { spanRatio: 2 },
    });
    expect(r.success).toBe(false);
    const paths = r.error!.issues.map((i) => i.path.join('.')).sort();
    expect(paths).toEqual([
      'sampling.spanRatio',
      'upstreams.0.routes.0',
      'upstreams.0.url',
      'upstreams.1',
      'upstreams.1.match.pathPrefix',
      'upstreams.1.name',
    ]);
  });
  it('rejects duplicate upstream names', () => {
    const r = proxyConfigSchema.safeParse({
      upstreams: [
        { name: 'a', url: 'http://x' },
        { name: 'a', url: 'http://y' },
      ],
    });
    expect(r.error?.issues).toEqual([
      expect.objectContaining({ path: ['upstreams', 1, 'name'], message: 'duplicate upstream name a' }),
    ]);
  });
});
