import {
  accessLogCodec,
  alertStateCodec,
  CODECS,
  codecForTopic,
  dlqCodec,
  EventValidationError,
  LIMITS,
  saturationCodec,
  spanCodec,
  TOPICS,
} from '@tapwire/schema';
import { describe, expect, it } from 'vitest';
import {
  exampleAccessLog,
  exampleAlertState,
  exampleDlq,
  exampleSaturation,
  exampleSpan,
  exampleSpanV1,
} from '../../../test/support/events.js';

function reasonOf(result: { ok: boolean; reason?: string }): string {
  expect(result.ok).toBe(false);
  return (result as { reason: string }).reason;
}

describe('valid events round-trip through encode and decode', () => {
  const cases = [
    ['span', spanCodec, exampleSpan()],
    ['access log', accessLogCodec, exampleAccessLog()],
    ['saturation', saturationCodec, exampleSaturation()],
    ['dlq', dlqCodec, exampleDlq()],
    ['alert state', alertStateCodec, exampleAlertState()],
  ] as const;
  for (const [name, codec, event] of cases) {
    it(name, () => {
      const encoded = (codec.encode as (e: unknown) => string)(event);
      expect(codec.decode(encoded)).toEqual({ ok: true, event });
      expect(codec.decode(Buffer.from(encoded))).toEqual({ ok: true, event });
    });
  }
});

describe('span', () => {
  it('rejects a trace id that is not 32 lowercase hex characters', () => {
    expect(reasonOf(spanCodec.parse(exampleSpan({ trace_id: 'ABCDEF0123456789ABCDEF0123456789' })))).toBe(
      'trace_id: must be 32 lowercase hex characters',
    );
    expect(reasonOf(spanCodec.parse(exampleSpan({ trace_id: 'abc' })))).toBe(
      'trace_id: must be 32 lowercase hex characters',
    );
  });
  it('rejects an all-zero trace id and span id (invalid in W3C trace context)', () => {
    expect(reasonOf(spanCodec.parse(exampleSpan({ trace_id: '0'.repeat(32) })))).toBe(
      'trace_id: must not be all zeros',
    );
    expect(reasonOf(spanCodec.parse(exampleSpan({ span_id: '0'.repeat(16) })))).toBe(
      'span_id: must not be all zeros',
    );
  });
  it('accepts an empty parent span id for a root span and rejects a malformed one', () => {
    expect(spanCodec.parse(exampleSpan({ parent_span_id: '' })).ok).toBe(true);
    expect(reasonOf(spanCodec.parse(exampleSpan({ parent_span_id: 'xyz' })))).toContain('parent_span_id');
  });
  it('rejects a negative duration', () => {
    expect(reasonOf(spanCodec.parse(exampleSpan({ duration: -1 })))).toMatch(/^duration: /);
  });
  it('rejects a fractional start and a start different from ts', () => {
    expect(reasonOf(spanCodec.parse(exampleSpan({ ts: 1.5, start: 1.5 })))).toMatch(/^ts: .*; start: /);
    const s = exampleSpan();
    expect(reasonOf(spanCodec.parse({ ...s, start: s.ts + 1 }))).toBe('start: must equal ts');
  });
  it('rejects an unknown kind and status', () => {
    expect(reasonOf(spanCodec.parse({ ...exampleSpan(), kind: 'server' }))).toMatch(/^kind: /);
    expect(reasonOf(spanCodec.parse({ ...exampleSpan(), status: 'FAILED' }))).toMatch(/^status: /);
  });
  it('rejects an oversized name and too many attributes', () => {
    expect(reasonOf(spanCodec.parse(exampleSpan({ name: 'x'.repeat(LIMITS.nameChars + 1) })))).toBe(
      `name: must be at most ${LIMITS.nameChars} characters`,
    );
    const attributes = Object.fromEntries(
      Array.from({ length: LIMITS.attributeKeys + 1 }, (_, i) => [`k${i}`, 'v']),
    );
    expect(reasonOf(spanCodec.parse(exampleSpanV1({ attributes })))).toBe(
      `attributes: must have at most ${LIMITS.attributeKeys} keys`,
    );
  });
  it('fills defaults for omitted optional fields', () => {
    const {
      status_message: _m,
      attributes: _a,
      resource: _r,
      events: _e,
      links: _l,
      ...rest
    } = exampleSpan();
    const result = spanCodec.parse(rest);
    expect(result).toEqual({
      ok: true,
      event: { ...rest, status_message: '', attributes: {}, resource: {}, events: [], links: [] },
    });
  });
});

