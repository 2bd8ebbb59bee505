import type { IncomingMessage, ServerResponse } from 'node:http';
import { performance } from 'node:perf_hooks';
import { type AccessLogEvent, type SpanEventV1, TOPICS } from '@tapwire/schema';
import type { EventSink } from '@tapwire/stream';
import type { QueryRedactor } from '@tapwire/telemetry';
import type { Dispatcher } from 'undici';
import type { Target } from './balancer.js';
import type { ProxyConfig } from './config.js';
import type { ConsumerIdentifier } from './consumers.js';
import { PROXY_ERRORS, type ProxyErrorCode, proxyErrorBody } from './errors.js';
import type { ProxyMetrics } from './metrics.js';
import { type CacheFill, type CacheLookup, type ResponseCache, X_CACHE } from './policy/cache.js';
import type { StoredResponse } from './policy/cache-store.js';
import type { CachePolicy } from './policy/config.js';
import type { PolicyGate } from './policy/gate.js';
import type { HeaderRecorder } from './redact.js';
import { isNormalPath, ROUTE_UNMATCHED } from './routes.js';
import { formatTraceParent, type IdSource, parseTraceParent } from './trace-context.js';
import type { Upstream, UpstreamTable } from './upstreams.js';

type ErrorKind = AccessLogEvent['error_kind'];
type Method = AccessLogEvent['method'];

const METHODS = new Set(['GET', 'HEAD', 'POST', 'PUT', 'DELETE', 'CONNECT', 'OPTIONS', 'TRACE', 'PATCH']);
const HOP_BY_HOP = new Set([
  'connection',
  'keep-alive',
  'proxy-connection',
  'proxy-authorization',
  'proxy-authenticate',
  'transfer-encoding',
  'te',
  'trailer',
  'upgrade',
  'host',
  'traceparent',
  // Node has already answered `100 Continue` to the client; undici refuses to send the header.
  'expect',
]);
const REQUEST_ID = /^[A-Za-z0-9._:-]{1,128}$/;
// Sent again to another target when they could not connect: nothing reached the upstream.
const RETRYABLE_METHODS = new Set(['GET', 'HEAD', 'OPTIONS', 'PUT', 'DELETE', 'TRACE']);
const CONNECT_FAILURES = new Set([
  'ECONNREFUSED',
  'ENOTFOUND',
  'EHOSTUNREACH',
  'ENETUNREACH',
  'EAI_AGAIN',
  'UND_ERR_CONNECT_TIMEOUT',
]);
// Errors that count against a target for passive ejection (as do 502, 503 and 504 answers).
const TARGET_FAILURES = new Set<ErrorKind>([
  'upstream_refused',
  'upstream_reset',
  'upstream_timeout',
  'upstream_error',
]);
// An upstream answering these gets replaced by a stale-if-error entry when there is one (RFC 5861 §4).
const STALE_ON_STATUS = new Set([500, 502, 503, 504]);
const EMPTY_BODY = Buffer.alloc(0);

/** ExchangeDeps are what the request path needs, all built once at start. */
export interface ExchangeDeps {
  readonly sink: EventSink;
  readonly table: UpstreamTable;
  readonly ids: IdSource;
  readonly metrics: ProxyMetrics;
  readonly identifyConsumer: ConsumerIdentifier;
  /** admit enforces a route's auth and rate-limit policies (see policy/gate.ts). */
  readonly admit: PolicyGate;
  readonly redactQuery: QueryRedactor;
  readonly recordHeaders: { request: HeaderRecorder; response: HeaderRecorder };
  readonly redactPath: (path: string) => string;
  /** The response cache of routes with a cache policy (issue #23). */
  readonly cache: ResponseCache;
  readonly onSettled: () => void;
  /**
   * onAnswered is told of each response the proxy generates itself, with its code, cause and the
   * name of the upstream the request was routed to ('' when none).
   */
  readonly onAnswered: (code: ProxyErrorCode, cause: string, upstream: string) => void;
}

