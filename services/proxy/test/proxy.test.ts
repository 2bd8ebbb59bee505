import { createHash, createHmac } from 'node:crypto';
import { request as httpRequest } from 'node:http';
import { connect } from 'node:net';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { freePort, startUpstream, type TestUpstream } from '../../../test/support/upstream.js';
import { type ProxyUnderTest, startProxy } from './helpers.js';

let up: TestUpstream;
let p: ProxyUnderTest;
let refusedPort: number;

function jwtHs256(payload: object, secret: string): string {
  const b64 = (o: object) => Buffer.from(JSON.stringify(o)).toString('base64url');
  const head = `${b64({ alg: 'HS256', typ: 'JWT' })}.${b64(payload)}`;
  return `${head}.${createHmac('sha256', secret).update(head).digest('base64url')}`;
}

beforeAll(async () => {
  up = await startUpstream();
  refusedPort = await freePort();
  p = await startProxy({
    tenant: 'acme',
    limits: { maxBodyBytes: 1000, headersTimeoutMs: 1000, requestTimeoutMs: 2000 },
    redaction: {
      headers: ['x-secret-header'],
      recordRequestHeaders: ['content-type', 'x-secret-header', 'authorization'],
    },
    consumers: {
      apiKeys: [{ id: 'key_alpha', sha256: createHash('sha256').update('alpha-key-123').digest('hex') }],
      jwt: { secret: 'jwt-secret' },
    },
    upstreams: [
      {
        name: 'users',
        service: 'users-api',
        url: up.url,
        match: { pathPrefix: '/users' },
        routes: ['/users/:id', '/users/:id/orders'],
        timeoutMs: 300,
      },
      {
        name: 'limited',
        url: up.url,
        match: { pathPrefix: '/limited' },
        stripPrefix: true,
        maxConcurrency: 1,
      },
      { name: 'many', url: up.url, match: { pathPrefix: '/many' }, maxRoutes: 20 },
      { name: 'down', url: `http://127.0.0.1:${refusedPort}`, match: { pathPrefix: '/down' } },
      {
        name: 'other-tenant',
        tenant: 'globex',
        url: up.url,
        routes: ['/users/:id'],
        match: { host: 'globex.example', pathPrefix: '/' },
      },
      { name: 'fallback', url: up.url, match: { pathPrefix: '/' } },
    ],
  });
});
afterAll(async () => {
  await p.proxy.close();
  await up.close();
});

async function get(path: string, headers: Record<string, string> = {}, init: RequestInit = {}) {
  const res = await fetch(`${p.url}${path}`, { headers, ...init });
  const body = await res.text();
  return { status: res.status, headers: res.headers, body };
}

function logFor(traceparent: string | null) {
  const traceId = traceparent?.split('-')[1];
  return p.sink.of('tapwire.access.v1').find((l) => l.trace_id === traceId);
}

async function settled(traceparent: string | null) {
  await vi.waitFor(() => expect(logFor(traceparent)).toBeDefined(), { timeout: 3000 });
  const log = logFor(traceparent)!;
  const spans = p.sink.of('tapwire.spans.v1').filter((s) => s.trace_id === log.trace_id);
  return {
    log,
    server: spans.find((s) => s.kind === 'SERVER'),
    client: spans.find((s) => s.kind === 'CLIENT'),
  };
}

