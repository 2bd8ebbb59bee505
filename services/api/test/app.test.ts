import { Writable } from 'node:stream';
import { AnalyticsError, type OverviewResult, type Store } from '@tapwire/analytics';
import { hashToken } from '@tapwire/config';
import { createLogger } from '@tapwire/telemetry';
import { afterEach, describe, expect, it } from 'vitest';
import { type Api, apiConfigSchema, buildApi } from '../src/index.js';

const logger = createLogger({ name: 'api-unit', level: 'silent' });
const EMPTY: OverviewResult = { source: 'raw', from: 0, to: 60, rows: [], has_more: false };

/** fakeStore answers every question with fixed values and records what it was asked. */
function fakeStore(overview: () => Promise<OverviewResult> = async () => EMPTY) {
  const calls: { method: string; scope: unknown; query: unknown }[] = [];
  const record =
    <T>(method: string, answer: () => Promise<T>) =>
    async (scope: unknown, query: unknown) => {
      calls.push({ method, scope, query });
      return answer();
    };
  const store: Store = {
    kind: 'duckdb',
    overview: record('overview', overview),
    series: record('series', async () => ({ source: 'raw' as const, from: 0, to: 60, step: 60, points: [] })),
    saturation: record('saturation', async () => ({
      source: 'raw' as const,
      from: 0,
      to: 60,
      step: 60,
      instances: [],
      upstreams: [],
      targets: [],
    })),
    consumers: record('consumers', async () => ({ from: 0, to: 60, rows: [], has_more: false })),
    trace: record('trace', async () => null),
    recentTraces: record('recentTraces', async () => ({ traces: [] })),
    logs: record('logs', async () => ({ rows: [], next_cursor: null })),
    pipeline: record('pipeline', async () => ({ from: 0, to: 60, lag: [], dlq: [], proxies: [] })),
    signal: record('signal', async () => ({ series: [] })),
    alerts: record('alerts', async () => ({ alerts: [] })),
    alertHistory: record('alertHistory', async () => ({ events: [] })),
    sloCounts: record('sloCounts', async () => ({ windows: [] })),
    sloCountsMany: record('sloCountsMany', async () => []),
    ping: async () => true,
    close: async () => {},
  };
  return { store, calls };
}

const apis: Api[] = [];
async function apiWith(store: Store, over: Record<string, unknown> = {}) {
  const api = await buildApi(
    { store, logger },
    apiConfigSchema.parse({
      tokens: [
        { name: 'reader', sha256: hashToken('r-token'), tenant: 'acme' },
        { name: 'ops', sha256: hashToken('o-token'), tenant: '*', scopes: ['read', 'admin'] },
      ],
      ...over,
    }),
  );
  apis.push(api);
  return api;
}
afterEach(async () => {
  await Promise.all(apis.splice(0).map((a) => a.app.close()));
});

const get = (api: Api, url: string, token?: string) =>
  api.app.inject({ method: 'GET', url, headers: token ? { authorization: `Bearer ${token}` } : {} });

describe('auth', () => {
  it('binds a tenant token to its tenant and lets an all-tenant token choose', async () => {
    const { store, calls } = fakeStore();
    const api = await apiWith(store);
    expect((await get(api, '/v1/overview', 'r-token')).statusCode).toBe(200);
    expect((await get(api, '/v1/overview?tenant=acme&from=now-30m', 'r-token')).statusCode).toBe(200);
    const other = await get(api, '/v1/overview?tenant=globex', 'r-token');
    expect(other.statusCode).toBe(403);
    expect(other.json().error.fields).toEqual([
      { field: 'querystring.tenant', message: 'this token cannot read that tenant' },
    ]);
    await get(api, '/v1/overview?from=now-2h', 'o-token');
    await get(api, '/v1/overview?from=now-3h&tenant=globex', 'o-token');
    expect(calls.map((c) => c.scope)).toEqual([
      { tenant: 'acme' },
      { tenant: 'acme' },
      { tenant: null },
      { tenant: 'globex' },
    ]);
  });

  it('401 for a malformed Authorization header, 403 for a missing scope; health needs no token', async () => {
    const api = await apiWith(fakeStore().store);
    for (const header of ['Basic abc', 'Bearer', 'Bearer a b', `Bearer ${'x'.repeat(600)}`]) {
      const res = await api.app.inject({
        method: 'GET',
        url: '/v1/overview',
        headers: { authorization: header },
      });
      expect(res.statusCode, header).toBe(401);
    }
    const pipeline = await get(api, '/v1/pipeline', 'r-token');
    expect(pipeline.statusCode).toBe(403);
    expect(pipeline.json().error.message).toBe('this endpoint needs the "admin" scope');
    expect((await get(api, '/v1/pipeline', 'o-token')).statusCode).toBe(200);
    expect((await get(api, '/healthz')).statusCode).toBe(200);
    expect((await get(api, '/readyz')).json()).toEqual({
      status: 'ready',
      store: { kind: 'duckdb', ok: true },
    });
  });
});

