import { createHash, generateKeyPairSync } from 'node:crypto';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { connect } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { openEmission } from '@tapwire/emission';
import { type FileLog, fileLogSource, openFileLog } from '@tapwire/log';
import { buildProxy, proxyConfigSchema, type TapwireProxy } from '@tapwire/proxy';
import { type AccessLogEvent, accessLogCodec, TOPICS } from '@tapwire/schema';
import { createLogger } from '@tapwire/telemetry';
import { createSigner } from 'fast-jwt';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { silentLogger, testKafkaConfig } from '../support/infra.js';
import { startUpstream, type TestUpstream } from '../support/upstream.js';

// Enforced auth and rate limits (issue #23) through the real proxy, a real upstream and the
// write-first event path on the embedded log: what each client saw, request by request, must be
// what the access log recorded.

const logger = createLogger({ name: 'proxy-auth-it', level: 'silent' });
const SECRET = 'integration-secret-integration-secret!';
const sha = (k: string) => createHash('sha256').update(k).digest('hex');
const sign = createSigner({ key: SECRET, algorithm: 'HS256', noTimestamp: true });
const nowS = () => Math.floor(Date.now() / 1000);
const WINDOW_MS = 60_000;
const rsa = generateKeyPairSync('rsa', { modulusLength: 2048 });
const signRs = createSigner({
  key: rsa.privateKey.export({ type: 'pkcs8', format: 'pem' }) as string,
  algorithm: 'RS256',
  kid: 'idp-1',
  noTimestamp: true,
});

let up: TestUpstream;
let log: FileLog;
let proxy: TapwireProxy;
let url: string;
let adminUrl: string;
let stopEmission: () => Promise<void>;
// The proxy's monotonic clock, moved by the test: windows start where the test says.
let clockMs = 10 * WINDOW_MS;

beforeAll(async () => {
  up = await startUpstream();
  const dir = mkdtempSync(join(tmpdir(), 'tapwire-auth-log-'));
  log = await openFileLog({ dir });
  const jwksFile = join(dir, 'jwks.json');
  writeFileSync(
    jwksFile,
    JSON.stringify({ keys: [{ ...rsa.publicKey.export({ format: 'jwk' }), kid: 'idp-1' }] }),
  );
  const config = proxyConfigSchema.parse({
    listen: { host: '127.0.0.1', port: 0 },
    admin: { host: '127.0.0.1', port: 0 },
    consumers: {
      apiKeys: [
        { id: 'reader', sha256: sha('KEY_READER_CANARY'), scopes: ['read'] },
        { id: 'admin', sha256: sha('KEY_ADMIN_CANARY'), scopes: ['read', 'admin'] },
      ],
      jwt: { secret: SECRET, jwksFile, audience: 'tapwire-it' },
    },
    upstreams: [
      { name: 'open', url: up.url, match: { pathPrefix: '/open' } },
      {
        name: 'api',
        url: up.url,
        match: { pathPrefix: '/api' },
        routes: ['/api/items/:id', '/api/admin'],
        auth: { scopes: ['read'] },
        rateLimit: { limit: 2, windowSeconds: 60 },
        routePolicies: [{ route: '/api/admin', auth: { scopes: ['admin'] }, rateLimit: false }],
      },
      {
        name: 'anon',
        url: up.url,
        match: { pathPrefix: '/anon' },
        rateLimit: { limit: 2, windowSeconds: 10, by: 'client', policyName: 'per-ip' },
      },
    ],
  });
  const emission = await openEmission(
    { emit: config.emit, kafka: testKafkaConfig(), section: 'proxy' },
    logger,
    '',
    fileLogSource(log, silentLogger),
  );
  proxy = buildProxy({ sink: emission.sink, logger, emission: emission.stats, now: () => clockMs }, config);
  ({ proxyUrl: url, adminUrl } = await proxy.start());
  stopEmission = () => emission.close(5000);
});

afterAll(async () => {
  await up.close();
  await log.close();
});

