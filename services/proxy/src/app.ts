import type { IncomingMessage } from 'node:http';
import type { Socket } from 'node:net';
import { hostname } from 'node:os';
import { performance } from 'node:perf_hooks';
import { type EmissionStats, writtenOnly } from '@tapwire/emission';
import type { EventSink } from '@tapwire/stream';
import {
  type AdminServer,
  createAdminServer,
  createConnectionRefusals,
  createQueryRedactor,
  type Logger,
  listenAt,
} from '@tapwire/telemetry';
import Fastify, { type FastifyInstance, type FastifyReply, type FastifyRequest } from 'fastify';
import type { ProxyConfig } from './config.js';
import { createConsumerIdentifier } from './consumers.js';
import { createProxyErrorLog } from './error-log.js';
import { PROXY_ERRORS, type ProxyErrorCode, proxyErrorBody } from './errors.js';
import { createExchangeHandler, type ExchangeHandler } from './exchange.js';
import { createProxyMetrics, type ProxyMetrics } from './metrics.js';
import { createAuthenticator } from './policy/auth.js';
import { createResponseCache } from './policy/cache.js';
import { assertAuthConfig, createPolicyGate } from './policy/gate.js';
import { createJwtVerifier } from './policy/jwt.js';
import { createRateLimiter } from './policy/rate-limit.js';
import { createHeaderRecorder } from './redact.js';
import { createRequestLineGuard } from './request-line-guard.js';
import { createSaturationSampler, type SaturationSampler } from './saturation.js';
import { createIdSource } from './trace-context.js';
import { createUpstreamTable, type UpstreamTable } from './upstreams.js';

/** TapwireProxy is a built proxy: both servers, its parts for tests, and its lifecycle. */
export interface TapwireProxy {
  readonly server: FastifyInstance;
  readonly admin: AdminServer;
  readonly table: UpstreamTable;
  readonly exchange: ExchangeHandler;
  readonly metrics: ProxyMetrics;
  readonly sampler: SaturationSampler;
  /** start listens on both addresses and starts the saturation sampler. */
  start(): Promise<{ proxyUrl: string; adminUrl: string }>;
  /**
   * close stops accepting, lets in-flight requests finish within the grace period, then stops the
   * sampler and the upstream pools; the caller closes the sink afterwards.
   */
  close(): Promise<void>;
}

const ALL_METHODS = ['GET', 'HEAD', 'POST', 'PUT', 'DELETE', 'OPTIONS', 'PATCH', 'TRACE'] as const;
// Refusals after which the request's framing cannot be trusted end the connection, and say so.
const CLOSE = { connection: 'close' } as const;

// Segments that look like opaque tokens (reset links, signed URLs) never leave the process in clear.
const OPAQUE_SEGMENT = /^[A-Za-z0-9_=+-]{24,}$/;
function redactPath(path: string): string {
  if (path.length < 24) return path;
  return path
    .split('/')
    .map((s) =>
      OPAQUE_SEGMENT.test(s) && /\d/.test(s) && /[A-Za-z]/.test(s) && !/^[0-9a-f-]{36}$/i.test(s)
        ? '[REDACTED]'
        : s,
    )
    .join('/');
}

// RFC 9112 §3.2: a request with no Host (HTTP/1.1) or more than one Host is a 400.
function hostCount(req: IncomingMessage): number {
  const raw = req.rawHeaders;
  let n = 0;
  for (let i = 0; i < raw.length; i += 2) {
    const name = raw[i]!;
    if (name.length === 4 && name.toLowerCase() === 'host') n++;
  }
  return n;
}

// The raw answer to a connection Node's HTTP server no longer serves (a parse error, a CONNECT).
function rawRefusal(code: ProxyErrorCode, requestId: string, extraHeaders = ''): string {
  const body = proxyErrorBody(code, requestId);
  const status = PROXY_ERRORS[code].status;
  return `HTTP/1.1 ${status} ${code}\r\ncontent-type: application/json; charset=utf-8\r\ncontent-length: ${Buffer.byteLength(body)}\r\nx-request-id: ${requestId}\r\n${extraHeaders}connection: close\r\n\r\n${body}`;
}

/**
 * buildProxy wires the proxy from its parts; nothing listens until start(). `now` (default
 * performance.now, in ms) paces the rate-limited log of errors the proxy answers itself and the
 * rate-limit windows;
 * `emission` reports where the events are (default: the sink's own counters, nothing shipped).
 */