describe('rate limits', () => {
  it('limits requests without a valid token per client address, apart from the tokens budget', async () => {
    const api = await apiWith(fakeStore().store, {
      rateLimit: { max: 100, unauthenticatedMax: 3, windowMs: 60_000 },
    });
    const from = (ip: string, authorization?: string) =>
      api.app.inject({
        method: 'GET',
        url: '/v1/overview',
        remoteAddress: ip,
        headers: authorization ? { authorization } : {},
      });
    const statuses: number[] = [];
    for (const authorization of [undefined, 'Bearer wrong', 'Basic abc', undefined, 'Bearer wrong'])
      statuses.push((await from('203.0.113.7', authorization)).statusCode);
    expect(statuses).toEqual([401, 401, 401, 429, 429]);
    const limited = await from('203.0.113.7');
    expect(limited.statusCode).toBe(429);
    expect(limited.headers['retry-after']).toBe('60');
    expect(limited.json()).toEqual({
      error: {
        code: 'TAPWIRE_API_RATE_LIMITED',
        message: 'more than 3 requests without a valid token from this address; retry in 1 minute',
        request_id: expect.any(String),
      },
    });
    // Another address has its own budget; a valid token from the limited address is not refused.
    expect((await from('203.0.113.8')).statusCode).toBe(401);
    expect((await from('203.0.113.7', 'Bearer r-token')).statusCode).toBe(200);
    // Open endpoints are never limited.
    expect(
      (await api.app.inject({ method: 'GET', url: '/healthz', remoteAddress: '203.0.113.7' })).statusCode,
    ).toBe(200);
  });
});

describe('routing', () => {
  it('answers a wrong method on a known path with 405 and Allow, in JSON', async () => {
    const { store, calls } = fakeStore();
    const api = await apiWith(store);
    const cases = [
      ['POST', '/v1/overview', 'GET, HEAD'],
      ['DELETE', '/v1/traces/0123456789abcdef0123456789abcdef', 'GET, HEAD'],
      ['PUT', '/v1/silences', 'GET, HEAD, POST'],
      ['GET', '/v1/silences/abc', 'DELETE'],
      ['POST', '/healthz', 'GET, HEAD'],
      ['DELETE', '/openapi.json', 'GET, HEAD'],
    ] as const;
    for (const [method, url, allow] of cases) {
      const res = await api.app.inject({
        method,
        url,
        headers: { authorization: 'Bearer o-token', 'content-type': 'application/json' },
        payload: method === 'GET' ? undefined : '{}',
      });
      expect(res.statusCode, `${method} ${url}`).toBe(405);
      expect(res.headers.allow, `${method} ${url}`).toBe(allow);
      expect(res.json(), `${method} ${url}`).toEqual({
        error: {
          code: 'TAPWIRE_API_METHOD_NOT_ALLOWED',
          message: `${method} is not allowed on ${url}; allowed: ${allow}`,
          request_id: expect.any(String),
        },
      });
    }
    expect(calls).toEqual([]);
    // The token is still checked first on /v1, and unknown paths stay 404.
    const anonymous = await api.app.inject({ method: 'POST', url: '/v1/overview' });
    expect(anonymous.statusCode).toBe(401);
    expect((await api.app.inject({ method: 'POST', url: '/nope' })).statusCode).toBe(404);
    // 405 routes do not appear in the OpenAPI document.
    const doc = (await api.app.inject({ method: 'GET', url: '/openapi.json' })).json();
    expect(Object.keys(doc.paths['/v1/overview'])).toEqual(['get']);
  });

  it('documents the span fields of a trace (resource, scope, events, links) and the overview row basis', async () => {
    const api = await apiWith(fakeStore().store);
    const doc = (await api.app.inject({ method: 'GET', url: '/openapi.json' })).json();
    const roots =
      doc.paths['/v1/traces/{traceId}'].get.responses['200'].content['application/json'].schema.properties
        .roots;
    expect(roots).toEqual({ type: 'array', items: { $ref: '#/components/schemas/SpanNode' } });
    const span = doc.components.schemas.SpanNode;
    expect(Object.keys(span.properties)).toEqual([
      'span_id',
      'parent_span_id',
      'name',
      'kind',
      'service',
      'status',
      'status_message',
      'start_us',
      'offset_us',
      'duration_us',
      'attributes',
      'resource',
      'scope',
      'events',
      'links',
      'children',
    ]);
    expect(span.properties.children).toEqual({
      type: 'array',
      items: { $ref: '#/components/schemas/SpanNode' },
    });
    expect(Object.keys(span.properties.events.items.properties)).toEqual([
      'time_us',
      'offset_us',
      'name',
      'attributes',
    ]);
    expect(Object.keys(span.properties.links.items.properties)).toEqual([
      'trace_id',
      'span_id',
      'attributes',
    ]);
    expect(JSON.stringify(doc.paths['/v1/overview'].get.responses['200'])).toContain('"basis"');
  });

  it('GET / points to the docs without a token', async () => {
    const api = await apiWith(fakeStore().store);
    const res = await api.app.inject({ method: 'GET', url: '/' });
    expect(res.statusCode).toBe(302);
    expect(res.headers.location).toBe('/docs');
    expect(res.json()).toEqual({ docs: '/docs', openapi: '/openapi.json', health: '/healthz' });
    const docs = await api.app.inject({ method: 'GET', url: '/docs' });
    expect(docs.statusCode).toBeLessThan(400);
  });
});

