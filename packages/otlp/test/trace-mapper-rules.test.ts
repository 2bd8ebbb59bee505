import { describe, expect, it } from 'vitest';
import { createTraceMapper, type OtlpLimits, OtlpRequestError } from '../src/index.js';
import { handRequest, handSpan, jsonBody, protobufBody, SPAN_ID, TRACE_ID } from './support/requests.js';

const LIMITS: OtlpLimits = {
  maxSpansPerRequest: 1000,
  maxAttributesPerSpan: 128,
  maxAttributeValueChars: 4096,
  maxEventsPerSpan: 128,
  maxLinksPerSpan: 128,
};
const mapper = (limits: Partial<OtlpLimits> = {}) =>
  createTraceMapper({ limits: { ...LIMITS, ...limits }, redaction: { attributeKeys: [], queryParams: [] } });

function mapProtobuf(request: object, limits: Partial<OtlpLimits> = {}) {
  return mapper(limits).map(protobufBody(request), 'protobuf', 'acme');
}

function requestError(run: () => unknown): OtlpRequestError {
  try {
    run();
  } catch (err) {
    if (err instanceof OtlpRequestError) return err;
    throw err;
  }
  throw new Error('expected an OtlpRequestError');
}

describe('attribute values', () => {
  const attributes = [
    { key: 'app.blob', value: { bytesValue: Buffer.from([0xde, 0xad, 0xbe, 0xef]) } },
    {
      key: 'app.kv',
      value: {
        kvlistValue: {
          values: [
            { key: 'x', value: { intValue: 5 } },
            {
              key: 'y',
              value: { arrayValue: { values: [{ stringValue: 's' }, { bytesValue: Buffer.from('hi') }] } },
            },
            { key: 'big', value: { intValue: '9007199254740993' } },
          ],
        },
      },
    },
    { key: 'app.empty', value: {} },
    { key: 'app.nan', value: { doubleValue: Number.NaN } },
    { key: 'app.min', value: { intValue: '-9223372036854775808' } },
    { key: '__proto__', value: { stringValue: 'kept' } },
  ];

  it('renders bytes as base64, kvlists as JSON objects, 64-bit integers exactly', () => {
    const [span] = mapProtobuf(handRequest([handSpan({ attributes })])).spans;
    expect(JSON.parse(JSON.stringify(span?.attributes))).toEqual({
      'app.blob': '3q2+7w==',
      'app.kv': '{"x":5,"y":["s","aGk="],"big":"9007199254740993"}',
      'app.empty': '',
      'app.nan': 'NaN',
      'app.min': '-9223372036854775808',
      ['__proto__']: 'kept',
    });
  });

  it('reads the same values from OTLP/JSON', () => {
    const body = jsonBody({
      resourceSpans: [
        {
          resource: { attributes: [{ key: 'service.name', value: { stringValue: 'orders' } }] },
          scopeSpans: [
            {
              spans: [
                {
                  traceId: TRACE_ID,
                  spanId: SPAN_ID,
                  name: 'GET /orders',
                  kind: 2,
                  startTimeUnixNano: 1_700_000_000_000_000_000,
                  endTimeUnixNano: '1700000000250000000',
                  attributes: [
                    { key: 'app.blob', value: { bytesValue: '3q2+7w==' } },
                    {
                      key: 'app.kv',
                      value: {
                        kvlistValue: {
                          values: [
                            { key: 'x', value: { intValue: '5' } },
                            {
                              key: 'y',
                              value: {
                                arrayValue: { values: [{ stringValue: 's' }, { bytesValue: 'aGk=' }] },
                              },
                            },
                            { key: 'big', value: { intValue: '9007199254740993' } },
                          ],
                        },
                      },
                    },
                    { key: 'app.empty', value: {} },
                    { key: 'app.nan', value: { doubleValue: 'NaN' } },
                    { key: 'app.min', value: { intValue: '-9223372036854775808' } },
                  ],
                },
              ],
            },
          ],
        },
      ],
    });
    const [span] = mapper().map(body, 'json', 'acme').spans;
    expect(span?.attributes).toEqual({
      'app.blob': '3q2+7w==',
      'app.kv': '{"x":5,"y":["s","aGk="],"big":"9007199254740993"}',
      'app.empty': '',
      'app.nan': 'NaN',
      'app.min': '-9223372036854775808',
    });
    expect(span?.start).toBe(1_700_000_000_000_000);
    expect(span?.duration).toBe(250_000);
  });

  it('cuts a value over maxAttributeValueChars and marks how much was cut, within the limit', () => {
    const [span] = mapProtobuf(
      handRequest([
        handSpan({ attributes: [{ key: 'db.statement', value: { stringValue: 'x'.repeat(250) } }] }),
      ]),
      { maxAttributeValueChars: 100 },
    ).spans;
    expect(span?.attributes['db.statement']).toBe(`${'x'.repeat(84)}…[cut 166 chars]`);
    expect(span?.attributes['db.statement']).toHaveLength(100);
  });

  it('does not split a surrogate pair when cutting', () => {
    const [span] = mapProtobuf(
      handRequest([
        handSpan({
          attributes: [{ key: 'emoji', value: { stringValue: `${'x'.repeat(83)}😀${'y'.repeat(200)}` } }],
        }),
      ]),
      { maxAttributeValueChars: 100 },
    ).spans;
    expect(span?.attributes.emoji).toBe(`${'x'.repeat(83)}…[cut 202 chars]`);
  });

  it('drops empty and over-long keys and counts them as dropped attributes', () => {
    const [span] = mapProtobuf(
      handRequest([
        handSpan({
          droppedAttributesCount: 1,
          attributes: [
            { key: '', value: { stringValue: 'a' } },
            { key: 'k'.repeat(129), value: { stringValue: 'b' } },
            { key: 'ok', value: { stringValue: 'c' } },
          ],
        }),
      ]),
    ).spans;
    expect(span?.attributes).toEqual({ ok: 'c', 'otel.dropped_attributes_count': '3' });
  });
});