describe('forwarding and recording', () => {
  it('records a 2xx with its route template, bytes, consumer and a SERVER span enclosing the CLIENT span', async () => {
    const res = await get('/users/42?expand=1&token=CANARY_QUERY', { 'x-api-key': 'alpha-key-123' });
    expect(res.status).toBe(200);
    expect(res.headers.get('x-upstream')).toBe('yes');
    const { log, server, client } = await settled(res.headers.get('traceparent'));
    expect(log).toMatchObject({
      tenant: 'acme',
      service: 'users-api',
      upstream: 'users',
      route: '/users/:id',
      method: 'GET',
      status: 200,
      bytes_in: 0,
      bytes_out: Buffer.byteLength(res.body),
      consumer: 'key_alpha',
      path: '/users/42',
      query: 'expand=1&token=[REDACTED]',
      error_kind: 'none',
    });
    expect(server).toMatchObject({
      kind: 'SERVER',
      name: 'GET /users/:id',
      parent_span_id: '',
      span_id: log.span_id,
    });
    expect(client).toMatchObject({ kind: 'CLIENT', parent_span_id: server?.span_id, status: 'UNSET' });
    expect(server!.duration).toBeGreaterThanOrEqual(client!.duration);
    expect(server!.start).toBeLessThanOrEqual(client!.start);
    expect(log.duration_ms).toBeGreaterThanOrEqual(log.upstream_ms);
    const seen = up.seen.find((s) => s.url.startsWith('/users/42'))!;
    expect(seen.headers.traceparent).toBe(`00-${log.trace_id}-${client!.span_id}-01`);
    expect(res.headers.get('traceparent')).toBe(`00-${log.trace_id}-${server!.span_id}-01`);
    expect(res.headers.get('x-request-id')).toMatch(/^[0-9a-f]{32}$/);
    expect(seen.headers.host).toBe(`127.0.0.1:${up.port}`);
  });

  it('continues a valid traceparent, keeps tracestate and honours the sampled flag', async () => {
    const trace = '4bf92f3577b34da6a3ce929d0e0e4736';
    const res = await get('/users/7/orders', {
      traceparent: `00-${trace}-00f067aa0ba902b7-01`,
      tracestate: 'vendor=a',
      'x-request-id': 'req-1',
    });
    const { log, server, client } = await settled(res.headers.get('traceparent'));
    expect(log.trace_id).toBe(trace);
    expect(log.route).toBe('/users/:id/orders');
    expect(server?.parent_span_id).toBe('00f067aa0ba902b7');
    expect(res.headers.get('x-request-id')).toBe('req-1');
    const seen = up.seen.find((s) => s.headers.traceparent?.includes(trace))!;
    expect(seen.headers.tracestate).toBe('vendor=a');
    expect(seen.headers.traceparent).toBe(`00-${trace}-${client?.span_id}-01`);

    const unsampled = 'aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa1';
    const res2 = await get('/users/8', { traceparent: `00-${unsampled}-00f067aa0ba902b7-00` });
    expect(res2.headers.get('traceparent')).toMatch(new RegExp(`^00-${unsampled}-[0-9a-f]{16}-00$`));
    const second = await settled(res2.headers.get('traceparent'));
    expect(second.log.status).toBe(200);
    expect(second.server).toBeUndefined();
    expect(second.client).toBeUndefined();
  });

  it('starts a new trace when traceparent is missing or malformed', async () => {
    for (const bad of [
      'garbage',
      `00-${'0'.repeat(32)}-00f067aa0ba902b7-01`,
      `ff-${'a'.repeat(32)}-00f067aa0ba902b7-01`,
      `00-${'A'.repeat(32)}-00f067aa0ba902b7-01`,
    ]) {
      const res = await get('/users/1', { traceparent: bad });
      const tp = res.headers.get('traceparent')!;
      expect(tp).toMatch(/^00-[0-9a-f]{32}-[0-9a-f]{16}-01$/);
      expect(tp.split('-')[1]).not.toBe(bad.split('-')[1]);
      const { server } = await settled(tp);
      expect(server?.parent_span_id).toBe('');
    }
  });

  it('records upstream 4xx and 5xx with the right span statuses', async () => {
    const r404 = await get('/users/status/404?bytes=3');
    expect(r404.status).toBe(404);
    const a = await settled(r404.headers.get('traceparent'));
    expect(a.log).toMatchObject({ status: 404, error_kind: 'none', bytes_out: 3 });
    expect(a.server?.status).toBe('UNSET');
    expect(a.client?.status).toBe('ERROR');
    const r503 = await get('/users/status/503');
    const b = await settled(r503.headers.get('traceparent'));
    expect(b.log).toMatchObject({ status: 503, error_kind: 'none' });
    expect(b.server?.status).toBe('ERROR');
  });

  it('answers 504 on an upstream timeout and 502 when the upstream refuses', async () => {
    const slow = await get('/users/slow/2000');
    expect(slow.status).toBe(504);
    expect(JSON.parse(slow.body)).toEqual({
      error: {
        code: 'TAPWIRE_PROXY_UPSTREAM_TIMEOUT',
        message: 'the upstream did not answer in time',
        request_id: slow.headers.get('x-request-id'),
      },
    });
    const t = await settled(slow.headers.get('traceparent'));
    expect(t.log).toMatchObject({ status: 504, error_kind: 'upstream_timeout' });
    expect(t.log.upstream_ms).toBeGreaterThanOrEqual(290);
    expect(t.client?.status).toBe('ERROR');

    const refused = await get('/down/x');
    expect(refused.status).toBe(502);
    expect(JSON.parse(refused.body).error.code).toBe('TAPWIRE_PROXY_UPSTREAM_REFUSED');
    expect((await settled(refused.headers.get('traceparent'))).log).toMatchObject({
      status: 502,
      error_kind: 'upstream_refused',
      upstream: 'down',
    });
  });

  it('answers 502 when the upstream sends garbage or resets', async () => {
    const garbage = await get('/garbage');
    expect(garbage.status).toBe(502);
    expect((await settled(garbage.headers.get('traceparent'))).log.error_kind).toBe('upstream_error');
    const reset = await get('/reset');
    expect(reset.status).toBe(502);
    expect((await settled(reset.headers.get('traceparent'))).log.error_kind).toBe('upstream_reset');
  });

  it('records a client that goes away as 499 client_aborted', async () => {
    const before = p.sink.of('tapwire.access.v1').length;
    const controller = new AbortController();
    const pending = fetch(`${p.url}/fallback-slow/slow/5000`, { signal: controller.signal }).catch(
      () => 'aborted',
    );
    setTimeout(() => controller.abort(), 100);
    expect(await pending).toBe('aborted');
    await vi.waitFor(() => expect(p.sink.of('tapwire.access.v1').length).toBeGreaterThan(before));
    const log = p.sink
      .of('tapwire.access.v1')
      .slice(before)
      .find((l) => l.path === '/fallback-slow/slow/5000');
    expect(log).toMatchObject({ status: 499, error_kind: 'client_aborted', upstream: 'fallback' });
  });

  it('answers 503 with Retry-After beyond the concurrency limit', async () => {
    const first = get('/limited/slow/300');
    await new Promise((r) => setTimeout(r, 50));
    const second = await get('/limited/anything');
    expect(second.status).toBe(503);
    expect(second.headers.get('retry-after')).toBe('1');
    expect((await settled(second.headers.get('traceparent'))).log).toMatchObject({
      error_kind: 'over_limit',
      status: 503,
    });
    expect((await first).status).toBe(200);
    expect(up.seen.some((s) => s.url === '/slow/300')).toBe(true); // prefix stripped
  });

  it('matches by host before path prefix and records the upstream’s tenant', async () => {
    const traceparent = await new Promise<string>((resolve, reject) => {
      const req = httpRequest(`${p.url}/users/1`, { headers: { host: 'GLOBEX.example:8080' } }, (res) => {
        res.resume();
        res.on('end', () => resolve(String(res.headers.traceparent)));
      });
      req.on('error', reject);
      req.end();
    });
    const { log } = await settled(traceparent);
    expect(log).toMatchObject({
      tenant: 'globex',
      upstream: 'other-tenant',
      route: '/users/:id',
      server_address: 'GLOBEX.example:8080',
    });
  });

  it('counts request body bytes and passes the body through', async () => {
    const res = await get('/users/9', {}, { method: 'POST', body: 'hello world' });
    expect(JSON.parse(res.body).bodyBytes).toBe(11);
    expect((await settled(res.headers.get('traceparent'))).log).toMatchObject({
      method: 'POST',
      bytes_in: 11,
    });
  });

  it('answers 413 for a body over the limit, declared or streamed', async () => {
    const declared = await get('/users/9', {}, { method: 'POST', body: 'x'.repeat(1001) });
    expect(declared.status).toBe(413);
    expect((await settled(declared.headers.get('traceparent'))).log.error_kind).toBe('body_too_large');
    const stream = new ReadableStream({
      start(c) {
        for (let i = 0; i < 5; i++) c.enqueue(new TextEncoder().encode('y'.repeat(400)));
        c.close();
      },
    });
    const chunked = await get('/users/9', {}, {
      method: 'POST',
      body: stream,
      duplex: 'half',
    } as RequestInit);
    expect(chunked.status).toBe(413);
  });

  it('streams response bodies through chunk by chunk', async () => {
    const res = await get('/stream/5');
    expect(res.body).toBe('chunk-'.repeat(5));
    expect((await settled(res.headers.get('traceparent'))).log.bytes_out).toBe(30);
  });

  it('identifies consumers by verified JWT sub, and marks bad tokens unknown', async () => {
    const good = await get('/users/1', {
      authorization: `Bearer ${jwtHs256({ sub: 'user-77' }, 'jwt-secret')}`,
    });
    expect((await settled(good.headers.get('traceparent'))).log.consumer).toBe('user-77');
    const forged = await get('/users/1', { authorization: `Bearer ${jwtHs256({ sub: 'admin' }, 'wrong')}` });
    expect((await settled(forged.headers.get('traceparent'))).log.consumer).toBe('unknown');
    const badKey = await get('/users/1', { 'x-api-key': 'not-a-key' });
    expect((await settled(badKey.headers.get('traceparent'))).log.consumer).toBe('unknown');
  });

  it('never records secrets from headers, cookies, query strings or upstream set-cookie', async () => {
    const res = await get('/users/status/200?api_key=CANARY_APIKEY&Signature=CANARY_SIG&ok=1', {
      authorization: 'Bearer CANARY_AUTH',
      cookie: 'sid=CANARY_COOKIE',
      'x-secret-header': 'CANARY_CUSTOM',
      'proxy-authorization': 'Basic CANARY_PROXYAUTH',
    });
    const { log, server } = await settled(res.headers.get('traceparent'));
    expect(server?.attributes['http.request.header.x-secret-header']).toBe('[REDACTED]');
    expect(server?.attributes['http.request.header.authorization']).toBe('[REDACTED]');
    expect(log.query).toBe('api_key=[REDACTED]&Signature=[REDACTED]&ok=1');
    const everything = JSON.stringify(p.sink.events);
    for (const canary of [
      'CANARY_AUTH',
      'CANARY_COOKIE',
      'CANARY_CUSTOM',
      'CANARY_APIKEY',
      'CANARY_SIG',
      'CANARY_PROXYAUTH',
      'CANARY_SETCOOKIE',
      'CANARY_QUERY',
    ]) {
      expect(everything).not.toContain(canary);
    }
    // Proxy-Authorization is for the proxy, never forwarded.
    expect(
      up.seen.find((s) => s.url.includes('CANARY_APIKEY'))?.headers['proxy-authorization'],
    ).toBeUndefined();
  });

  it('gives the first routes their own value at once, then records one-off paths as __other__ and a steady route from its third request', async () => {
    for (let i = 0; i < 60; i++) await get(`/many/page-${i}/view`);
    for (let i = 0; i < 4; i++) await get('/many/orders/summary');
    await vi.waitFor(() =>
      expect(p.sink.of('tapwire.access.v1').filter((l) => l.upstream === 'many').length).toBe(64),
    );
    const routes = p.sink
      .of('tapwire.access.v1')
      .filter((l) => l.upstream === 'many')
      .map((l) => l.route);
    // maxRoutes 20 leaves 19 slots for normalized routes; routeFreeShare 0.5 gives 9 at first sight.
    expect(routes.slice(0, 9)).toEqual(Array.from({ length: 9 }, (_, i) => `/many/page-${i}/view`));
    expect(new Set(routes.slice(9, 60))).toEqual(new Set(['__other__']));
    expect(routes.slice(60)).toEqual([
      '__other__',
      '__other__',
      '/many/orders/summary',
      '/many/orders/summary',
    ]);
  });

  it('every emitted event passes schema validation', () => {
    expect(p.sink.invalid).toEqual([]);
  });
});

