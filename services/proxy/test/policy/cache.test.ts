import { describe, expect, it } from 'vitest';
import { createResponseCache, etagMatches, keyHost, keyQuery } from '../../src/policy/cache.js';
import {
  parseCacheControl,
  requestCacheControl,
  responseFreshness,
  varyNames,
} from '../../src/policy/cache-control.js';
import { cachePolicySchema } from '../../src/policy/config.js';

const T0 = Date.parse('2026-12-06T12:00:00Z');

function clock() {
  let t = T0;
  return {
    now: () => t,
    advance(ms: number) {
      t += ms;
    },
  };
}

/** fetched runs one request through lookup and, on a miss, stores the given upstream answer. */
function through(
  cache: ReturnType<typeof createResponseCache>,
  policy: ReturnType<typeof cachePolicySchema.parse>,
  req: { method?: string; path?: string; query?: string; headers?: Record<string, string> },
  answer?: { status?: number; headers?: Record<string, string>; body?: string },
) {
  const lookup = cache.lookup(
    'api',
    policy,
    req.method ?? 'GET',
    'Api.Example:8080',
    req.path ?? '/items',
    req.query ?? '',
    req.headers ?? {},
  );
  if (lookup.result !== 'hit' && answer) {
    const fill = cache.fill(lookup, answer.status ?? 200, answer.headers ?? {});
    if (fill) {
      if (answer.body) fill.add(Buffer.from(answer.body));
      fill.end();
    }
  }
  return lookup;
}

describe('parseCacheControl', () => {
  it('reads directives case-insensitively, with quoted arguments holding commas', () => {
    const d = parseCacheControl('Public, MAX-AGE=60, no-cache="set-cookie, x-a", s-maxage = 5');
    expect([...d]).toEqual([
      ['public', true],
      ['max-age', '60'],
      ['no-cache', 'set-cookie, x-a'],
      ['s-maxage', '5'],
    ]);
  });
  it('joins repeated fields and keeps the first of a repeated directive', () => {
    expect([...parseCacheControl(['max-age=10', 'max-age=20, private'])]).toEqual([
      ['max-age', '10'],
      ['private', true],
    ]);
    expect(parseCacheControl(undefined).size).toBe(0);
  });
});

describe('responseFreshness', () => {
  const fresh = (status: number, headers: Record<string, string>, ttl = 60) =>
    responseFreshness(status, headers, ttl, T0);
  it('prefers s-maxage over max-age over Expires over the policy ttl', () => {
    expect(fresh(200, { 'cache-control': 'max-age=10, s-maxage=30' })).toEqual({
      lifetimeS: 30,
      mustRevalidate: false,
    });
    expect(fresh(200, { 'cache-control': 'max-age=10' })).toMatchObject({ lifetimeS: 10 });
    expect(
      fresh(200, { expires: 'Sun, 06 Dec 2026 12:00:45 GMT', date: 'Sun, 06 Dec 2026 12:00:00 GMT' }),
    ).toMatchObject({ lifetimeS: 45 });
    expect(fresh(200, {})).toMatchObject({ lifetimeS: 60 });
  });
  it('subtracts the Age the upstream reported', () => {
    expect(fresh(200, { 'cache-control': 'max-age=10', age: '4' })).toMatchObject({ lifetimeS: 6 });
    expect(fresh(200, { 'cache-control': 'max-age=10', age: '10' })).toBe('not-fresh');
  });
  it('stores nothing that is no-store, private, no-cache, sets a cookie, varies on * or has no lifetime', () => {
    expect(fresh(200, { 'cache-control': 'no-store, max-age=60' })).toBe('no-store');
    expect(fresh(200, { 'cache-control': 'private, max-age=60' })).toBe('private');
    expect(fresh(200, { 'cache-control': 'no-cache' })).toBe('no-cache');
    expect(fresh(200, { 'set-cookie': 'a=b' })).toBe('set-cookie');
    expect(fresh(200, { vary: 'Accept, *' })).toBe('vary-star');
    expect(fresh(200, { 'cache-control': 'max-age=0' })).toBe('not-fresh');
    expect(fresh(200, { expires: 'not a date' })).toBe('not-fresh');
    expect(fresh(200, {}, 0)).toBe('not-fresh');
    expect(fresh(200, { 'cache-control': 'max-age=banana' })).toBe('not-fresh');
  });
  it('stores only heuristically cacheable statuses by ttl, redirects only with explicit freshness', () => {
    for (const s of [200, 203, 204, 300, 301, 404, 405, 410, 414, 501])
      expect(fresh(s, {})).toMatchObject({ lifetimeS: 60 });
    for (const s of [201, 206, 304, 400, 500, 502, 503])
      expect(fresh(s, { 'cache-control': 'max-age=9' })).toBe('status');
    expect(fresh(302, {})).toBe('not-fresh');
    expect(fresh(302, { 'cache-control': 'max-age=9' })).toMatchObject({ lifetimeS: 9 });
  });
  it('marks must-revalidate and proxy-revalidate entries as never served stale', () => {
    expect(fresh(200, { 'cache-control': 'max-age=5, must-revalidate' })).toMatchObject({
      mustRevalidate: true,
    });
    expect(fresh(200, { 'cache-control': 'max-age=5, proxy-revalidate' })).toMatchObject({
      mustRevalidate: true,
    });
  });
});

