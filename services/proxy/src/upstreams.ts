import type { Logger } from '@tapwire/telemetry';
import { type Balancer, createBalancer } from './balancer.js';
import type { ProxyConfig, UpstreamConfig } from './config.js';
import { createHealthChecker, type HealthChecker } from './health-check.js';
import { createPolicyResolver, type PolicyResolver } from './policy/resolve.js';
import { createRouteResolver, type RouteResolver } from './routes.js';

/** Upstream is one compiled upstream: its matcher, targets and their pools, route resolver and in-flight count. */
export interface Upstream {
  readonly config: UpstreamConfig;
  readonly name: string;
  readonly service: string;
  readonly tenant: string;
  readonly host: string | undefined;
  readonly prefix: string;
  /** Its targets (one for `url`), each with its own pool, and how one is chosen. */
  readonly balancer: Balancer;
  /** Active health checks of its targets, when configured. */
  readonly healthChecker: HealthChecker | undefined;
  readonly routes: RouteResolver;
  /** The auth, rate-limit and cache policies of a route of this upstream. */
  readonly policies: PolicyResolver;
  inFlight: number;
}

/** UpstreamTable finds the upstream of a request: the most specific host + path-prefix match. */
export interface UpstreamTable {
  readonly all: readonly Upstream[];
  match(host: string | undefined, path: string): Upstream | undefined;
  /** start starts the active health checks; idempotent. */
  start(): void;
  /** close stops the health checks and closes every target's pool. */
  close(): Promise<void>;
}

function compile(config: UpstreamConfig, defaults: ProxyConfig, logger: Logger): Upstream {
  const prefix = config.match.pathPrefix.length > 1 ? config.match.pathPrefix.replace(/\/+$/, '') : '/';
  const balancer = createBalancer(config, {
    onEject(t) {
      logger.info(
        {
          upstream: config.name,
          target: t.address,
          failures: t.consecutiveFailures,
          ejectMs: config.passive.ejectMs,
        },
        'target ejected after consecutive failures',
      );
    },
  });
  return {
    config,
    name: config.name,
    service: config.service ?? config.name,
    tenant: config.tenant ?? defaults.tenant,
    host: config.match.host?.toLowerCase(),
    prefix,
    balancer,
    healthChecker: config.healthCheck
      ? createHealthChecker({ upstream: config.name, targets: balancer.targets, logger }, config.healthCheck)
      : undefined,
    routes: createRouteResolver(config.routes, {
      maxRoutes: config.maxRoutes,
      promoteHits: config.routePromoteHits,
      promoteWindowMs: config.routePromoteWindowMs,
      idleMs: config.routeIdleMs,
      freeShare: config.routeFreeShare,
      maxCandidates: config.maxRouteCandidates,
    }),
    policies: createPolicyResolver(config),
    inFlight: 0,
  };
}

function prefixMatches(prefix: string, path: string): boolean {
  if (prefix === '/') return true;
  if (!path.startsWith(prefix)) return false;
  return path.length === prefix.length || path[prefix.length] === '/';
}

/**
 * createUpstreamTable compiles every upstream once; matching is a scan of a few precomputed entries.
 * Health checks need the logger their transitions are logged to.
 */
export function createUpstreamTable(config: ProxyConfig, deps: { logger: Logger }): UpstreamTable {
  const all = config.upstreams.map((u) => compile(u, config, deps.logger));
  // Host-specific before any-host, then longer prefixes first.
  const ordered = [...all].sort(
    (a, b) =>
      Number(b.host !== undefined) - Number(a.host !== undefined) || b.prefix.length - a.prefix.length,
  );
  return {
    all,
    match(host, path) {
      let h = host?.toLowerCase();
      if (h) {
        const colon = h.startsWith('[') ? h.indexOf(':', h.indexOf(']')) : h.indexOf(':');
        if (colon !== -1) h = h.slice(0, colon);
      }
      for (const u of ordered) {
        if (u.host !== undefined && u.host !== h) continue;
        if (prefixMatches(u.prefix, path)) return u;
      }
      return undefined;
    },
    start() {
      for (const u of all) u.healthChecker?.start();
    },
    async close() {
      await Promise.all(all.map((u) => u.healthChecker?.close()));
      await Promise.all(all.flatMap((u) => u.balancer.targets.map((t) => t.pool.close().catch(() => {}))));
    },
  };
}