/** Exchange is everything recorded about one request, filled in as it goes. */
interface Exchange {
  startMs: number;
  startUs: number;
  method: Method;
  rawMethod: string;
  path: string;
  query: string;
  host: string;
  clientAddress: string;
  userAgent: string;
  requestId: string;
  traceId: string;
  serverSpanId: string;
  clientSpanId: string;
  parentSpanId: string;
  sampled: boolean;
  upstream: Upstream | undefined;
  service: string;
  tenant: string;
  route: string;
  consumer: string;
  status: number;
  errorKind: ErrorKind;
  /** What the response cache did ('' when the route has no cache policy). */
  cache: AccessLogEvent['cache'];
  /** The cache's decision and the copy of a forwarded response being stored, when the route caches. */
  cacheLookup: CacheLookup | undefined;
  cacheFill: CacheFill | undefined;
  /** The target forwarded to last (the access log's `target` is its host:port, '' when none). */
  to: Target | undefined;
  /** Times the request was sent again to another target after a connect failure. */
  retries: number;
  /** The rate limit that applied: quota per window and what was left (both 0 when none). */
  rateLimitLimit: number;
  rateLimitRemaining: number;
  /** Headers a policy adds to whatever answer the client gets (RateLimit, X-Cache, …); undefined when none. */
  policyHeaders: Record<string, string> | undefined;
  bytesIn: number;
  bytesOut: number;
  clientStartMs: number;
  clientEndMs: number;
  /** performance.now() just before the last response byte was handed to the socket; 0 until then. */
  endMs: number;
  headersSent: boolean;
  /** Its events are emitted (before the last response byte, or when it settled). */
  recorded: boolean;
  settled: boolean;
  holdsSlot: boolean;
  controller: Dispatcher.DispatchController | undefined;
  requestHeaders: Record<string, string | string[] | undefined>;
  responseHeaders: Record<string, string | string[] | undefined> | undefined;
}

function wallMicros(perfMs: number): number {
  return Math.round((performance.timeOrigin + perfMs) * 1000);
}

function errorKindOf(err: Error): { kind: ErrorKind; code: ProxyErrorCode } {
  const code = (err as { code?: string }).code ?? '';
  switch (code) {
    case 'ECONNREFUSED':
    case 'ENOTFOUND':
    case 'EHOSTUNREACH':
    case 'ENETUNREACH':
    case 'EAI_AGAIN':
      return { kind: 'upstream_refused', code: 'TAPWIRE_PROXY_UPSTREAM_REFUSED' };
    case 'UND_ERR_CONNECT_TIMEOUT':
    case 'UND_ERR_HEADERS_TIMEOUT':
    case 'UND_ERR_BODY_TIMEOUT':
    case 'ETIMEDOUT':
      return { kind: 'upstream_timeout', code: 'TAPWIRE_PROXY_UPSTREAM_TIMEOUT' };
    case 'ECONNRESET':
    case 'EPIPE':
    case 'UND_ERR_SOCKET':
    case 'UND_ERR_CLOSED':
      return { kind: 'upstream_reset', code: 'TAPWIRE_PROXY_UPSTREAM_RESET' };
    // undici refused the request before sending it: the upstream never saw it, so it is no upstream error.
    case 'UND_ERR_INVALID_ARG':
    case 'UND_ERR_NOT_SUPPORTED':
      return { kind: 'bad_request', code: 'TAPWIRE_PROXY_NOT_FORWARDABLE' };
    default:
      return { kind: 'upstream_error', code: 'TAPWIRE_PROXY_UPSTREAM_ERROR' };
  }
}

/** BodyTooLarge aborts an upstream request whose streamed body passed the configured limit. */
class BodyTooLarge extends Error {
  readonly code = 'TAPWIRE_PROXY_BODY_TOO_LARGE';
}

/**
 * createExchangeHandler builds the request path: match an upstream, continue or start the trace,
 * forward with streaming in both directions, and record the SERVER span, the CLIENT span and the
 * access log once the response is finished or the client went away. It never throws.
 */
