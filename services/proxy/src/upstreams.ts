import { Pool } from 'undici';
import type { ProxyConfig, UpstreamConfig } from './config.js';
import { createPolicyResolver, type PolicyResolver } from './policy/resolve.js';
import { createRouteResolver, type RouteResolver } from './routes.js';

/** Upstream is one compiled upstream: its matcher, connection pool, route resolver and in-flight count. */
export interface Upstream {
  readonly config: UpstreamConfig;
  readonly name: string;
  readonly service: string;
  readonly tenant: string;
  readonly host: string | undefined;
  readonly prefix: string;
  /** Upstream URL's path without a trailing slash ('' for /). */
  readonly basePath: string;
  readonly origin: string;
  readonly hostHeader: string;
  readonly serverAddress: string;
  readonly serverPort: number;
  readonly pool: Pool;
  readonly routes: RouteResolver;
  /** The auth, rate-limit and cache policies of a route of this upstream. */
  readonly policies: PolicyResolver;
  inFlight: number;
}

/** UpstreamTable finds the upstream of a request: the most specific host + path-prefix match. */
export interface UpstreamTable {
  readonly all: readonly Upstream[];
  match(host: string | undefined, path: string): Upstream | undefined;
  close(): Promise<void>;
}

function compile(config: UpstreamConfig, defaults: ProxyConfig): Upstream {
  // Until the balancer (issue #23) lands: the first target.
  const url = new URL(config.url ?? config.targets![0]!);
  const prefix = config.match.pathPrefix.length > 1 ? config.match.pathPrefix.replace(/\/+$/, '') : '/';
  return {
    config,
    name: config.name,
    service: config.service ?? config.name,
    tenant: config.tenant ?? defaults.tenant,
    host: config.match.host?.toLowerCase(),
    prefix,
    basePath: url.pathname.replace(/\/+$/, ''),
    origin: url.origin,
    hostHeader: url.host,
    serverAddress: url.hostname,
    serverPort: Number(url.port || (url.protocol === 'https:' ? 443 : 80)),
    pool: new Pool(url.origin, {
      connections: config.maxConnections,
      connectTimeout: config.connectTimeoutMs,
      headersTimeout: config.timeoutMs,
      bodyTimeout: config.timeoutMs,
      keepAliveTimeout: 30_000,
      pipelining: 1,
    }),
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

/** createUpstreamTable compiles every upstream once; matching is a scan of a few precomputed entries. */
export function createUpstreamTable(config: ProxyConfig): UpstreamTable {
  const all = config.upstreams.map((u) => compile(u, config));
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
    async close() {
      await Promise.all(all.map((u) => u.pool.close().catch(() => {})));
    },
  };
}
