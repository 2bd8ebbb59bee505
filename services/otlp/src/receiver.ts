import { performance } from 'node:perf_hooks';
import { type EmissionStats, writtenOnly } from '@tapwire/emission';
import { createTraceMapper } from '@tapwire/otlp';
import type { EventSink } from '@tapwire/stream';
import { type AdminServer, createAdminServer, type Logger, listenAt } from '@tapwire/telemetry';
import type { FastifyInstance } from 'fastify';
import { createTokenLookup } from './auth.js';
import type { OtlpConfig } from './config.js';
import { createExportPath } from './export-path.js';
import { createGrpcReceiver, type GrpcReceiver } from './grpc-receiver.js';
import { createHttpReceiver } from './http-receiver.js';
import { createOtlpMetrics, type OtlpCounts, type OtlpMetrics } from './metrics.js';
import { createThrottle, type Throttle } from './throttle.js';

/** OtlpReceiverStats is what the receiver did since it started, and where its span events are. */
export interface OtlpReceiverStats extends OtlpCounts {
  readonly emission: EmissionStats;
}

/** OtlpReceiverUrls are the bound addresses: what exporters and scrapers are pointed at. */
export interface OtlpReceiverUrls {
  /** OTLP/gRPC endpoint, e.g. http://127.0.0.1:4317 (what OTEL_EXPORTER_OTLP_ENDPOINT takes for gRPC). */
  readonly grpcUrl: string;
  /** OTLP/HTTP base URL, e.g. http://127.0.0.1:4318; traces go to `${httpUrl}/v1/traces`. */
  readonly httpUrl: string;
  readonly adminUrl: string;
}

/** OtlpReceiver is a built receiver: its servers, its parts for tests, and its lifecycle. */
export interface OtlpReceiver {
  readonly http: FastifyInstance;
  readonly grpc: GrpcReceiver;
  readonly admin: AdminServer;
  readonly metrics: OtlpMetrics;
  readonly throttle: Throttle;
  stats(): OtlpReceiverStats;
  /** start listens on OTLP/gRPC, OTLP/HTTP and the admin address, in that order. */
  start(): Promise<OtlpReceiverUrls>;
  /** close stops accepting and lets exports in flight finish within the grace period; the caller closes the sink afterwards. */
  close(): Promise<void>;
}

// A wildcard address is not one an exporter can send to: the URL names loopback instead.
function reachable(host: string): string {
  if (host === '0.0.0.0' || host === '') return '127.0.0.1';
  if (host === '::' || host === '[::]') return '[::1]';
  return host.includes(':') && !host.startsWith('[') ? `[${host}]` : host;
}

/**
 * buildOtlpReceiver wires the receiver from its parts; nothing listens until start(). `emission`
 * reports where the events are (default: the sink's own counters, nothing shipped) and feeds the
 * throttle; `now` (ms, default performance.now) paces it.
 */
export function buildOtlpReceiver(
  deps: { sink: EventSink; logger: Logger; emission?: () => EmissionStats; now?: () => number },
  config: OtlpConfig,
): OtlpReceiver {
  const emission = deps.emission ?? writtenOnly(deps.sink);
  const throttle = createThrottle({ emission, now: deps.now ?? (() => performance.now()) }, config.throttle);
  const metrics = createOtlpMetrics(emission, () => throttle.inFlightBytes);
  const lookup = createTokenLookup(config.tokens);
  const exportPath = createExportPath({
    sink: deps.sink,
    mapper: createTraceMapper({ limits: config.limits, redaction: config.redaction }),
    metrics,
    logger: deps.logger,
    onWriteFailed: () => throttle.writeFailed(),
  });
  const transport = {
    exportPath,
    lookup,
    throttle,
    metrics,
    maxMessageBytes: config.limits.maxMessageBytes,
    retryAfterS: config.throttle.retryAfterS,
  };
  const http = createHttpReceiver({ ...transport, logger: deps.logger });
  const grpc = createGrpcReceiver(transport);
  let ready = false;
  const admin = createAdminServer({
    section: 'otlp.admin',
    host: config.admin.host,
    port: config.admin.port,
    registry: metrics.registry,
    readiness: () => {
      const saturated = throttle.refusal(0);
      return { ready, ...(saturated ? { throttling: saturated } : {}) };
    },
  });

  let closing: Promise<void> | undefined;
  return {
    http,
    grpc,
    admin,
    metrics,
    throttle,
    stats: () => ({ ...metrics.counts(), emission: emission() }),
    async start() {
      const grpcAddress = await grpc.listen({ section: 'otlp.grpc', ...config.grpc });
      let httpAddress: string;
      let adminUrl: string;
      try {
        httpAddress = await listenAt({ section: 'otlp.http', ...config.http }, () =>
          http.listen({ host: config.http.host, port: config.http.port }),
        );
        adminUrl = await admin.listen();
      } catch (err) {
        // Nothing was received yet: release the ports so the caller can exit or retry.
        await Promise.all([http.close(), grpc.close(0)]);
        throw err;
      }
      ready = true;
      const grpcPort = grpcAddress.slice(grpcAddress.lastIndexOf(':') + 1);
      const httpPort = new URL(httpAddress).port;
      return {
        grpcUrl: `http://${reachable(config.grpc.host)}:${grpcPort}`,
        httpUrl: `http://${reachable(config.http.host)}:${httpPort}`,
        adminUrl,
      };
    },
    close() {
      closing ??= (async () => {
        ready = false;
        await Promise.all([grpc.close(config.shutdownGraceMs), http.close()]);
        await admin.close();
      })();
      return closing;
    },
  };
}
