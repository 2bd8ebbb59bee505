import { context, SpanKind, SpanStatusCode, trace } from '@opentelemetry/api';
import { describe, expect, it } from 'vitest';
import { createTraceMapper, type OtlpFormat, type OtlpLimits } from '../src/index.js';
import { officialBody } from './support/requests.js';
import { recordSpans } from './support/sdk-spans.js';

const LIMITS: OtlpLimits = {
  maxSpansPerRequest: 1000,
  maxAttributesPerSpan: 128,
  maxAttributeValueChars: 4096,
  maxEventsPerSpan: 128,
  maxLinksPerSpan: 128,
};
const REDACTION = { attributeKeys: [], queryParams: ['api_key'] };
const mapper = (limits: Partial<OtlpLimits> = {}) =>
  createTraceMapper({ limits: { ...LIMITS, ...limits }, redaction: REDACTION });

// The SDK asks for the span id before the trace id.
const ROOT_SPAN = `${'b'.repeat(15)}1`;
const ROOT_TRACE = `${'a'.repeat(31)}2`;
const CHILD_SPAN = `${'b'.repeat(15)}3`;
const LINK_TRACE = '4bf92f3577b34da6a3ce929d0e0e4736';
const LINK_SPAN = '00f067aa0ba902b7';

async function checkoutSpans() {
  return recordSpans(
    { resource: { 'service.name': 'checkout', 'deployment.environment': 'prod', 'host.name': 'web-1' } },
    (tracer) => {
      const root = tracer.startSpan('POST /checkout', {
        kind: SpanKind.SERVER,
        startTime: [1_700_000_000, 123_456_789],
        attributes: {
          'http.request.method': 'POST',
          'http.response.status_code': 201,
          'app.retries': -7,
          'app.ratio': 0.25,
          'app.cached': false,
          'app.tags': ['a', 'b'],
          'app.sizes': [1, 2.5],
          'app.flags': [true, false],
        },
        links: [
          {
            context: { traceId: LINK_TRACE, spanId: LINK_SPAN, traceFlags: 1 },
            attributes: { 'link.reason': 'retry-of' },
          },
        ],
      });
      root.addEvent('cart.loaded', { 'cart.items': 3 }, [1_700_000_000, 200_000_999]);
      const child = tracer.startSpan(
        'SELECT orders',
        { kind: SpanKind.CLIENT, startTime: [1_700_000_000, 150_000_000] },
        trace.setSpan(context.active(), root),
      );
      child.setStatus({ code: SpanStatusCode.ERROR, message: 'deadlock detected' });
      child.end([1_700_000_000, 160_000_500]);
      root.setStatus({ code: SpanStatusCode.OK });
      root.end([1_700_000_000, 623_456_000]);
    },
  );
}

describe.each<OtlpFormat>(['protobuf', 'json'])(
  'createTraceMapper, %s from the official serializer',
  (format) => {
    it('maps every field of real SDK spans exactly', async () => {
      const body = officialBody(await checkoutSpans(), format);
      const out = mapper().map(body, format, 'acme');
      expect(out.rejected).toBe(0);
      expect(out.errorMessage).toBe('');
      const resource = { 'deployment.environment': 'prod', 'host.name': 'web-1' };
      expect(out.spans).toEqual([
        {
          v: 2,
          id: ROOT_TRACE + CHILD_SPAN,
          ts: 1_700_000_000_150_000,
          tenant: 'acme',
          trace_id: ROOT_TRACE,
          span_id: CHILD_SPAN,
          parent_span_id: ROOT_SPAN,
          name: 'SELECT orders',
          kind: 'CLIENT',
          service: 'checkout',
          start: 1_700_000_000_150_000,
          duration: 10_000,
          status: 'ERROR',
          status_message: 'deadlock detected',
          attributes: {},
          resource,
          scope_name: 'checkout-instrumentation',
          scope_version: '1.4.2',
          events: [],
          links: [],
        },
        {
          v: 2,
          id: ROOT_TRACE + ROOT_SPAN,
          ts: 1_700_000_000_123_456,
          tenant: 'acme',
          trace_id: ROOT_TRACE,
          span_id: ROOT_SPAN,
          parent_span_id: '',
          name: 'POST /checkout',
          kind: 'SERVER',
          service: 'checkout',
          start: 1_700_000_000_123_456,
          // (623_456_000 - 123_456_789) ns, floored to µs
          duration: 499_999,
          status: 'OK',
          status_message: '',
          attributes: {
            'http.request.method': 'POST',
            'http.response.status_code': '201',
            'app.retries': '-7',
            'app.ratio': '0.25',
            'app.cached': 'false',
            'app.tags': '["a","b"]',
            'app.sizes': '[1,2.5]',
            'app.flags': '[true,false]',
          },
          resource,
          scope_name: 'checkout-instrumentation',
          scope_version: '1.4.2',
          events: [{ time: 1_700_000_000_200_000, name: 'cart.loaded', attributes: { 'cart.items': '3' } }],
          links: [{ trace_id: LINK_TRACE, span_id: LINK_SPAN, attributes: { 'link.reason': 'retry-of' } }],
        },
      ]);
    });

    it('records what the SDK dropped as otel.dropped_* attributes', async () => {
      const spans = await recordSpans(
        {
          resource: { 'service.name': 'checkout' },
          spanLimits: { attributeCountLimit: 2, eventCountLimit: 1, linkCountLimit: 1 },
        },
        (tracer) => {
          const span = tracer.startSpan('work', {
            startTime: [1_700_000_000, 0],
            attributes: { a: '1', b: '2', c: '3', d: '4' },
            links: [
              { context: { traceId: LINK_TRACE, spanId: LINK_SPAN, traceFlags: 1 } },
              { context: { traceId: LINK_TRACE, spanId: 'ffffffffffffff01', traceFlags: 1 } },
            ],
          });
          span.addEvent('e1', [1_700_000_000, 1000]);
          span.addEvent('e2', [1_700_000_000, 2000]);
          span.addEvent('e3', [1_700_000_000, 3000]);
          span.end([1_700_000_001, 0]);
        },
      );
      const [span] = mapper().map(officialBody(spans, format), format, 'acme').spans;
      expect(span?.kind).toBe('INTERNAL');
      expect(span?.duration).toBe(1_000_000);
      expect(span?.attributes).toEqual({
        a: '1',
        b: '2',
        'otel.dropped_attributes_count': '2',
        'otel.dropped_events_count': '2',
        'otel.dropped_links_count': '1',
      });
      expect(span?.events).toEqual([{ time: 1_700_000_000_000_003, name: 'e3', attributes: {} }]);
      // Past its limits the SDK keeps the newest events and links.
      expect(span?.links).toEqual([{ trace_id: LINK_TRACE, span_id: 'ffffffffffffff01', attributes: {} }]);
    });
  },
);
