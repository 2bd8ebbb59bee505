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
 * configured; otherwise it returns a disabled handle and the global tracer stays a no-op. The SDK
 * is imported only when tracing is on: loading it costs ~25 MB of RSS that a process with
 * tracing off should not pay.
 */
export async function startTracing(config: TelemetryConfig, options: TracingOptions): Promise<Tracing> {
  if (config.otlpEndpoint === '') return { enabled: false, shutdown: async () => {} };
  const [{ Metadata }, { OTLPTraceExporter }, { resourceFromAttributes }, { NodeSDK }, base, semconv] =
    await Promise.all([
      import('@grpc/grpc-js'),
      import('@opentelemetry/exporter-trace-otlp-grpc'),
      import('@opentelemetry/resources'),
      import('@opentelemetry/sdk-node'),
      import('@opentelemetry/sdk-trace-base'),
      import('@opentelemetry/semantic-conventions'),
    ]);
  const metadata = new Metadata();
  for (const [k, v] of Object.entries(config.otlpHeaders)) metadata.set(k, v);
  const exporter = new OTLPTraceExporter({ url: config.otlpEndpoint, metadata });
  const sdk = new NodeSDK({
    resource: resourceFromAttributes({
      [semconv.ATTR_SERVICE_NAME]: config.serviceName ?? options.serviceName,
      ...(options.serviceVersion ? { [semconv.ATTR_SERVICE_VERSION]: options.serviceVersion } : {}),
    }),
    sampler: new base.ParentBasedSampler({
      root: new base.TraceIdRatioBasedSampler(config.traceSampleRatio),
    }),
    spanProcessors: [
      new base.BatchSpanProcessor(exporter, { scheduledDelayMillis: options.exportDelayMs ?? 5000 }),
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