describe('validation', () => {
  it('answers 400 naming every bad field, and unknown parameters too', async () => {
    const { store, calls } = fakeStore();
    const api = await apiWith(store);
    const res = await get(api, '/v1/overview?from=yesterday&limit=0&sort=fastest&bogus=1', 'r-token');
    expect(res.statusCode).toBe(400);
    const fields = res.json().error.fields.map((f: { field: string }) => f.field);
    expect(fields).toEqual(
      expect.arrayContaining(['querystring.from', 'querystring.limit', 'querystring.sort']),
    );
    expect(res.json().error.message).toContain('querystring.from: must be RFC 3339');
    expect(calls).toEqual([]);
  });

  it('resolves relative times, aligns overview windows to minutes and series windows to steps', async () => {
    const { store, calls } = fakeStore();
    const api = await apiWith(store);
    await get(api, '/v1/overview?from=2026-11-26T10:00:30Z&to=2026-11-26T10:59:10Z', 'r-token');
    await get(api, '/v1/overview?from=2026-11-26T10:00:30Z&to=2026-11-26T10:59:10Z&source=raw', 'r-token');
    await get(api, '/v1/series?from=2026-11-26T10:03:00Z&to=2026-11-26T10:58:00Z&step=5m', 'r-token');
    const base = Date.UTC(2026, 10, 26, 10) / 1000;
    expect(calls[0]?.query).toMatchObject({ range: { from: base, to: base + 3600 } });
    expect(calls[1]?.query).toMatchObject({ range: { from: base + 30, to: base + 3550 } });
    expect(calls[2]?.query).toMatchObject({
      range: { from: base, to: base + 3600 },
      stepS: 300,
      quantiles: [0.5, 0.9, 0.99],
    });
  });
});

