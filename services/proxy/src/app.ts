import type { Socket } from 'node:net';
import { hostname } from 'node:os';
import { performance } from 'node:perf_hooks';
import type { EventSink } from '@tapwire/kafka';
import { type AdminServer, createAdminServer, type Logger } from '@tapwire/telemetry';
import Fastify, { type FastifyInstance } from 'fastify';
import type { ProxyConfig } from './config.js';
import { createConsumerIdentifier } from './consumers.js';
import { PROXY_ERRORS, type ProxyErrorCode, proxyErrorBody } from './errors.js';
import { createExchangeHandler, type ExchangeHandler } from './exchange.js';
import { createProxyMetrics, type ProxyMetrics } from './metrics.js';
import { createHeaderRecorder, createQueryRedactor } from './redact.js';

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

function rejectClient(socket: Socket, code: ProxyErrorCode): void {
  if (!socket.writable) {
    socket.destroy();
    return;
  }
  const body = proxyErrorBody(code, '');
  const status = PROXY_ERRORS[code].status;
  socket.end(
    `HTTP/1.1 ${status} ${code}\r\ncontent-type: application/json; charset=utf-8\r\ncontent-length: ${Buffer.byteLength(body)}\r\nconnection: close\r\n\r\n${body}`,
  );
}

/** buildProxy wires the proxy from its parts; nothing listens until start(). */
export function buildProxy(deps: { sink: EventSink; logger: Logger }, config: ProxyConfig): TapwireProxy {
  const table = createUpstreamTable(config);
  const ids = createIdSource();
  let exchange: ExchangeHandler | undefined;
  const metrics = createProxyMetrics(table.all, deps.sink, () => exchange?.inFlight ?? 0);
  let idleWaiters: (() => void)[] = [];
  exchange = createExchangeHandler(
    {
      sink: deps.sink,
      table,
      ids,
      metrics,
      identifyConsumer: createConsumerIdentifier(config.consumers),
      redactQuery: createQueryRedactor(config.redaction.queryParams),
      recordHeaders: {
        request: createHeaderRecorder(config.redaction.recordRequestHeaders, config.redaction.headers),
        response: createHeaderRecorder(config.redaction.recordResponseHeaders, config.redaction.headers),
      },
      redactPath,
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
    { sink: deps.sink, upstreams: table.all, ids },
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
      handler.recordRejected(status, kind, socket.remoteAddress ?? '');
      rejectClient(socket as Socket, errorCode);
    },
  });
  // Bodies are streamed to the upstream untouched: no parser may read them.
  server.removeAllContentTypeParsers();
  server.addContentTypeParser('*', (_req, _payload, done) => done(null));
  server.route({
    method: [...ALL_METHODS],
    url: '*',
    handler(request, reply) {
      reply.hijack();
      handler.handle(request.raw, reply.raw, performance.now());
    },
  });
  server.setNotFoundHandler((request, reply) => {
    reply.hijack();
    handler.handle(request.raw, reply.raw, performance.now());
  });

  let ready = false;
  const admin = createAdminServer({
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
      const proxyUrl = await server.listen({ host: config.listen.host, port: config.listen.port });
      const adminUrl = await admin.listen();
      sampler.start();
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