describe('bad input', () => {
  function raw(payload: string): Promise<string> {
    return new Promise((resolve, reject) => {
      const port = Number(new URL(p.url).port);
      const socket = connect(port, '127.0.0.1', () => socket.write(payload));
      let data = '';
      socket.on('data', (c) => {
        data += c.toString();
      });
      socket.on('close', () => resolve(data));
      socket.on('error', reject);
    });
  }

  it('answers a malformed request line with 400 JSON and records it', async () => {
    const before = p.sink.of('tapwire.access.v1').filter((l) => l.route === '__invalid__').length;
    const reply = await raw('NOT A REQUEST\r\n\r\n');
    expect(reply).toMatch(/^HTTP\/1\.1 400 /);
    expect(reply).toContain('"code":"TAPWIRE_PROXY_BAD_REQUEST"');
    expect(p.sink.of('tapwire.access.v1').filter((l) => l.route === '__invalid__').length).toBe(before + 1);
  });

  it('answers oversized headers with 431', async () => {
    const reply = await raw(`GET /users/1 HTTP/1.1\r\nhost: x\r\nx-big: ${'a'.repeat(20_000)}\r\n\r\n`);
    expect(reply).toMatch(/^HTTP\/1\.1 431 /);
  });

  it('answers a client that never finishes its headers with 408', async () => {
    const reply = await raw('GET /users/1 HTTP/1.1\r\nhost: x\r\n');
    expect(reply).toMatch(/^HTTP\/1\.1 408 /);
    const log = p.sink.of('tapwire.access.v1').filter((l) => l.status === 408);
    expect(log.at(-1)).toMatchObject({ route: '__invalid__', error_kind: 'client_timeout' });
  }, 10_000);

  it('leaks no sockets: after clients leave, the proxy holds no client connections', async () => {
    await vi.waitFor(
      async () => {
        const n = await new Promise<number>((r) => p.proxy.server.server.getConnections((_e, c) => r(c)));
        expect(n).toBe(0);
      },
      { timeout: 8000, interval: 200 },
    );
  }, 10_000);
});