describe('span fields', () => {
  it('maps defaults: unknown_service, all-zero parent as root, UNSPECIFIED kind as INTERNAL, UNSET status', () => {
    const out = mapProtobuf({
      resourceSpans: [
        {
          scopeSpans: [
            {
              spans: [handSpan({ kind: 0, parentSpanId: Buffer.alloc(8), status: { code: 0, message: '' } })],
            },
          ],
        },
      ],
    });
    expect(out.spans).toEqual([
      {
        v: 2,
        id: TRACE_ID + SPAN_ID,
        ts: 1_700_000_000_000_000,
        tenant: 'acme',
        trace_id: TRACE_ID,
        span_id: SPAN_ID,
        parent_span_id: '',
        name: 'GET /orders',
        kind: 'INTERNAL',
        service: 'unknown_service',
        start: 1_700_000_000_000_000,
        duration: 250_000,
        status: 'UNSET',
        status_message: '',
        attributes: {},
        resource: {},
        scope_name: '',
        scope_version: '',
        events: [],
        links: [],
      },
    ]);
  });

  it('floors times to microseconds exactly and clamps an end before the start to duration 0', () => {
    const out = mapProtobuf(
      handRequest([
        handSpan({ startTimeUnixNano: '1700000000999999999', endTimeUnixNano: '1700000001000000000' }),
        handSpan({ spanId: Buffer.from('0000000000000002', 'hex'), endTimeUnixNano: '1699999999000000000' }),
      ]),
    );
    expect(out.spans.map((s) => [s.start, s.duration])).toEqual([
      [1_700_000_000_999_999, 0],
      [1_700_000_000_000_000, 0],
    ]);
  });

  it('keeps at most maxEventsPerSpan events and maxLinksPerSpan valid links, counting the rest as dropped', () => {
    const event = (n: number) => ({ timeUnixNano: `${1_700_000_000_000_000_000 + n * 1000}`, name: `e${n}` });
    const link = (spanId: string) => ({
      traceId: Buffer.from(TRACE_ID, 'hex'),
      spanId: Buffer.from(spanId, 'hex'),
    });
    const [span] = mapProtobuf(
      handRequest([
        handSpan({
          events: [event(1), event(2), event(3)],
          links: [link('0000000000000000'), link('00000000000000a1'), link('00000000000000a2')],
        }),
      ]),
      { maxEventsPerSpan: 2, maxLinksPerSpan: 1 },
    ).spans;
    expect(span?.events.map((e) => [e.name, e.time])).toEqual([
      ['e1', 1_700_000_000_000_001],
      ['e2', 1_700_000_000_000_002],
    ]);
    expect(span?.links.map((l) => l.span_id)).toEqual(['00000000000000a1']);
    expect(span?.attributes).toEqual({ 'otel.dropped_events_count': '1', 'otel.dropped_links_count': '2' });
  });
});