export function buildProxy(
  deps: { sink: EventSink; logger: Logger; now?: () => number; emission?: () => EmissionStats },
  config: ProxyConfig,
): TapwireProxy {
  const emission = deps.emission ?? writtenOnly(deps.sink);
  // Config problems found only now (a JWKS file that cannot be read, an auth policy no request could
  // pass) throw before anything is opened.
  assertAuthConfig(config);
  const jwt = config.consumers.jwt
    ? createJwtVerifier(config.consumers.jwt, { logger: deps.logger })
    : undefined;
  const table = createUpstreamTable(config, { logger: deps.logger });
  const refusals = createConnectionRefusals();
  const ids = createIdSource();
  let exchange: ExchangeHandler | undefined;
  const cache = createResponseCache({
    maxBytes: config.cache.maxBytes,
    apiKeyHeader: config.consumers.apiKeyHeader,
  });
  const metrics = createProxyMetrics(table.all, emission, () => exchange?.inFlight ?? 0, cache.stats);
  const errorLog = createProxyErrorLog({ logger: deps.logger, now: deps.now ?? (() => performance.now()) });
  const onAnswered = (code: ProxyErrorCode, cause: string, upstream = ''): void => {
    metrics.errorResponse(code);
    errorLog.record(code, cause, upstream);
  };
  let idleWaiters: (() => void)[] = [];
  exchange = createExchangeHandler(
    {
      sink: deps.sink,
      table,
      ids,
      metrics,
      identifyConsumer: createConsumerIdentifier(config.consumers, jwt),
      admit: createPolicyGate({
        auth: createAuthenticator(config.consumers, jwt),
        limiter: createRateLimiter({ now: deps.now ?? (() => performance.now()) }),
        decisions: {
          auth: (upstream, outcome) => metrics.policyDecision(upstream, 'auth', outcome),
          rateLimit: (upstream, outcome) => metrics.policyDecision(upstream, 'rate_limit', outcome),
        },
      }),
      redactQuery: createQueryRedactor(config.redaction.queryParams),
      recordHeaders: {
        request: createHeaderRecorder(config.redaction.recordRequestHeaders, config.redaction.headers),
        response: createHeaderRecorder(config.redaction.recordResponseHeaders, config.redaction.headers),
      },
      redactPath,
      cache,
      onAnswered,
      onSettled() {
        if (exchange && exchange.inFlight === 0 && idleWaiters.length > 0) {
          for (const w of idleWaiters) w();
          idleWaiters = [];
        }
      },
    },
    config,
  );
  const handler = exchange;
  const instance = config.instance ?? `${hostname()}:${process.pid}`;
  const sampler = createSaturationSampler(
    { sink: deps.sink, emission, upstreams: table.all, ids },
    {
      service: config.service,
      instance,
      defaultTenant: config.tenant,
      intervalMs: config.emit.saturationIntervalMs,
    },
  );

  const server = Fastify({
    logger: false,
    routerOptions: { maxParamLength: 2048 },
    maxRequestsPerSocket: 0,
    requestTimeout: config.limits.requestTimeoutMs,
    keepAliveTimeout: config.limits.keepAliveTimeoutMs,
    http: {
      maxHeaderSize: config.limits.maxHeaderBytes,
      headersTimeout: config.limits.headersTimeoutMs,
      // Node checks header and request timeouts on this interval (default 30 s).
      connectionsCheckingInterval: Math.min(1000, config.limits.headersTimeoutMs),
      // Node's own answer to a missing Host is an empty 400 that is never recorded: checked below.
      requireHostHeader: false,
    },
    return503OnClosing: false,
    forceCloseConnections: false,
    // Malformed request lines, oversized heads and slow clients never reach a handler: answer them
    // here, record them, and close the socket.
    clientErrorHandler(err, socket) {
      const code = (err as { code?: string }).code;
      const [status, kind, errorCode]: [number, 'bad_request' | 'client_timeout', ProxyErrorCode] =
        code === 'HPE_HEADER_OVERFLOW'
          ? [431, 'bad_request', 'TAPWIRE_PROXY_HEADERS_TOO_LARGE']
          : code === 'ERR_HTTP_REQUEST_TIMEOUT' || code === 'ETIMEDOUT'
            ? [408, 'client_timeout', 'TAPWIRE_PROXY_CLIENT_TIMEOUT']
            : [400, 'bad_request', 'TAPWIRE_PROXY_BAD_REQUEST'];
      if (code === 'ECONNRESET' || code === 'EPIPE') {
        socket.destroy();
        return;
      }
      const requestId = handler.recordRejected(status, kind, socket.remoteAddress ?? '');
      onAnswered(errorCode, `${code ?? 'client error'}: ${err.message}`);
      refusals.refuse(socket as Socket, rawRefusal(errorCode, requestId));
    },
    // The router's own answers (a path that is not valid percent-encoding, a path past
    // maxParamLength) get the proxy's error body and are recorded like any refusal.
    frameworkErrors(err, request, reply) {
      reply.hijack();
      const code: ProxyErrorCode =
        err.code === 'FST_ERR_BAD_URL'
          ? 'TAPWIRE_PROXY_BAD_URL'
          : err.code === 'FST_ERR_MAX_PARAM_LENGTH'
            ? 'TAPWIRE_PROXY_URI_TOO_LONG'
            : 'TAPWIRE_PROXY_BAD_REQUEST';
      handler.reject(request.raw, reply.raw, performance.now(), code);
    },
  });
  const lineGuard = createRequestLineGuard(server.server);
  const refusal = (req: IncomingMessage): ProxyErrorCode | undefined => {
    if (req.httpVersionMajor !== 1 || lineGuard.malformed(req)) return 'TAPWIRE_PROXY_BAD_REQUEST_LINE';
    const hosts = hostCount(req);
    if (hosts > 1 || (hosts === 0 && req.httpVersionMinor === 1)) return 'TAPWIRE_PROXY_BAD_HOST';
    return undefined;
  };
  // Node closes a CONNECT without a word unless someone listens; the proxy is no tunnel.
  server.server.on('connect', (req: IncomingMessage, socket: Socket) => {
    const requestId = handler.recordRejected(405, 'bad_request', socket.remoteAddress ?? '');
    onAnswered('TAPWIRE_PROXY_METHOD_NOT_ALLOWED', `${req.method} ${req.url}`);
    refusals.refuse(
      socket,
      rawRefusal('TAPWIRE_PROXY_METHOD_NOT_ALLOWED', requestId, `allow: ${ALL_METHODS.join(', ')}\r\n`),
    );
  });
  // RFC 9110 §10.1.1: a request refused anyway gets its answer instead of 100 Continue, so the
  // client never sends a body for nothing.
  server.server.on('checkContinue', (req, res) => {
    const declared = Number(req.headers['content-length'] ?? 0);
    const tooLarge = config.limits.maxBodyBytes > 0 && declared > config.limits.maxBodyBytes;
    if (!tooLarge && !refusal(req)) res.writeContinue();
    server.server.emit('request', req, res);
  });
  // Node answers an Expect other than 100-continue with an empty 417; give it the error body.
  server.server.on('checkExpectation', (req, res) => {
    handler.reject(req, res, performance.now(), 'TAPWIRE_PROXY_EXPECTATION_FAILED', CLOSE);
  });
  // Bodies are streamed to the upstream untouched: no parser may read them.
  server.removeAllContentTypeParsers();
  server.addContentTypeParser('*', (_req, _payload, done) => done(null));
  const serve = (request: FastifyRequest, reply: FastifyReply): void => {
    reply.hijack();
    const startMs = performance.now();
    const refused = refusal(request.raw);
    if (refused) handler.reject(request.raw, reply.raw, startMs, refused, CLOSE);
    else handler.handle(request.raw, reply.raw, startMs);
  };
  server.route({ method: [...ALL_METHODS], url: '*', handler: serve });
  server.setNotFoundHandler(serve);

  let ready = false;
  const admin = createAdminServer({
    section: 'proxy.admin',
    host: config.admin.host,
    port: config.admin.port,
    registry: metrics.registry,
    readiness: () => ({ ready }),
  });

  let closing: Promise<void> | undefined;
  return {
    server,
    admin,
    table,
    exchange: handler,
    metrics,
    sampler,
    async start() {
      const proxyUrl = await listenAt({ section: 'proxy.listen', ...config.listen }, () =>
        server.listen({ host: config.listen.host, port: config.listen.port }),
      );
      let adminUrl: string;
      try {
        adminUrl = await admin.listen();
      } catch (err) {
        // Nothing was forwarded yet: release the proxy port so the caller can exit or retry.
        await server.close();
        throw err;
      }
      sampler.start();
      table.start();
      ready = true;
      deps.logger.info({ proxyUrl, adminUrl, upstreams: table.all.map((u) => u.name) }, 'proxy listening');
      return { proxyUrl, adminUrl };
    },
    close() {
      closing ??= (async () => {
        ready = false;
        handler.drain();
        deps.logger.info(
          { inFlight: handler.inFlight },
          'draining: refusing new requests, finishing in-flight ones',
        );
        const idle =
          handler.inFlight === 0
            ? Promise.resolve()
            : new Promise<void>((resolve) => {
                idleWaiters.push(resolve);
              });
        let timer: NodeJS.Timeout | undefined;
        const serverClosed = server.close();
        await Promise.race([
          idle,
          new Promise<void>((r) => {
            timer = setTimeout(r, config.shutdownGraceMs);
          }),
        ]);
        clearTimeout(timer);
        deps.logger.info({ inFlight: handler.inFlight }, 'closing client connections');
        server.server.closeAllConnections();
        // Refused connections left the HTTP server's tracking; a client that never closes its half
        // would otherwise hold server.close() open for the linger period.
        refusals.destroyAll();
        await serverClosed;
        deps.logger.info({}, 'listener closed');
        sampler.close();
        // One last sample so the final state of this instance is on record.
        for (const s of sampler.sampleNow()) deps.sink.emit('tapwire.saturation.v1', s);
        await table.close();
        await admin.close();
        deps.logger.info({}, 'proxy stopped');
      })();
      return closing;
    },
  };
}
