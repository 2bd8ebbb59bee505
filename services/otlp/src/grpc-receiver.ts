import { performance } from 'node:perf_hooks';
import {
  Metadata,
  Server,
  ServerCredentials,
  type ServerUnaryCall,
  type ServiceDefinition,
  type sendUnaryData,
  status,
} from '@grpc/grpc-js';
import { encodeTraceResponse, TRACE_EXPORT_PATH } from '@tapwire/otlp';
import { explainListenError, type ListenerSetting } from '@tapwire/telemetry';
import type { TokenLookup } from './auth.js';
import type { ExportPath } from './export-path.js';
import type { OtlpMetrics, Outcome } from './metrics.js';
import { encodeRetryStatus } from './retry-status.js';
import type { Throttle } from './throttle.js';

const identity = (b: Buffer): Buffer => b;

// Bodies stay raw Buffers through grpc-js: the mapper decodes them, so a malformed message is an
// INVALID_ARGUMENT with the decoder's message rather than an INTERNAL from grpc-js.
const TRACE_SERVICE: ServiceDefinition = {
  Export: {
    path: TRACE_EXPORT_PATH,
    requestStream: false,
    responseStream: false,
    requestSerialize: identity,
    requestDeserialize: identity,
    responseSerialize: identity,
    responseDeserialize: identity,
  },
};

function first(md: Metadata, key: string): string | undefined {
  const v = md.get(key)[0];
  return typeof v === 'string' ? v : undefined;
}

/** GrpcReceiver is OTLP/gRPC: the server, and its bind and shutdown. */
export interface GrpcReceiver {
  readonly server: Server;
  /** listen binds and resolves to the bound address as host:port; a refusal is a ListenError naming the setting. */
  listen(at: ListenerSetting): Promise<string>;
  /** close stops accepting, waits up to `graceMs` for calls in flight, then cancels the rest. */
  close(graceMs: number): Promise<void>;
}

/**
 * createGrpcReceiver builds OTLP/gRPC's TraceService/Export. grpc-js enforces the size limit
 * (RESOURCE_EXHAUSTED, after gzip decompression too) before the handler; the handler answers
 * UNAUTHENTICATED without a known token, RESOURCE_EXHAUSTED with a google.rpc.RetryInfo detail when
 * the write path is saturated (the only retryable RESOURCE_EXHAUSTED, per
 * https://opentelemetry.io/docs/specs/otlp/#failures), INVALID_ARGUMENT for a bad message and
 * UNAVAILABLE when the local log failed.
 */
export function createGrpcReceiver(deps: {
  exportPath: ExportPath;
  lookup: TokenLookup;
  throttle: Throttle;
  metrics: OtlpMetrics;
  maxMessageBytes: number;
  retryAfterS: number;
}): GrpcReceiver {
  const { metrics, throttle, retryAfterS } = deps;
  const server = new Server({
    'grpc.max_receive_message_length': deps.maxMessageBytes,
  });

  async function handle(
    call: ServerUnaryCall<Buffer, Buffer>,
    callback: sendUnaryData<Buffer>,
  ): Promise<void> {
    const startMs = performance.now();
    const done = (outcome: Outcome) => metrics.request('grpc', outcome, (performance.now() - startMs) / 1000);
    const exporter = deps.lookup(
      first(call.metadata, 'authorization'),
      first(call.metadata, 'x-tapwire-token'),
    );
    if (!exporter) {
      done('unauthenticated');
      callback({
        code: status.UNAUTHENTICATED,
        details:
          'missing or unknown token: send metadata "authorization: Bearer <token>" or "x-tapwire-token: <token>"',
      });
      return;
    }
    const body = call.request;
    metrics.bytes('grpc', body.length);
    const reason = throttle.refusal(body.length);
    if (reason) {
      metrics.throttled('grpc', reason);
      done('throttled');
      const message = `the receiver is saturated (${reason}); retry after ${retryAfterS} s`;
      const trailers = new Metadata();
      trailers.set(
        'grpc-status-details-bin',
        encodeRetryStatus(status.RESOURCE_EXHAUSTED, message, retryAfterS),
      );
      callback({ code: status.RESOURCE_EXHAUSTED, details: message, metadata: trailers });
      return;
    }
    throttle.acquire(body.length);
    try {
      const written = await deps.exportPath.write(body, 'protobuf', exporter, 'grpc');
      done(written.outcome);
      if (written.outcome === 'bad_request')
        callback({ code: status.INVALID_ARGUMENT, details: written.message });
      else if (written.outcome === 'unavailable')
        callback({ code: status.UNAVAILABLE, details: written.message });
      else
        callback(
          null,
          Buffer.from(
            encodeTraceResponse(
              { rejectedSpans: written.rejected, errorMessage: written.errorMessage },
              'protobuf',
            ),
          ),
        );
    } catch {
      done('unavailable');
      callback({ code: status.UNAVAILABLE, details: 'the export could not be handled; retry later' });
    } finally {
      throttle.release(body.length);
    }
  }

  server.addService(TRACE_SERVICE, {
    Export: (call: ServerUnaryCall<Buffer, Buffer>, callback: sendUnaryData<Buffer>) => {
      void handle(call, callback);
    },
  });

  return {
    server,
    listen(at) {
      return new Promise<string>((resolve, reject) => {
        const host = at.host.includes(':') ? `[${at.host}]` : at.host;
        server.bindAsync(`${host}:${at.port}`, ServerCredentials.createInsecure(), (err, port) => {
          if (err) {
            // grpc-js reports the OS refusal only in its message ("... EADDRINUSE ...").
            const code = /\b(EADDRINUSE|EACCES|EADDRNOTAVAIL|ENOTFOUND)\b/.exec(err.message)?.[1];
            reject(explainListenError(code ? Object.assign(err, { code }) : err, at));
          } else resolve(`${host}:${port}`);
        });
      });
    },
    close(graceMs) {
      return new Promise<void>((resolve) => {
        const timer = setTimeout(() => {
          server.forceShutdown();
          resolve();
        }, graceMs);
        timer.unref();
        server.tryShutdown(() => {
          clearTimeout(timer);
          resolve();
        });
      });
    },
  };
}
