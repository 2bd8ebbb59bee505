// Micro-benchmark of decode + map, not a test:
//   npx tsx --tsconfig tsconfig.json packages/otlp/scripts/bench-map.ts
// Prints µs per span for a 512-span export of typical 10-attribute HTTP server spans, in both formats.
import { SpanKind } from '@opentelemetry/api';
import { DEFAULT_REDACTED_QUERY_PARAMS } from '@tapwire/telemetry';
import { createTraceMapper, type OtlpFormat } from '../src/index.js';
import { officialBody } from '../test/support/requests.js';
import { recordSpans } from '../test/support/sdk-spans.js';

const SPANS = 512;
const spans = await recordSpans(
  { resource: { 'service.name': 'checkout', 'deployment.environment': 'prod', 'host.name': 'web-1' } },
  (tracer) => {
    for (let i = 0; i < SPANS; i++) {
      const span = tracer.startSpan('GET /orders/:id', {
        kind: SpanKind.SERVER,
        startTime: [1_700_000_000 + i, 123_456_789],
        attributes: {
          'http.request.method': 'GET',
          'http.route': '/orders/:id',
          'http.response.status_code': 200,
          'url.full': `https://shop.example/orders/${i}?page=2&api_key=secret`,
          'url.scheme': 'https',
          'server.address': 'shop.example',
          'server.port': 443,
          'client.address': '10.0.0.7',
          'user_agent.original': 'Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36',
          'network.protocol.version': '1.1',
        },
      });
      span.end([1_700_000_000 + i, 623_456_000]);
    }
  },
);
const mapper = createTraceMapper({
  limits: {
    maxSpansPerRequest: 10_000,
    maxAttributesPerSpan: 128,
    maxAttributeValueChars: 4096,
    maxEventsPerSpan: 128,
    maxLinksPerSpan: 128,
  },
  redaction: { attributeKeys: [], queryParams: DEFAULT_REDACTED_QUERY_PARAMS },
});
const report: Record<string, unknown> = {};
for (const format of ['protobuf', 'json'] as OtlpFormat[]) {
  const body = officialBody(spans, format);
  for (let i = 0; i < 200; i++) mapper.map(body, format, 'acme');
  const rounds = 400;
  const t0 = process.hrtime.bigint();
  for (let i = 0; i < rounds; i++) mapper.map(body, format, 'acme');
  const ns = Number(process.hrtime.bigint() - t0);
  const perSpanUs = ns / 1000 / (rounds * SPANS);
  report[format] = {
    bodyBytes: body.length,
    usPerSpan: +perSpanUs.toFixed(2),
    spansPerSecond: Math.round(1e6 / perSpanUs),
  };
}
console.log(JSON.stringify(report));
