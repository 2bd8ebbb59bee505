import { LIMITS as SCHEMA_LIMITS, spanCodec } from '@tapwire/schema';
import { describe, expect, it } from 'vitest';
import {
  createTraceMapper,
  MAX_REQUEST_EVENT_BYTES,
  MAX_RESOURCE_BYTES,
  MAX_SPAN_EVENT_BYTES,
  type OtlpLimits,
} from '../src/index.js';
import { handRequest, handSpan, jsonBody, protobufBody, SPAN_ID, TRACE_ID } from './support/requests.js';

const LIMITS: OtlpLimits = {
  maxSpansPerRequest: 10_000,
  maxAttributesPerSpan: 128,
  maxAttributeValueChars: 4096,
  maxEventsPerSpan: 128,
  maxLinksPerSpan: 128,
};
const mapper = createTraceMapper({
  limits: LIMITS,
  redaction: { attributeKeys: [], queryParams: ['token'] },
});

const spanId = (n: number) => n.toString(16).padStart(16, '0');
const attrs = (n: number, value: string, prefix = 'a') =>
  Array.from({ length: n }, (_, i) => ({ key: `${prefix}${i}`, value: { stringValue: value } }));

/** ingested is what ingest makes of a mapped span: the producer's encoding, then the consumer's decode with its size check. */
function ingested(span: unknown) {
  return spanCodec.decode(spanCodec.encode(span as Parameters<typeof spanCodec.encode>[0]));
}

