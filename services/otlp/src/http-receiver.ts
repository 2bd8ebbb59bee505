import { performance } from 'node:perf_hooks';
import { promisify } from 'node:util';
import { gunzip } from 'node:zlib';
import { encodeStatus, encodeTraceResponse, type OtlpFormat } from '@tapwire/otlp';
import type { Logger } from '@tapwire/telemetry';
import Fastify, { type FastifyInstance, type FastifyReply, type FastifyRequest } from 'fastify';
import type { Exporter, TokenLookup } from './auth.js';
import type { ExportPath } from './export-path.js';
import type { OtlpMetrics, Outcome } from './metrics.js';
import { encodeRetryStatus, retryStatusJson } from './retry-status.js';
import type { Throttle } from './throttle.js';

const gunzipAsync = promisify(gunzip);

/** OTLP_HTTP_TRACES_PATH is where OTLP/HTTP exporters send traces. */
export const OTLP_HTTP_TRACES_PATH = '/v1/traces';

const MEDIA_TYPES: Readonly<Record<string, OtlpFormat>> = {
  'application/x-protobuf': 'protobuf',
  'application/json': 'json',
};
const CONTENT_TYPE: Readonly<Record<OtlpFormat, string>> = {
  protobuf: 'application/x-protobuf',
  json: 'application/json',
};

// google.rpc.Code values carried in the Status bodies of refusals.
const RPC = { INVALID_ARGUMENT: 3, RESOURCE_EXHAUSTED: 8, UNAUTHENTICATED: 16, UNAVAILABLE: 14 } as const;

interface RequestState {
  readonly startMs: number;
  readonly format: OtlpFormat;
  exporter?: Exporter;
  held: number;
}

function formatOf(contentType: string | undefined): OtlpFormat | undefined {
  if (!contentType) return undefined;
  const semi = contentType.indexOf(';');
  return MEDIA_TYPES[(semi < 0 ? contentType : contentType.slice(0, semi)).trim().toLowerCase()];
}

function header(value: string | string[] | undefined): string | undefined {
  return Array.isArray(value) ? value[0] : value;
}

/**
 * createHttpReceiver builds OTLP/HTTP: POST /v1/traces with application/x-protobuf or
 * application/json, optionally gzip-compressed. Answers follow https://opentelemetry.io/docs/specs/otlp/#otlphttp-response:
 * 200 with ExportTraceServiceResponse (partial_success when spans were rejected), 400 with a
 * google.rpc.Status for a bad body, 401 without a known token, 413 over the size limit, 415 for
 * another content type or encoding, 429 with Retry-After when the write path is saturated, 503
 * when the local log failed; each body in the request's format.
 */
