import type { UpstreamConfig } from '../config.js';
import type { AuthPolicy, CachePolicy, RateLimitPolicy } from './config.js';

/**
 * RoutePolicies are the policies that apply to one route of an upstream: the route's own where it
 * sets one (`false` turns the upstream's off), else the upstream's. The same object is returned
 * for every request of the route, so a policy's state (counters, cache) can be keyed by it.
 */
export interface RoutePolicies {
  readonly auth: AuthPolicy | undefined;
  readonly rateLimit: RateLimitPolicy | undefined;
  readonly cache: CachePolicy | undefined;
  /** None of the three applies: the request path skips the policy step. */
  readonly none: boolean;
}

/** PolicyResolver maps a recorded route value (a template, a normalized route, __other__) to its policies. */
export type PolicyResolver = (route: string) => RoutePolicies;

const on = <T>(v: T | false | undefined): T | undefined => (v === false ? undefined : v);

function policies(
  auth: AuthPolicy | undefined,
  rateLimit: RateLimitPolicy | undefined,
  cache: CachePolicy | undefined,
): RoutePolicies {
  return { auth, rateLimit, cache, none: !auth && !rateLimit && !cache };
}

/** createPolicyResolver compiles an upstream's policies once; resolving is one map lookup. */
export function createPolicyResolver(config: UpstreamConfig): PolicyResolver {
  const base = policies(on(config.auth), on(config.rateLimit), on(config.cache));
  const byRoute = new Map<string, RoutePolicies>();
  for (const p of config.routePolicies) {
    byRoute.set(
      p.route,
      policies(
        p.auth === undefined ? base.auth : on(p.auth),
        p.rateLimit === undefined ? base.rateLimit : on(p.rateLimit),
        p.cache === undefined ? base.cache : on(p.cache),
      ),
    );
  }
  if (byRoute.size === 0) return () => base;
  return (route) => byRoute.get(route) ?? base;
}
