import { adminListenerSchema, portSchema } from '@tapwire/config';
import { emitConfigShape } from '@tapwire/emission';
import { DEFAULT_TENANT, tenantSchema } from '@tapwire/schema';
import { DEFAULT_REDACTED_QUERY_PARAMS } from '@tapwire/telemetry';
import { z } from 'zod';
import { policyShape } from './policy/config.js';

// Shared with the OTLP receiver; re-exported so the proxy's public API keeps them.
export { ALWAYS_REDACTED_HEADERS, DEFAULT_REDACTED_QUERY_PARAMS } from '@tapwire/telemetry';

const routeTemplate = z
  .string()
  .regex(/^\/[^?#\s]*$/, 'must start with "/" and hold no query, fragment or spaces')
  .max(512)
  .refine((t) => t.split('/').every((s) => !s.startsWith(':') || /^:[A-Za-z_][A-Za-z0-9_]*$/.test(s)), {
    message: 'parameters must look like :name',
  });

// host:port names a target on the access log, in samples and metrics, so it must be unique.
function targetAddress(raw: string): string {
  try {
    const url = new URL(raw);
    return `${url.hostname}:${url.port || (url.protocol === 'https:' ? 443 : 80)}`;
  } catch {
    return raw;
  }
}

/** upstreamSchema validates one upstream of the proxy config. */
export const upstreamSchema = z
  .strictObject({
    name: z
      .string()
      .regex(/^[A-Za-z0-9][A-Za-z0-9_.-]*$/, 'must be letters, digits, "_", "." or "-"')
      .max(128)
      .describe('Upstream name, used in metrics and saturation samples.'),
    service: z
      .string()
      .min(1)
      .max(128)
      .optional()
      .describe('Service name recorded on spans and access logs. Default: the upstream name.'),
    tenant: tenantSchema.optional().describe('Tenant of this upstream’s events. Default: proxy.tenant.'),
    url: z
      .url({ protocol: /^https?$/ })
      .optional()
      .describe('Base URL requests are forwarded to, e.g. http://10.0.0.5:8080. Either url or targets.'),
    targets: z
      .array(z.url({ protocol: /^https?$/ }))
      .min(1)
      .max(256)
      .optional()
      .describe(
        'Base URLs of several equivalent targets (distinct), load-balanced; each has its own maxConnections pool. Either url or targets.',
      ),
    balancer: z
      .enum(['round-robin', 'least-requests'])
      .default('round-robin')
      .describe(
        'How a target is chosen: round-robin, or least-requests (fewest in flight; ties by round-robin). Default: round-robin.',
      ),
    healthCheck: z
      .strictObject({
        path: z
          .string()
          .regex(/^\//, 'must start with "/"')
          .default('/health')
          .describe(
            'Path requested on each target’s origin (not under the target URL’s path). Default: /health.',
          ),
        intervalMs: z
          .number()
          .int()
          .min(100)
          .default(5000)
          .describe('Time between checks of a target, in ms; the first round runs at start. Default: 5000.'),
        timeoutMs: z
          .number()
          .int()
          .min(10)
          .default(2000)
          .describe('Longest wait for a check’s response, in ms; a timeout fails the check. Default: 2000.'),
        healthyThreshold: z
          .number()
          .int()
          .min(1)
          .default(2)
          .describe('Passed checks in a row that bring an unhealthy target back. Default: 2.'),
        unhealthyThreshold: z
          .number()
          .int()
          .min(1)
          .default(3)
          .describe('Failed checks in a row (no 2xx/3xx in time) that take a target out. Default: 3.'),
      })
      .optional()
      .describe(
        'Active health checks: GET path on every target each interval, 2xx/3xx pass, on a connection of their own. With every target unhealthy the proxy answers 503 no_healthy_target (also for a single url). Default: none.',
      ),
    passive: z
      .strictObject({
        consecutiveFailures: z
          .number()
          .int()
          .min(0)
          .default(5)
          .describe(
            'Failed proxied requests in a row (connect failure, reset, timeout, 502/503/504) that eject a target. 0: never. Default: 5.',
          ),
        ejectMs: z
          .number()
          .int()
          .min(100)
          .default(30_000)
          .describe('How long an ejection lasts, in ms. Default: 30000.'),
      })
      .prefault({})
      .describe(
        'Passive ejection of failing targets (only with more than one target); the last target taking traffic is never ejected.',
      ),
    retries: z
      .strictObject({
        attempts: z
          .number()
          .int()
          .min(0)
          .max(10)
          .default(1)
          .describe(
            'Times an idempotent request (GET, HEAD, OPTIONS, PUT, DELETE, TRACE) without a body is sent again, each time to a target not yet tried, after it could not connect. Only with more than one target. Default: 1.',
          ),
        budgetPercent: z
          .number()
          .min(0)
          .max(100)
          .default(20)
          .describe(
            'Retries over the last 10 s may be at most this percentage of the upstream’s requests over the same 10 s (or minPerSecond × 10, whichever is more). Default: 20.',
          ),
        minPerSecond: z
          .number()
          .int()
          .min(0)
          .default(3)
          .describe('Retries always allowed per second whatever the budget. Default: 3.'),
      })
      .prefault({})
      .describe('Retries of requests that could not connect, bounded by a budget.'),
    ...policyShape,
    routePolicies: z
      .array(z.strictObject({ route: routeTemplate, ...policyShape }))
      .max(10_000)
      .default([])
      .describe(
        'Policies of one route template (one of routes): each set here replaces the upstream’s, false turns it off.',
      ),
    match: z
      .strictObject({
        host: z
          .string()
          .min(1)
          .max(253)
          .optional()
          .describe('Host header to match (without port), case-insensitive. Default: any host.'),
        pathPrefix: z
          .string()
          .regex(/^\//, 'must start with "/"')
          .default('/')
          .describe('Path prefix to match. Default: /.'),
      })
      .prefault({})
      .describe('Which requests go to this upstream; the most specific match wins.'),
    stripPrefix: z
      .boolean()
      .default(false)
      .describe('Remove match.pathPrefix before forwarding. Default: false.'),
    preserveHost: z
      .boolean()
      .default(false)
      .describe('Forward the client’s Host header instead of the upstream’s host. Default: false.'),
    routes: z
      .array(routeTemplate)
      .max(10_000)
      .default([])
      .describe('Route templates such as /users/:id; other paths are normalized (ids → :id).'),
    timeoutMs: z
      .number()
      .int()
      .positive()
      .default(30_000)
      .describe(
        'Longest wait for the upstream’s response headers, and between body chunks, in ms. Default: 30000.',
      ),
    connectTimeoutMs: z
      .number()
      .int()
      .positive()
      .default(5000)
      .describe('TCP connect timeout, in ms. Default: 5000.'),
    maxConcurrency: z
      .number()
      .int()
      .positive()
      .default(1000)
      .describe('Most requests in flight to this upstream; beyond it the proxy answers 503. Default: 1000.'),
    maxConnections: z
      .number()
      .int()
      .positive()
      .default(128)
      .describe('Keep-alive connections to this upstream per proxy instance. Default: 128.'),
    maxRoutes: z
      .number()
      .int()
      .positive()
      .default(500)
      .describe(
        'Most distinct route values recorded for this service at a time: its route templates, normalized routes holding a slot and __other__. Default: 500.',
      ),
    routePromoteHits: z
      .number()
      .int()
      .min(1)
      .max(1000)
      .default(3)
      .describe(
        'Requests a normalized route (a path no template covers) needs within routePromoteWindowMs to earn a slot of maxRoutes; until then it is recorded as __other__. 1: first come, first served. Default: 3.',
      ),
    routePromoteWindowMs: z
      .number()
      .int()
      .positive()
      .default(600_000)
      .describe('Window in which routePromoteHits must fall, in ms. Default: 600000 (10 min).'),
    routeIdleMs: z
      .number()
      .int()
      .positive()
      .default(3_600_000)
      .describe(
        'A normalized route unseen for this long gives up its slot to the next route that earns one, in ms. Default: 3600000 (1 h).',
      ),
    routeFreeShare: z
      .number()
      .min(0)
      .max(1)
      .default(0.5)
      .describe(
        'Share of the normalized routes’ slots given at a route’s first request; the rest must be earned with routePromoteHits. A typical API’s routes are then recorded from their first request, and a flood of one-off paths can hold at most this share. 0: every slot is earned. Default: 0.5.',
      ),
    maxRouteCandidates: z
      .number()
      .int()
      .min(1)
      .max(100_000)
      .default(1000)
      .describe(
        'Most normalized routes counted towards a slot at a time; beyond it the least recently seen is forgotten. Default: 1000.',
      ),
  })
  .describe('One upstream API.');

/** UpstreamConfig is one validated upstream. */
export type UpstreamConfig = z.infer<typeof upstreamSchema>;

/** proxyConfigSchema configures the proxy: listeners, upstreams, redaction, consumers, sampling and emission. */
export const proxyConfigSchema = z
  .strictObject({
    listen: z
      .strictObject({
        host: z.string().default('0.0.0.0').describe('Address the proxy listens on. Default: 0.0.0.0.'),
        port: portSchema.default(8080).describe('Port the proxy listens on. Default: 8080.'),
      })
      .prefault({}),
    admin: adminListenerSchema(9464),
    service: z
      .string()
      .min(1)
      .max(128)
      .default('tapwire-proxy')
      .describe(
        'Service name of the proxy itself (saturation samples, unmatched requests). Default: tapwire-proxy.',
      ),
    instance: z
      .string()
      .min(1)
      .max(128)
      .optional()
      .describe('Instance id in saturation samples. Default: hostname:pid.'),
    tenant: tenantSchema
      .default(DEFAULT_TENANT)
      .describe('Tenant of events whose upstream names none. Default: default.'),
    upstreams: z
      .array(upstreamSchema)
      .default([])
      .describe('Upstream APIs, matched by host and path prefix.'),
    limits: z
      .strictObject({
        maxBodyBytes: z
          .number()
          .int()
          .nonnegative()
          .default(0)
          .describe('Largest request body accepted, in bytes; larger ones get 413. 0: no limit. Default: 0.'),
        maxHeaderBytes: z
          .number()
          .int()
          .min(1024)
          .default(16_384)
          .describe(
            'Largest request head (request line and headers), in bytes; larger ones get 431. Default: 16384.',
          ),
        requestTimeoutMs: z
          .number()
          .int()
          .positive()
          .default(60_000)
          .describe('Longest a client may take to send its whole request, in ms; then 408. Default: 60000.'),
        headersTimeoutMs: z
          .number()
          .int()
          .positive()
          .default(15_000)
          .describe('Longest a client may take to send its request head, in ms; then 408. Default: 15000.'),
        keepAliveTimeoutMs: z
          .number()
          .int()
          .positive()
          .default(65_000)
          .describe('Idle keep-alive timeout of client connections, in ms. Default: 65000.'),
      })
      .prefault({}),
    redaction: z
      .strictObject({
        headers: z
          .array(z.string().min(1).max(128))
          .default([])
          .describe(
            'Extra request/response headers redacted (Authorization, Proxy-Authorization, Cookie, Set-Cookie always are).',
          ),
        queryParams: z
          .array(z.string().min(1).max(128))
          .default([...DEFAULT_REDACTED_QUERY_PARAMS])
          .describe('Query parameters whose values are replaced by [REDACTED] (case-insensitive).'),
        recordRequestHeaders: z
          .array(z.string().min(1).max(128))
          .default([])
          .describe(
            'Request headers recorded as http.request.header.* span attributes (redacted ones as [REDACTED]).',
          ),
        recordResponseHeaders: z
          .array(z.string().min(1).max(128))
          .default([])
          .describe('Response headers recorded as http.response.header.* span attributes.'),
      })
      .prefault({}),
    consumers: z
      .strictObject({
        apiKeyHeader: z
          .string()
          .min(1)
          .default('x-api-key')
          .describe('Header carrying an API key. Default: x-api-key.'),
        apiKeys: z
          .array(
            z.strictObject({
              id: z.string().min(1).max(128).describe('Key id recorded as the consumer.'),
              sha256: z
                .string()
                .regex(/^[0-9a-f]{64}$/, 'must be the hex SHA-256 of the key')
                .describe('Hex SHA-256 of the API key (the key itself is never configured).'),
              scopes: z
                .array(z.string().min(1).max(128))
                .max(64)
                .default([])
                .describe('Scopes this key holds, for routes whose auth policy requires scopes.'),
            }),
          )
          .default([])
          .describe('API keys by hash; an unknown key is recorded as consumer "unknown".'),
        jwt: z
          .strictObject({
            secret: z
              .string()
              .min(1)
              .optional()
              .describe('HS256/384/512 secret; the token is verified when set.'),
            publicKey: z
              .string()
              .min(1)
              .optional()
              .describe(
                'PEM public key (RSA or EC) for RS256/384/512 or ES256/384/512 tokens; verified when set.',
              ),
            jwksFile: z
              .string()
              .min(1)
              .optional()
              .describe(
                'Path of a JWKS file (RFC 7517: RSA, EC and oct keys) whose keys verify tokens by their kid; re-read when its mtime changes (checked at most once a second), a bad file keeps the last good keys. Must be readable at start.',
              ),
            algorithms: z
              .array(
                z.enum(['HS256', 'HS384', 'HS512', 'RS256', 'RS384', 'RS512', 'ES256', 'ES384', 'ES512']),
              )
              .min(1)
              .optional()
              .describe('Algorithms accepted. Default: those of the configured key(s).'),
            audience: z
              .union([z.string().min(1), z.array(z.string().min(1)).min(1)])
              .optional()
              .describe(
                'Accepted aud value(s); tokens for another audience, or with no aud, are invalid. Default: not checked.',
              ),
            issuer: z
              .union([z.string().min(1), z.array(z.string().min(1)).min(1)])
              .optional()
              .describe(
                'Accepted iss value(s); tokens from another issuer, or with no iss, are invalid. Default: not checked.',
              ),
            clockSkewSeconds: z
              .number()
              .int()
              .min(0)
              .max(3600)
              .default(0)
              .describe('Leeway when checking exp and nbf, in s. Default: 0.'),
            scopeClaim: z
              .string()
              .min(1)
              .default('scope')
              .describe(
                'Claim holding the token’s scopes (space-separated string or array). Default: scope.',
              ),
            claim: z.string().min(1).default('sub').describe('Claim recorded as the consumer. Default: sub.'),
          })
          .optional()
          .describe(
            'Identify consumers by a bearer JWT; without secret, publicKey or jwksFile the claim is read unverified (and routes with an auth policy refuse JWTs).',
          ),
      })
      .prefault({}),
    cache: z
      .strictObject({
        maxBytes: z
          .number()
          .int()
          .min(0)
          .default(64 * 1024 * 1024)
          .describe(
            'Memory the response cache may hold across all upstreams (keys, headers and bodies), least recently used evicted first, in bytes. 0: nothing is stored. Default: 67108864.',
          ),
      })
      .prefault({}),
    sampling: z
      .strictObject({
        spanRatio: z
          .number()
          .min(0)
          .max(1)
          .default(1)
          .describe(
            'Fraction of new traces whose spans are emitted; an incoming sampled flag is honoured. Access logs are never sampled. Default: 1.',
          ),
      })
      .prefault({}),
    emit: z
      .strictObject({
        ...emitConfigShape({ section: 'proxy', noun: 'proxy', defaultLogDir: '.tapwire/proxy-log' }),
        saturationIntervalMs: z
          .number()
          .int()
          .min(100)
          .default(1000)
          .describe('How often a saturation sample is emitted, in ms. Default: 1000.'),
      })
      .prefault({}),
    shutdownGraceMs: z
      .number()
      .int()
      .min(0)
      .default(15_000)
      .describe('On SIGTERM: longest wait for in-flight requests and event delivery, in ms. Default: 15000.'),
  })
  .superRefine((cfg, ctx) => {
    const seen = new Set<string>();
    cfg.upstreams.forEach((u, i) => {
      if (seen.has(u.name))
        ctx.addIssue({
          code: 'custom',
          path: ['upstreams', i, 'name'],
          message: `duplicate upstream name ${u.name}`,
        });
      seen.add(u.name);
      if ((u.url === undefined) === (u.targets === undefined))
        ctx.addIssue({
          code: 'custom',
          path: ['upstreams', i, 'url'],
          message: 'set exactly one of url and targets',
        });
      if (u.targets && new Set(u.targets.map(targetAddress)).size !== u.targets.length)
        ctx.addIssue({
          code: 'custom',
          path: ['upstreams', i, 'targets'],
          message: 'targets must have distinct host:port',
        });
      u.routePolicies.forEach((p, j) => {
        if (!u.routes.includes(p.route))
          ctx.addIssue({
            code: 'custom',
            path: ['upstreams', i, 'routePolicies', j, 'route'],
            message: `must be one of this upstream's routes`,
          });
      });
      const templates = new Set(u.routes).size;
      if (templates >= u.maxRoutes)
        ctx.addIssue({
          code: 'custom',
          path: ['upstreams', i, 'maxRoutes'],
          message: `must exceed the ${templates} route templates (one value is kept for __other__)`,
        });
    });
  })
  .prefault({});

/** ProxyConfig is the validated proxy configuration. */
export type ProxyConfig = z.infer<typeof proxyConfigSchema>;