export function createHttpReceiver(deps: {
  exportPath: ExportPath;
  lookup: TokenLookup;
  throttle: Throttle;
  metrics: OtlpMetrics;
  logger: Logger;
  maxMessageBytes: number;
  retryAfterS: number;
}): FastifyInstance {
  const { metrics, throttle, maxMessageBytes, retryAfterS } = deps;
  const states = new WeakMap<FastifyRequest, RequestState>();
  const app = Fastify({ logger: false, bodyLimit: maxMessageBytes, return503OnClosing: true });

  function answer(
    request: FastifyRequest,
    reply: FastifyReply,
    status: number,
    outcome: Outcome,
    format: OtlpFormat,
    body: Uint8Array | string,
  ): FastifyReply {
    const state = states.get(request);
    if (state && state.held > 0) {
      throttle.release(state.held);
      state.held = 0;
    }
    metrics.request('http', outcome, (performance.now() - (state?.startMs ?? performance.now())) / 1000);
    return reply
      .code(status)
      .header('content-type', CONTENT_TYPE[format])
      .send(
        typeof body === 'string'
          ? Buffer.from(body)
          : Buffer.from(body.buffer, body.byteOffset, body.byteLength),
      );
  }

  function refuse(
    request: FastifyRequest,
    reply: FastifyReply,
    status: number,
    outcome: Outcome,
    code: number,
    message: string,
  ): FastifyReply {
    const format = states.get(request)?.format ?? 'json';
    return answer(request, reply, status, outcome, format, encodeStatus({ code, message }, format));
  }

  function throttled(request: FastifyRequest, reply: FastifyReply, reason: string): FastifyReply {
    const format = states.get(request)?.format ?? 'json';
    const message = `the receiver is saturated (${reason}); retry after ${retryAfterS} s`;
    reply.header('retry-after', String(retryAfterS));
    return answer(
      request,
      reply,
      429,
      'throttled',
      format,
      format === 'json'
        ? retryStatusJson(RPC.RESOURCE_EXHAUSTED, message, retryAfterS)
        : encodeRetryStatus(RPC.RESOURCE_EXHAUSTED, message, retryAfterS),
    );
  }

  app.removeAllContentTypeParsers();
  app.addContentTypeParser(
    Object.keys(MEDIA_TYPES),
    { parseAs: 'buffer', bodyLimit: maxMessageBytes },
    (_req, body, done) => done(null, body),
  );

  // Refuse before the body is read: no token, a content type or encoding we do not speak, a
  // declared size over the limit, or a saturated write path.
  app.addHook('onRequest', async (request, reply) => {
    if (request.url.split('?', 1)[0] !== OTLP_HTTP_TRACES_PATH || request.method !== 'POST') return;
    const format = formatOf(request.headers['content-type']);
    const state: RequestState = { startMs: performance.now(), format: format ?? 'json', held: 0 };
    states.set(request, state);
    const exporter = deps.lookup(
      header(request.headers.authorization),
      header(request.headers['x-tapwire-token']),
    );
    if (!exporter)
      return refuse(
        request,
        reply,
        401,
        'unauthenticated',
        RPC.UNAUTHENTICATED,
        'missing or unknown token: send "Authorization: Bearer <token>" or "x-tapwire-token: <token>"',
      );
    state.exporter = exporter;
    if (!format)
      return refuse(
        request,
        reply,
        415,
        'unsupported',
        RPC.INVALID_ARGUMENT,
        'Content-Type must be application/x-protobuf or application/json',
      );
    const encoding = header(request.headers['content-encoding'])?.trim().toLowerCase();
    if (encoding && encoding !== 'gzip' && encoding !== 'identity')
      return refuse(
        request,
        reply,
        415,
        'unsupported',
        RPC.INVALID_ARGUMENT,
        'Content-Encoding must be gzip or none',
      );
    const declared = Number(request.headers['content-length'] ?? 0);
    if (declared > maxMessageBytes) return tooLarge(request, reply);
    const reason = throttle.refusal(declared);
    if (reason) {
      metrics.throttled('http', reason);
      return throttled(request, reply, reason);
    }
    return undefined;
  });

  function tooLarge(request: FastifyRequest, reply: FastifyReply): FastifyReply {
    return refuse(
      request,
      reply,
      413,
      'too_large',
      RPC.RESOURCE_EXHAUSTED,
      `the request is larger than otlp.limits.maxMessageBytes (${maxMessageBytes} bytes, after decompression)`,
    );
  }

  app.post(OTLP_HTTP_TRACES_PATH, async (request, reply) => {
    const state = states.get(request)!;
    let body = request.body as Buffer | undefined;
    if (!body) body = Buffer.alloc(0);
    if (header(request.headers['content-encoding'])?.trim().toLowerCase() === 'gzip') {
      try {
        body = await gunzipAsync(body, { maxOutputLength: maxMessageBytes });
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code === 'ERR_BUFFER_TOO_LARGE') return tooLarge(request, reply);
        return refuse(request, reply, 400, 'bad_request', RPC.INVALID_ARGUMENT, 'the body is not valid gzip');
      }
    }
    metrics.bytes('http', body.length);
    // Counted again with the decompressed size: that is what decoding holds in memory.
    const reason = throttle.refusal(body.length);
    if (reason) {
      metrics.throttled('http', reason);
      return throttled(request, reply, reason);
    }
    throttle.acquire(body.length);
    state.held = body.length;
    const written = await deps.exportPath.write(body, state.format, state.exporter!, 'http');
    switch (written.outcome) {
      case 'bad_request':
        return refuse(request, reply, 400, 'bad_request', RPC.INVALID_ARGUMENT, written.message);
      case 'unavailable':
        reply.header('retry-after', String(retryAfterS));
        return refuse(request, reply, 503, 'unavailable', RPC.UNAVAILABLE, written.message);
      default:
        return answer(
          request,
          reply,
          200,
          written.outcome,
          state.format,
          encodeTraceResponse(
            { rejectedSpans: written.rejected, errorMessage: written.errorMessage },
            state.format,
          ),
        );
    }
  });

  app.setErrorHandler((err: { statusCode?: number; code?: string; message?: string }, request, reply) => {
    if (err.statusCode === 413 || err.code === 'FST_ERR_CTP_BODY_TOO_LARGE') return tooLarge(request, reply);
    if (err.statusCode === 415)
      return refuse(request, reply, 415, 'unsupported', RPC.INVALID_ARGUMENT, 'unsupported Content-Type');
    if (err.statusCode !== undefined && err.statusCode < 500)
      return refuse(request, reply, 400, 'bad_request', RPC.INVALID_ARGUMENT, 'malformed request');
    deps.logger.error({ code: err.code, err: err.message }, 'an export failed unexpectedly; answered 503');
    return refuse(
      request,
      reply,
      503,
      'unavailable',
      RPC.UNAVAILABLE,
      'the export could not be handled; retry later',
    );
  });
  return app;
}
