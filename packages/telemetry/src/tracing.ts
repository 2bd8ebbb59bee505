import { Metadata } from '@grpc/grpc-js';
import { OTLPTraceExporter } from '@opentelemetry/exporter-trace-otlp-grpc';
import { resourceFromAttributes } from '@opentelemetry/resources';
import { NodeSDK } from '@opentelemetry/sdk-node';
import {
  BatchSpanProcessor,
  ParentBasedSampler,
  TraceIdRatioBasedSampler,
} from '@opentelemetry/sdk-trace-base';
import { ATTR_SERVICE_NAME, ATTR_SERVICE_VERSION } from '@opentelemetry/semantic-conventions';
import type { TelemetryConfig } from '@tapwire/config';

/** Tracing is the handle of a started OpenTelemetry SDK; shutdown flushes pending spans. */
export interface Tracing {
  readonly enabled: boolean;
  shutdown(): Promise<void>;
}

/** TracingOptions names the service whose traces are exported. */
export interface TracingOptions {
  readonly serviceName: string;
  readonly serviceVersion?: string;
  /** Delay before a batch of spans is exported, in ms (otel default 5000). */
  readonly exportDelayMs?: number;
}

/**
 * startTracing starts the OpenTelemetry NodeSDK exporting over OTLP gRPC when an endpoint is
 * configured; otherwise it returns a disabled handle and the global tracer stays a no-op.
 */
export function startTracing(config: TelemetryConfig, options: TracingOptions): Tracing {
  if (config.otlpEndpoint === '') return { enabled: false, shutdown: async () => {} };
  const metadata = new Metadata();
  for (const [k, v] of Object.entries(config.otlpHeaders)) metadata.set(k, v);
  const exporter = new OTLPTraceExporter({ url: config.otlpEndpoint, metadata });
  const sdk = new NodeSDK({
    resource: resourceFromAttributes({
      [ATTR_SERVICE_NAME]: config.serviceName ?? options.serviceName,
      ...(options.serviceVersion ? { [ATTR_SERVICE_VERSION]: options.serviceVersion } : {}),
    }),
    sampler: new ParentBasedSampler({ root: new TraceIdRatioBasedSampler(config.traceSampleRatio) }),
    spanProcessors: [
      new BatchSpanProcessor(exporter, { scheduledDelayMillis: options.exportDelayMs ?? 5000 }),
    ],
    instrumentations: [],
  });
  sdk.start();
  let stopped: Promise<void> | undefined;
  return {
    enabled: true,
    shutdown: () => {
      stopped ??= sdk.shutdown();
      return stopped;
    },
  };
}
