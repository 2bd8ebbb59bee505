import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { AccessLogEvent } from '@tapwire/schema';
import { request } from 'undici';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { type ProxyUnderTest, startProxy } from '../../services/proxy/test/helpers.js';
import { freePort } from '../support/upstream.js';

/** An upstream whose answers the tests choose by path, counting what reaches it. */
interface Origin {
  url: string;
  calls: Map<string, number>;
  seen: { url: string; headers: IncomingMessage['headers'] }[];
  close(): Promise<void>;
}

type Behaviour = (req: IncomingMessage, res: ServerResponse, n: number) => void;

async function startOrigin(behaviours: Record<string, Behaviour>): Promise<Origin> {
  const calls = new Map<string, number>();
  const seen: Origin['seen'] = [];
  const server: Server = createServer((req, res) => {
    req.resume();
    req.on('end', () => {
      const url = req.url ?? '/';
      const n = (calls.get(url) ?? 0) + 1;
      calls.set(url, n);
      seen.push({ url, headers: req.headers });
      const path = url.split('?')[0]!;
      const b = behaviours[path.slice(path.lastIndexOf('/') + 1)];
      if (b) b(req, res, n);
      else res.writeHead(404).end('no behaviour');
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    calls,
    seen,
    close: () =>
      new Promise<void>((r) => {
        server.closeAllConnections();
        server.close(() => r());
      }),
  };
}

const json = (res: ServerResponse, headers: Record<string, string>, body: string, status = 200) => {
  res.writeHead(status, { 'content-type': 'text/plain', ...headers });
  res.end(body);
};

let failing = false;
const origin = (): Record<string, Behaviour> => ({
  fresh: (_q, s, n) => json(s, { 'cache-control': 'max-age=60' }, `fresh-${n}`),
  short: (_q, s, n) => json(s, { 'cache-control': 'max-age=2', age: '0' }, `short-${n}`),
  ttl: (_q, s, n) => json(s, {}, `ttl-${n}`),
  nostore: (_q, s, n) => json(s, { 'cache-control': 'no-store' }, `nostore-${n}`),
  private: (_q, s, n) => json(s, { 'cache-control': 'private, max-age=60' }, `private-${n}`),
  cookie: (_q, s, n) => json(s, { 'cache-control': 'max-age=60', 'set-cookie': 'sid=SECRET' }, `cookie-${n}`),
  vary: (q, s, n) =>
    json(
      s,
      { 'cache-control': 'max-age=60', vary: 'Accept-Encoding' },
      `${q.headers['accept-encoding'] ?? 'none'}-${n}`,
    ),
  big: (_q, s) => {
    // Chunked, so only the streamed bytes tell it is over maxEntryBytes.
    s.writeHead(200, { 'cache-control': 'max-age=60' });
    s.write('a'.repeat(800));
    setTimeout(() => s.end('b'.repeat(800)), 5);
  },
  flaky: (_q, s, n) =>
    failing
      ? json(s, { 'cache-control': 'no-store' }, 'upstream down', 503)
      : json(s, { 'cache-control': 'max-age=1' }, `flaky-${n}`),
  headed: (q, s, n) =>
    q.method === 'HEAD'
      ? s.writeHead(200, { 'cache-control': 'max-age=60', 'content-length': '9' }).end()
      : json(s, { 'cache-control': 'max-age=60' }, `headed-${n}`),
  gone: (_q, s, n) => json(s, { 'cache-control': 'max-age=1' }, `gone-${n}`),
  cut: (q, s) => {
    s.writeHead(200, { 'cache-control': 'max-age=60', 'content-length': '100' });
    s.write('partial');
    setTimeout(() => q.socket.destroy(), 10);
  },
  tagged: (_q, s, n) => json(s, { 'cache-control': 'max-age=60', etag: '"t1"' }, `tagged-${n}`),
  post: (_q, s, n) => json(s, { 'cache-control': 'max-age=60' }, `post-${n}`),
  notfound: (_q, s, n) => json(s, {}, `missing-${n}`, 404),
});

let up: Origin;
let doomed: Origin;
let p: ProxyUnderTest;

beforeAll(async () => {
  up = await startOrigin(origin());
  doomed = await startOrigin(origin());
  const cache = { ttlSeconds: 60, maxEntryBytes: 1000, staleIfErrorSeconds: 30 };
  p = await startProxy({
    consumers: { apiKeyHeader: 'x-tenant-key' },
    upstreams: [
      { name: 'cached', url: up.url, match: { pathPrefix: '/c' }, cache },
      {
        name: 'creds',
        url: up.url,
        match: { pathPrefix: '/cred' },
        cache: { ...cache, cacheCredentialed: true },
      },
      { name: 'plain', url: up.url, match: { pathPrefix: '/plain' } },
      { name: 'doomed', url: doomed.url, match: { pathPrefix: '/d' }, cache },
      {
        name: 'nostale',
        url: `http://127.0.0.1:${await freePort()}`,
        match: { pathPrefix: '/refused' },
        cache,
      },
    ],
  });
});
afterAll(async () => {
  await p.proxy.close();
  await up.close();
  await doomed.close();
});

interface Answer {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  body: string;
  log: AccessLogEvent;
}

async function send(
  path: string,
  opts: { method?: 'GET' | 'HEAD' | 'POST' | 'PUT'; headers?: Record<string, string> } = {},
) {
  const res = await request(`${p.url}${path}`, {
    method: opts.method ?? 'GET',
    headers: opts.headers,
    ...(opts.method === 'POST' || opts.method === 'PUT' ? { body: 'payload' } : {}),
  });
  const body = await res.body.text();
  const spanId = String(res.headers.traceparent).split('-')[2];
  // Events are written before the last byte: they are there when the client has the answer.
  const log = await vi.waitFor(() => {
    const l = p.sink.of('tapwire.access.v1').find((e) => e.span_id === spanId);
    if (!l) throw new Error(`no access log for ${path}`);
    return l;
  });
  return { status: res.statusCode, headers: res.headers, body, log } satisfies Answer;
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

describe('response cache', () => {
  it('stores a miss and serves it again without calling the upstream, with Age and X-Cache', async () => {
    const miss = await send('/c/fresh?b=2&a=1');
    expect(miss).toMatchObject({ status: 200, body: 'fresh-1', headers: { 'x-cache': 'MISS' } });
    expect(miss.log).toMatchObject({ cache: 'miss', status: 200, bytes_out: 7, upstream: 'cached' });
    const hit = await send('/c/fresh?a=1&b=2', { headers: { 'x-request-id': 'req-hit-1' } });
    expect(hit).toMatchObject({ status: 200, body: 'fresh-1' });
    expect(hit.headers).toMatchObject({
      'x-cache': 'HIT',
      age: '0',
      'cache-control': 'max-age=60',
      'content-type': 'text/plain',
      'content-length': '7',
      'x-request-id': 'req-hit-1',
    });
    expect(up.calls.get('/c/fresh?b=2&a=1')).toBe(1);
    expect(up.calls.get('/c/fresh?a=1&b=2')).toBeUndefined();
    expect(hit.log).toMatchObject({
      cache: 'hit',
      status: 200,
      bytes_out: 7,
      upstream: 'cached',
      upstream_ms: 0,
      error_kind: 'none',
      route: miss.log.route,
    });
    // A hit has a SERVER span and no CLIENT span: nothing was sent upstream.
    const spans = p.sink.of('tapwire.spans.v1').filter((s) => s.trace_id === hit.log.trace_id);
    expect(spans.map((s) => s.kind)).toEqual(['SERVER']);
    expect(spans[0]!.attributes['http.response.status_code']).toBe('200');
  });

  it('counts Age up and forwards again once the entry expires', async () => {
    expect((await send('/c/short')).body).toBe('short-1');
    await sleep(1100);
    const aged = await send('/c/short');
    expect(aged).toMatchObject({ body: 'short-1', headers: { 'x-cache': 'HIT', age: '1' } });
    await sleep(1000);
    const expired = await send('/c/short');
    expect(expired).toMatchObject({ body: 'short-2', headers: { 'x-cache': 'MISS' } });
    expect(expired.log.cache).toBe('miss');
    expect(up.calls.get('/c/short')).toBe(2);
  });

  it('uses the policy ttl when the upstream gives no freshness, 404s included', async () => {
    await send('/c/ttl');
    expect(await send('/c/ttl')).toMatchObject({ body: 'ttl-1', headers: { 'x-cache': 'HIT' } });
    await send('/c/notfound');
    const nf = await send('/c/notfound');
    expect(nf).toMatchObject({ status: 404, body: 'missing-1', headers: { 'x-cache': 'HIT' } });
    expect(nf.log).toMatchObject({ status: 404, cache: 'hit', bytes_out: 9 });
  });

  it('never stores no-store, private or Set-Cookie responses', async () => {
    for (const name of ['nostore', 'private', 'cookie']) {
      const first = await send(`/c/${name}`);
      const second = await send(`/c/${name}`);
      expect(second).toMatchObject({ body: `${name}-2`, headers: { 'x-cache': 'MISS' } });
      expect([first.log.cache, second.log.cache]).toEqual(['miss', 'miss']);
    }
    expect(JSON.stringify(p.sink.events)).not.toContain('SECRET');
  });

  it('keeps a variant per Accept-Encoding when the response varies on it', async () => {
    const gzip = { 'accept-encoding': 'gzip' };
    const identity = { 'accept-encoding': 'identity' };
    expect((await send('/c/vary', { headers: gzip })).body).toBe('gzip-1');
    expect((await send('/c/vary', { headers: identity })).body).toBe('identity-2');
    const a = await send('/c/vary', { headers: gzip });
    const b = await send('/c/vary', { headers: identity });
    expect([a.body, a.log.cache, b.body, b.log.cache]).toEqual(['gzip-1', 'hit', 'identity-2', 'hit']);
    expect(up.calls.get('/c/vary')).toBe(2);
  });

  it('bypasses credentialed requests unless the policy caches them', async () => {
    await send('/c/fresh?cred=1');
    for (const headers of [
      { authorization: 'Bearer t0ken' },
      { cookie: 'sid=1' },
      { 'x-tenant-key': 'k' },
    ] as Record<string, string>[]) {
      const r = await send('/c/fresh?cred=1', { headers });
      expect(r).toMatchObject({
        body: expect.stringMatching(/^fresh-[2-4]$/),
        headers: { 'x-cache': 'BYPASS' },
      });
      expect(r.log.cache).toBe('bypass');
    }
    expect(up.calls.get('/c/fresh?cred=1')).toBe(4);
    await send('/cred/fresh', { headers: { authorization: 'Bearer one' } });
    const shared = await send('/cred/fresh', { headers: { authorization: 'Bearer two' } });
    expect(shared).toMatchObject({ body: 'fresh-1', headers: { 'x-cache': 'HIT' } });
    expect(JSON.stringify(p.sink.events)).not.toContain('t0ken');
  });

  it('lets the client force a fresh answer: no-cache refreshes the entry, no-store leaves it', async () => {
    await send('/c/fresh?force=1');
    const refreshed = await send('/c/fresh?force=1', { headers: { 'cache-control': 'no-cache' } });
    expect(refreshed).toMatchObject({ body: 'fresh-2', headers: { 'x-cache': 'BYPASS' } });
    expect((await send('/c/fresh?force=1')).body).toBe('fresh-2');
    const noStore = await send('/c/fresh?force=1', {
      headers: { pragma: 'no-cache', 'cache-control': 'no-store' },
    });
    expect(noStore).toMatchObject({ body: 'fresh-3', log: { cache: 'bypass' } });
    expect((await send('/c/fresh?force=1')).body).toBe('fresh-2');
  });

  it('never caches POST', async () => {
    const a = await send('/c/post', { method: 'POST' });
    const b = await send('/c/post', { method: 'POST' });
    expect([a.body, b.body]).toEqual(['post-1', 'post-2']);
    expect([a.log.cache, b.log.cache]).toEqual(['bypass', 'bypass']);
    expect(b.headers['x-cache']).toBe('BYPASS');
    // Nor does a POST answer a later GET.
    expect((await send('/c/post')).body).toBe('post-3');
  });

  it('drops the entry of a URL once a PUT to it succeeds', async () => {
    await send('/c/fresh?inv=1');
    expect((await send('/c/fresh?inv=1')).log.cache).toBe('hit');
    const put = await send('/c/fresh?inv=1', { method: 'PUT' });
    expect(put).toMatchObject({ status: 200, body: 'fresh-2', log: { cache: 'bypass' } });
    expect(await send('/c/fresh?inv=1')).toMatchObject({ body: 'fresh-3', log: { cache: 'miss' } });
  });

  it('streams a body over maxEntryBytes whole but does not store it', async () => {
    const a = await send('/c/big');
    expect(a.body).toBe('a'.repeat(800) + 'b'.repeat(800));
    expect(a.log).toMatchObject({ cache: 'miss', bytes_out: 1600, status: 200 });
    const b = await send('/c/big');
    expect(b).toMatchObject({ body: a.body, log: { cache: 'miss' } });
    expect(up.calls.get('/c/big')).toBe(2);
  });

  it('never stores a response the upstream cut off mid-body', async () => {
    for (const n of [1, 2]) {
      const res = await request(`${p.url}/c/cut`);
      expect(res.statusCode).toBe(200);
      await expect(res.body.text()).rejects.toThrow();
      expect(up.calls.get('/c/cut')).toBe(n);
    }
    const logs = await vi.waitFor(() => {
      const l = p.sink.of('tapwire.access.v1').filter((e) => e.path === '/c/cut');
      expect(l).toHaveLength(2);
      return l;
    });
    expect(logs.map((l) => [l.cache, l.error_kind])).toEqual([
      ['miss', 'upstream_reset'],
      ['miss', 'upstream_reset'],
    ]);
  });

  it('answers HEAD from the GET entry and stores HEAD answers of their own', async () => {
    await send('/c/headed?g=1');
    const head = await send('/c/headed?g=1', { method: 'HEAD' });
    expect(head).toMatchObject({
      status: 200,
      body: '',
      headers: { 'x-cache': 'HIT', 'content-length': '8' },
    });
    expect(head.log).toMatchObject({ cache: 'hit', bytes_out: 0 });
    const h1 = await send('/c/headed?h=1', { method: 'HEAD' });
    const h2 = await send('/c/headed?h=1', { method: 'HEAD' });
    expect([h1.log.cache, h2.log.cache, h2.headers['content-length']]).toEqual(['miss', 'hit', '9']);
    // A GET never gets a HEAD entry's empty body.
    expect(await send('/c/headed?h=1')).toMatchObject({ body: 'headed-2', log: { cache: 'miss' } });
  });

  it('serves an expired entry as STALE when the upstream answers 503 or refuses, within staleIfErrorSeconds', async () => {
    expect((await send('/c/flaky')).body).toBe('flaky-1');
    expect((await send('/d/gone')).body).toBe('gone-1');
    await sleep(1100);
    failing = true;
    await doomed.close();
    const on503 = await send('/c/flaky');
    expect(on503).toMatchObject({ status: 200, body: 'flaky-1', headers: { 'x-cache': 'STALE' } });
    expect(on503.headers.age).toBe('1');
    expect(on503.log).toMatchObject({ cache: 'stale', status: 200, bytes_out: 7, error_kind: 'none' });
    expect(up.calls.get('/c/flaky')).toBe(2);
    const refused = await send('/d/gone');
    expect(refused).toMatchObject({ status: 200, body: 'gone-1', headers: { 'x-cache': 'STALE' } });
    expect(refused.log).toMatchObject({ cache: 'stale', status: 200, upstream: 'doomed' });
    // Nothing stored to fall back on: the proxy's own 502 (still marked a miss).
    const nothing = await send('/refused/gone');
    expect(nothing).toMatchObject({ status: 502, headers: { 'x-cache': 'MISS' } });
    expect(nothing.log).toMatchObject({ cache: 'miss', error_kind: 'upstream_refused' });
    failing = false;
    const back = await send('/c/flaky');
    expect(back).toMatchObject({ body: 'flaky-3', headers: { 'x-cache': 'MISS' } });
  });

  it('answers a client whose ETag matches the entry with 304 from the cache', async () => {
    await send('/c/tagged');
    const nm = await send('/c/tagged', { headers: { 'if-none-match': '"t1"' } });
    expect(nm).toMatchObject({
      status: 304,
      body: '',
      headers: { etag: '"t1"', 'x-cache': 'HIT', age: '0' },
    });
    expect(nm.log).toMatchObject({ status: 304, cache: 'hit', bytes_out: 0 });
    const changed = await send('/c/tagged', { headers: { 'if-none-match': '"t0"' } });
    expect(changed).toMatchObject({ status: 200, body: 'tagged-1', log: { cache: 'hit', bytes_out: 8 } });
    expect(up.calls.get('/c/tagged')).toBe(1);
  });

  it('changes nothing on an upstream with no cache policy', async () => {
    const a = await send('/plain/fresh');
    const b = await send('/plain/fresh');
    expect([a.body, b.body]).toEqual(['fresh-1', 'fresh-2']);
    expect(a.headers['x-cache']).toBeUndefined();
    expect([a.log.cache, b.log.cache]).toEqual(['', '']);
  });

  it('exports what it did and holds as metrics', async () => {
    const text = await (await request(`${p.adminUrl}/metrics`)).body.text();
    const value = (line: string) =>
      Number(
        text
          .split('\n')
          .find((l) => l.startsWith(line))
          ?.split(' ')
          .pop(),
      );
    const logs = p.sink.of('tapwire.access.v1').filter((l) => l.upstream === 'cached');
    for (const result of ['hit', 'miss', 'bypass', 'stale'])
      expect(value(`tapwire_proxy_cache_requests_total{upstream="cached",result="${result}"}`)).toBe(
        logs.filter((l) => l.cache === result).length,
      );
    expect(value('tapwire_proxy_cache_entries')).toBeGreaterThan(5);
    expect(value('tapwire_proxy_cache_bytes')).toBeGreaterThan(0);
  });
});