interface Step {
  name: string;
  path: string;
  headers?: Record<string, string>;
  status: number;
  kind: AccessLogEvent['error_kind'];
  consumer: string;
  limit: number;
  remaining: number;
  /** Response headers asserted exactly; null: must be absent. */
  expect: Record<string, string | null>;
  /** Move the proxy's clock to this many ms into the run before the request. */
  atMs?: number;
}

const NO_LIMIT = { ratelimit: null, 'ratelimit-policy': null, 'retry-after': null };

function rawRequest(path: string, headers: Record<string, string>): Promise<string> {
  const u = new URL(url);
  return new Promise((resolve, reject) => {
    const s = connect(Number(u.port), u.hostname);
    let data = '';
    s.on('data', (c) => {
      data += c.toString('latin1');
    });
    s.on('end', () => resolve(data));
    s.on('error', reject);
    const lines = Object.entries(headers).map(([k, v]) => `${k}: ${v}\r\n`);
    s.write(`GET ${path} HTTP/1.1\r\nhost: ${u.host}\r\nconnection: close\r\n${lines.join('')}\r\n`);
  });
}

describe('proxy auth and rate-limit policies → client answers and access logs', () => {
  it('answers and records every decision as the client saw it, and changes nothing without a policy', async () => {
    const start = clockMs;
    const valid = sign({ sub: 'jwt-alice', aud: 'tapwire-it', scope: 'read write' });
    const steps: Step[] = [
      {
        name: 'no policy, unknown key: forwarded, observed only',
        path: '/open/x',
        headers: { 'x-api-key': 'NOT_A_KEY_CANARY' },
        status: 200,
        kind: 'none',
        consumer: 'unknown',
        limit: 0,
        remaining: 0,
        expect: { ...NO_LIMIT, 'www-authenticate': null },
      },
      {
        name: 'no credential',
        path: '/api/items/1',
        status: 401,
        kind: 'auth_missing',
        consumer: '',
        limit: 0,
        remaining: 0,
        expect: {
          ...NO_LIMIT,
          'www-authenticate': 'Bearer realm="tapwire", ApiKey realm="tapwire", header="x-api-key"',
        },
      },
      {
        name: 'unknown API key',
        path: '/api/items/1',
        headers: { 'x-api-key': 'NOT_A_KEY_CANARY' },
        status: 401,
        kind: 'auth_invalid',
        consumer: 'unknown',
        limit: 0,
        remaining: 0,
        expect: {
          ...NO_LIMIT,
          'www-authenticate': 'Bearer realm="tapwire", ApiKey realm="tapwire", header="x-api-key"',
        },
      },
      {
        name: 'JWT expired one second ago',
        path: '/api/items/1',
        headers: {
          authorization: `Bearer ${sign({ sub: 'jwt-alice', aud: 'tapwire-it', scope: 'read', exp: nowS() - 1 })}`,
        },
        status: 401,
        kind: 'auth_invalid',
        consumer: 'unknown',
        limit: 0,
        remaining: 0,
        expect: {
          ...NO_LIMIT,
          'www-authenticate':
            'Bearer realm="tapwire", error="invalid_token", error_description="the token expired", ApiKey realm="tapwire", header="x-api-key"',
        },
      },
      {
        name: 'JWT without the route scope',
        path: '/api/items/1',
        headers: { authorization: `Bearer ${sign({ sub: 'jwt-bob', aud: 'tapwire-it', scope: 'write' })}` },
        status: 403,
        kind: 'forbidden',
        consumer: 'jwt-bob',
        limit: 0,
        remaining: 0,
        expect: {
          ...NO_LIMIT,
          'www-authenticate': 'Bearer realm="tapwire", error="insufficient_scope", scope="read"',
        },
      },
      {
        name: 'reader key, first of two',
        path: '/api/items/1',
        headers: { 'x-api-key': 'KEY_READER_CANARY' },
        status: 200,
        kind: 'none',
        consumer: 'reader',
        limit: 2,
        remaining: 1,
        expect: {
          'ratelimit-policy': '"default";q=2;w=60',
          ratelimit: '"default";r=1;t=60',
          'www-authenticate': null,
          'retry-after': null,
        },
      },
      {
        name: 'valid JWT: its own quota',
        path: '/api/items/2',
        headers: { authorization: `Bearer ${valid}` },
        status: 200,
        kind: 'none',
        consumer: 'jwt-alice',
        limit: 2,
        remaining: 1,
        expect: { 'ratelimit-policy': '"default";q=2;w=60', ratelimit: '"default";r=1;t=60' },
      },
      {
        name: 'RS256 JWT verified by the JWKS file (kid idp-1)',
        path: '/api/items/2b',
        headers: {
          authorization: `Bearer ${signRs({ sub: 'jwks-carol', aud: 'tapwire-it', scope: 'read' })}`,
        },
        status: 200,
        kind: 'none',
        consumer: 'jwks-carol',
        limit: 2,
        remaining: 1,
        expect: { ratelimit: '"default";r=1;t=60', 'www-authenticate': null },
      },
      {
        name: 'reader key, exactly at the limit',
        path: '/api/items/3',
        headers: { 'x-api-key': 'KEY_READER_CANARY' },
        status: 200,
        kind: 'none',
        consumer: 'reader',
        limit: 2,
        remaining: 0,
        atMs: 15_000,
        expect: { ratelimit: '"default";r=0;t=45' },
      },
      {
        name: 'reader key, one over',
        path: '/api/items/4',
        headers: { 'x-api-key': 'KEY_READER_CANARY' },
        status: 429,
        kind: 'rate_limited',
        consumer: 'reader',
        limit: 2,
        remaining: 0,
        atMs: 15_000,
        expect: {
          'ratelimit-policy': '"default";q=2;w=60',
          // The previous window's 2 still weigh 2 at the very start of the next: 45 s + 1 ms.
          ratelimit: '"default";r=0;t=46',
          'retry-after': '46',
        },
      },
      {
        name: 'admin route needs the admin scope',
        path: '/api/admin',
        headers: { 'x-api-key': 'KEY_READER_CANARY' },
        status: 403,
        kind: 'forbidden',
        consumer: 'reader',
        limit: 0,
        remaining: 0,
        expect: { ...NO_LIMIT, 'www-authenticate': null },
      },
      {
        name: 'admin route: no rate limit there',
        path: '/api/admin',
        headers: { 'x-api-key': 'KEY_ADMIN_CANARY' },
        status: 200,
        kind: 'none',
        consumer: 'admin',
        limit: 0,
        remaining: 0,
        expect: NO_LIMIT,
      },
      {
        // Half-way into the next window: 2 × 0.5 = 1 counted, so one more is allowed.
        name: 'reader key, next window, half way',
        path: '/api/items/5',
        headers: { 'x-api-key': 'KEY_READER_CANARY' },
        status: 200,
        kind: 'none',
        consumer: 'reader',
        limit: 2,
        remaining: 0,
        atMs: WINDOW_MS + 30_000,
        expect: { ratelimit: '"default";r=0;t=30' },
      },
      {
        name: 'anonymous by client address, first',
        path: '/anon/a',
        status: 200,
        kind: 'none',
        consumer: '',
        limit: 2,
        remaining: 1,
        expect: { 'ratelimit-policy': '"per-ip";q=2;w=10', ratelimit: '"per-ip";r=1;t=10' },
      },
      {
        name: 'any consumer from the same address shares it',
        path: '/anon/b',
        headers: { 'x-api-key': 'KEY_ADMIN_CANARY' },
        status: 200,
        kind: 'none',
        consumer: 'admin',
        limit: 2,
        remaining: 0,
        expect: { ratelimit: '"per-ip";r=0;t=10' },
      },
    ];
    // Windows of 10 s for /anon: the clock sits on a multiple of both windows.
    const runStart = start + 2 * WINDOW_MS;

    const traceIds: string[] = [];
    for (const [i, s] of steps.entries()) {
      clockMs = (s.path.startsWith('/anon') ? runStart : start) + (s.atMs ?? 0);
      const traceId = (i + 1).toString(16).padStart(32, 'a');
      traceIds.push(traceId);
      const res = await fetch(`${url}${s.path}`, {
        headers: { ...s.headers, traceparent: `00-${traceId}-00f067aa0ba902b7-01` },
      });
      await res.arrayBuffer();
      expect(res.status, s.name).toBe(s.status);
      for (const [h, v] of Object.entries(s.expect)) expect(res.headers.get(h), `${s.name}: ${h}`).toBe(v);
    }

    // The third request from the address, on the wire: status line and headers exactly once each.
    clockMs = runStart + 2_500;
    const raw = await rawRequest('/anon/c', { traceparent: `00-${'f'.repeat(32)}-00f067aa0ba902b7-01` });
    const [head] = raw.split('\r\n\r\n');
    const lines = head!.split('\r\n');
    expect(lines[0]).toBe('HTTP/1.1 429 Too Many Requests');
    const named = (n: string) => lines.filter((l) => l.toLowerCase().startsWith(`${n}:`));
    expect(named('retry-after')).toEqual(['retry-after: 8']);
    expect(named('ratelimit')).toEqual(['ratelimit: "per-ip";r=0;t=8']);
    expect(named('ratelimit-policy')).toEqual(['ratelimit-policy: "per-ip";q=2;w=10']);
    expect(raw).toContain('"code":"TAPWIRE_PROXY_RATE_LIMITED"');

    // Allowed requests reached the upstream with their credentials; refused ones never did.
    expect(up.seen.filter((r) => r.url.startsWith('/api/items')).map((r) => r.url)).toEqual([
      '/api/items/1',
      '/api/items/2',
      '/api/items/2b',
      '/api/items/3',
      '/api/items/5',
    ]);
    expect(up.seen.find((r) => r.url === '/api/items/1')?.headers['x-api-key']).toBe('KEY_READER_CANARY');
    expect(up.seen.find((r) => r.url === '/api/items/2')?.headers.authorization).toBe(`Bearer ${valid}`);

    const metrics = await (await fetch(`${adminUrl}/metrics`)).text();
    const metric = (labels: string) =>
      metrics.split('\n').find((l) => l.startsWith(`tapwire_proxy_policy_decisions_total{${labels}}`));
    expect(metric('upstream="api",policy="auth",decision="missing"')).toMatch(/ 1$/);
    expect(metric('upstream="api",policy="auth",decision="invalid"')).toMatch(/ 2$/);
    expect(metric('upstream="api",policy="auth",decision="forbidden"')).toMatch(/ 2$/);
    expect(metric('upstream="api",policy="auth",decision="allowed"')).toMatch(/ 7$/);
    expect(metric('upstream="api",policy="rate_limit",decision="limited"')).toMatch(/ 1$/);
    expect(metric('upstream="anon",policy="rate_limit",decision="limited"')).toMatch(/ 1$/);

    await proxy.close();
    await stopEmission();
    const records = await log.read(TOPICS.accessLogs, 0n, 64 * 1024 * 1024);
    const text = records.map((r) => r.value.toString()).join('\n');
    for (const canary of ['KEY_READER_CANARY', 'KEY_ADMIN_CANARY', 'NOT_A_KEY_CANARY', valid])
      expect(text).not.toContain(canary);
    const events = records.map((r) => {
      const d = accessLogCodec.decode(r.value);
      if (!d.ok) throw new Error(d.reason);
      return d.event;
    });
    for (const [i, s] of steps.entries()) {
      const e = events.find((x) => x.trace_id === traceIds[i]);
      expect(e, s.name).toMatchObject({
        status: s.status,
        error_kind: s.kind,
        consumer: s.consumer,
        ratelimit_limit: s.limit,
        ratelimit_remaining: s.remaining,
      });
    }
    expect(events.find((x) => x.trace_id === 'f'.repeat(32))).toMatchObject({
      upstream: 'anon',
      status: 429,
      error_kind: 'rate_limited',
      consumer: '',
      ratelimit_limit: 2,
      ratelimit_remaining: 0,
    });
  });
});