describe('requestCacheControl', () => {
  it('sends no-cache and Pragma: no-cache to the upstream and keeps the answer; no-store keeps nothing', () => {
    expect(requestCacheControl('no-cache', undefined)).toEqual({ kind: 'refresh' });
    expect(requestCacheControl(undefined, 'no-cache')).toEqual({ kind: 'refresh' });
    expect(requestCacheControl('max-age=5', 'no-cache')).toEqual({ kind: 'use', maxAgeS: 5 });
    expect(requestCacheControl('no-store', undefined)).toEqual({ kind: 'no-store' });
    expect(requestCacheControl(undefined, undefined)).toEqual({ kind: 'use', maxAgeS: undefined });
  });
});

describe('keys', () => {
  it('sort the selected query parameters by name, keeping the order of repeated ones', () => {
    expect(keyQuery('b=2&a=1&b=1&&c', undefined)).toBe('a=1&b=2&b=1&c');
    expect(keyQuery('b=2&a=1&utm=x', new Set(['a', 'b']))).toBe('a=1&b=2');
    expect(keyQuery('utm=x', new Set())).toBe('');
  });
  it('lowercase the host and drop its port', () => {
    expect(keyHost('API.Example.com:8080')).toBe('api.example.com');
    expect(keyHost('[::1]:80')).toBe('[::1]');
  });
  it('tell requests apart by method, upstream, host, path, query and the configured headers', () => {
    const c = createResponseCache({ maxBytes: 1 << 20, apiKeyHeader: 'x-api-key' });
    const p = cachePolicySchema.parse({ varyHeaders: ['Accept-Language'] });
    const key = (method: string, up: string, host: string, path: string, q: string, h = {}) =>
      c.lookup(up, p, method, host, path, q, h).key;
    expect(key('GET', 'api', 'A.example:1', '/x', 'b=1&a=2', { 'accept-language': 'fr' })).toBe(
      'GET api\na.example\n/x?a=2&b=1\naccept-language:fr',
    );
    expect(key('GET', 'api', 'a.example', '/x', '')).toBe('GET api\na.example\n/x?\naccept-language:\u0000');
    expect(key('HEAD', 'other', 'a.example', '/x', '')).toBe(
      'HEAD other\na.example\n/x?\naccept-language:\u0000',
    );
  });
  it('never hold a credential in clear, even when a policy keys on it', () => {
    const c = createResponseCache({ maxBytes: 1 << 20, apiKeyHeader: 'X-Api-Key' });
    const p = cachePolicySchema.parse({
      varyHeaders: ['authorization', 'x-api-key'],
      cacheCredentialed: true,
    });
    const k = c.lookup('api', p, 'GET', 'h', '/', '', {
      authorization: 'Bearer SECRET',
      'x-api-key': 'KEY',
    }).key;
    expect(k).not.toContain('SECRET');
    expect(k).not.toContain('KEY');
    expect(k).toMatch(/authorization:[A-Za-z0-9+/=]{44}/);
  });
});

