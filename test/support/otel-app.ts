/**
 * A real app instrumented the way users instrument theirs: `@opentelemetry/sdk-node` with the HTTP
 * instrumentation (W3C traceparent) and one of the official OTLP trace exporters, chosen by
 * OTEL_APP_EXPORTER. Run it as a child process (test/support/otel-app-process.ts starts it).
 *
 * GET /orders/<id> makes a SERVER span (the instrumentation's), an INTERNAL span of its own with an
 * event, and a CLIENT call to OTEL_APP_INVENTORY_URL; it answers the span ids it saw or made, so a
 * test knows the tree to expect. Secrets a careless app records (canaries derived from
 * OTEL_APP_CANARY) go into span, event and resource attributes: an Authorization header, API keys
 * in URLs, a password in a URL's userinfo and in a connection string. POST /flush exports what is
 * buffered; SIGTERM shuts the SDK down (which flushes) and exits.
 *
 * Environment: OTEL_APP_EXPORTER (grpc | http/protobuf | http/json), OTEL_APP_ENDPOINT (the
 * receiver: http://host:port for gRPC, http://host:port/v1/traces for HTTP), OTEL_APP_TOKEN,
 * OTEL_APP_AUTH (bearer | x-tapwire-token), OTEL_APP_GZIP (1: compress exports),
 * OTEL_APP_INVENTORY_URL, OTEL_APP_CANARY, OTEL_APP_SERVICE (default orders-app).
 * It prints one JSON line `{"port":N}` on stdout once it listens.
 */
import { createRequire } from 'node:module';
import { Metadata } from '@grpc/grpc-js';
import { context, SpanKind, trace } from '@opentelemetry/api';
import { OTLPTraceExporter as GrpcExporter } from '@opentelemetry/exporter-trace-otlp-grpc';
import { OTLPTraceExporter as JsonExporter } from '@opentelemetry/exporter-trace-otlp-http';
import { OTLPTraceExporter as ProtoExporter } from '@opentelemetry/exporter-trace-otlp-proto';
import { HttpInstrumentation } from '@opentelemetry/instrumentation-http';
import { CompressionAlgorithm } from '@opentelemetry/otlp-exporter-base';
import { resourceFromAttributes } from '@opentelemetry/resources';
import { NodeSDK } from '@opentelemetry/sdk-node';
import { BatchSpanProcessor, type SpanExporter } from '@opentelemetry/sdk-trace-base';

const env = process.env;
const exporterKind = env.OTEL_APP_EXPORTER ?? 'grpc';
const endpoint = env.OTEL_APP_ENDPOINT ?? '';
const token = env.OTEL_APP_TOKEN ?? '';
const canary = env.OTEL_APP_CANARY ?? 'CANARY';
const inventoryUrl = env.OTEL_APP_INVENTORY_URL ?? '';
const gzip = env.OTEL_APP_GZIP === '1';
const authHeaders: Record<string, string> =
  env.OTEL_APP_AUTH === 'x-tapwire-token'
    ? { 'x-tapwire-token': token }
    : { authorization: `Bearer ${token}` };
const receiverPort = new URL(endpoint).port;

function exporter(): SpanExporter {
  const compression = gzip ? CompressionAlgorithm.GZIP : CompressionAlgorithm.NONE;
  if (exporterKind === 'grpc') {
    const metadata = new Metadata();
    for (const [k, v] of Object.entries(authHeaders)) metadata.set(k, v);
    return new GrpcExporter({ url: endpoint, metadata, compression });
  }
  if (exporterKind === 'http/protobuf')
    return new ProtoExporter({ url: endpoint, headers: authHeaders, compression });
  if (exporterKind === 'http/json')
    return new JsonExporter({ url: endpoint, headers: authHeaders, compression });
  throw new Error(`OTEL_APP_EXPORTER must be grpc, http/protobuf or http/json, not ${exporterKind}`);
}

const processor = new BatchSpanProcessor(exporter(), { scheduledDelayMillis: 100, maxExportBatchSize: 512 });
const sdk = new NodeSDK({
  resource: resourceFromAttributes({
    'service.name': env.OTEL_APP_SERVICE ?? 'orders-app',
    'service.version': '1.4.2',
    'deployment.environment.name': 'test',
    // A connection string with its password, as careless resource attributes carry (a key the
    // receiver is configured to redact).
    'db.connection_string': `postgres://orders:${canary}-resource-password@db.internal:5432/orders`,
  }),
  spanProcessors: [processor],
  instrumentations: [
    new HttpInstrumentation({
      // The test's own calls to /flush are not the app's traffic; the exporters' calls are
      // suppressed by the SDK already, this only makes sure.
      ignoreIncomingRequestHook: (req) => !req.url?.startsWith('/orders/'),
      ignoreOutgoingRequestHook: (opts) => String(opts.port ?? '') === receiverPort,
      headersToSpanAttributes: { server: { requestHeaders: ['authorization', 'x-request-id'] } },
    }),
  ],
});
sdk.start();

// Through require, after sdk.start(): the HTTP instrumentation patches node:http as it loads
// (require-in-the-middle); an ESM import of a builtin would bypass it.
const http = createRequire(import.meta.url)('node:http') as typeof import('node:http');
const tracer = trace.getTracer('orders-app.handlers', '1.4.2');

function getJson(url: string): Promise<unknown> {
  return new Promise((resolve, reject) => {
    http
      .get(url, (res) => {
        let body = '';
        res.setEncoding('utf8');
        res.on('data', (c: string) => {
          body += c;
        });
        res.on('end', () => resolve(JSON.parse(body)));
        res.on('error', reject);
      })
      .on('error', reject);
  });
}

const server = http.createServer((req, res) => {
  const url = new URL(req.url ?? '/', 'http://app');
  if (req.method === 'POST' && url.pathname === '/flush') {
    processor.forceFlush().then(
      () => res.writeHead(204).end(),
      (err: Error) => res.writeHead(500).end(err.message),
    );
    return;
  }
  const id = url.pathname.split('/')[2] ?? '';
  const serverSpanId = trace.getActiveSpan()?.spanContext().spanId ?? '';
  tracer.startActiveSpan('load-order', { kind: SpanKind.INTERNAL }, async (span) => {
    try {
      span.setAttributes({
        'order.id': id,
        'http.request.header.authorization': `Bearer ${canary}-internal-auth`,
        'url.full': `https://checkout:${canary}-userinfo@payments.example/v1/charges?api_key=${canary}-internal-query&currency=eur`,
        'app.note': 'x'.repeat(5000),
      });
      span.addEvent('cache-miss', {
        'cache.key': `order:${id}`,
        'url.full': `https://cache.internal/get?token=${canary}-event-query`,
      });
      const internalSpanId = span.spanContext().spanId;
      const inventory = await context.with(trace.setSpan(context.active(), span), () =>
        getJson(`${inventoryUrl}/stock/${id}?api_key=${canary}-client-query`),
      );
      span.end();
      res.writeHead(200, { 'content-type': 'application/json' });
      res.end(
        JSON.stringify({
          order: id,
          traceparent: req.headers.traceparent ?? '',
          server_span_id: serverSpanId,
          internal_span_id: internalSpanId,
          inventory,
        }),
      );
    } catch (err) {
      span.end();
      res.writeHead(502).end(String(err));
    }
  });
});

server.listen(0, '127.0.0.1', () => {
  process.stdout.write(`${JSON.stringify({ port: (server.address() as { port: number }).port })}\n`);
});

process.once('SIGTERM', () => {
  server.close();
  sdk.shutdown().finally(() => process.exit(0));
});