export function createExchangeHandler(deps: ExchangeDeps, config: ProxyConfig) {
  const { sink, table, ids, metrics } = deps;
  const maxBody = config.limits.maxBodyBytes;
  const ratio = config.sampling.spanRatio;
  const threshold = Math.floor(ratio * 0x1_0000_0000);
  let inFlight = 0;
  let draining = false;

  function sampleNew(traceId: string): boolean {
    if (ratio >= 1) return true;
    if (ratio <= 0) return false;
    return Number.parseInt(traceId.slice(0, 8), 16) < threshold;
  }

  function begin(req: IncomingMessage, startMs: number): Exchange {
    const url = req.url ?? '/';
    const q = url.indexOf('?');
    const headers = req.headers;
    const incoming = parseTraceParent(headers.traceparent as string | undefined);
    const traceId = incoming?.traceId ?? ids.traceId();
    const rid = headers['x-request-id'];
    const rawMethod = req.method ?? 'GET';
    return {
      startMs,
      startUs: wallMicros(startMs),
      method: (METHODS.has(rawMethod) ? rawMethod : 'OTHER') as Method,
      rawMethod,
      path: q === -1 ? url : url.slice(0, q),
      query: q === -1 ? '' : url.slice(q + 1),
      host: headers.host ?? '',
      clientAddress: req.socket.remoteAddress ?? '',
      userAgent: (headers['user-agent'] ?? '').slice(0, 512),
      requestId: typeof rid === 'string' && REQUEST_ID.test(rid) ? rid : ids.spanId() + ids.spanId(),
      traceId,
      serverSpanId: ids.spanId(),
      clientSpanId: ids.spanId(),
      parentSpanId: incoming?.parentId ?? '',
      sampled: incoming ? incoming.sampled : sampleNew(traceId),
      upstream: undefined,
      service: config.service,
      tenant: config.tenant,
      route: ROUTE_UNMATCHED,
      consumer: '',
      status: 0,
      errorKind: 'none',
      cache: '',
      cacheLookup: undefined,
      cacheFill: undefined,
      to: undefined,
      retries: 0,
      rateLimitLimit: 0,
      rateLimitRemaining: 0,
      policyHeaders: undefined,
      bytesIn: 0,
      bytesOut: 0,
      clientStartMs: 0,
      clientEndMs: 0,
      endMs: 0,
      headersSent: false,
      recorded: false,
      settled: false,
      holdsSlot: false,
      controller: undefined,
      requestHeaders: headers,
      responseHeaders: undefined,
    };
  }

  function traceHeaders(ex: Exchange): Record<string, string> {
    return {
      traceparent: formatTraceParent(ex.traceId, ex.serverSpanId, ex.sampled),
      'x-request-id': ex.requestId,
    };
  }

  function answer(
    ex: Exchange,
    res: ServerResponse,
    code: ProxyErrorCode,
    kind: ErrorKind,
    extra?: Record<string, string>,
    cause: string = PROXY_ERRORS[code].message,
  ): void {
    ex.errorKind = kind;
    ex.status = PROXY_ERRORS[code].status;
    if (res.headersSent || res.destroyed) {
      res.destroy();
      return;
    }
    deps.onAnswered(code, cause, ex.upstream?.name ?? '');
    const body = proxyErrorBody(code, ex.requestId);
    ex.bytesOut = Buffer.byteLength(body);
    ex.headersSent = true;
    res.writeHead(ex.status, {
      'content-type': 'application/json; charset=utf-8',
      'content-length': String(ex.bytesOut),
      ...traceHeaders(ex),
      ...ex.policyHeaders,
      ...extra,
    });
    ex.endMs = performance.now();
    recordBeforeLastByte(ex);
    res.end(body);
  }

  function emit(ex: Exchange, endMs: number): void {
    const durationMs = endMs - ex.startMs;
    // The CLIENT span lies inside the SERVER span: an upstream call cut short by the client ends with it.
    const clientEnd = ex.clientEndMs === 0 ? endMs : Math.min(ex.clientEndMs, endMs);
    const upstreamMs = ex.clientStartMs > 0 ? Math.max(0, clientEnd - ex.clientStartMs) : 0;
    const path = deps.redactPath(ex.path).slice(0, 2048);
    const query = deps.redactQuery(ex.query).slice(0, 2048);
    const log: AccessLogEvent = {
      v: 2,
      id: ex.serverSpanId + ex.clientSpanId,
      ts: ex.startUs,
      tenant: ex.tenant,
      trace_id: ex.traceId,
      span_id: ex.serverSpanId,
      service: ex.service,
      upstream: ex.upstream?.name ?? '',
      route: ex.route,
      method: ex.method,
      status: ex.status,
      duration_ms: Math.round(durationMs * 1000) / 1000,
      upstream_ms: Math.round(upstreamMs * 1000) / 1000,
      bytes_in: ex.bytesIn,
      bytes_out: ex.bytesOut,
      consumer: ex.consumer,
      client_address: ex.clientAddress.slice(0, 64),
      server_address: ex.host.slice(0, 256),
      user_agent: ex.userAgent,
      path,
      query,
      error_kind: ex.errorKind,
      cache: ex.cache,
      target: ex.to?.address ?? '',
      retries: ex.retries,
      ratelimit_limit: ex.rateLimitLimit,
      ratelimit_remaining: ex.rateLimitRemaining,
    };
    sink.emit(TOPICS.accessLogs, log);
    metrics.request(ex.upstream?.name ?? '', ex.status, durationMs / 1000);
    if (ex.cache !== '') metrics.cacheRequest(ex.upstream?.name ?? '', ex.cache);
    if (!ex.sampled) return;

    // Spans carry the OpenTelemetry HTTP attributes a trace view needs; client address, user agent,
    // consumer and byte counts live once, in the access log of the same span_id. Keeping spans lean
    // is a third of the bytes every request costs on the way to Kafka (see test/bench/proxy).
    const name = `${ex.method} ${ex.route}`;
    const serverAttrs: Record<string, string> = {
      'http.request.method': ex.rawMethod.slice(0, 32),
      'http.route': ex.route,
      'http.response.status_code': String(ex.status),
      'url.path': path,
      'url.scheme': 'http',
    };
    if (query !== '') serverAttrs['url.query'] = query;
    if (ex.errorKind !== 'none') serverAttrs['error.type'] = ex.errorKind;
    deps.recordHeaders.request(ex.requestHeaders, 'http.request.header.', serverAttrs);
    const server: SpanEventV1 = {
      v: 1,
      id: ex.serverSpanId,
      ts: ex.startUs,
      tenant: ex.tenant,
      trace_id: ex.traceId,
      span_id: ex.serverSpanId,
      parent_span_id: ex.parentSpanId,
      name,
      kind: 'SERVER',
      service: ex.service,
      start: ex.startUs,
      duration: Math.max(0, Math.round(durationMs * 1000)),
      status:
        ex.status >= 500 || (ex.errorKind !== 'none' && ex.errorKind !== 'client_aborted')
          ? 'ERROR'
          : 'UNSET',
      status_message: ex.errorKind === 'none' ? '' : ex.errorKind,
      attributes: serverAttrs,
    };
    sink.emit(TOPICS.spans, server);
    const to = ex.to;
    if (!to || ex.clientStartMs === 0) return;
    const clientStartUs = wallMicros(ex.clientStartMs);
    const clientAttrs: Record<string, string> = {
      'http.request.method': ex.rawMethod.slice(0, 32),
      'server.address': to.serverAddress,
      'server.port': String(to.serverPort),
      'url.full': `${to.origin}${to.basePath}${path}${query === '' ? '' : `?${query}`}`.slice(0, 4096),
    };
    if (ex.responseHeaders) {
      clientAttrs['http.response.status_code'] = String(ex.status);
      deps.recordHeaders.response(ex.responseHeaders, 'http.response.header.', clientAttrs);
    }
    if (ex.errorKind !== 'none') clientAttrs['error.type'] = ex.errorKind;
    const client: SpanEventV1 = {
      v: 1,
      id: ex.clientSpanId,
      ts: clientStartUs,
      tenant: ex.tenant,
      trace_id: ex.traceId,
      span_id: ex.clientSpanId,
      parent_span_id: ex.serverSpanId,
      name,
      kind: 'CLIENT',
      service: ex.service,
      start: clientStartUs,
      duration: Math.max(0, Math.round(upstreamMs * 1000)),
      status: !ex.responseHeaders || ex.status >= 400 ? 'ERROR' : 'UNSET',
      status_message: ex.errorKind === 'none' ? '' : ex.errorKind,
      attributes: clientAttrs,
    };
    sink.emit(TOPICS.spans, client);
  }

  function record(ex: Exchange, endMs: number): void {
    if (ex.recorded) return;
    ex.recorded = true;
    try {
      emit(ex, endMs);
    } catch {
      // Telemetry never throws into the request path.
    }
  }

  /**
   * recordBeforeLastByte writes the request's events to the local log (the write-first sink writes
   * on flush, synchronously) before the last response byte is handed to the socket: a process
   * killed after the client got its whole answer has written the events (issue #18). A client that
   * goes away in that instant is recorded as answered.
   */
  function recordBeforeLastByte(ex: Exchange): void {
    record(ex, ex.endMs);
    void sink.flush().catch(() => {});
  }

  function settle(ex: Exchange, res: ServerResponse): void {
    if (ex.settled) return;
    ex.settled = true;
    // A finished response ends when its last byte was handed to the socket, not when the event loop
    // gets round to 'close': by then the client on the same host may long have read it (issue #17).
    const endMs = res.writableFinished && ex.endMs > 0 ? ex.endMs : performance.now();
    if (!res.writableFinished && ex.errorKind === 'none') {
      // The client went away before the response was complete.
      ex.errorKind = 'client_aborted';
      if (!ex.headersSent) ex.status = 499;
      ex.controller?.abort(new Error('client aborted'));
    }
    if (ex.holdsSlot) {
      ex.holdsSlot = false;
      ex.upstream!.inFlight--;
    }
    inFlight--;
    record(ex, endMs);
    deps.onSettled();
  }

  /** lookUpCache applies the route's cache policy; true when the request was answered from the cache. */
  function lookUpCache(
    ex: Exchange,
    up: Upstream,
    policy: CachePolicy,
    req: IncomingMessage,
    res: ServerResponse,
  ) {
    const lookup = deps.cache.lookup(up.name, policy, ex.rawMethod, ex.host, ex.path, ex.query, req.headers);
    ex.cacheLookup = lookup;
    if (lookup.result === 'hit') return serveStored(ex, res, lookup.entry!, 'hit');
    ex.cache = lookup.result;
    // The rate-limit step's headers are this request's own object: add to it.
    ex.policyHeaders ??= {};
    ex.policyHeaders['x-cache'] = X_CACHE[lookup.result];
    return false;
  }

  /** serveStale answers with the expired entry kept for stale-if-error, when there is one. */
  function serveStale(ex: Exchange, res: ServerResponse): boolean {
    const entry = ex.cacheLookup?.entry;
    if (!entry || ex.headersSent || !deps.cache.usableStale(entry)) return false;
    ex.clientEndMs = performance.now();
    return serveStored(ex, res, entry, 'stale');
  }

  /** serveStored answers with a cached response, recorded like a forwarded one (with no CLIENT span on a hit). */
  function serveStored(ex: Exchange, res: ServerResponse, entry: StoredResponse, result: 'hit' | 'stale') {
    const notModified =
      result === 'hit' ? deps.cache.notModifiedHeaders(entry, ex.requestHeaders) : undefined;
    ex.cache = result;
    ex.status = notModified ? 304 : entry.status;
    ex.headersSent = true;
    const body = ex.method === 'HEAD' || notModified ? EMPTY_BODY : entry.body;
    ex.bytesOut = body.length;
    if (res.destroyed) return true;
    const headers = notModified ?? deps.cache.headersOf(entry);
    Object.assign(headers, traceHeaders(ex), ex.policyHeaders);
    headers['x-cache'] = X_CACHE[result];
    res.writeHead(ex.status, headers);
    ex.endMs = performance.now();
    recordBeforeLastByte(ex);
    res.end(body);
    return true;
  }

  function forwardHeaders(
    ex: Exchange,
    up: Upstream,
    to: Target,
    req: IncomingMessage,
  ): Record<string, string | string[]> {
    const out: Record<string, string | string[]> = {};
    const h = req.headers;
    for (const name in h) {
      if (HOP_BY_HOP.has(name)) continue;
      const v = h[name];
      if (v !== undefined) out[name] = v;
    }
    out.host = up.config.preserveHost && ex.host !== '' ? ex.host : to.hostHeader;
    out.traceparent = formatTraceParent(ex.traceId, ex.clientSpanId, ex.sampled);
    out['x-request-id'] = ex.requestId;
    const xff = h['x-forwarded-for'];
    out['x-forwarded-for'] = xff ? `${xff}, ${ex.clientAddress}` : ex.clientAddress;
    out['x-forwarded-proto'] ??= 'http';
    if (ex.host !== '') out['x-forwarded-host'] ??= ex.host;
    return out;
  }

  function requestBody(ex: Exchange, req: IncomingMessage): AsyncIterable<Buffer> | null {
    const h = req.headers;
    if (
      h['transfer-encoding'] === undefined &&
      (h['content-length'] === undefined || h['content-length'] === '0')
    ) {
      return null;
    }
    return (async function* counted() {
      for await (const chunk of req as AsyncIterable<Buffer>) {
        ex.bytesIn += chunk.length;
        if (maxBody > 0 && ex.bytesIn > maxBody) throw new BodyTooLarge('request body too large');
        yield chunk;
      }
    })();
  }

  /** forward chooses a target of the upstream (503 when none takes traffic) and sends the request there. */
  function forward(ex: Exchange, up: Upstream, req: IncomingMessage, res: ServerResponse): void {
    const first = up.balancer.pick();
    if (!first) {
      // Every target failing is the outage stale-if-error is for.
      if (serveStale(ex, res)) return;
      answer(ex, res, 'TAPWIRE_PROXY_NO_HEALTHY_TARGET', 'no_healthy_target', { 'retry-after': '1' });
      return;
    }
    up.balancer.countRequest();
    ex.clientStartMs = performance.now();
    send(ex, up, first, undefined, req, res, requestBody(ex, req));
  }

  /**
   * send forwards the request to one target, and again to another target when an idempotent
   * request without a body could not connect (within attempts and the retry budget). The CLIENT
   * span covers every attempt.
   */
  function send(
    ex: Exchange,
    up: Upstream,
    to: Target,
    tried: Target[] | undefined,
    req: IncomingMessage,
    res: ServerResponse,
    body: AsyncIterable<Buffer> | null,
  ): void {
    const path =
      up.config.stripPrefix && up.prefix !== '/' ? ex.path.slice(up.prefix.length) || '/' : ex.path;
    const lb = up.balancer;
    ex.to = to;
    let open = lb.multi;
    if (open) to.inFlight++;
    const release = (): void => {
      if (!open) return;
      open = false;
      to.inFlight--;
    };
    const handler: Dispatcher.DispatchHandler = {
      onRequestStart(controller) {
        ex.controller = controller;
        if (ex.settled) controller.abort(new Error('client aborted'));
      },
      onResponseStart(controller, statusCode, headers, statusMessage) {
        if (statusCode < 200) return; // 1xx informational: wait for the final response
        if (lb.multi) {
          if (statusCode === 502 || statusCode === 503 || statusCode === 504) lb.failed(to);
          else lb.succeeded(to);
        }
        if (STALE_ON_STATUS.has(statusCode) && serveStale(ex, res)) {
          controller.abort(new Error('served stale'));
          return;
        }
        ex.status = statusCode;
        ex.responseHeaders = headers;
        const out: Record<string, string | string[]> = {};
        for (const name in headers) {
          if (HOP_BY_HOP.has(name) && name !== 'host') continue;
          const v = headers[name];
          if (v !== undefined) out[name] = v;
        }
        out.traceparent = formatTraceParent(ex.traceId, ex.serverSpanId, ex.sampled);
        out['x-request-id'] = ex.requestId;
        if (ex.policyHeaders) for (const name in ex.policyHeaders) out[name] = ex.policyHeaders[name]!;
        ex.headersSent = true;
        if (ex.cacheLookup) ex.cacheFill = deps.cache.fill(ex.cacheLookup, statusCode, headers);
        if (res.destroyed) {
          controller.abort(new Error('client aborted'));
          return;
        }
        res.writeHead(statusCode, statusMessage ?? '', out);
      },
      onResponseData(controller, chunk) {
        ex.bytesOut += chunk.length;
        ex.endMs = performance.now();
        ex.cacheFill?.add(chunk);
        if (!res.write(chunk)) {
          controller.pause();
          res.once('drain', () => controller.resume());
        }
      },
      onResponseEnd() {
        release();
        ex.clientEndMs = performance.now();
        ex.cacheFill?.end();
        // The clock is read before the bytes go out: once they are written, the kernel may run the
        // woken client first. res.end() sends the last byte when writes are still corked (same tick),
        // for a chunked terminator, or when no body was written; otherwise it left with the last write.
        const socket = res.socket;
        if (ex.endMs === 0 || res.chunkedEncoding || (socket !== null && socket.writableCorked > 0))
          ex.endMs = ex.clientEndMs;
        if (!res.destroyed) recordBeforeLastByte(ex);
        res.end();
      },
      onResponseError(_controller, err) {
        release();
        if (ex.clientEndMs === 0) ex.clientEndMs = performance.now();
        if (ex.settled || ex.cache === 'stale') return;
        if (err instanceof BodyTooLarge) {
          answer(ex, res, 'TAPWIRE_PROXY_BODY_TOO_LARGE', 'body_too_large', { connection: 'close' });
          return;
        }
        const { kind, code } = errorKindOf(err);
        if (lb.multi && TARGET_FAILURES.has(kind)) lb.failed(to);
        if (
          !ex.headersSent &&
          body === null &&
          CONNECT_FAILURES.has((err as { code?: string }).code ?? '') &&
          RETRYABLE_METHODS.has(ex.rawMethod)
        ) {
          const done = tried ?? [];
          done.push(to);
          const next = lb.pick(done);
          if (next && lb.tryRetry(ex.retries)) {
            ex.retries++;
            ex.clientEndMs = 0;
            send(ex, up, next, done, req, res, body);
            return;
          }
        }
        if (ex.headersSent) {
          // Mid-body failure: the status is already on the wire, so the only honest signal is a cut connection.
          ex.errorKind = kind;
          res.destroy();
          return;
        }
        if (kind !== 'bad_request' && serveStale(ex, res)) return;
        answer(ex, res, code, kind, undefined, `upstream ${up.name}: ${err.message}`);
      },
    };
    to.pool.dispatch(
      {
        path: `${to.basePath}${path}${ex.query === '' ? '' : `?${ex.query}`}`,
        method: ex.rawMethod as Dispatcher.HttpMethod,
        headers: forwardHeaders(ex, up, to, req),
        body: body as unknown as Dispatcher.DispatchOptions['body'],
      },
      handler,
    );
  }

  return {
    get inFlight() {
      return inFlight;
    },
    drain() {
      draining = true;
    },
    /** handle serves one request; `startMs` is performance.now() when it arrived. */
    handle(req: IncomingMessage, res: ServerResponse, startMs: number): void {
      inFlight++;
      const ex = begin(req, startMs);
      res.once('close', () => settle(ex, res));
      try {
        if (draining) {
          answer(ex, res, 'TAPWIRE_PROXY_SHUTTING_DOWN', 'proxy_error', {
            connection: 'close',
            'retry-after': '1',
          });
          return;
        }
        const up = table.match(ex.host, ex.path);
        if (!up) {
          answer(ex, res, 'TAPWIRE_PROXY_NO_ROUTE', 'unmatched');
          return;
        }
        ex.upstream = up;
        ex.service = up.service;
        ex.tenant = up.tenant;
        if (up.strictPaths && !isNormalPath(ex.path)) {
          // Refused rather than normalized: the upstream then gets exactly the path whose policy applied.
          ex.route = '__invalid__';
          answer(ex, res, 'TAPWIRE_PROXY_NOT_FORWARDABLE', 'bad_request');
          return;
        }
        ex.route = up.routes.resolve(ex.path);
        const routePolicies = up.policies(ex.route);
        // A route with an auth policy names its consumer in the auth step: the credential is checked once.
        if (!routePolicies.auth) ex.consumer = deps.identifyConsumer(req.headers);
        const declared = Number(req.headers['content-length'] ?? 0);
        if (maxBody > 0 && declared > maxBody) {
          answer(ex, res, 'TAPWIRE_PROXY_BODY_TOO_LARGE', 'body_too_large', { connection: 'close' });
          return;
        }
        if (!routePolicies.none) {
          const refused = deps.admit(ex, req.headers, routePolicies, up.name);
          if (refused) {
            answer(ex, res, refused.code, refused.kind, refused.headers);
            return;
          }
        }
        if (routePolicies.cache && lookUpCache(ex, up, routePolicies.cache, req, res)) return;
        if (up.inFlight >= up.config.maxConcurrency) {
          answer(ex, res, 'TAPWIRE_PROXY_OVER_LIMIT', 'over_limit', { 'retry-after': '1' });
          return;
        }
        up.inFlight++;
        ex.holdsSlot = true;
        forward(ex, up, req, res);
      } catch {
        answer(ex, res, 'TAPWIRE_PROXY_UPSTREAM_ERROR', 'proxy_error');
      }
    },
    /**
     * reject answers and records a request the proxy refuses before matching an upstream (a malformed
     * request line, an ambiguous Host, a bad URL); `startMs` is performance.now() when it arrived.
     */
    reject(
      req: IncomingMessage,
      res: ServerResponse,
      startMs: number,
      code: ProxyErrorCode,
      extra?: Record<string, string>,
    ): void {
      inFlight++;
      const ex = begin(req, startMs);
      ex.route = '__invalid__';
      res.once('close', () => settle(ex, res));
      answer(ex, res, code, 'bad_request', extra);
    },
    /**
     * recordRejected records a request Node's HTTP parser refused before it reached a handler and
     * returns the request id to answer it with.
     */
    recordRejected(status: number, kind: ErrorKind, clientAddress: string): string {
      const startMs = performance.now();
      const traceId = ids.traceId();
      const ex: Exchange = {
        ...begin(
          {
            url: '/',
            headers: {},
            method: 'GET',
            socket: { remoteAddress: clientAddress },
          } as unknown as IncomingMessage,
          startMs,
        ),
        traceId,
        method: 'OTHER',
        rawMethod: 'OTHER',
        route: '__invalid__',
        status,
        errorKind: kind,
        sampled: false,
      };
      try {
        emit(ex, startMs);
      } catch {
        // Never throw from the parser's error path.
      }
      return ex.requestId;
    },
  };
}

/** ExchangeHandler is the request path built by createExchangeHandler. */
export type ExchangeHandler = ReturnType<typeof createExchangeHandler>;