describe('span byte budget', () => {
  it('is LIMITS.eventBytes less 4 KiB, and a resource gets 64 KiB', () => {
    expect(MAX_SPAN_EVENT_BYTES).toBe(SCHEMA_LIMITS.eventBytes - 4096);
    expect(MAX_RESOURCE_BYTES).toBe(65_536);
  });

  it("leaves room for the largest span skeleton in the mapper's bound (SPAN_SKELETON_BYTES = 512)", () => {
    // Everything of a span event the bound does not count per character: field names, quotes,
    // ids, the longest kind and status, 16-digit times; empty strings, maps and lists.
    const skeleton = {
      v: 2,
      id: 'f'.repeat(48),
      ts: 4_102_444_799_999_999,
      tenant: '',
      trace_id: 'f'.repeat(32),
      span_id: 'f'.repeat(16),
      parent_span_id: 'f'.repeat(16),
      name: '',
      kind: 'CONSUMER',
      service: '',
      start: 4_102_444_799_999_999,
      duration: 4_102_444_799_999_999,
      status: 'ERROR',
      status_message: '',
      attributes: {},
      resource: {},
      scope_name: '',
      scope_version: '',
      events: [],
      links: [],
    };
    expect(JSON.stringify(skeleton).length).toBeLessThanOrEqual(512);
    // And one event and one link beyond their characters and attributes: 64 and 128 bytes.
    const event = { time: 4_102_444_799_999_999, name: '', attributes: {} };
    const link = { trace_id: 'f'.repeat(32), span_id: 'f'.repeat(16), attributes: {} };
    expect(`${JSON.stringify(event)},`.length).toBeLessThanOrEqual(64);
    expect(`${JSON.stringify(link)},`.length).toBeLessThanOrEqual(128);
  });

  it('accepts a span of exactly MAX_SPAN_EVENT_BYTES and rejects one a byte larger', () => {
    const sized = (extra: number) => {
      const probe = mapper.map(
        protobufBody(handRequest([handSpan({ attributes: attrs(1, '') })])),
        'protobuf',
        'acme',
      );
      const base = Buffer.byteLength(JSON.stringify(probe.spans[0]));
      return handSpan({ attributes: attrs(1, 'x'.repeat(MAX_SPAN_EVENT_BYTES - base + extra)) });
    };
    const big = createTraceMapper({
      limits: { ...LIMITS, maxAttributeValueChars: 2_000_000 },
      redaction: { attributeKeys: [], queryParams: [] },
    });
    const fits = big.map(protobufBody(handRequest([sized(0)])), 'protobuf', 'acme');
    expect(fits.rejected).toBe(0);
    expect(Buffer.byteLength(JSON.stringify(fits.spans[0]))).toBe(MAX_SPAN_EVENT_BYTES);
    const over = big.map(protobufBody(handRequest([sized(1)])), 'protobuf', 'acme');
    expect(over).toEqual({
      spans: [],
      rejected: 1,
      errorMessage:
        'span 0 of resource 0 (name "GET /orders"): it takes 1044481 bytes as JSON with its resource, more than the limit of 1044480 bytes of one span',
    });
  });

  it('rejects a span whose control-character values escape past the event size limit, keeping the other spans', () => {
    // 64 × 4096 \u0001 = 256 KiB of protobuf, 1.5 MiB of JSON: ingest would dead-letter it after a 200.
    const out = mapper.map(
      protobufBody(
        handRequest([
          handSpan({
            spanId: Buffer.from(spanId(1), 'hex'),
            name: 'escapes',
            attributes: attrs(64, '\u0001'.repeat(4096)),
          }),
          handSpan({ spanId: Buffer.from(spanId(2), 'hex'), name: 'small' }),
        ]),
      ),
      'protobuf',
      'acme',
    );
    expect(out.rejected).toBe(1);
    expect(out.spans.map((s) => s.name)).toEqual(['small']);
    // The attributes alone: braces, keys a0…a63 (182 characters), 64 × (4096 × 6 escaped + 6) less a comma.
    expect(2 + 182 + 64 * (4096 * 6 + 6) - 1).toBe(1_573_431);
    expect(out.errorMessage).toBe(
      'span 0 of resource 0 (name "escapes"): it takes 1573868 bytes as JSON with its resource, more than the limit of 1044480 bytes of one span',
    );
  });

  it('keeps a span of 128 plain 4096-character values: the bound never rejects what fits', () => {
    const out = mapper.map(
      protobufBody(handRequest([handSpan({ attributes: attrs(128, 'x'.repeat(4096)) })])),
      'protobuf',
      'acme',
    );
    expect(out.rejected).toBe(0);
    const result = ingested(out.spans[0]);
    expect(result.ok).toBe(true);
    // Keys a0…a127 (402 characters), 128 × (4096 + 6), braces, less a comma; 441 bytes of the rest (the id holds a 16-digit tenant tag).
    expect(Buffer.byteLength(JSON.stringify(out.spans[0]?.attributes))).toBe(2 + 402 + 128 * 4102 - 1);
    expect(Buffer.byteLength(spanCodec.encode(out.spans[0]!))).toBe(525_900);
  });

  it('rejects every span of a resource over 64 KiB of attributes (each span would carry a copy), keeping other resources', () => {
    // The review's request: 128 × 4096-character resource attributes, 5 spans → 2.6 MB of events.
    const big = handRequest(
      [1, 2, 3, 4, 5].map((n) => handSpan({ spanId: Buffer.from(spanId(n), 'hex') })),
      attrs(128, 'r'.repeat(4096), 'res'),
    ) as { resourceSpans: object[] };
    const small = handRequest([handSpan({ spanId: Buffer.from(spanId(6), 'hex'), name: 'kept' })]) as {
      resourceSpans: object[];
    };
    const out = mapper.map(
      protobufBody({ resourceSpans: [...big.resourceSpans, ...small.resourceSpans] }),
      'protobuf',
      'acme',
    );
    expect(out.rejected).toBe(5);
    expect(out.spans.map((s) => [s.name, s.span_id])).toEqual([['kept', spanId(6)]]);
    // Keys res0…res127 (658 characters), 128 × (4096 + 6), braces, less a comma.
    expect(2 + 658 + 128 * 4102 - 1).toBe(525_715);
    const reason = "its resource's attributes take 525715 bytes as JSON, more than the limit of 65536";
    expect(out.errorMessage).toBe(
      `span 0 of resource 0 (name "GET /orders"): ${reason}; span 1 of resource 0 (name "GET /orders"): ${reason}; span 2 of resource 0 (name "GET /orders"): ${reason}; … and 2 more`,
    );
  });

  it('rejects the spans past 64 MiB of events in one request (each carries its resource), keeping those before', () => {
    // A resource just under 64 KiB copied into 1,500 spans: ~94 MiB of events from a ~62 KiB request.
    const spans = Array.from({ length: 1500 }, (_, n) =>
      handSpan({ spanId: Buffer.from(spanId(n + 1), 'hex') }),
    );
    const out = mapper.map(
      protobufBody(handRequest(spans, attrs(15, 'r'.repeat(4096), 'res'))),
      'protobuf',
      'acme',
    );
    expect(MAX_REQUEST_EVENT_BYTES).toBe(64 * 1024 * 1024);
    expect(out.rejected).toBeGreaterThan(0);
    expect(out.spans.length + out.rejected).toBe(1500);
    // The kept ones are the first, and they fit.
    expect(out.spans.map((s) => s.span_id)).toEqual(
      Array.from({ length: out.spans.length }, (_, n) => spanId(n + 1)),
    );
    const encoded = out.spans.reduce((sum, s) => sum + Buffer.byteLength(spanCodec.encode(s)), 0);
    expect(encoded).toBeLessThanOrEqual(MAX_REQUEST_EVENT_BYTES);
    expect(encoded).toBeGreaterThan(MAX_REQUEST_EVENT_BYTES * 0.9);
    expect(out.errorMessage.split('; ')[0]).toBe(
      `span ${out.spans.length} of resource 0 (name "GET /orders"): the request's spans take more than 67108864 bytes as events, each with its resource: send fewer spans per request`,
    );
  });

  it('keeps a resource just under 64 KiB', () => {
    // 15 × 4096 plain characters ≈ 61.6 KiB as JSON.
    const out = mapper.map(
      protobufBody(handRequest([handSpan()], attrs(15, 'r'.repeat(4096), 'res'))),
      'protobuf',
      'acme',
    );
    expect(out.rejected).toBe(0);
    expect(Buffer.byteLength(JSON.stringify(out.spans[0]?.resource))).toBe(2 + 65 + 15 * 4102 - 1);
    expect(ingested(out.spans[0]).ok).toBe(true);
  });
});