describe('rejected spans', () => {
  it('rejects a span with more than maxAttributesPerSpan attributes and keeps the others', () => {
    const attrs = (n: number) =>
      Array.from({ length: n }, (_, i) => ({ key: `a${i}`, value: { intValue: i } }));
    const out = mapProtobuf(
      handRequest([
        handSpan({ attributes: attrs(4) }),
        handSpan({ spanId: Buffer.from('00000000000000b2', 'hex'), name: 'kept', attributes: attrs(3) }),
      ]),
      { maxAttributesPerSpan: 3 },
    );
    expect(out.spans.map((s) => s.name)).toEqual(['kept']);
    expect(out.rejected).toBe(1);
    expect(out.errorMessage).toBe(
      'span 0 of resource 0 (name "GET /orders"): it has 4 attributes, more than maxAttributesPerSpan 3',
    );
  });

  it('rejects spans with invalid ids, names the first three and counts the rest', () => {
    const out = mapProtobuf(
      handRequest([
        handSpan({ name: 'ok-1' }),
        handSpan({ name: 'short-trace', traceId: Buffer.alloc(15, 1) }),
        handSpan({ name: 'zero-span', spanId: Buffer.alloc(8) }),
        handSpan({ name: 'no-trace', traceId: Buffer.alloc(0) }),
        handSpan({ name: 'long-parent', parentSpanId: Buffer.alloc(9, 1) }),
        handSpan({ name: 'ok-2' }),
      ]),
    );
    expect(out.spans.map((s) => s.name)).toEqual(['ok-1', 'ok-2']);
    expect(out.rejected).toBe(4);
    expect(out.errorMessage).toBe(
      'span 1 of resource 0 (name "short-trace"): trace_id must be 16 bytes, not all zero; ' +
        'span 2 of resource 0 (name "zero-span"): span_id must be 8 bytes, not all zero; ' +
        'span 3 of resource 0 (name "no-trace"): trace_id must be 16 bytes, not all zero; … and 1 more',
    );
  });

  it('rejects an OTLP/JSON span whose trace id is not hex, keeping the rest', () => {
    const span = { spanId: SPAN_ID, name: 'x', startTimeUnixNano: '1700000000000000000' };
    const out = mapper().map(
      jsonBody({
        resourceSpans: [
          {
            scopeSpans: [
              {
                spans: [
                  { ...span, traceId: 'W4753/eYA4ED0mm2M4E/xg==' },
                  { ...span, traceId: TRACE_ID },
                ],
              },
            ],
          },
        ],
      }),
      'json',
      'acme',
    );
    expect(out.spans.map((s) => s.trace_id)).toEqual([TRACE_ID]);
    expect(out.errorMessage).toBe('span 0 of resource 0 (name "x"): trace_id must be 16 bytes, not all zero');
  });

  it('rejects a span without a start time', () => {
    const out = mapProtobuf(handRequest([handSpan({ startTimeUnixNano: 0 })]));
    expect(out).toEqual({
      spans: [],
      rejected: 1,
      errorMessage: 'span 0 of resource 0 (name "GET /orders"): start_time_unix_nano must be set',
    });
  });

  it('rejects every span of a resource with too many attributes', () => {
    const out = mapProtobuf(
      handRequest(
        [handSpan()],
        [1, 2, 3].map((i) => ({ key: `r${i}`, value: { boolValue: true } })),
      ),
      { maxAttributesPerSpan: 2 },
    );
    expect(out.rejected).toBe(1);
    expect(out.errorMessage).toBe(
      'span 0 of resource 0 (name "GET /orders"): its resource has 3 attributes, more than maxAttributesPerSpan 2',
    );
  });
});

describe('refused requests', () => {
  it('refuses more spans than maxSpansPerRequest', () => {
    const err = requestError(() =>
      mapProtobuf(handRequest([handSpan(), handSpan(), handSpan()]), { maxSpansPerRequest: 2 }),
    );
    expect(err.code).toBe('TAPWIRE_OTLP_BAD_REQUEST');
    expect(err.message).toBe('the request holds 3 spans, more than maxSpansPerRequest 2');
  });

  it('refuses malformed protobuf', () => {
    const err = requestError(() =>
      mapper().map(new Uint8Array([0x0a, 0xff, 0xff, 0x01]), 'protobuf', 'acme'),
    );
    expect(err.message).toMatch(/^invalid OTLP protobuf request: index out of range/);
  });

  it('refuses invalid JSON', () => {
    const err = requestError(() =>
      mapper().map(new TextEncoder().encode('{"resourceSpans": ['), 'json', 'acme'),
    );
    expect(err.message).toMatch(/^invalid OTLP\/JSON request: .*JSON/);
  });

  it('refuses OTLP/JSON with a wrong type, naming the field path', () => {
    const body = jsonBody({
      resourceSpans: [
        { scopeSpans: [{ spans: [{ traceId: TRACE_ID, spanId: 7, startTimeUnixNano: true }] }] },
      ],
    });
    const err = requestError(() => mapper().map(body, 'json', 'acme'));
    expect(err.message).toBe(
      'invalid OTLP/JSON request: resourceSpans.0.scopeSpans.0.spans.0.spanId: Invalid input: expected string, received number; ' +
        'resourceSpans.0.scopeSpans.0.spans.0.startTimeUnixNano: must be an unsigned integer, as a string or a number',
    );
  });
});