describe('span version 2', () => {
  const many = (n: number) => Object.fromEntries(Array.from({ length: n }, (_, i) => [`k${i}`, 'v']));
  const event = { time: 1_795_651_200_001_000, name: 'retry', attributes: { attempt: '2' } };
  const link = { trace_id: 'ab'.repeat(16), span_id: 'cd'.repeat(8), attributes: {} };

  it('upgrades a version 1 span (what the proxy writes) to version 2 with empty defaults', () => {
    const v1 = exampleSpanV1();
    const { v: _v, ...fields } = v1;
    const expected = {
      ...fields,
      v: 2,
      resource: {},
      scope_name: '',
      scope_version: '',
      events: [],
      links: [],
    };
    expect(spanCodec.decode(JSON.stringify(v1))).toEqual({ ok: true, event: expected });
    expect(spanCodec.parse(v1)).toEqual({ ok: true, event: expected });
  });
  it('keeps a version 2 span with resource, scope, events and links as sent', () => {
    const span = exampleSpan({
      resource: { 'service.version': '1.4.2', 'host.name': 'web-1' },
      scope_name: '@opentelemetry/instrumentation-http',
      scope_version: '0.52.0',
      events: [event],
      links: [link],
    });
    expect(spanCodec.decode(JSON.stringify(span))).toEqual({ ok: true, event: span });
  });
  it('writes a version 1 span as version 1 (the proxy keeps writing it) and a version 2 span as version 2', () => {
    const v1 = exampleSpanV1();
    expect(JSON.parse(spanCodec.encode(v1))).toEqual(v1);
    const v2 = exampleSpan({ events: [event] });
    expect(JSON.parse(spanCodec.encode(v2))).toEqual(v2);
  });
  it('takes 128 attributes, events and links and rejects the 129th, naming the path', () => {
    const at = (n: number) => Array.from({ length: n }, () => event);
    const ln = (n: number) => Array.from({ length: n }, () => link);
    expect(
      spanCodec.parse(
        exampleSpan({ attributes: many(128), resource: many(128), events: at(128), links: ln(128) }),
      ).ok,
    ).toBe(true);
    expect(reasonOf(spanCodec.parse(exampleSpan({ attributes: many(129) })))).toBe(
      'attributes: must have at most 128 keys',
    );
    expect(reasonOf(spanCodec.parse(exampleSpan({ resource: many(129) })))).toBe(
      'resource: must have at most 128 keys',
    );
    expect(reasonOf(spanCodec.parse(exampleSpan({ events: at(129) })))).toBe(
      'events: must have at most 128 items',
    );
    expect(reasonOf(spanCodec.parse(exampleSpan({ links: ln(129) })))).toBe(
      'links: must have at most 128 items',
    );
    expect(
      reasonOf(spanCodec.parse(exampleSpan({ events: [event, { ...event, attributes: many(129) }] }))),
    ).toBe('events.1.attributes: must have at most 128 keys');
    expect(reasonOf(spanCodec.parse(exampleSpan({ links: [{ ...link, attributes: many(129) }] })))).toBe(
      'links.0.attributes: must have at most 128 keys',
    );
  });
  it('rejects an attribute value over 4096 characters and a malformed link, naming the path', () => {
    const long = 'x'.repeat(LIMITS.attributeValueChars + 1);
    expect(reasonOf(spanCodec.parse(exampleSpan({ resource: { 'host.name': long } })))).toBe(
      'resource.host.name: must be at most 4096 characters',
    );
    expect(
      reasonOf(
        spanCodec.parse(
          exampleSpan({ events: [{ ...event, attributes: { 'exception.stacktrace': long } }] }),
        ),
      ),
    ).toBe('events.0.attributes.exception.stacktrace: must be at most 4096 characters');
    expect(reasonOf(spanCodec.parse(exampleSpan({ links: [{ ...link, span_id: 'xyz' }] })))).toBe(
      'links.0.span_id: must be 16 lowercase hex characters',
    );
    expect(reasonOf(spanCodec.parse(exampleSpan({ events: [{ ...event, time: -1 }] })))).toMatch(
      /^events\.0\.time: /,
    );
  });
});

describe('access log', () => {
  it('reports every missing field at once', () => {
    const { route: _r, status: _s, ...rest } = exampleAccessLog();
    const reason = reasonOf(accessLogCodec.parse(rest));
    expect(reason).toContain('route: ');
    expect(reason).toContain('status: ');
  });
  it('rejects wrong types', () => {
    expect(reasonOf(accessLogCodec.parse({ ...exampleAccessLog(), status: '200' }))).toMatch(/^status: /);
    expect(reasonOf(accessLogCodec.parse({ ...exampleAccessLog(), bytes_out: 1.5 }))).toMatch(/^bytes_out: /);
    expect(reasonOf(accessLogCodec.parse({ ...exampleAccessLog(), method: 'get' }))).toMatch(/^method: /);
  });
  it('rejects negative durations and an unknown error kind', () => {
    expect(reasonOf(accessLogCodec.parse(exampleAccessLog({ duration_ms: -0.5 })))).toMatch(/^duration_ms: /);
    expect(reasonOf(accessLogCodec.parse({ ...exampleAccessLog(), error_kind: 'boom' }))).toMatch(
      /^error_kind: /,
    );
  });
  it('rejects an oversized path and a tenant with spaces', () => {
    expect(
      reasonOf(accessLogCodec.parse(exampleAccessLog({ path: `/${'a'.repeat(LIMITS.pathChars)}` }))),
    ).toBe(`path: must be at most ${LIMITS.pathChars} characters`);
    expect(reasonOf(accessLogCodec.parse(exampleAccessLog({ tenant: 'acme corp' })))).toMatch(/^tenant: /);
  });
  it('records a client abort as status 499 with error kind client_aborted', () => {
    expect(accessLogCodec.parse(exampleAccessLog({ status: 499, error_kind: 'client_aborted' })).ok).toBe(
      true,
    );
  });
});