describe('errors and serving', () => {
  it('maps store failures to 503 / 504 / 422 JSON with the request id, never a stack', async () => {
    for (const [code, status] of [
      ['TAPWIRE_ANALYTICS_STORE_UNAVAILABLE', 503],
      ['TAPWIRE_ANALYTICS_STORE_TIMEOUT', 504],
      ['TAPWIRE_ANALYTICS_TOO_MANY_ROWS', 422],
    ] as const) {
      const api = await apiWith(fakeStore(async () => Promise.reject(new AnalyticsError(code))).store);
      const res = await api.app.inject({
        method: 'GET',
        url: '/v1/overview',
        headers: { authorization: 'Bearer r-token', 'x-request-id': 'req-1' },
      });
      expect(res.statusCode).toBe(status);
      expect(res.json()).toEqual({ error: { code, message: expect.any(String), request_id: 'req-1' } });
      expect(res.body).not.toContain(' at ');
    }
  });

  it('shares one store call between identical concurrent queries and caches it for the TTL', async () => {
    let release: () => void = () => {};
    const gate = new Promise<void>((r) => {
      release = r;
    });
    const { store, calls } = fakeStore(async () => {
      await gate;
      return EMPTY;
    });
    const api = await apiWith(store);
    const url = '/v1/overview?from=2026-11-26T10:00:00Z&to=2026-11-26T11:00:00Z';
    const pending = [get(api, url, 'r-token'), get(api, url, 'r-token')];
    await new Promise((r) => setTimeout(r, 20));
    release();
    expect((await Promise.all(pending)).map((r) => r.statusCode)).toEqual([200, 200]);
    expect((await get(api, url, 'r-token')).statusCode).toBe(200);
    expect(calls).toHaveLength(1);
    // Another tenant's identical question is a different cache entry.
    await get(api, url, 'o-token');
    expect(calls).toHaveLength(2);
  });

  it('does not cache failures', async () => {
    let fail = true;
    const { store, calls } = fakeStore(async () => {
      if (fail) throw new AnalyticsError('TAPWIRE_ANALYTICS_STORE_UNAVAILABLE');
      return EMPTY;
    });
    const api = await apiWith(store);
    const url = '/v1/overview?from=2026-11-26T10:00:00Z&to=2026-11-26T11:00:00Z';
    expect((await get(api, url, 'r-token')).statusCode).toBe(503);
    fail = false;
    expect((await get(api, url, 'r-token')).statusCode).toBe(200);
    expect(calls).toHaveLength(2);
  });

  it("fastify's own refusals carry the API's codes, not fastify's", async () => {
    const api = await apiWith(fakeStore().store);
    const post = (contentType: string, payload: string) =>
      api.app.inject({
        method: 'POST',
        url: '/v1/silences',
        headers: { authorization: 'Bearer o-token', 'content-type': contentType },
        payload,
      });
    const cases = [
      [await post('application/xml', '<silence/>'), 415, 'TAPWIRE_API_UNSUPPORTED_MEDIA_TYPE'],
      [await post('application/json', '{"matchers":'), 400, 'TAPWIRE_API_BAD_REQUEST'],
    ] as const;
    for (const [res, status, code] of cases) {
      expect(res.statusCode).toBe(status);
      expect(res.json()).toEqual({
        error: { code, message: expect.any(String), request_id: expect.any(String) },
      });
    }
  });

  it('404 JSON for unknown routes and a trace that is not there', async () => {
    const api = await apiWith(fakeStore().store);
    const missing = await get(api, `/v1/traces/${'a'.repeat(32)}`, 'r-token');
    expect(missing.statusCode).toBe(404);
    expect(missing.json().error.code).toBe('TAPWIRE_API_NOT_FOUND');
    expect((await get(api, '/nope')).json().error.code).toBe('TAPWIRE_API_NOT_FOUND');
  });
});

describe('logging', () => {
  it('logs store failures and unexpected errors without the bearer token', async () => {
    const lines: string[] = [];
    const destination = new Writable({
      write(chunk, _enc, done) {
        lines.push(String(chunk));
        done();
      },
    });
    const noisy = createLogger({ name: 'api-unit', level: 'debug', destination });
    let call = 0;
    const { store } = fakeStore(async () => {
      call++;
      if (call === 1) throw new AnalyticsError('TAPWIRE_ANALYTICS_STORE_UNAVAILABLE');
      throw new Error('boom');
    });
    const api = await buildApi(
      { store, logger: noisy },
      apiConfigSchema.parse({
        tokens: [{ name: 'reader', sha256: hashToken('r-token-secret'), tenant: 'acme' }],
      }),
    );
    apis.push(api);
    expect((await get(api, '/v1/overview?from=now-2h', 'r-token-secret')).statusCode).toBe(503);
    const unexpected = await get(api, '/v1/overview?from=now-3h', 'r-token-secret');
    expect(unexpected.statusCode).toBe(500);
    expect(unexpected.json().error).toMatchObject({
      code: 'TAPWIRE_API_INTERNAL',
      message: 'internal error',
    });
    expect(unexpected.body).not.toContain('boom');
    expect(lines.length).toBeGreaterThanOrEqual(2);
    expect(lines.join('')).not.toContain('r-token-secret');
  });
});
