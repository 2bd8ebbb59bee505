import { context, trace } from '@opentelemetry/api';
import { DEFAULT_REDACTED_QUERY_PARAMS } from '@tapwire/telemetry';
import { describe, expect, it } from 'vitest';
import { createTraceMapper, type OtlpFormat } from '../src/index.js';
import { handRequest, handSpan, officialBody, protobufBody } from './support/requests.js';
import { recordSpans } from './support/sdk-spans.js';

const mapper = createTraceMapper({
  limits: {
    maxSpansPerRequest: 100,
    maxAttributesPerSpan: 128,
    maxAttributeValueChars: 4096,
    maxEventsPerSpan: 128,
    maxLinksPerSpan: 128,
  },
  redaction: { attributeKeys: ['App.Session_Secret'], queryParams: DEFAULT_REDACTED_QUERY_PARAMS },
});

const CANARY = 'CANARY-7f3a';

describe.each<OtlpFormat>(['protobuf', 'json'])('redaction, %s', (format) => {
  it('never lets a secret header, URL credential, secret query parameter or configured key through', async () => {
    const spans = await recordSpans(
      { resource: { 'service.name': 'checkout', 'app.session_secret': `${CANARY}-resource` } },
      (tracer) => {
        const linked = tracer.startSpan('linked', { startTime: [1_700_000_000, 0] });
        linked.end([1_700_000_000, 1]);
        const span = tracer.startSpan(
          'GET /cart',
          {
            startTime: [1_700_000_000, 0],
            attributes: {
              'http.request.header.authorization': [`Bearer ${CANARY}-auth`],
              'HTTP.Request.Header.Cookie': [`session=${CANARY}-cookie`],
              'http.response.header.set-cookie': [`sid=${CANARY}-set-cookie`],
              'http.request.header.proxy-authorization': `Basic ${CANARY}-proxy`,
              'url.full': `https://alice:${CANARY}-pass@shop.example/cart?api_key=${CANARY}-query&page=2#top`,
              'url.query': `page=2&Access_Token=${CANARY}-q`,
              'http.url': `http://bob:${CANARY}-old@shop.example/?token=${CANARY}-old-token`,
              'http.target': `/cart?secret=${CANARY}-target&x=1`,
              'url.original': `/cart?%70assword=${CANARY}-original`,
              'app.session_secret': `${CANARY}-configured`,
              'http.request.header.accept': 'text/html',
            },
            links: [
              { context: linked.spanContext(), attributes: { 'url.full': `https://x/?key=${CANARY}-link` } },
            ],
          },
          trace.setSpan(context.active(), linked),
        );
        span.addEvent(
          'retry',
          { 'http.request.header.authorization': `${CANARY}-event` },
          [1_700_000_000, 5],
        );
        span.end([1_700_000_000, 10]);
      },
    );
    const out = mapper.map(officialBody(spans, format), format, 'acme');
    expect(out.rejected).toBe(0);
    expect(JSON.stringify(out.spans)).not.toContain(CANARY);
    const span = out.spans.find((s) => s.name === 'GET /cart');
    expect(span?.attributes).toEqual({
      'http.request.header.authorization': '[REDACTED]',
      'HTTP.Request.Header.Cookie': '[REDACTED]',
      'http.response.header.set-cookie': '[REDACTED]',
      'http.request.header.proxy-authorization': '[REDACTED]',
      'url.full': 'https://[REDACTED]@shop.example/cart?api_key=[REDACTED]&page=2#top',
      'url.query': 'page=2&Access_Token=[REDACTED]',
      'http.url': 'http://[REDACTED]@shop.example/?token=[REDACTED]',
      'http.target': '/cart?secret=[REDACTED]&x=1',
      'url.original': '/cart?%70assword=[REDACTED]',
      'app.session_secret': '[REDACTED]',
      'http.request.header.accept': 'text/html',
    });
    expect(span?.resource).toEqual({ 'app.session_secret': '[REDACTED]' });
    expect(span?.events[0]?.attributes).toEqual({ 'http.request.header.authorization': '[REDACTED]' });
    expect(span?.links[0]?.attributes).toEqual({ 'url.full': 'https://x/?key=[REDACTED]' });
  });
});

describe('redaction of values that are not strings', () => {
  it('redacts a secret header sent as an array or bytes value', () => {
    const out = mapper.map(
      protobufBody(
        handRequest([
          handSpan({
            attributes: [
              { key: 'http.request.header.cookie', value: { bytesValue: Buffer.from(`${CANARY}-bytes`) } },
              {
                key: 'http.request.header.authorization',
                value: { arrayValue: { values: [{ stringValue: `${CANARY}-array` }] } },
              },
            ],
          }),
        ]),
      ),
      'protobuf',
      'acme',
    );
    expect(out.spans[0]?.attributes).toEqual({
      'http.request.header.cookie': '[REDACTED]',
      'http.request.header.authorization': '[REDACTED]',
    });
  });

  it('leaves URLs without credentials or secret parameters as they are', () => {
    const url = 'https://shop.example/a@b/c?page=2&q=mail@example.com';
    const out = mapper.map(
      protobufBody(
        handRequest([handSpan({ attributes: [{ key: 'url.full', value: { stringValue: url } }] })]),
      ),
      'protobuf',
      'acme',
    );
    expect(out.spans[0]?.attributes['url.full']).toBe(url);
  });
});
