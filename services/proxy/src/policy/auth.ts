import type { ProxyConfig } from '../config.js';
import {
  type ApiKeyEntry,
  bearerToken,
  CONSUMER_UNKNOWN,
  consumerClaim,
  createApiKeyTable,
  lookupApiKey,
} from '../consumers.js';
import type { ProxyErrorCode } from '../errors.js';
import type { AuthPolicy } from './config.js';
import type { JwtVerifier } from './jwt.js';

/** AuthOutcome is what an auth policy decided for one request. */
export type AuthOutcome = 'allowed' | 'missing' | 'invalid' | 'forbidden';

/** AuthDecision is the outcome, the consumer to record, and for a refusal its answer. */
export interface AuthDecision {
  readonly outcome: AuthOutcome;
  readonly consumer: string;
  readonly code?: ProxyErrorCode;
  readonly kind?: 'auth_missing' | 'auth_invalid' | 'forbidden';
  /** WWW-Authenticate for 401 (and 403 on a JWT); undefined when none is sent. */
  readonly challenge?: string;
}

/** Authenticator enforces an auth policy on a request's headers; it never throws. */
export interface Authenticator {
  check(policy: AuthPolicy, headers: Record<string, string | string[] | undefined>): AuthDecision;
}

const REALM = 'tapwire';

interface CompiledAuth {
  readonly apiKey: boolean;
  readonly jwt: boolean;
  readonly scopes: readonly string[];
  readonly claims: readonly [string, readonly string[]][];
  /** The challenges sent with a 401 when no credential was accepted. */
  readonly missing: string;
  /** The challenges after the Bearer one (ApiKey), for an invalid token. */
  readonly others: string;
  readonly insufficientScope: string;
}

function quoted(s: string): string {
  return `"${s.replace(/["\\]/g, '\\$&')}"`;
}

/**
 * createAuthenticator compiles each auth policy once (on first use) against the configured API
 * keys and JWT verifier. An API key is tried when the route accepts keys and the request carries
 * one; otherwise a bearer JWT when the route accepts JWTs and a verifier is configured. A 401
 * records the consumer as 'unknown' (nothing unverified is recorded); a 403 records the consumer.
 */
export function createAuthenticator(
  config: ProxyConfig['consumers'],
  jwt: JwtVerifier | undefined,
): Authenticator {
  const header = config.apiKeyHeader.toLowerCase();
  const table = createApiKeyTable(config);
  const claim = config.jwt?.claim ?? 'sub';
  const scopeClaim = config.jwt?.scopeClaim ?? 'scope';
  const compiled = new WeakMap<AuthPolicy, CompiledAuth>();
  const invalidChallenges = new Map<string, string>();

  function compile(p: AuthPolicy): CompiledAuth {
    const apiKey = p.methods.includes('apiKey');
    const acceptsJwt = p.methods.includes('jwt') && jwt !== undefined;
    const bearer = `Bearer realm=${quoted(REALM)}`;
    const key = `ApiKey realm=${quoted(REALM)}, header=${quoted(header)}`;
    const c: CompiledAuth = {
      apiKey,
      jwt: acceptsJwt,
      scopes: p.scopes,
      claims: Object.entries(p.claims).map(([k, v]) => [k, typeof v === 'string' ? [v] : v]),
      missing: [acceptsJwt ? bearer : '', apiKey ? key : ''].filter(Boolean).join(', '),
      others: apiKey ? `, ${key}` : '',
      insufficientScope:
        `${bearer}, error="insufficient_scope"` +
        (p.scopes.length > 0 ? `, scope=${quoted(p.scopes.join(' '))}` : ''),
    };
    compiled.set(p, c);
    return c;
  }

  function invalidToken(c: CompiledAuth, reason: string): string {
    const k = reason + c.others;
    let v = invalidChallenges.get(k);
    if (v === undefined) {
      v = `Bearer realm=${quoted(REALM)}, error="invalid_token", error_description=${quoted(reason)}${c.others}`;
      invalidChallenges.set(k, v);
    }
    return v;
  }

  const missing = (c: CompiledAuth): AuthDecision => ({
    outcome: 'missing',
    consumer: '',
    code: 'TAPWIRE_PROXY_AUTH_MISSING',
    kind: 'auth_missing',
    challenge: c.missing,
  });
  const invalid = (challenge: string): AuthDecision => ({
    outcome: 'invalid',
    consumer: CONSUMER_UNKNOWN,
    code: 'TAPWIRE_PROXY_AUTH_INVALID',
    kind: 'auth_invalid',
    challenge,
  });
  const forbidden = (consumer: string, challenge: string | undefined): AuthDecision => ({
    outcome: 'forbidden',
    consumer,
    code: 'TAPWIRE_PROXY_FORBIDDEN',
    kind: 'forbidden',
    ...(challenge ? { challenge } : {}),
  });

  function checkKey(c: CompiledAuth, entry: ApiKeyEntry | undefined): AuthDecision {
    if (!entry) return invalid(c.missing);
    for (const s of c.scopes) if (!entry.scopes.has(s)) return forbidden(entry.id, undefined);
    // An API key carries no claims: a route that requires one is closed to keys.
    if (c.claims.length > 0) return forbidden(entry.id, undefined);
    return { outcome: 'allowed', consumer: entry.id };
  }

  function holdsScopes(c: CompiledAuth, payload: Record<string, unknown>): boolean {
    if (c.scopes.length === 0) return true;
    const v = payload[scopeClaim];
    const held = typeof v === 'string' ? v.split(' ') : Array.isArray(v) ? v : [];
    for (const s of c.scopes) if (!held.includes(s)) return false;
    return true;
  }

  function holdsClaims(c: CompiledAuth, payload: Record<string, unknown>): boolean {
    for (const [name, allowed] of c.claims) {
      const v = payload[name];
      const ok = Array.isArray(v)
        ? v.some((x) => typeof x === 'string' && allowed.includes(x))
        : typeof v === 'string' && allowed.includes(v);
      if (!ok) return false;
    }
    return true;
  }

  return {
    check(policy, headers) {
      const c = compiled.get(policy) ?? compile(policy);
      if (c.apiKey) {
        const key = headers[header];
        if (key !== undefined && key !== '') {
          // A repeated key header is ambiguous: refused rather than guessed.
          return checkKey(c, typeof key === 'string' ? lookupApiKey(table, key) : undefined);
        }
      }
      if (!c.jwt) return missing(c);
      const token = bearerToken(headers.authorization);
      if (token === '') return missing(c);
      const r = jwt!.verify(token);
      if (!r.ok) return invalid(invalidToken(c, r.reason));
      const consumer = consumerClaim(r.payload, claim);
      if (!holdsScopes(c, r.payload) || !holdsClaims(c, r.payload))
        return forbidden(consumer, c.insufficientScope);
      return { outcome: 'allowed', consumer };
    },
  };
}