describe('response cache', () => {
  const policy = cachePolicySchema.parse({ ttlSeconds: 10, staleIfErrorSeconds: 5 });

  it('serves a stored response until its freshness runs out, with its Age', () => {
    const clk = clock();
    const c = createResponseCache({ maxBytes: 1 << 20, apiKeyHeader: 'x-api-key', now: clk.now });
    expect(
      through(c, policy, {}, { headers: { 'content-type': 'text/plain', age: '2' }, body: 'hello' }).result,
    ).toBe('miss');
    clk.advance(3_500);
    const hit = through(c, policy, {});
    expect(hit.result).toBe('hit');
    expect(hit.entry!.body.toString()).toBe('hello');
    expect(c.headersOf(hit.entry!)).toEqual({
      'content-type': 'text/plain',
      age: '5',
      'content-length': '5',
    });
    // Fresh for 10 s less the 2 s it was old on arrival.
    clk.advance(4_499);
    expect(through(c, policy, {}).result).toBe('hit');
    clk.advance(1);
    const expired = through(c, policy, {});
    expect(expired.result).toBe('miss');
    // Within stale-if-error: kept for an upstream failure.
    expect(expired.entry?.body.toString()).toBe('hello');
    expect(c.usableStale(expired.entry!)).toBe(true);
    clk.advance(5_000);
    expect(c.usableStale(expired.entry!)).toBe(false);
    const gone = through(c, policy, {});
    expect(gone).toMatchObject({ result: 'miss', entry: undefined });
    expect(c.stats()).toMatchObject({ entries: 0, bytes: 0 });
  });

  it('keeps one variant per value of the headers the response varies on', () => {
    const c = createResponseCache({ maxBytes: 1 << 20, apiKeyHeader: 'x-api-key' });
    const gzip = { 'accept-encoding': 'gzip' };
    through(c, policy, { headers: gzip }, { headers: { vary: 'Accept-Encoding' }, body: 'zipped' });
    through(c, policy, { headers: {} }, { headers: { vary: 'Accept-Encoding' }, body: 'plain' });
    expect(through(c, policy, { headers: gzip }).entry!.body.toString()).toBe('zipped');
    expect(through(c, policy, { headers: {} }).entry!.body.toString()).toBe('plain');
    expect(through(c, policy, { headers: { 'accept-encoding': 'br' } }).result).toBe('miss');
    expect(c.stats().entries).toBe(2);
    // The same variant stored again replaces the old one.
    through(
      c,
      policy,
      { headers: { 'cache-control': 'no-cache', ...gzip } },
      { headers: { vary: 'accept-encoding' }, body: 'zipped2' },
    );
    expect(c.stats().entries).toBe(2);
    expect(through(c, policy, { headers: gzip }).entry!.body.toString()).toBe('zipped2');
  });

  it('prefers the newest variant when the upstream changed its Vary', () => {
    const c = createResponseCache({ maxBytes: 1 << 20, apiKeyHeader: 'x-api-key' });
    through(c, policy, {}, { headers: { vary: 'accept' }, body: 'old' });
    through(c, policy, { headers: { pragma: 'no-cache' } }, { body: 'new' });
    expect(through(c, policy, {}).entry!.body.toString()).toBe('new');
  });

  it('evicts the least recently used entries once their bytes pass maxBytes', () => {
    // Each entry: key 'GET api\napi.example\n/N?' (23) + body 100 = 123 bytes.
    const c = createResponseCache({ maxBytes: 369, apiKeyHeader: 'x-api-key' });
    const body = 'x'.repeat(100);
    for (const n of [1, 2, 3]) through(c, policy, { path: `/${n}` }, { body });
    expect(c.stats()).toEqual({ entries: 3, bytes: 369, evictions: 0 });
    expect(through(c, policy, { path: '/1' }).result).toBe('hit'); // /2 is now the least recently used
    through(c, policy, { path: '/4' }, { body });
    expect(c.stats()).toEqual({ entries: 3, bytes: 369, evictions: 1 });
    expect(through(c, policy, { path: '/2' }).result).toBe('miss');
    // An entry larger than the whole cache is not stored and evicts nothing.
    const big = createResponseCache({ maxBytes: 100, apiKeyHeader: 'x-api-key' });
    through(big, policy, {}, { body });
    expect(big.stats()).toEqual({ entries: 0, bytes: 0, evictions: 0 });
  });

  it('gives up the copy of a body past maxEntryBytes, and never stores a partial response', () => {
    const c = createResponseCache({ maxBytes: 1 << 20, apiKeyHeader: 'x-api-key' });
    const small = cachePolicySchema.parse({ maxEntryBytes: 4 });
    const lookup = c.lookup('api', small, 'GET', 'h', '/', '', {});
    const fill = c.fill(lookup, 200, {})!;
    fill.add(Buffer.from('abc'));
    fill.add(Buffer.from('de'));
    fill.end();
    expect(c.fill(lookup, 200, { 'content-length': '5' })).toBeUndefined();
    c.fill(lookup, 200, {})!.add(Buffer.from('ab')); // never ended: the upstream cut it
    expect(c.stats().entries).toBe(0);
  });

  it('bypasses credentialed requests unless the policy caches them, and other methods always', () => {
    const c = createResponseCache({ maxBytes: 1 << 20, apiKeyHeader: 'X-Key' });
    for (const h of [{ authorization: 'Basic x' }, { cookie: 'a=b' }, { 'x-key': 'k' }] as Record<
      string,
      string
    >[])
      expect(through(c, policy, { headers: h }, { body: 'x' })).toMatchObject({
        result: 'bypass',
        store: false,
      });
    expect(c.stats().entries).toBe(0);
    expect(through(c, policy, { method: 'POST' })).toMatchObject({ result: 'bypass', store: false });
    const credentialed = cachePolicySchema.parse({ cacheCredentialed: true });
    through(c, credentialed, { headers: { authorization: 'Basic x' } }, { body: 'x' });
    expect(through(c, credentialed, { headers: { authorization: 'Basic y' } }).result).toBe('hit');
  });

  it('drops the GET and HEAD entries of a URL an unsafe request changed, unless it failed', () => {
    const c = createResponseCache({ maxBytes: 1 << 20, apiKeyHeader: 'x-api-key' });
    through(c, policy, { method: 'HEAD', query: 'a=1' }, {});
    through(c, policy, { query: 'a=1' }, { body: 'get' });
    through(c, policy, { query: 'a=2' }, { body: 'other' });
    expect(c.stats().entries).toBe(3);
    expect(through(c, policy, { method: 'DELETE', query: 'a=1' }, { status: 404 })).toMatchObject({
      result: 'bypass',
      store: false,
    });
    expect(c.stats().entries).toBe(3);
    through(c, policy, { method: 'POST', query: 'a=1' }, { status: 201 });
    expect(c.stats().entries).toBe(1);
    expect(through(c, policy, { query: 'a=2' }).result).toBe('hit');
    through(c, policy, { method: 'OPTIONS', query: 'a=2' }, { status: 200 });
    expect(c.stats().entries).toBe(1);
  });

  it('answers HEAD from the GET entry, and keeps HEAD responses apart from GET', () => {
    const c = createResponseCache({ maxBytes: 1 << 20, apiKeyHeader: 'x-api-key' });
    through(c, policy, { method: 'HEAD' }, { headers: { 'content-length': '7' } });
    expect(through(c, policy, { method: 'GET' }).result).toBe('miss');
    const head = through(c, policy, { method: 'HEAD' });
    expect(head.result).toBe('hit');
    expect(c.headersOf(head.entry!)).toEqual({ 'content-length': '7', age: '0' });
    through(c, policy, { method: 'GET' }, { body: 'getbody' });
    expect(through(c, policy, { method: 'HEAD' }).entry!.body.toString()).toBe('getbody');
  });

  it('answers HEAD from its own fresh entry when the GET entry has expired', () => {
    const clk = clock();
    const c = createResponseCache({ maxBytes: 1 << 20, apiKeyHeader: 'x-api-key', now: clk.now });
    through(c, policy, {}, { headers: { 'cache-control': 'max-age=1' }, body: 'get' });
    through(
      c,
      policy,
      { method: 'HEAD', headers: { pragma: 'no-cache' } },
      { headers: { 'content-length': '3' } },
    );
    clk.advance(1_000);
    const head = through(c, policy, { method: 'HEAD' });
    expect(head.result).toBe('hit');
    expect(head.entry!.head).toBe(true);
  });

  it('lets a client refuse entries older than its max-age, and refresh them with no-cache', () => {
    const clk = clock();
    const c = createResponseCache({ maxBytes: 1 << 20, apiKeyHeader: 'x-api-key', now: clk.now });
    through(c, policy, {}, { body: 'one' });
    clk.advance(3_000);
    expect(through(c, policy, { headers: { 'cache-control': 'max-age=2' } }).result).toBe('miss');
    expect(through(c, policy, { headers: { 'cache-control': 'max-age=3' } }).result).toBe('hit');
    expect(through(c, policy, { headers: { pragma: 'no-cache' } }, { body: 'two' }).result).toBe('bypass');
    expect(through(c, policy, {}).entry!.body.toString()).toBe('two');
    expect(through(c, policy, { headers: { 'cache-control': 'no-store' } }, { body: 'three' }).store).toBe(
      false,
    );
    expect(through(c, policy, {}).entry!.body.toString()).toBe('two');
  });

  it('stores no hop-by-hop headers, and must-revalidate entries are never served stale', () => {
    const clk = clock();
    const c = createResponseCache({ maxBytes: 1 << 20, apiKeyHeader: 'x-api-key', now: clk.now });
    through(
      c,
      policy,
      {},
      {
        headers: {
          connection: 'x-hop',
          'x-hop': '1',
          'keep-alive': 'timeout=5',
          'transfer-encoding': 'chunked',
          'x-cache': 'HIT from elsewhere',
          'cache-control': 'max-age=1, must-revalidate',
          etag: '"v1"',
        },
        body: 'b',
      },
    );
    const e = through(c, policy, {}).entry!;
    expect(c.headersOf(e)).toEqual({
      'cache-control': 'max-age=1, must-revalidate',
      etag: '"v1"',
      age: '0',
      'content-length': '1',
    });
    clk.advance(1_000);
    expect(through(c, policy, {})).toMatchObject({ result: 'miss', entry: undefined });
  });

  it('answers a conditional request matching the entry with the headers of a 304', () => {
    const c = createResponseCache({ maxBytes: 1 << 20, apiKeyHeader: 'x-api-key' });
    const headers = {
      etag: 'W/"v7"',
      'last-modified': 'Sun, 06 Dec 2026 11:00:00 GMT',
      'cache-control': 'max-age=60',
      'content-type': 'application/json',
    };
    through(c, policy, {}, { headers, body: '{}' });
    const e = through(c, policy, {}).entry!;
    expect(c.notModifiedHeaders(e, { 'if-none-match': '"v6", "v7"' })).toEqual({
      etag: 'W/"v7"',
      'cache-control': 'max-age=60',
      age: '0',
    });
    expect(c.notModifiedHeaders(e, { 'if-none-match': '"v6"' })).toBeUndefined();
    // If-None-Match wins over If-Modified-Since.
    expect(
      c.notModifiedHeaders(e, {
        'if-none-match': '"v6"',
        'if-modified-since': 'Sun, 06 Dec 2026 12:00:00 GMT',
      }),
    ).toBeUndefined();
    expect(c.notModifiedHeaders(e, { 'if-modified-since': 'Sun, 06 Dec 2026 11:00:00 GMT' })).toBeDefined();
    expect(c.notModifiedHeaders(e, { 'if-modified-since': 'Sun, 06 Dec 2026 10:59:59 GMT' })).toBeUndefined();
    expect(c.notModifiedHeaders(e, {})).toBeUndefined();
  });

  it('compares ETags weakly, as If-None-Match does', () => {
    expect(etagMatches('W/"a"', '"a"')).toBe(true);
    expect(etagMatches('"b", W/"a"', 'W/"a"')).toBe(true);
    expect(etagMatches('*', '"x"')).toBe(true);
    expect(etagMatches('"ab"', '"a"')).toBe(false);
  });

  it('lists Vary names lowercased once each', () => {
    expect(varyNames(['Accept-Encoding, accept', 'ACCEPT'])).toEqual(['accept-encoding', 'accept']);
  });
});
