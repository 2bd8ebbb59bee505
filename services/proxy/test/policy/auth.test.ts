import { createHash, createHmac, generateKeyPairSync } from 'node:crypto';
import { mkdtempSync, rmSync, utimesSync, writeFileSync } from 'node:fs';
import { connect } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ConfigError } from '@tapwire/config';
import { buildProxy, proxyConfigSchema } from '@tapwire/proxy';
import { createLogger, type Logger } from '@tapwire/telemetry';
import { createSigner } from 'fast-jwt';
import { afterAll, describe, expect, it, vi } from 'vitest';
import { createMemorySink } from '../../../../test/support/memory-sink.js';
import { startUpstream, type TestUpstream } from '../../../../test/support/upstream.js';
import { createConsumerIdentifier } from '../../src/consumers.js';
import { createAuthenticator } from '../../src/policy/auth.js';
import { authPolicySchema } from '../../src/policy/config.js';
import { createJwtVerifier } from '../../src/policy/jwt.js';
import { type ProxyUnderTest, startProxy } from '../helpers.js';

const logger = createLogger({ name: 'auth-test', level: 'silent' });
const SECRET = 'a-secret-of-at-least-32-bytes-for-hs256!';
const rsa = generateKeyPairSync('rsa', { modulusLength: 2048 });
const ec = generateKeyPairSync('ec', { namedCurve: 'P-256' });
const rsaPem = rsa.publicKey.export({ type: 'spki', format: 'pem' }) as string;
const ecPem = ec.publicKey.export({ type: 'spki', format: 'pem' }) as string;
const rsaPrivate = rsa.privateKey.export({ type: 'pkcs8', format: 'pem' }) as string;
const ecPrivate = ec.privateKey.export({ type: 'pkcs8', format: 'pem' }) as string;
const dir = mkdtempSync(join(tmpdir(), 'tapwire-auth-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const nowS = () => Math.floor(Date.now() / 1000);
function hs(payload: Record<string, unknown>, opts: Record<string, unknown> = {}): string {
  return createSigner({ key: SECRET, algorithm: 'HS256', noTimestamp: true, ...opts })(payload);
}
function rs(payload: Record<string, unknown>, opts: Record<string, unknown> = {}): string {
  return createSigner({ key: rsaPrivate, algorithm: 'RS256', noTimestamp: true, ...opts })(payload);
}
function es(payload: Record<string, unknown>, opts: Record<string, unknown> = {}): string {
  return createSigner({ key: ecPrivate, algorithm: 'ES256', noTimestamp: true, ...opts })(payload);
}
const b64 = (v: unknown) => Buffer.from(JSON.stringify(v)).toString('base64url');

function consumers(c: Record<string, unknown>) {
  return proxyConfigSchema.parse({ consumers: c }).consumers;
}
const logged: string[] = [];
const capturing = {
  info: (o: unknown, m: string) => logged.push(`${m} ${JSON.stringify(o)}`),
  warn: (o: unknown, m: string) => logged.push(`${m} ${JSON.stringify(o)}`),
} as unknown as Logger;
let lastVerifier: ReturnType<typeof createJwtVerifier>;
function authFor(c: Record<string, unknown>, now?: () => number) {
  const cfg = consumers(c);
  lastVerifier = cfg.jwt
    ? createJwtVerifier(cfg.jwt, { logger: capturing, ...(now ? { now } : {}) })
    : undefined;
  return createAuthenticator(cfg, lastVerifier);
}
const policy = (p: Record<string, unknown> = {}) => authPolicySchema.parse(p);
const bearer = (t: string) => ({ authorization: `Bearer ${t}` });

describe('JWT verification', () => {
  it.each([
    { alg: 'HS256', cfg: { secret: SECRET }, sign: hs },
    { alg: 'RS256', cfg: { publicKey: rsaPem }, sign: rs },
    { alg: 'ES256', cfg: { publicKey: ecPem }, sign: es },
  ])('accepts a valid $alg token with a configured key and records its sub', ({ cfg, sign }) => {
    const auth = authFor({ jwt: cfg });
    const d = auth.check(policy(), bearer(sign({ sub: 'alice', exp: nowS() + 60 })));
    expect(d).toEqual({ outcome: 'allowed', consumer: 'alice' });
  });

  it('refuses a token expired by one second, unless the clock skew covers it', () => {
    const token = hs({ sub: 'alice', exp: nowS() - 1 });
    expect(authFor({ jwt: { secret: SECRET } }).check(policy(), bearer(token))).toEqual({
      outcome: 'invalid',
      consumer: 'unknown',
      code: 'TAPWIRE_PROXY_AUTH_INVALID',
      kind: 'auth_invalid',
      challenge:
        'Bearer realm="tapwire", error="invalid_token", error_description="the token expired", ApiKey realm="tapwire", header="x-api-key"',
    });
    const skewed = authFor({ jwt: { secret: SECRET, clockSkewSeconds: 5 } });
    expect(skewed.check(policy(), bearer(token)).outcome).toBe('allowed');
  });

  it('refuses a token whose nbf is in the future, unless the skew covers it', () => {
    const token = hs({ sub: 'alice', nbf: nowS() + 3 });
    const d = authFor({ jwt: { secret: SECRET } }).check(policy({ methods: ['jwt'] }), bearer(token));
    expect(d.challenge).toBe(
      'Bearer realm="tapwire", error="invalid_token", error_description="the token is not valid yet"',
    );
    const skewed = authFor({ jwt: { secret: SECRET, clockSkewSeconds: 10 } });
    expect(skewed.check(policy(), bearer(token)).outcome).toBe('allowed');
  });

  it('checks aud and iss', () => {
    const auth = authFor({ jwt: { secret: SECRET, audience: 'api', issuer: ['https://idp'] } });
    const p = policy({ methods: ['jwt'] });
    expect(auth.check(p, bearer(hs({ sub: 'a', aud: 'api', iss: 'https://idp' }))).outcome).toBe('allowed');
    expect(auth.check(p, bearer(hs({ sub: 'a', aud: 'other', iss: 'https://idp' }))).challenge).toContain(
      'error_description="the token audience is not accepted"',
    );
    expect(auth.check(p, bearer(hs({ sub: 'a', aud: 'api', iss: 'https://evil' }))).challenge).toContain(
      'error_description="the token issuer is not accepted"',
    );
    // With an audience (issuer) configured, a token without aud (iss) is refused too.
    expect(auth.check(p, bearer(hs({ sub: 'a', iss: 'https://idp' }))).challenge).toContain(
      'error_description="the token audience is not accepted"',
    );
    expect(auth.check(p, bearer(hs({ sub: 'a', aud: 'api' }))).challenge).toContain(
      'error_description="the token issuer is not accepted"',
    );
  });

  it('refuses alg confusion: an HS256 token signed with the RSA public key, and alg none', () => {
    const auth = authFor({ jwt: { publicKey: rsaPem } });
    const head = b64({ alg: 'HS256', typ: 'JWT' });
    const body = b64({ sub: 'mallory' });
    const sig = createHmac('sha256', rsaPem).update(`${head}.${body}`).digest('base64url');
    expect(auth.check(policy(), bearer(`${head}.${body}.${sig}`))).toMatchObject({
      outcome: 'invalid',
      consumer: 'unknown',
    });
    const none = `${b64({ alg: 'none' })}.${body}.`;
    expect(auth.check(policy(), bearer(none)).outcome).toBe('invalid');
    // Even with HS256 allowed and a secret configured, the public key never verifies an HS token.
    const both = authFor({ jwt: { secret: SECRET, publicKey: rsaPem } });
    expect(both.check(policy(), bearer(`${head}.${body}.${sig}`)).outcome).toBe('invalid');
    expect(both.check(policy(), bearer(rs({ sub: 'bob' }))).consumer).toBe('bob');
  });

  it('honours the configured algorithms', () => {
    const auth = authFor({ jwt: { secret: SECRET, algorithms: ['HS512'] } });
    expect(auth.check(policy(), bearer(hs({ sub: 'a' }))).challenge).toContain(
      'error_description="the token algorithm is not accepted"',
    );
    expect(auth.check(policy(), bearer(hs({ sub: 'a' }, { algorithm: 'HS512' }))).outcome).toBe('allowed');
  });

  it('verifies RS256, ES256 and oct keys from a JWKS file by kid, and reloads it when it changes', async () => {
    const file = join(dir, 'jwks.json');
    const rsaJwk = { ...rsa.publicKey.export({ format: 'jwk' }), kid: 'r1', use: 'sig' };
    const ecJwk = { ...ec.publicKey.export({ format: 'jwk' }), kid: 'e1' };
    const octJwk = { kty: 'oct', kid: 'o1', k: Buffer.from(SECRET).toString('base64url') };
    writeFileSync(file, JSON.stringify({ keys: [rsaJwk, ecJwk, octJwk] }));
    utimesSync(file, 1000, 1000);
    let t = 0;
    const auth = authFor({ jwt: { jwksFile: file } }, () => t);
    const p = policy({ methods: ['jwt'] });
    expect(auth.check(p, bearer(rs({ sub: 'r' }, { kid: 'r1' }))).consumer).toBe('r');
    expect(auth.check(p, bearer(es({ sub: 'e' }, { kid: 'e1' }))).consumer).toBe('e');
    expect(auth.check(p, bearer(hs({ sub: 'o' }, { kid: 'o1' }))).consumer).toBe('o');
    // An RS token presented under the EC key's kid is refused.
    expect(auth.check(p, bearer(rs({ sub: 'r' }, { kid: 'e1' }))).outcome).toBe('invalid');
    expect(auth.check(p, bearer(rs({ sub: 'r' }, { kid: 'zz' }))).challenge).toContain(
      'error_description="no key matches the token"',
    );

    // Rotation: r1 replaced by r2. Not seen until a second has passed and the mtime moved.
    writeFileSync(file, JSON.stringify({ keys: [{ ...rsaJwk, kid: 'r2' }] }));
    utimesSync(file, 2000, 2000);
    t = 500;
    expect(auth.check(p, bearer(rs({ sub: 'r' }, { kid: 'r2' }))).outcome).toBe('invalid');
    t = 1500;
    // The request that starts the check is verified with the keys in hand; the file is read in
    // the background, never on the request path.
    expect(auth.check(p, bearer(rs({ sub: 'r' }, { kid: 'r2' }))).outcome).toBe('invalid');
    await lastVerifier!.settled();
    expect(auth.check(p, bearer(rs({ sub: 'r' }, { kid: 'r2' }))).outcome).toBe('allowed');
    expect(auth.check(p, bearer(rs({ sub: 'r' }, { kid: 'r1' }))).outcome).toBe('invalid');

    // A broken file keeps the last good keys.
    logged.length = 0;
    writeFileSync(file, '{ "keys": [{ "kty": "oct", "k": "SECRET_CANARY" ');
    utimesSync(file, 3000, 3000);
    t = 3000;
    expect(auth.check(p, bearer(rs({ sub: 'r' }, { kid: 'r2' }))).outcome).toBe('allowed');
    await lastVerifier!.settled();
    expect(auth.check(p, bearer(rs({ sub: 'r' }, { kid: 'r2' }))).outcome).toBe('allowed');
    expect(logged).toHaveLength(1);
    expect(logged[0]).toContain('keeping the last good keys');
    expect(logged[0]).toContain('the file is not valid JSON');
    expect(logged[0]).not.toContain('SECRET_CANARY');
  });

  it('a missing JWKS file at start is a config error naming the field', () => {
    const cfg = consumers({ jwt: { jwksFile: join(dir, 'absent.json') } });
    let err: unknown;
    try {
      createJwtVerifier(cfg.jwt!, { logger });
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(ConfigError);
    expect((err as ConfigError).issues[0]?.path).toBe('proxy.consumers.jwt.jwksFile');
  });
});

describe('auth policy decisions', () => {
  const keyHash = (k: string) => createHash('sha256').update(k).digest('hex');
  const cfg = {
    apiKeys: [
      { id: 'reader', sha256: keyHash('key-r'), scopes: ['read'] },
      { id: 'writer', sha256: keyHash('key-w'), scopes: ['read', 'write'] },
    ],
    jwt: { secret: SECRET },
  };

  it('no credential → 401 auth_missing with a challenge per accepted method', () => {
    const auth = authFor(cfg);
    expect(auth.check(policy(), {})).toEqual({
      outcome: 'missing',
      consumer: '',
      code: 'TAPWIRE_PROXY_AUTH_MISSING',
      kind: 'auth_missing',
      challenge: 'Bearer realm="tapwire", ApiKey realm="tapwire", header="x-api-key"',
    });
    expect(auth.check(policy({ methods: ['jwt'] }), { 'x-api-key': 'key-r' }).challenge).toBe(
      'Bearer realm="tapwire"',
    );
    expect(auth.check(policy({ methods: ['apiKey'] }), bearer(hs({ sub: 'a' }))).challenge).toBe(
      'ApiKey realm="tapwire", header="x-api-key"',
    );
  });

  it('API keys: unknown → 401, missing scope → 403 with the consumer, enough scopes → allowed', () => {
    const auth = authFor(cfg);
    const p = policy({ scopes: ['write'] });
    expect(auth.check(p, { 'x-api-key': 'nope' })).toMatchObject({ outcome: 'invalid', consumer: 'unknown' });
    expect(auth.check(p, { 'x-api-key': 'key-r' })).toEqual({
      outcome: 'forbidden',
      consumer: 'reader',
      code: 'TAPWIRE_PROXY_FORBIDDEN',
      kind: 'forbidden',
    });
    expect(auth.check(p, { 'x-api-key': 'key-w' })).toEqual({ outcome: 'allowed', consumer: 'writer' });
    // A key never satisfies a claim.
    expect(auth.check(policy({ claims: { tier: 'gold' } }), { 'x-api-key': 'key-w' }).outcome).toBe(
      'forbidden',
    );
  });

  it('JWT scopes and claims: missing → 403 insufficient_scope with the consumer', () => {
    const auth = authFor(cfg);
    const p = policy({ scopes: ['write', 'read'], claims: { tier: ['gold', 'platinum'] } });
    expect(auth.check(p, bearer(hs({ sub: 'al', scope: 'read', tier: 'gold' })))).toEqual({
      outcome: 'forbidden',
      consumer: 'al',
      code: 'TAPWIRE_PROXY_FORBIDDEN',
      kind: 'forbidden',
      challenge: 'Bearer realm="tapwire", error="insufficient_scope", scope="write read"',
    });
    expect(auth.check(p, bearer(hs({ sub: 'al', scope: 'read write', tier: 'silver' }))).outcome).toBe(
      'forbidden',
    );
    expect(auth.check(p, bearer(hs({ sub: 'al', scope: ['write', 'read'], tier: ['x', 'gold'] })))).toEqual({
      outcome: 'allowed',
      consumer: 'al',
    });
  });

  it('observe-only identification records a verified sub, and unknown for a forged or expired token', () => {
    const c = consumers(cfg);
    const identify = createConsumerIdentifier(c, createJwtVerifier(c.jwt!, { logger }));
    expect(identify(bearer(hs({ sub: 'al' })))).toBe('al');
    expect(identify(bearer(hs({ sub: 'al', exp: nowS() - 1 })))).toBe('unknown');
    expect(identify({ 'x-api-key': 'key-w' })).toBe('writer');
    expect(identify({ 'x-api-key': 'nope' })).toBe('unknown');
    expect(identify({})).toBe('');
  });
});

describe('auth configuration checked at build', () => {
  const build = (cfg: Record<string, unknown>) => () =>
    buildProxy({ sink: createMemorySink(), logger }, proxyConfigSchema.parse(cfg));

  it('names an unreadable JWKS file and a JWT-only policy with no key to verify it', () => {
    expect(build({ consumers: { jwt: { jwksFile: join(dir, 'missing.json') } } })).toThrow(
      /proxy\.consumers\.jwt\.jwksFile: cannot load the JWKS file/,
    );
    let err: unknown;
    try {
      build({
        upstreams: [
          {
            name: 'a',
            url: 'http://127.0.0.1:1',
            routes: ['/x'],
            auth: { methods: ['apiKey'] },
            routePolicies: [{ route: '/x', auth: { methods: ['jwt'] } }],
          },
        ],
      })();
    } catch (e) {
      err = e;
    }
    expect((err as ConfigError).issues.map((i) => i.path)).toEqual([
      'proxy.upstreams.0.routePolicies.0.auth.methods',
    ]);
  });
});

describe('route policies against paths that name a guarded route in another form', () => {
  let up: TestUpstream;
  let p: ProxyUnderTest;
  afterAll(async () => {
    await p?.proxy.close();
    await up?.close();
  });

  /** raw sends a request line as written (fetch and undici would normalize the path first). */
  function raw(path: string, host: string): Promise<string> {
    const [hostname, port] = host.split(':');
    return new Promise((resolve, reject) => {
      const s = connect(Number(port), hostname!);
      let data = '';
      s.on('data', (c) => {
        data += c.toString('latin1');
      });
      s.on('end', () => resolve(data.split('\r\n')[0]!));
      s.on('error', reject);
      s.write(`GET ${path} HTTP/1.1\r\nhost: ${host}\r\nx-api-key: reader-key\r\nconnection: close\r\n\r\n`);
    });
  }

  it('refuses dot segments and percent-encoded letters with 400 instead of applying the route’s base policy', async () => {
    up = await startUpstream();
    p = await startProxy({
      consumers: {
        apiKeys: [
          { id: 'reader', sha256: createHash('sha256').update('reader-key').digest('hex'), scopes: ['read'] },
        ],
      },
      upstreams: [
        {
          name: 'orders',
          url: up.url,
          match: { pathPrefix: '/orders' },
          routes: ['/orders/:id', '/orders/admin'],
          auth: { methods: ['apiKey'], scopes: ['read'] },
          routePolicies: [{ route: '/orders/admin', auth: { methods: ['apiKey'], scopes: ['admin'] } }],
        },
        { name: 'plain', url: up.url, match: { pathPrefix: '/plain' } },
      ],
    });
    const host = new URL(p.url).host;
    expect(await raw('/orders/admin', host)).toBe('HTTP/1.1 403 Forbidden');
    for (const path of [
      '/orders/x/../admin',
      '/orders/./admin',
      '/orders/%2e%2e/orders/admin',
      '/orders/%61dmin',
    ])
      expect(await raw(path, host), path).toBe('HTTP/1.1 400 Bad Request');
    expect(await raw('/orders/7', host)).toBe('HTTP/1.1 200 OK');
    expect(await raw('/orders/a.b%20c', host)).toBe('HTTP/1.1 200 OK');
    // An upstream without route policies forwards such paths as before.
    expect(await raw('/plain/x/../y', host)).toBe('HTTP/1.1 200 OK');
    expect(up.seen.map((r) => r.url)).toEqual(['/orders/7', '/orders/a.b%20c', '/plain/x/../y']);
    await vi.waitFor(() => expect(p.sink.of('tapwire.access.v1')).toHaveLength(8));
    const refused = p.sink.of('tapwire.access.v1').filter((l) => l.status === 400);
    expect(refused.map((l) => [l.route, l.error_kind, l.consumer])).toEqual(
      Array(4).fill(['__invalid__', 'bad_request', '']),
    );
  });
});
