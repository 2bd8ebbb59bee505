import type { Tracer } from '@opentelemetry/api';
import { resourceFromAttributes } from '@opentelemetry/resources';
import {
  BasicTracerProvider,
  type IdGenerator,
  InMemorySpanExporter,
  type ReadableSpan,
  SimpleSpanProcessor,
  type SpanLimits,
} from '@opentelemetry/sdk-trace-base';

/** sequentialIds hands out predictable, valid trace and span ids: 1, 2, 3… in hex. */
export function sequentialIds(): IdGenerator {
  let next = 0;
  return {
    generateTraceId: () => (++next).toString(16).padStart(32, 'a'),
    generateSpanId: () => (++next).toString(16).padStart(16, 'b'),
  };
}

/** recordSpans runs `body` with a real OpenTelemetry SDK tracer and returns the spans it ended. */
export async function recordSpans(
  options: { resource: Record<string, string>; spanLimits?: SpanLimits; scope?: [string, string] },
  body: (tracer: Tracer) => void,
): Promise<ReadableSpan[]> {
  const exporter = new InMemorySpanExporter();
  const provider = new BasicTracerProvider({
    resource: resourceFromAttributes(options.resource),
    idGenerator: sequentialIds(),
    spanProcessors: [new SimpleSpanProcessor(exporter)],
    ...(options.spanLimits ? { spanLimits: options.spanLimits } : {}),
  });
  const [scopeName, scopeVersion] = options.scope ?? ['checkout-instrumentation', '1.4.2'];
  body(provider.getTracer(scopeName, scopeVersion));
  await provider.forceFlush();
  const spans = exporter.getFinishedSpans();
  await provider.shutdown();
  return spans;
}
