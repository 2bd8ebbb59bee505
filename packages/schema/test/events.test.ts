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
    expect(reasonOf(spanCodec.parse(exampleSpan({ attributes })))).toBe(
      `attributes: must have at most ${LIMITS.attributeKeys} keys`,
    );
  });
  it('fills defaults for omitted optional fields', () => {
    const { status_message: _m, attributes: _a, ...rest } = exampleSpan();
    const result = spanCodec.parse(rest);
    expect(result).toEqual({ ok: true, event: { ...rest, status_message: '', attributes: {} } });
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
      reason: 'v: unknown span version 99 (known: 1)',
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
