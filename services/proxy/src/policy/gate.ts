import { ConfigError, type ConfigIssue } from '@tapwire/config';
import type { ProxyConfig } from '../config.js';
import type { ProxyErrorCode } from '../errors.js';
import type { Authenticator } from './auth.js';
import type { RateLimiter } from './rate-limit.js';
import type { RoutePolicies } from './resolve.js';

/** PolicySubject is the part of an exchange the auth and rate-limit step reads and fills in. */
export interface PolicySubject {
  consumer: string;
  clientAddress: string;
  rateLimitLimit: number;
  rateLimitRemaining: number;
  policyHeaders: Record<string, string> | undefined;
}

/** PolicyRefusal is the proxy's own answer to a request a policy refused. */
export interface PolicyRefusal {
  readonly code: ProxyErrorCode;
  readonly kind: 'auth_missing' | 'auth_invalid' | 'forbidden' | 'rate_limited';
  readonly headers: Record<string, string> | undefined;
}

/** PolicyDecisions counts each decision (metrics); the labels are bounded: no consumer. */
export interface PolicyDecisions {
  auth(upstream: string, outcome: 'allowed' | 'missing' | 'invalid' | 'forbidden'): void;
  rateLimit(upstream: string, outcome: 'allowed' | 'limited'): void;
}

/** PolicyGate runs a route's auth policy, then its rate limit; undefined when the request may go on. */
export type PolicyGate = (
  subject: PolicySubject,
  headers: Record<string, string | string[] | undefined>,
  policies: RoutePolicies,
  upstream: string,
) => PolicyRefusal | undefined;

/**
 * createPolicyGate enforces authentication first (so an unauthenticated request never spends
 * quota), then the rate limit; the RateLimit headers go on every answer of a limited route.
 */
export function createPolicyGate(deps: {
  auth: Authenticator;
  limiter: RateLimiter;
  decisions: PolicyDecisions;
}): PolicyGate {
  const { auth, limiter, decisions } = deps;
  return (subject, headers, policies, upstream) => {
    if (policies.auth) {
      const d = auth.check(policies.auth, headers);
      subject.consumer = d.consumer;
      decisions.auth(upstream, d.outcome);
      if (d.outcome !== 'allowed') {
        const refusal: PolicyRefusal = {
          code: d.code!,
          kind: d.kind!,
          headers: d.challenge ? { 'www-authenticate': d.challenge } : undefined,
        };
        return refusal;
      }
    }
    const limit = policies.rateLimit;
    if (!limit) return undefined;
    const d = limiter.take(limit, subject.consumer, subject.clientAddress);
    subject.rateLimitLimit = d.limit;
    subject.rateLimitRemaining = d.remaining;
    subject.policyHeaders ??= {};
    subject.policyHeaders['ratelimit-policy'] = d.policyHeader;
    subject.policyHeaders.ratelimit = d.stateHeader;
    decisions.rateLimit(upstream, d.allowed ? 'allowed' : 'limited');
    if (d.allowed) return undefined;
    return {
      code: 'TAPWIRE_PROXY_RATE_LIMITED',
      kind: 'rate_limited',
      headers: { 'retry-after': String(d.retryAfterSeconds) },
    };
  };
}

/**
 * authConfigIssues reports auth policies no request could pass on this configuration: a policy
 * that accepts only JWTs when consumers.jwt configures no key (secret, publicKey or jwksFile).
 */
export function authConfigIssues(config: ProxyConfig): ConfigIssue[] {
  const jwt = config.consumers.jwt;
  const hasJwtKey = Boolean(jwt?.secret || jwt?.publicKey || jwt?.jwksFile);
  const issues: ConfigIssue[] = [];
  const check = (p: unknown, path: string): void => {
    if (!p || typeof p !== 'object') return;
    const methods = (p as { methods: string[] }).methods;
    if (!hasJwtKey && !methods.includes('apiKey'))
      issues.push({
        path: `${path}.methods`,
        message: 'accepts only JWTs, but consumers.jwt sets no secret, publicKey or jwksFile to verify them',
      });
  };
  for (const [i, u] of config.upstreams.entries()) {
    check(u.auth, `proxy.upstreams.${i}.auth`);
    for (const [j, r] of u.routePolicies.entries())
      check(r.auth, `proxy.upstreams.${i}.routePolicies.${j}.auth`);
  }
  return issues;
}

/** assertAuthConfig throws one ConfigError listing every auth policy no request could pass. */
export function assertAuthConfig(config: ProxyConfig): void {
  const issues = authConfigIssues(config);
  if (issues.length > 0) throw new ConfigError(issues);
}
