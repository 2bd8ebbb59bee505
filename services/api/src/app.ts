import { randomUUID } from 'node:crypto';
import fastifyCompress from '@fastify/compress';
import fastifyEtag from '@fastify/etag';
import fastifyRateLimit from '@fastify/rate-limit';
import fastifySwagger from '@fastify/swagger';
import fastifySwaggerUi from '@fastify/swagger-ui';
import {
  AnalyticsError,
  alertHistoryResultSchema,
  alertsResultSchema,
  alignForRollups,
  alignRange,
  autoStep,
  consumersResultSchema,
  logsResultSchema,
  overviewResultSchema,
  pipelineResultSchema,
  recentTracesResultSchema,
  type Scope,
  type Store,
  saturationResultSchema,
  seriesResultSchema,
  spanNodeSchema,
  type TimeRange,
  traceResultSchema,
} from '@tapwire/analytics';
import type { SilenceEvent } from '@tapwire/schema';
import { createConnectionRefusals, type Logger } from '@tapwire/telemetry';
import Fastify, {
  type FastifyError,
  type FastifyInstance,
  type FastifyReply,
  type FastifyRequest,
} from 'fastify';
import {
  createJsonSchemaTransform,
  createJsonSchemaTransformObject,
  hasZodFastifySchemaValidationErrors,
  serializerCompiler,
  validatorCompiler,
  type ZodTypeProvider,
} from 'fastify-type-provider-zod';
import { z } from 'zod';
import { createAuthenticator, type Principal, requireScope, scopeFor } from './auth.js';
import { createAnswerCache } from './cache.js';
import { createClientErrorAnswer } from './client-errors.js';
import { clientKey } from './client-key.js';
import type { ApiConfig, TokenScope } from './config.js';
import { decodeCursor, encodeCursor } from './cursor.js';
import { API_ERRORS, ApiError, apiErrorCodeFor } from './errors.js';
import { type ApiMetrics, createApiMetrics } from './metrics.js';
import {
  alertHistoryParams,
  alertsParams,
  consumersParams,
  logsParams,
  overviewParams,
  pipelineParams,
  recentTracesParams,
  saturationParams,
  seriesParams,
  silenceBody,
  silenceIdParams,
  traceLookupParams,
  traceParams,
} from './params.js';
import type { SilenceStore } from './silences.js';
import { createSloCatalog, type SloCatalog } from './slo-catalog.js';
import { sloRoutes } from './slo-routes.js';

declare module 'fastify' {
  interface FastifyRequest {
    principal?: Principal;
  }
  interface FastifyContextConfig {
    scope?: TokenScope;
  }
}

/** Api is the analytics HTTP application (not yet listening). */
export interface Api {
  readonly app: FastifyInstance;
  readonly metrics: ApiMetrics;
  /** slos are the SLOs of the alerting file in effect (reload() re-reads it). */
  readonly slos: SloCatalog;
}

const errorBody = z.object({
  error: z.object({
    code: z.string(),
    message: z.string(),
    request_id: z.string(),
    fields: z.array(z.object({ field: z.string(), message: z.string() })).optional(),
  }),
});

/** Methods a known path answers 405 (with Allow) for when it has no route for them. */
const HTTP_METHODS = ['DELETE', 'GET', 'HEAD', 'OPTIONS', 'PATCH', 'POST', 'PUT', 'TRACE'] as const;

const ERROR_RESPONSES = {
  400: errorBody,
  401: errorBody,
  403: errorBody,
  429: errorBody,
  503: errorBody,
  504: errorBody,
};