describe('saturation', () => {
  it('rejects an event-loop utilization above 1 and a negative in-flight count', () => {
    expect(reasonOf(saturationCodec.parse(exampleSaturation({ event_loop_utilization: 1.2 })))).toMatch(
      /^event_loop_utilization: /,
    );
    const upstreams = [
      { upstream: 'u', in_flight: -1, concurrency_limit: 1, pool_size: 1, pool_busy: 0, pool_pending: 0 },
    ];
    expect(reasonOf(saturationCodec.parse(exampleSaturation({ upstreams })))).toMatch(
      /^upstreams\.0\.in_flight: /,
    );
  });
});

describe('dlq', () => {
  it('rejects raw bytes that are not base64 and an offset that is not decimal', () => {
    expect(reasonOf(dlqCodec.parse(exampleDlq({ raw_base64: 'not base64!' })))).toBe(
      'raw_base64: must be base64',
    );
    expect(reasonOf(dlqCodec.parse(exampleDlq({ source_offset: '-1' })))).toBe(
      'source_offset: must be a decimal Kafka offset',
    );
  });
});

describe('alert state', () => {
  it('rejects an unknown state and a malformed fingerprint', () => {
    expect(reasonOf(alertStateCodec.parse({ ...exampleAlertState(), state: 'on' }))).toMatch(/^state: /);
    expect(reasonOf(alertStateCodec.parse(exampleAlertState({ fingerprint: 'xyz' })))).toBe(
      'fingerprint: must be 16 lowercase hex characters',
    );
  });
  it('accepts a null value for NoData', () => {
    expect(alertStateCodec.parse(exampleAlertState({ state: 'nodata', value: null })).ok).toBe(true);
  });
});

describe('decode', () => {
  it('classifies garbage, truncated JSON, non-objects, unknown versions and oversized messages', () => {
    expect(spanCodec.decode('garbage')).toMatchObject({ ok: false, code: 'not_json' });
    expect(spanCodec.decode('{"v":1,"id":')).toMatchObject({ ok: false, code: 'not_json' });
    expect(spanCodec.decode('[1,2]')).toMatchObject({ ok: false, code: 'not_object' });
    expect(spanCodec.decode('null')).toMatchObject({ ok: false, code: 'not_object' });
    expect(spanCodec.decode(JSON.stringify({ ...exampleSpan(), v: 99 }))).toEqual({
      ok: false,
      code: 'unknown_version',
      reason: 'v: unknown span version 99 (known: 1, 2)',
    });
    expect(spanCodec.decode(JSON.stringify({ ...exampleSpan(), v: '1' }))).toMatchObject({
      ok: false,
      code: 'unknown_version',
    });
    const big = JSON.stringify(exampleSpan({ name: 'x' })).replace(
      '"x"',
      `"${'x'.repeat(LIMITS.eventBytes)}"`,
    );
    expect(spanCodec.decode(big)).toEqual({
      ok: false,
      code: 'too_large',
      reason: `event is ${Buffer.byteLength(big)} bytes, limit is ${LIMITS.eventBytes}`,
    });
  });
  it('encode throws a coded error naming the field', () => {
    expect(() => spanCodec.encode(exampleSpan({ duration: -5 }))).toThrow(EventValidationError);
    expect(() => spanCodec.encode(exampleSpan({ duration: -5 }))).toThrow(/invalid span event: duration: /);
  });
});

describe('topics', () => {
  it('names every topic with its wire version and maps it to its codec', () => {
    expect(Object.values(TOPICS).sort()).toEqual([
      'tapwire.access.v1',
      'tapwire.alert-state.v1',
      'tapwire.dlq.v1',
      'tapwire.saturation.v1',
      'tapwire.silences.v1',
      'tapwire.spans.v1',
    ]);
    expect(CODECS['tapwire.spans.v1']).toBe(spanCodec);
    expect(codecForTopic('tapwire.access.v1')).toBe(accessLogCodec);
    expect(codecForTopic('other')).toBeUndefined();
  });
});