describe('enum names from OTLP/JSON', () => {
  it('maps kind "constructor" and status code "__proto__" (Object.prototype names) to INTERNAL and UNSET, not to functions', () => {
    const hostile = ['constructor', '__proto__', 'toString', 'hasOwnProperty', 'valueOf', 'length'];
    const body = {
      resourceSpans: [
        {
          scopeSpans: [
            {
              spans: hostile.map((name, i) => ({
                traceId: TRACE_ID,
                spanId: spanId(i + 1),
                name,
                kind: name,
                startTimeUnixNano: '1700000000000000000',
                status: { code: name },
              })),
            },
          ],
        },
      ],
    };
    const out = mapper.map(jsonBody(body), 'json', 'acme');
    expect(out.rejected).toBe(0);
    expect(out.spans.map((s) => [s.name, s.kind, s.status])).toEqual(
      hostile.map((name) => [name, 'INTERNAL', 'UNSET']),
    );
    for (const s of out.spans) expect(ingested(s).ok).toBe(true);
  });
});

describe('times outside 2000-01-01 to 2100-01-01', () => {
  const at = (n: number, over: Record<string, unknown>) =>
    handSpan({ spanId: Buffer.from(spanId(n), 'hex'), name: `s${n}`, ...over });

  it('rejects a span whose end time is past MAX_SAFE_INTEGER µs, keeping the other spans', () => {
    const out = mapper.map(
      protobufBody(handRequest([at(1, { endTimeUnixNano: '18446744073709551615' }), at(2, {})])),
      'protobuf',
      'acme',
    );
    expect(out).toMatchObject({
      rejected: 1,
      errorMessage:
        'span 0 of resource 0 (name "s1"): end_time_unix_nano is outside 2000-01-01 to 2100-01-01',
    });
    expect(out.spans.map((s) => s.name)).toEqual(['s2']);
  });

  it('rejects OTLP/JSON start and end times of "99999999999999999999" and a start before 2000', () => {
    const json = (n: number, start: string, end: string) => ({
      traceId: TRACE_ID,
      spanId: spanId(n),
      name: `s${n}`,
      startTimeUnixNano: start,
      endTimeUnixNano: end,
    });
    const out = mapper.map(
      jsonBody({
        resourceSpans: [
          {
            scopeSpans: [
              {
                spans: [
                  json(1, '1700000000000000000', '99999999999999999999'),
                  json(2, '99999999999999999999', '99999999999999999999'),
                  json(3, '946684799999999999', '1700000000000000000'),
                  json(4, '946684800000000000', '4102444799999999999'),
                ],
              },
            ],
          },
        ],
      }),
      'json',
      'acme',
    );
    expect(out.rejected).toBe(3);
    expect(out.errorMessage).toBe(
      [
        'span 0 of resource 0 (name "s1"): end_time_unix_nano is outside 2000-01-01 to 2100-01-01',
        'span 1 of resource 0 (name "s2"): start_time_unix_nano is outside 2000-01-01 to 2100-01-01',
        'span 2 of resource 0 (name "s3"): start_time_unix_nano is outside 2000-01-01 to 2100-01-01',
      ].join('; '),
    );
    expect(out.spans.map((s) => [s.name, s.start, s.duration])).toEqual([
      ['s4', 946_684_800_000_000, 4_102_444_799_999_999 - 946_684_800_000_000],
    ]);
  });

  it('keeps an unset end as duration 0', () => {
    const out = mapper.map(protobufBody(handRequest([at(1, { endTimeUnixNano: 0 })])), 'protobuf', 'acme');
    expect(out.spans.map((s) => [s.start, s.duration])).toEqual([[1_700_000_000_000_000, 0]]);
  });

  it('drops an event whose time is out of range or unset and counts it, keeping the span and its other events', () => {
    const out = mapper.map(
      protobufBody(
        handRequest([
          at(1, {
            events: [
              { timeUnixNano: '99999999999999999999', name: 'huge' },
              { timeUnixNano: '1700000000000001000', name: 'ok' },
              { name: 'unset' },
            ],
            droppedEventsCount: 2,
          }),
        ]),
      ),
      'protobuf',
      'acme',
    );
    expect(out.rejected).toBe(0);
    expect(out.spans[0]?.events).toEqual([{ time: 1_700_000_000_000_001, name: 'ok', attributes: {} }]);
    expect(out.spans[0]?.attributes).toEqual({ 'otel.dropped_events_count': '4' });
    expect(ingested(out.spans[0]).ok).toBe(true);
  });
});