/** buildApi wires auth, validation, the answer cache, rate limits, compression, ETags and OpenAPI around a Store. */
export async function buildApi(
  deps: {
    store: Store;
    logger: Logger;
    metrics?: ApiMetrics;
    silences?: SilenceStore;
    /** now is the clock of the SLO answers, epoch ms (tests play it). Default: Date.now. */
    now?: () => number;
  },
  config: ApiConfig,
): Promise<Api> {
  const { store, logger } = deps;
  const metrics = deps.metrics ?? createApiMetrics();
  const auth = createAuthenticator(config.tokens);
  const cache = createAnswerCache({ ttlMs: config.cacheTtlMs, maxEntries: config.cacheMaxEntries });
  const refusals = createConnectionRefusals();
  const app = Fastify({
    logger: false,
    genReqId: (req) => {
      const given = req.headers['x-request-id'];
      return typeof given === 'string' && /^[A-Za-z0-9._-]{1,64}$/.test(given) ? given : randomUUID();
    },
    routerOptions: { maxParamLength: 200 },
    // Node would answer a missing Host itself with an empty 400: the onRequest hook answers it in
    // JSON instead. Header timeouts are checked every second so a slow client's 408 comes on time.
    http: {
      requireHostHeader: false,
      headersTimeout: config.headersTimeoutMs,
      connectionsCheckingInterval: Math.min(1000, config.headersTimeoutMs),
    },
    clientErrorHandler: createClientErrorAnswer(logger, refusals),
    // Malformed URLs and oversized path parameters are rejected by the router before any handler.
    frameworkErrors: (err, request, reply) => {
      void (reply as FastifyReply).code(400).send({
        error: { code: 'TAPWIRE_API_BAD_REQUEST', message: err.message, request_id: String(request.id) },
      });
    },
  }).withTypeProvider<ZodTypeProvider>();
  // A refused connection a client keeps half open lingers for a few seconds: not past close().
  app.addHook('preClose', (done) => {
    refusals.destroyAll();
    done();
  });
  app.setValidatorCompiler(validatorCompiler);
  app.setSerializerCompiler(serializerCompiler);

  // Every route's path, for the 405 routes added once all routes are declared.
  const routeUrls = new Set<string>();
  app.addHook('onRoute', (route) => {
    routeUrls.add(route.url);
  });

  await app.register(fastifyRateLimit, {
    global: true,
    max: config.rateLimit.max,
    allowList: (request) => !request.url.startsWith('/v1'),
    timeWindow: config.rateLimit.windowMs,
    hook: 'preHandler',
    keyGenerator: (request) => request.principal?.name ?? request.ip,
    errorResponseBuilder: (_request, context) =>
      new ApiError(
        'TAPWIRE_API_RATE_LIMITED',
        `rate limit of ${context.max} requests per ${context.after} exceeded`,
      ),
  });
  // Requests without a valid token have their own, stricter budget per client address, so guessing
  // tokens or flooding 401s costs the flooder, not the tokens' budgets.
  const unauthenticatedLimit = app.rateLimit({
    max: config.rateLimit.unauthenticatedMax,
    keyGenerator: (request) => clientKey(request.ip),
    errorResponseBuilder: (_request, context) =>
      new ApiError(
        'TAPWIRE_API_RATE_LIMITED',
        `more than ${context.max} requests without a valid token from this address; retry in ${context.after}`,
      ),
  });

  app.addHook('onRequest', async (request, reply) => {
    reply.header('x-request-id', request.id);
    if (request.headers.host === undefined && request.raw.httpVersion === '1.1')
      throw new ApiError('TAPWIRE_API_BAD_REQUEST', 'an HTTP/1.1 request needs a Host header');
    if (!request.url.startsWith('/v1')) return;
    try {
      request.principal = auth.authenticate(request.headers.authorization);
    } catch (err) {
      await unauthenticatedLimit.call(app, request, reply);
      throw err;
    }
    const scope = request.routeOptions.config.scope;
    if (scope) requireScope(request.principal, scope);
  });
  app.addHook('onResponse', async (request, reply) => {
    metrics.request(request.routeOptions.url ?? 'unmatched', reply.statusCode, reply.elapsedTime / 1000);
  });
  await app.register(fastifyEtag);
  await app.register(fastifyCompress, { threshold: 1024 });
  // A recursive schema is published as a named component: the span tree of GET /v1/traces/{id}.
  const components = z.registry<{ id: string }>();
  components.add(spanNodeSchema, { id: 'SpanNode' });
  await app.register(fastifySwagger, {
    openapi: {
      info: {
        title: 'Tapwire analytics API',
        version: '1.0.0',
        description:
          'RED metrics, latency series with exemplars, saturation, consumers, traces, access logs and pipeline health. Times are RFC 3339 or relative (now-1h); every /v1 route needs a bearer token. Errors are JSON {"error":{"code","message","request_id"}}; a wrong method on a known path is 405 with Allow; requests without a valid token are rate limited per client address.',
      },
      components: { securitySchemes: { bearer: { type: 'http', scheme: 'bearer' } } },
      security: [{ bearer: [] }],
    },
    transform: createJsonSchemaTransform({ schemaRegistry: components }),
    transformObject: createJsonSchemaTransformObject({ schemaRegistry: components }),
  });
  await app.register(fastifySwaggerUi, { routePrefix: '/docs' });

  app.setErrorHandler((err: FastifyError, request, reply) => {
    const requestId = String(request.id);
    if (hasZodFastifySchemaValidationErrors(err)) {
      const fields = err.validation.map((v) => ({
        field: [err.validationContext, ...String(v.instancePath).split('/').filter(Boolean)].join('.'),
        message: v.message ?? 'invalid',
      }));
      return reply.code(400).send({
        error: {
          code: 'TAPWIRE_API_BAD_REQUEST',
          message: fields.map((f) => `${f.field}: ${f.message}`).join('; '),
          request_id: requestId,
          fields,
        },
      });
    }
    if (err instanceof ApiError || err instanceof AnalyticsError) {
      if (err.status === 401) reply.header('www-authenticate', 'Bearer');
      if (err.status >= 500) logger.warn({ err, code: err.code, requestId }, 'analytics query failed');
      // Store and handler errors name query-string fields; validation errors already carry the prefix.
      const field = err.field === undefined ? undefined : `querystring.${err.field}`;
      return reply.code(err.status).send({
        error: {
          code: err.code,
          message: err.message,
          request_id: requestId,
          ...(field ? { fields: [{ field, message: err.message }] } : {}),
        },
      });
    }
    const status =
      typeof err.statusCode === 'number' && err.statusCode >= 400 && err.statusCode < 500
        ? err.statusCode
        : 500;
    if (status === 500) logger.error({ err, requestId }, 'unexpected API error');
    // A body over the limit is left unread: close the connection rather than read it all, and say so.
    if (status === 413) reply.header('connection', 'close');
    return reply.code(status).send({
      error: {
        code: apiErrorCodeFor(status),
        message: status === 500 ? API_ERRORS.TAPWIRE_API_INTERNAL.message : err.message,
        request_id: requestId,
      },
    });
  });
  app.setNotFoundHandler((request, reply) =>
    reply.code(404).send({
      error: {
        code: 'TAPWIRE_API_NOT_FOUND',
        message: `no route ${request.method} ${request.url.split('?')[0]}`,
        request_id: String(request.id),
      },
    }),
  );

  // --- helpers shared by the handlers -------------------------------------------------------

  function principalOf(request: FastifyRequest): Principal {
    if (!request.principal) throw new ApiError('TAPWIRE_API_UNAUTHORIZED');
    return request.principal;
  }

  function checkWindow(range: TimeRange): TimeRange {
    if (range.to <= range.from)
      throw new ApiError('TAPWIRE_API_BAD_REQUEST', 'to: must be after from', { field: 'to' });
    if (range.to - range.from > config.maxWindowHours * 3600)
      throw new ApiError(
        'TAPWIRE_API_BAD_REQUEST',
        `from: the window may cover at most ${config.maxWindowHours} h`,
        {
          field: 'from',
        },
      );
    return range;
  }

  function resolveStep(range: TimeRange, step: number | undefined): { range: TimeRange; stepS: number } {
    const stepS = step ?? autoStep(range, config.defaultPoints);
    const aligned = alignRange(range, stepS);
    if ((aligned.to - aligned.from) / stepS > config.maxPoints)
      throw new ApiError(
        'TAPWIRE_API_BAD_REQUEST',
        `step: at most ${config.maxPoints} points per series; use a larger step`,
        {
          field: 'step',
        },
      );
    return { range: aligned, stepS };
  }

  async function answer<T>(
    name: string,
    scope: Scope,
    query: unknown,
    compute: () => Promise<T>,
  ): Promise<T> {
    const started = performance.now();
    try {
      const { value, hit } = await cache.get(`${name}\u0000${JSON.stringify([scope, query])}`, compute);
      metrics.cache(hit);
      if (!hit) metrics.storeQuery('ok', (performance.now() - started) / 1000);
      return value;
    } catch (err) {
      metrics.storeQuery(
        err instanceof AnalyticsError ? err.code : 'unexpected',
        (performance.now() - started) / 1000,
      );
      throw err;
    }
  }

  const read = { scope: 'read' as const };
  // The alerting file's SLOs and rule groups, kept up to date as the alerter keeps its own.
  const slos = createSloCatalog({ file: config.alertingFile, logger });
  app.addHook('onClose', async () => slos.close());

  // --- health and the index (no token) ------------------------------------------------------

  app.get('/', { schema: { hide: true } }, async (_request, reply) =>
    reply
      .code(302)
      .header('location', '/docs')
      .send({ docs: '/docs', openapi: '/openapi.json', health: '/healthz' }),
  );
  app.get('/healthz', { schema: { hide: true } }, async () => ({ status: 'ok' }));
  app.get('/readyz', { schema: { hide: true } }, async (_request, reply) => {
    const ok = await store.ping().catch(() => false);
    return reply
      .code(ok ? 200 : 503)
      .send({ status: ok ? 'ready' : 'not ready', store: { kind: store.kind, ok } });
  });
  app.get('/openapi.json', { schema: { hide: true } }, async () => app.swagger());

  // --- /v1 -----------------------------------------------------------------------------------

  app.get(
    '/v1/overview',
    {
      config: read,
      schema: {
        summary:
          'RED overview per service or per route: rate, 5xx/4xx error rates, p50/p90/p95/p99, bytes; per service also services that report only spans (basis: spans)',
        querystring: overviewParams,
        response: { 200: overviewResultSchema, ...ERROR_RESPONSES },
      },
    },
    async (request) => {
      const q = request.query;
      const scope = scopeFor(principalOf(request), q.tenant);
      const query = {
        range: alignForRollups(checkWindow({ from: q.from, to: q.to }), q.source),
        filters: filtersOf(q),
        groupBy: q.group_by,
        sort: q.sort,
        order: q.order,
        limit: q.limit,
        offset: q.offset,
        source: q.source,
      };
      return answer('overview', scope, query, () => store.overview(scope, query));
    },
  );

  app.get(
    '/v1/series',
    {
      config: read,
      schema: {
        summary: 'Latency quantiles (with exemplar trace ids), error rate and throughput per step',
        querystring: seriesParams,
        response: { 200: seriesResultSchema, ...ERROR_RESPONSES },
      },
    },
    async (request) => {
      const q = request.query;
      const scope = scopeFor(principalOf(request), q.tenant);
      const { range, stepS } = resolveStep(checkWindow({ from: q.from, to: q.to }), q.step);
      const query = { range, stepS, filters: filtersOf(q), quantiles: q.quantiles, source: q.source };
      return answer('series', scope, query, () => store.series(scope, query));
    },
  );

  app.get(
    '/v1/saturation',
    {
      config: read,
      schema: {
        summary:
          'Saturation per proxy instance (event loop, heap, CPU, buffer, spool), per upstream (in flight vs limit, pool) and per target of a load-balanced upstream (health state)',
        querystring: saturationParams,
        response: { 200: saturationResultSchema, ...ERROR_RESPONSES },
      },
    },
    async (request) => {
      const q = request.query;
      const scope = scopeFor(principalOf(request), q.tenant);
      const { range, stepS } = resolveStep(checkWindow({ from: q.from, to: q.to }), q.step);
      const query = {
        range,
        stepS,
        source: q.source,
        ...(q.service !== undefined ? { service: q.service } : {}),
        ...(q.instance !== undefined ? { instance: q.instance } : {}),
        ...(q.upstream !== undefined ? { upstream: q.upstream } : {}),
      };
      return answer('saturation', scope, query, () => store.saturation(scope, query));
    },
  );

  app.get(
    '/v1/consumers',
    {
      config: read,
      schema: {
        summary:
          'Usage per API consumer (API-key id or JWT subject): rate, errors, latency, requests refused by its rate limit, the peak share of its quota used, auth failures',
        querystring: consumersParams,
        response: { 200: consumersResultSchema, ...ERROR_RESPONSES },
      },
    },
    async (request) => {
      const q = request.query;
      const scope = scopeFor(principalOf(request), q.tenant);
      const query = {
        range: checkWindow({ from: q.from, to: q.to }),
        filters: filtersOf(q),
        sort: q.sort,
        order: q.order,
        limit: q.limit,
        offset: q.offset,
      };
      return answer('consumers', scope, query, () => store.consumers(scope, query));
    },
  );

  app.get(
    '/v1/traces/:traceId',
    {
      config: read,
      schema: {
        summary:
          'One trace as a tree of spans with timings, across services (the proxy’s spans and apps’ OTLP spans); each span with its resource, scope, events and links',
        params: traceParams,
        querystring: traceLookupParams,
        response: { 200: traceResultSchema, 404: errorBody, ...ERROR_RESPONSES },
      },
    },
    async (request) => {
      const scope = scopeFor(principalOf(request), request.query.tenant);
      const query = { traceId: request.params.traceId };
      const trace = await answer('trace', scope, query, () => store.trace(scope, query));
      if (!trace) throw new ApiError('TAPWIRE_API_NOT_FOUND', `trace ${query.traceId} not found`);
      return trace;
    },
  );

  app.get(
    '/v1/traces',
    {
      config: read,
      schema: {
        summary: 'Recent traces of a service or route, newest first, by minimum duration and status',
        querystring: recentTracesParams,
        response: { 200: recentTracesResultSchema, ...ERROR_RESPONSES },
      },
    },
    async (request) => {
      const q = request.query;
      const scope = scopeFor(principalOf(request), q.tenant);
      const query = {
        range: checkWindow({ from: q.from, to: q.to }),
        filters: filtersOf(q),
        limit: q.limit,
        ...(q.status !== undefined ? { status: q.status } : {}),
        ...(q.min_duration_ms !== undefined ? { minDurationMs: q.min_duration_ms } : {}),
      };
      return answer('traces', scope, query, () => store.recentTraces(scope, query));
    },
  );

  app.get(
    '/v1/logs',
    {
      config: read,
      schema: {
        summary: 'Access-log search, newest first, with cursor pagination',
        querystring: logsParams,
        response: {
          200: logsResultSchema.extend({ next_cursor: z.string().nullable() }),
          ...ERROR_RESPONSES,
        },
      },
    },
    async (request) => {
      const q = request.query;
      const scope = scopeFor(principalOf(request), q.tenant);
      const query = {
        range: checkWindow({ from: q.from, to: q.to }),
        filters: filtersOf(q),
        limit: q.limit,
        ...(q.status !== undefined ? { status: q.status } : {}),
        ...(q.error_kind !== undefined ? { errorKind: q.error_kind } : {}),
        ...(q.trace_id !== undefined ? { traceId: q.trace_id } : {}),
        ...(q.min_duration_ms !== undefined ? { minDurationMs: q.min_duration_ms } : {}),
        ...(q.path_prefix !== undefined ? { pathPrefix: q.path_prefix } : {}),
        ...(q.cursor !== undefined ? { cursor: decodeCursor(q.cursor) } : {}),
      };
      const page = await answer('logs', scope, query, () => store.logs(scope, query));
      return { rows: page.rows, next_cursor: page.next_cursor ? encodeCursor(page.next_cursor) : null };
    },
  );

  app.get(
    '/v1/pipeline',
    {
      config: { scope: 'admin' },
      schema: {
        summary: 'Pipeline health: consumer lag, DLQ rate, proxy drops and spool fill (admin scope)',
        description:
          'Dead letters and proxy drops are per tenant. Consumer lag and topic high-watermarks count every tenant\'s events, so `lag` is filled only for an all-tenant ("*") token without a `tenant` filter; a tenant\'s token (or `tenant=`) gets `lag: []`.',
        querystring: pipelineParams,
        response: { 200: pipelineResultSchema, ...ERROR_RESPONSES },
      },
    },
    async (request) => {
      const q = request.query;
      const scope = scopeFor(principalOf(request), q.tenant);
      const query = { range: checkWindow({ from: q.from, to: q.to }) };
      return answer('pipeline', scope, query, () => store.pipeline(scope, query));
    },
  );

  // --- alerting ------------------------------------------------------------------------------

  app.get(
    '/v1/alerts',
    {
      config: read,
      schema: {
        summary: 'Current alert series: pending, firing, recovering, and resolved in the last 15 minutes',
        querystring: alertsParams,
        response: { 200: alertsResultSchema, ...ERROR_RESPONSES },
      },
    },
    async (request) => {
      const q = request.query;
      const scope = scopeFor(principalOf(request), q.tenant);
      const query = {
        now: Math.floor(Date.now() / 1000),
        ...(q.state !== undefined ? { state: q.state } : {}),
        ...(q.rule_id !== undefined ? { ruleId: q.rule_id } : {}),
      };
      return store.alerts(scope, query);
    },
  );

  app.get(
    '/v1/alerts/history',
    {
      config: read,
      schema: {
        summary: 'Alert transitions and delivered notifications, newest first',
        querystring: alertHistoryParams,
        response: { 200: alertHistoryResultSchema, ...ERROR_RESPONSES },
      },
    },
    async (request) => {
      const q = request.query;
      const scope = scopeFor(principalOf(request), q.tenant);
      const query = {
        range: checkWindow({ from: q.from, to: q.to }),
        limit: q.limit,
        ...(q.rule_id !== undefined ? { ruleId: q.rule_id } : {}),
        ...(q.fingerprint !== undefined ? { fingerprint: q.fingerprint } : {}),
      };
      return answer('alert-history', scope, query, () => store.alertHistory(scope, query));
    },
  );

  app.get(
    '/v1/rules',
    {
      config: read,
      schema: {
        summary: 'Alert rules in effect (from the alerting file; receivers and their secrets are not shown)',
        response: {
          200: z.object({
            groups: z.array(
              z.object({
                name: z.string(),
                interval_ms: z.number(),
                rules: z.array(z.record(z.string(), z.unknown())),
              }),
            ),
          }),
          ...ERROR_RESPONSES,
        },
      },
    },
    async () => {
      return {
        groups: slos.groups().map((g) => ({
          name: g.name,
          interval_ms: g.interval,
          rules: g.rules.map((r) => ({ ...r })),
        })),
      };
    },
  );

  await app.register(sloRoutes, {
    store,
    catalog: slos,
    answer,
    now: deps.now ?? Date.now,
    maxWindowS: config.maxWindowHours * 3600,
    errorBody,
    errorResponses: ERROR_RESPONSES,
  });

  const silenceSchema = z.object({
    id: z.string(),
    tenant: z.string(),
    matchers: z.array(z.string()),
    starts_at: z.string(),
    ends_at: z.string(),
    created_by: z.string(),
    comment: z.string(),
    state: z.enum(['pending', 'active', 'expired']),
  });
  const admin = { scope: 'admin' as const };
  const silenceView = (e: SilenceEvent, now: number) => ({
    id: e.id,
    tenant: e.tenant,
    matchers: e.matchers,
    starts_at: new Date(e.starts_at / 1000).toISOString(),
    ends_at: new Date(e.ends_at / 1000).toISOString(),
    created_by: e.created_by,
    comment: e.comment,
    state: (now < e.starts_at / 1000 ? 'pending' : now < e.ends_at / 1000 ? 'active' : 'expired') as
      | 'pending'
      | 'active'
      | 'expired',
  });
  function silenceStore(): SilenceStore {
    if (!deps.silences)
      throw new AnalyticsError('TAPWIRE_ANALYTICS_STORE_UNAVAILABLE', 'silences need Kafka (kafka.brokers)');
    return deps.silences;
  }
  const visible = (principal: Principal, e: SilenceEvent) =>
    principal.tenant === null || e.tenant === principal.tenant;

  app.get(
    '/v1/silences',
    {
      config: admin,
      schema: {
        summary: 'Silences (admin scope)',
        response: { 200: z.object({ silences: z.array(silenceSchema) }), ...ERROR_RESPONSES },
      },
    },
    async (request) => {
      const principal = principalOf(request);
      const now = Date.now();
      const list = (await silenceStore().list()).filter((e) => visible(principal, e));
      return {
        silences: list.map((e) => silenceView(e, now)).sort((a, b) => a.starts_at.localeCompare(b.starts_at)),
      };
    },
  );

  app.post(
    '/v1/silences',
    {
      config: admin,
      schema: {
        summary: 'Create a silence (admin scope)',
        body: silenceBody,
        response: { 201: silenceSchema, ...ERROR_RESPONSES },
      },
    },
    async (request, reply) => {
      const principal = principalOf(request);
      const b = request.body;
      const now = Date.now();
      const startsMs = b.starts_at ?? now;
      const unit: Record<string, number> = { s: 1000, m: 60_000, h: 3_600_000, d: 86_400_000 };
      const endsMs =
        b.ends_at ??
        startsMs + Number.parseInt(b.duration ?? '0', 10) * (unit[(b.duration ?? 's').slice(-1)] ?? 1000);
      if (endsMs <= Math.max(startsMs, now))
        throw new ApiError('TAPWIRE_API_BAD_REQUEST', 'ends_at: must be in the future and after starts_at', {
          field: 'ends_at',
        });
      // A tenant's token silences only its own tenant's alerts.
      const matchers =
        principal.tenant === null
          ? b.matchers
          : [...b.matchers, `tenant=${JSON.stringify(principal.tenant)}`];
      const event: SilenceEvent = {
        v: 1,
        id: randomUUID(),
        ts: now * 1000,
        tenant: principal.tenant ?? 'default',
        matchers,
        starts_at: startsMs * 1000,
        ends_at: endsMs * 1000,
        created_by: principal.name,
        comment: b.comment,
      };
      await silenceStore().put(event);
      return reply.code(201).send(silenceView(event, now));
    },
  );

  app.delete(
    '/v1/silences/:id',
    {
      config: admin,
      schema: {
        summary: 'Expire a silence now (admin scope)',
        params: silenceIdParams,
        response: { 200: silenceSchema, 404: errorBody, ...ERROR_RESPONSES },
      },
    },
    async (request) => {
      const principal = principalOf(request);
      const store = silenceStore();
      const found = (await store.list()).find((e) => e.id === request.params.id && visible(principal, e));
      if (!found) throw new ApiError('TAPWIRE_API_NOT_FOUND', `silence ${request.params.id} not found`);
      const now = Date.now();
      const expired: SilenceEvent = {
        ...found,
        ts: now * 1000,
        ends_at: Math.max(found.starts_at + 1, now * 1000),
      };
      await store.put(expired);
      return silenceView(expired, now);
    },
  );

  // A known path asked with a method it has no route for is 405 with Allow, not 404 (RFC 9110 §15.5.6).
  // hasRoute, not the onRoute record: fastify declares some routes (a prefix's trailing slash) silently.
  for (const url of [...routeUrls]) {
    const allow = HTTP_METHODS.filter((method) => app.hasRoute({ method, url })).join(', ');
    const others = HTTP_METHODS.filter((method) => !app.hasRoute({ method, url }));
    if (others.length === 0) continue;
    app.route({
      method: others,
      url,
      schema: { hide: true },
      // Before the body is parsed: a large body to the wrong method is not read.
      onRequest: async (request, reply) => {
        reply.header('allow', allow);
        throw new ApiError(
          'TAPWIRE_API_METHOD_NOT_ALLOWED',
          `${request.method} is not allowed on ${request.url.split('?')[0]}; allowed: ${allow}`,
        );
      },
      handler: async () => undefined,
    });
  }

  await app.ready();
  return { app, metrics, slos };
}

function filtersOf(q: {
  service?: string | undefined;
  route?: string | undefined;
  method?: string | undefined;
  consumer?: string | undefined;
  status_class?: '1xx' | '2xx' | '3xx' | '4xx' | '5xx' | undefined;
}) {
  return {
    ...(q.service !== undefined ? { service: q.service } : {}),
    ...(q.route !== undefined ? { route: q.route } : {}),
    ...(q.method !== undefined ? { method: q.method } : {}),
    ...(q.consumer !== undefined ? { consumer: q.consumer } : {}),
    ...(q.status_class !== undefined ? { statusClass: q.status_class } : {}),
  };
}
