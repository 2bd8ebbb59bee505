import { gzipSync } from 'node:zlib';
import { createLogger } from '@tapwire/telemetry';
import { afterEach, describe, expect, it } from 'vitest';
import {
  buildReceiver,
  decodeResponse,
  decodeStatus,
  exportJson,
  exportProtobuf,
  type ReceiverUnderTest,
  span,
  TOKEN,
  TRACE_ID,
} from './helpers.js';

const PROTOBUF = { 'content-type': 'application/x-protobuf', authorization: `Bearer ${TOKEN}` };
const JSON_HEADERS = { 'content-type': 'application/json', authorization: `Bearer ${TOKEN}` };

let under: ReceiverUnderTest | undefined;
afterEach(async () => {
  await under?.receiver.close();
  under = undefined;
});

function build(
  config: Record<string, unknown> = {},
  logger?: Parameters<typeof buildReceiver>[1],
): ReceiverUnderTest {
  under = buildReceiver(config, logger);
  return under;
}

async function metric(r: ReceiverUnderTest, line: string): Promise<number | undefined> {
  const text = (await r.receiver.admin.app.inject({ method: 'GET', url: '/metrics' })).body;
  const found = text.split('\n').find((l) => l.startsWith(`${line} `));
  return found === undefined ? undefined : Number(found.slice(line.length + 1));
}