describe('every mapped span passes @tapwire/schema', () => {
  // A seeded generator of hostile spans: the mapper either rejects a span or maps it to an event
  // that ingest accepts; it never maps one ingest would dead-letter.
  let seed = 22;
  // mulberry32: small, seeded, and without an LCG's short low-bit periods.
  const rand = (n: number) => {
    seed = (seed + 0x6d2b79f5) | 0;
    let t = Math.imul(seed ^ (seed >>> 15), 1 | seed);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) % n;
  };
  const pick = <T>(xs: readonly T[]): T => xs[rand(xs.length)]!;
  const TIMES = [
    '0',
    '1',
    '946684799999999999',
    '946684800000000000',
    '1700000000123456789',
    '4102444799999999999',
    '4102444800000000000',
    '9007199254740993000',
    '18446744073709551615',
  ];
  const ENUMS = [
    'constructor',
    '__proto__',
    'toString',
    'SPAN_KIND_SERVER',
    'STATUS_CODE_ERROR',
    '2',
    '-1',
    '7',
    'NaN',
  ];
  const TEXTS = [
    '',
    'plain',
    '\u0000\u0001\u001f"\\',
    '\ud800 lone surrogate',
    '😀'.repeat(3000),
    '\u0001'.repeat(5000),
    '__proto__',
    'x'.repeat(10_000),
  ];
  const value = () => {
    switch (rand(4)) {
      case 0:
        return { stringValue: pick(TEXTS) };
      case 1:
        return { intValue: pick(['-9223372036854775808', '18', '9007199254740993']) };
      case 2:
        return {
          kvlistValue: { values: [{ key: pick(TEXTS) || 'k', value: { stringValue: pick(TEXTS) } }] },
        };
      default:
        return { arrayValue: { values: [{ stringValue: pick(TEXTS) }, { doubleValue: 1.5 }] } };
    }
  };
  const kvs = (max: number) =>
    Array.from({ length: rand(max) }, (_, i) => ({
      key: pick(['__proto__', 'constructor', `k${i}`, 'url.full', 'URL.FULL', 'x'.repeat(200)]),
      value: value(),
    }));
  const jsonSpan = (n: number) => ({
    traceId: TRACE_ID,
    spanId: spanId(n),
    parentSpanId: pick(['', SPAN_ID, '0000000000000000']),
    name: pick(TEXTS),
    kind: pick(ENUMS),
    // Mostly valid times, so that most spans reach the size checks.
    startTimeUnixNano: rand(4) === 0 ? pick(TIMES) : '1700000000123456789',
    endTimeUnixNano: rand(4) === 0 ? pick(TIMES) : '1700000000223456789',
    attributes: rand(6) === 0 ? attrs(64, '\u0001'.repeat(4096)) : kvs(140),
    events: Array.from({ length: rand(4) }, () => ({
      timeUnixNano: pick(TIMES),
      name: pick(TEXTS),
      attributes: kvs(5),
    })),
    links: Array.from({ length: rand(3) }, () => ({
      traceId: TRACE_ID,
      spanId: pick([SPAN_ID, 'zz']),
      attributes: kvs(5),
    })),
    status: { code: pick(ENUMS), message: pick(TEXTS) },
  });

  it('maps 40 requests of hostile spans to events ingest accepts, or rejects them', () => {
    let mapped = 0;
    let rejected = 0;
    const reasons: string[] = [];
    for (let r = 0; r < 40; r++) {
      const resourceSpans = Array.from({ length: 1 + rand(3) }, () => ({
        resource: { attributes: rand(8) === 0 ? attrs(128, '\u0001'.repeat(4096), 'res') : kvs(10) },
        scopeSpans: [
          {
            scope: { name: pick(TEXTS), version: pick(TEXTS) },
            spans: Array.from({ length: 1 + rand(5) }, (_, i) => jsonSpan(i + 1)),
          },
        ],
      }));
      const total = resourceSpans.reduce((n, rs) => n + rs.scopeSpans[0]!.spans.length, 0);
      const out = mapper.map(jsonBody({ resourceSpans }), 'json', 'acme');
      expect(out.spans.length + out.rejected).toBe(total);
      reasons.push(out.errorMessage);
      for (const span of out.spans) {
        const result = ingested(span);
        expect(result.ok ? 'ok' : result.reason).toBe('ok');
      }
      mapped += out.spans.length;
      rejected += out.rejected;
    }
    // The generator exercises both outcomes.
    expect(mapped).toBeGreaterThan(10);
    expect(rejected).toBeGreaterThan(10);
    const all = reasons.join('\n');
    for (const reason of [
      'bytes of one span',
      "its resource's attributes take",
      'start_time_unix_nano is outside',
      'end_time_unix_nano is outside',
    ]) {
      expect(all).toContain(reason);
    }
  });
});