describe('OTLP/JSON field names and empty requests', () => {
  it('accepts snake_case field names as the spec requires of receivers', () => {
    const camel = {
      resourceSpans: [
        {
          resource: { attributes: [{ key: 'service.name', value: { stringValue: 'orders' } }] },
          scopeSpans: [
            {
              scope: { name: 'manual', version: '1' },
              spans: [
                {
                  traceId: TRACE_ID,
                  spanId: SPAN_ID,
                  parentSpanId: '00000000000000c3',
                  name: 'GET /orders',
                  kind: 'SPAN_KIND_CLIENT',
                  startTimeUnixNano: '1700000000000000000',
                  endTimeUnixNano: '1700000000250000000',
                  attributes: [{ key: 'http.route', value: { stringValue: '/orders' } }],
                  droppedEventsCount: 2,
                  status: { code: 2, message: 'bad' },
                },
              ],
            },
          ],
        },
      ],
    };
    const snake = JSON.parse(
      JSON.stringify(camel).replace(
        /"([a-z]+[A-Z][A-Za-z]*)":/g,
        (_, k: string) => `"${k.replace(/[A-Z]/g, (c) => `_${c.toLowerCase()}`)}":`,
      ),
    );
    expect(JSON.stringify(snake)).toContain('"start_time_unix_nano"');
    const fromCamel = mapper().map(jsonBody(camel), 'json', 'acme');
    expect(fromCamel.spans[0]).toMatchObject({
      kind: 'CLIENT',
      parent_span_id: '00000000000000c3',
      status: 'ERROR',
      status_message: 'bad',
      attributes: { 'http.route': '/orders', 'otel.dropped_events_count': '2' },
      scope_name: 'manual',
    });
    expect(mapper().map(jsonBody(snake), 'json', 'acme')).toEqual(fromCamel);
  });

  it('accepts snake_case names mixed into a camelCase body', () => {
    const body = jsonBody({
      resourceSpans: [
        {
          scopeSpans: [
            {
              spans: [
                {
                  trace_id: TRACE_ID,
                  span_id: SPAN_ID,
                  name: 'x',
                  start_time_unix_nano: '1700000000000000000',
                },
              ],
            },
          ],
        },
      ],
    });
    const out = mapper().map(body, 'json', 'acme');
    expect(out.spans.map((s) => [s.trace_id, s.span_id, s.start])).toEqual([
      [TRACE_ID, SPAN_ID, 1_700_000_000_000_000],
    ]);
  });

  it('refuses an attribute value nested deeper than 16 levels, naming where', () => {
    let value: object = { stringValue: 'leaf' };
    for (let i = 0; i < 17; i++) value = { arrayValue: { values: [value] } };
    const body = jsonBody({
      resourceSpans: [{ resource: { attributes: [{ key: 'deep', value }] } }],
    });
    const err = requestError(() => mapper().map(body, 'json', 'acme'));
    expect(err.message).toBe(
      `invalid OTLP/JSON request: resourceSpans.0.resource.attributes.0.value${'.arrayValue.values.0'.repeat(17)}: nests more than 16 levels`,
    );
  });

  it('reads enum names and quoted numbers as proto3 JSON parsers do', () => {
    const span = { traceId: TRACE_ID, spanId: SPAN_ID, name: 'x', startTimeUnixNano: '1700000000000000000' };
    const out = mapper().map(
      jsonBody({
        resourceSpans: [
          {
            scopeSpans: [
              {
                spans: [
                  { ...span, kind: '3', droppedAttributesCount: '2', status: { code: '2' } },
                  { ...span, kind: 'SPAN_KIND_PRODUCER', status: { code: 'STATUS_CODE_OK' } },
                ],
              },
            ],
          },
        ],
      }),
      'json',
      'acme',
    );
    expect(out.spans.map((s) => [s.kind, s.status, s.attributes])).toEqual([
      ['CLIENT', 'ERROR', { 'otel.dropped_attributes_count': '2' }],
      ['PRODUCER', 'OK', {}],
    ]);
  });

  it('accepts an empty request as zero spans', () => {
    const empty = { spans: [], rejected: 0, errorMessage: '' };
    expect(mapper().map(new Uint8Array(0), 'protobuf', 'acme')).toEqual(empty);
    expect(mapper().map(new Uint8Array(0), 'json', 'acme')).toEqual(empty);
    expect(mapper().map(jsonBody({}), 'json', 'acme')).toEqual(empty);
    expect(mapper().map(protobufBody({ resourceSpans: [] }), 'protobuf', 'acme')).toEqual(empty);
  });
});