describe('unmatched requests', () => {
  it('answers 404 JSON from the proxy and records route unmatched', async () => {
    const only = await startProxy({ upstreams: [{ name: 'u', url: up.url, match: { pathPrefix: '/api' } }] });
    try {
      const res = await fetch(`${only.url}/nope?x=1`);
      expect(res.status).toBe(404);
      const body = (await res.json()) as { error: { code: string; request_id: string } };
      expect(body.error.code).toBe('TAPWIRE_PROXY_NO_ROUTE');
      expect(body.error.request_id).toBe(res.headers.get('x-request-id'));
      await vi.waitFor(() => expect(only.sink.of('tapwire.access.v1')).toHaveLength(1));
      expect(only.sink.of('tapwire.access.v1')[0]).toMatchObject({
        route: 'unmatched',
        status: 404,
        error_kind: 'unmatched',
        service: 'tapwire-proxy',
        upstream: '',
      });
    } finally {
      await only.proxy.close();
    }
  });
});

describe('admin endpoints, saturation and shutdown', () => {
  it('serves health, readiness and Prometheus metrics', async () => {
    expect((await fetch(`${p.adminUrl}/healthz`)).status).toBe(200);
    expect(await (await fetch(`${p.adminUrl}/readyz`)).json()).toEqual({ ready: true, status: 'ready' });
    const text = await (await fetch(`${p.adminUrl}/metrics`)).text();
    expect(text).toMatch(/^tapwire_proxy_requests_total\{upstream="users",class="2xx"\} \d+$/m);
    expect(text).toMatch(/^tapwire_proxy_events_emitted_total \d+$/m);
    expect(text).toMatch(/^tapwire_proxy_events_dropped_total\{reason="write_failed"\} 0$/m);
    expect(text).toMatch(/^tapwire_proxy_events_dropped_total\{reason="over_capacity"\} 0$/m);
    for (const gauge of ['unshipped_events', 'unshipped_bytes', 'shipping_lag_seconds'])
      expect(text).toMatch(new RegExp(`^tapwire_proxy_${gauge} 0$`, 'm'));
    expect(text).toMatch(/^tapwire_proxy_in_flight_requests\{upstream="all"\} \d+$/m);
  });

  it('samples saturation per tenant with each upstream’s in-flight count and limit', async () => {
    const slow = get('/limited/slow/200');
    await new Promise((r) => setTimeout(r, 50));
    const samples = p.proxy.sampler.sampleNow();
    await slow;
    expect(samples.map((s) => s.tenant).sort()).toEqual(['acme', 'globex']);
    const acme = samples.find((s) => s.tenant === 'acme')!;
    expect(acme.upstreams.map((u) => u.upstream)).toEqual(['users', 'limited', 'many', 'down', 'fallback']);
    expect(acme.upstreams.find((u) => u.upstream === 'limited')).toMatchObject({
      in_flight: 1,
      concurrency_limit: 1,
    });
    expect(acme.event_loop_utilization).toBeGreaterThanOrEqual(0);
    expect(acme.heap_used_bytes).toBeGreaterThan(0);
    expect(acme.rss_bytes).toBeGreaterThan(acme.heap_used_bytes);
  });

  it('on close, finishes in-flight requests and refuses new ones', async () => {
    const own = await startProxy({ upstreams: [{ name: 'u', url: up.url }] });
    const inflight = fetch(`${own.url}/slow/300`).then((r) => r.status);
    await new Promise((r) => setTimeout(r, 50));
    const closing = own.proxy.close();
    expect(await inflight).toBe(200);
    await closing;
    await expect(fetch(`${own.url}/x`)).rejects.toThrow();
    expect(own.sink.of('tapwire.access.v1').map((l) => l.status)).toEqual([200]);
    expect(
      await (async () => {
        const req = httpRequest(`${own.adminUrl}/healthz`);
        return new Promise((resolve) => {
          req.on('error', () => resolve('closed'));
          req.end();
        });
      })(),
    ).toBe('closed');
  });
});