describe('OTLP/HTTP POST /v1/traces', () => {
  it('stores a protobuf export under the token’s tenant before answering 200 with an empty ExportTraceServiceResponse', async () => {
    const r = build();
    const res = await r.receiver.http.inject({
      method: 'POST',
      url: '/v1/traces',
      headers: PROTOBUF,
      payload: exportProtobuf([span('0123456789abcdef'), span('1123456789abcdef', 'SELECT users')]),
    });
    expect(res.statusCode).toBe(200);
    expect(res.headers['content-type']).toBe('application/x-protobuf');
    expect(decodeResponse(res.rawPayload)).toEqual({});
    expect(
      r.sink.written.map((w) => [w.topic, w.event.id, w.event.tenant, w.event.service, w.event.kind]),
    ).toEqual([
      ['tapwire.spans.v1', `${TRACE_ID}0123456789abcdef`, 'acme', 'checkout', 'SERVER'],
      ['tapwire.spans.v1', `${TRACE_ID}1123456789abcdef`, 'acme', 'checkout', 'SERVER'],
    ]);
    expect(r.sink.written[0]!.event).toMatchObject({ start: 1_765_000_000_000_000, duration: 12_345 });
    expect(await metric(r, 'tapwire_otlp_requests_total{transport="http",outcome="ok"}')).toBe(1);
    expect(await metric(r, 'tapwire_otlp_spans_accepted_total{transport="http"}')).toBe(2);
  });

  it('answers a JSON export in JSON', async () => {
    const r = build();
    const res = await r.receiver.http.inject({
      method: 'POST',
      url: '/v1/traces',
      headers: { ...JSON_HEADERS, 'content-type': 'application/json; charset=utf-8' },
      payload: exportJson([span('0123456789abcdef')]),
    });
    expect(res.statusCode).toBe(200);
    expect(res.headers['content-type']).toBe('application/json');
    expect(res.json()).toEqual({});
    expect(r.sink.written.map((w) => w.event.span_id)).toEqual(['0123456789abcdef']);
  });

  it('accepts the token in x-tapwire-token', async () => {
    const r = build();
    const res = await r.receiver.http.inject({
      method: 'POST',
      url: '/v1/traces',
      headers: { 'content-type': 'application/x-protobuf', 'x-tapwire-token': TOKEN },
      payload: exportProtobuf([span('0123456789abcdef')]),
    });
    expect(res.statusCode).toBe(200);
    expect(r.sink.written).toHaveLength(1);
  });

  it.each([
    ['no token', { 'content-type': 'application/x-protobuf' }],
    [
      'an unknown token',
      { 'content-type': 'application/x-protobuf', authorization: 'Bearer tw_not-a-token' },
    ],
    ['an unknown x-tapwire-token', { 'content-type': 'application/x-protobuf', 'x-tapwire-token': 'nope' }],
  ])('answers 401 with a Status to %s and stores nothing', async (_label, headers) => {
    const r = build();
    const res = await r.receiver.http.inject({
      method: 'POST',
      url: '/v1/traces',
      headers,
      payload: exportProtobuf([span('0123456789abcdef')]),
    });
    expect(res.statusCode).toBe(401);
    expect(decodeStatus(res.rawPayload).code).toBe(16);
    expect(r.sink.written).toEqual([]);
    expect(await metric(r, 'tapwire_otlp_requests_total{transport="http",outcome="unauthenticated"}')).toBe(
      1,
    );
  });

  it('answers 415 to another content type', async () => {
    const r = build();
    const res = await r.receiver.http.inject({
      method: 'POST',
      url: '/v1/traces',
      headers: { ...PROTOBUF, 'content-type': 'text/plain' },
      payload: 'hello',
    });
    expect(res.statusCode).toBe(415);
    expect(res.json()).toMatchObject({
      code: 3,
      message: 'Content-Type must be application/x-protobuf or application/json',
    });
    expect(r.sink.written).toEqual([]);
  });

  it('answers 415 to a content encoding other than gzip', async () => {
    const r = build();
    const res = await r.receiver.http.inject({
      method: 'POST',
      url: '/v1/traces',
      headers: { ...PROTOBUF, 'content-encoding': 'br' },
      payload: exportProtobuf([span('0123456789abcdef')]),
    });
    expect(res.statusCode).toBe(415);
  });

  it('answers a malformed protobuf body 400 with a google.rpc.Status in protobuf', async () => {
    const r = build();
    const res = await r.receiver.http.inject({
      method: 'POST',
      url: '/v1/traces',
      headers: PROTOBUF,
      payload: Buffer.from([0x0a, 0xff, 0xff, 0xff, 0x0f, 0x01]),
    });
    expect(res.statusCode).toBe(400);
    expect(res.headers['content-type']).toBe('application/x-protobuf');
    const status = decodeStatus(res.rawPayload);
    expect(status.code).toBe(3);
    expect(status.message).not.toBe('');
    expect(r.sink.written).toEqual([]);
    expect(await metric(r, 'tapwire_otlp_requests_total{transport="http",outcome="bad_request"}')).toBe(1);
  });

  it('answers a malformed JSON body 400 with a google.rpc.Status in JSON', async () => {
    const r = build();
    const res = await r.receiver.http.inject({
      method: 'POST',
      url: '/v1/traces',
      headers: JSON_HEADERS,
      payload: '{"resourceSpans": [',
    });
    expect(res.statusCode).toBe(400);
    expect(res.headers['content-type']).toBe('application/json');
    expect(res.json()).toMatchObject({ code: 3 });
  });

  it('reports rejected spans as partial_success and stores the rest of the request', async () => {
    const r = build();
    const res = await r.receiver.http.inject({
      method: 'POST',
      url: '/v1/traces',
      headers: PROTOBUF,
      payload: exportProtobuf([
        span('0123456789abcdef'),
        { traceId: '00000000000000000000000000000000', spanId: '1123456789abcdef', name: 'bad' },
      ]),
    });
    expect(res.statusCode).toBe(200);
    const body = decodeResponse(res.rawPayload);
    expect(body.partialSuccess?.rejectedSpans).toBe('1');
    expect(body.partialSuccess?.errorMessage).not.toBe('');
    expect(r.sink.written.map((w) => w.event.span_id)).toEqual(['0123456789abcdef']);
    expect(await metric(r, 'tapwire_otlp_requests_total{transport="http",outcome="partial"}')).toBe(1);
    expect(await metric(r, 'tapwire_otlp_spans_rejected_total{transport="http"}')).toBe(1);
  });

  it('takes a gzip-compressed body', async () => {
    const r = build();
    const res = await r.receiver.http.inject({
      method: 'POST',
      url: '/v1/traces',
      headers: { ...PROTOBUF, 'content-encoding': 'gzip' },
      payload: gzipSync(exportProtobuf([span('0123456789abcdef')])),
    });
    expect(res.statusCode).toBe(200);
    expect(r.sink.written).toHaveLength(1);
  });

  it('answers 413 to a body over limits.maxMessageBytes', async () => {
    const r = build({ limits: { maxMessageBytes: 4096 } });
    const res = await r.receiver.http.inject({
      method: 'POST',
      url: '/v1/traces',
      headers: PROTOBUF,
      payload: Buffer.alloc(5000, 0x0a),
    });
    expect(res.statusCode).toBe(413);
    expect(decodeStatus(res.rawPayload).message).toContain('otlp.limits.maxMessageBytes');
    expect(r.sink.written).toEqual([]);
  });

  it('answers 413 to a gzip body that decompresses past limits.maxMessageBytes, without inflating it all', async () => {
    const r = build({ limits: { maxMessageBytes: 4096 } });
    const bomb = gzipSync(Buffer.alloc(10 * 1024 * 1024));
    expect(bomb.length).toBeLessThan(4096 * 4);
    const small = gzipSync(Buffer.alloc(200_000));
    expect(small.length).toBeLessThan(4096);
    for (const payload of [bomb, small]) {
      const res = await r.receiver.http.inject({
        method: 'POST',
        url: '/v1/traces',
        headers: { ...PROTOBUF, 'content-encoding': 'gzip' },
        payload,
      });
      expect(res.statusCode).toBe(413);
    }
    expect(r.sink.written).toEqual([]);
  });

  it('answers 429 with Retry-After and a RetryInfo Status while the local log backlog is near its cap, and counts it', async () => {
    const r = build({ throttle: { retryAfterS: 7 } });
    r.emission.capacityBytes = 1000;
    r.emission.unshippedBytes = 950;
    const res = await r.receiver.http.inject({
      method: 'POST',
      url: '/v1/traces',
      headers: PROTOBUF,
      payload: exportProtobuf([span('0123456789abcdef')]),
    });
    expect(res.statusCode).toBe(429);
    expect(res.headers['retry-after']).toBe('7');
    expect(decodeStatus(res.rawPayload)).toMatchObject({ code: 8, retryDelayS: 7 });
    expect(r.sink.written).toEqual([]);
    expect(await metric(r, 'tapwire_otlp_throttled_total{transport="http",reason="backlog"}')).toBe(1);
    // Shipped again: the next export goes through once the stats are looked at again.
    r.emission.unshippedBytes = 0;
    r.clock.now += 1000;
    const again = await r.receiver.http.inject({
      method: 'POST',
      url: '/v1/traces',
      headers: PROTOBUF,
      payload: exportProtobuf([span('0123456789abcdef')]),
    });
    expect(again.statusCode).toBe(200);
  });

  it('answers 503 when the local log fails the write, then 429 for retryAfterS', async () => {
    const r = build({ throttle: { retryAfterS: 5 } });
    r.sink.failing = true;
    const res = await r.receiver.http.inject({
      method: 'POST',
      url: '/v1/traces',
      headers: PROTOBUF,
      payload: exportProtobuf([span('0123456789abcdef')]),
    });
    expect(res.statusCode).toBe(503);
    expect(decodeStatus(res.rawPayload).code).toBe(14);
    r.sink.failing = false;
    const throttled = await r.receiver.http.inject({
      method: 'POST',
      url: '/v1/traces',
      headers: PROTOBUF,
      payload: exportProtobuf([span('0123456789abcdef')]),
    });
    expect(throttled.statusCode).toBe(429);
    r.clock.now += 5000;
    const recovered = await r.receiver.http.inject({
      method: 'POST',
      url: '/v1/traces',
      headers: PROTOBUF,
      payload: exportProtobuf([span('0123456789abcdef')]),
    });
    expect(recovered.statusCode).toBe(200);
    expect(r.sink.written).toHaveLength(1);
  });

  it('throttles when more request bytes than throttle.maxInFlightBytes would be in flight', async () => {
    const r = build({ throttle: { maxInFlightBytes: 2048 } });
    r.receiver.throttle.acquire(2000);
    const res = await r.receiver.http.inject({
      method: 'POST',
      url: '/v1/traces',
      headers: PROTOBUF,
      payload: exportProtobuf([span('0123456789abcdef')]),
    });
    expect(res.statusCode).toBe(429);
    expect(await metric(r, 'tapwire_otlp_throttled_total{transport="http",reason="in_flight"}')).toBe(1);
    r.receiver.throttle.release(2000);
    expect(r.receiver.throttle.inFlightBytes).toBe(0);
  });

  it('never logs a token or anything the request carried, whatever the outcome', async () => {
    const lines: string[] = [];
    const logger = createLogger({
      name: 'test',
      level: 'trace',
      format: 'json',
      destination: { write: (line: string) => lines.push(line) },
    });
    const r = build({}, logger);
    const post = (headers: Record<string, string>, payload: string | Buffer) =>
      r.receiver.http.inject({ method: 'POST', url: '/v1/traces', headers, payload });
    expect((await post({ ...JSON_HEADERS, authorization: 'Bearer CANARY_TOKEN' }, '{}')).statusCode).toBe(
      401,
    );
    expect((await post(JSON_HEADERS, '{"resourceSpans": [{"CANARY_BODY": ')).statusCode).toBe(400);
    const secretSpan = exportJson([span('0123456789abcdef', 'CANARY_NAME')]);
    r.sink.failing = true;
    expect((await post(JSON_HEADERS, secretSpan)).statusCode).toBe(503);
    expect(lines.length).toBeGreaterThanOrEqual(2);
    expect(lines.join('')).not.toMatch(/CANARY|tw_acme/);
  });
});
