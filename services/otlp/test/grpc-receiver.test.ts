import { Client, credentials, Metadata, type ServiceError, status } from '@grpc/grpc-js';
import { afterEach, describe, expect, it } from 'vitest';
import {
  buildReceiver,
  decodeResponse,
  decodeStatus,
  exportProtobuf,
  type ReceiverUnderTest,
  span,
  TOKEN,
  TRACE_ID,
} from './helpers.js';

const EXPORT_PATH = '/opentelemetry.proto.collector.trace.v1.TraceService/Export';
const identity = (b: Buffer) => b;

let under: ReceiverUnderTest | undefined;
const clients: Client[] = [];
afterEach(async () => {
  for (const c of clients.splice(0)) c.close();
  await under?.receiver.close();
  under = undefined;
});

async function start(config: Record<string, unknown> = {}, gzip = false) {
  under = buildReceiver(config);
  const { grpcUrl } = await under.receiver.start();
  const client = new Client(
    grpcUrl.replace('http://', ''),
    credentials.createInsecure(),
    gzip ? { 'grpc.default_compression_algorithm': 2 } : {},
  );
  clients.push(client);
  return { r: under, client, grpcUrl };
}

function call(
  client: Client,
  body: Buffer,
  headers: Record<string, string> = { authorization: `Bearer ${TOKEN}` },
): Promise<{ err: ServiceError | null; res?: Buffer }> {
  const md = new Metadata();
  for (const [k, v] of Object.entries(headers)) md.set(k, v);
  return new Promise((resolve) => {
    client.makeUnaryRequest(EXPORT_PATH, identity, identity, body, md, (err, res) =>
      resolve({ err: err ?? null, ...(res ? { res } : {}) }),
    );
  });
}

describe('OTLP/gRPC TraceService/Export', () => {
  it('stores an export under the token’s tenant before answering OK', async () => {
    const { r, client, grpcUrl } = await start();
    expect(grpcUrl).toMatch(/^http:\/\/127\.0\.0\.1:\d+$/);
    const { err, res } = await call(client, exportProtobuf([span('0123456789abcdef')], 'inventory'));
    expect(err).toBeNull();
    expect(decodeResponse(res!)).toEqual({});
    expect(r.sink.written.map((w) => [w.event.id, w.event.tenant, w.event.service])).toEqual([
      [`${TRACE_ID}0123456789abcdef`, 'acme', 'inventory'],
    ]);
  });

  it('takes the token in x-tapwire-token metadata and a gzip-compressed message', async () => {
    const { r, client } = await start({}, true);
    const { err } = await call(client, exportProtobuf([span('0123456789abcdef')]), {
      'x-tapwire-token': TOKEN,
    });
    expect(err).toBeNull();
    expect(r.sink.written).toHaveLength(1);
  });

  it('answers UNAUTHENTICATED without a known token', async () => {
    const { r, client } = await start();
    expect((await call(client, exportProtobuf([span('0123456789abcdef')]), {})).err?.code).toBe(
      status.UNAUTHENTICATED,
    );
    expect(
      (await call(client, exportProtobuf([span('0123456789abcdef')]), { authorization: 'Bearer nope' })).err
        ?.code,
    ).toBe(status.UNAUTHENTICATED);
    expect(r.sink.written).toEqual([]);
  });

  it('answers INVALID_ARGUMENT with the decoder’s message to a malformed message, and keeps serving', async () => {
    const { r, client } = await start();
    const { err } = await call(client, Buffer.from([0x0a, 0xff, 0xff, 0xff, 0x0f, 0x01]));
    expect(err?.code).toBe(status.INVALID_ARGUMENT);
    expect(err?.details).not.toBe('');
    expect((await call(client, exportProtobuf([span('0123456789abcdef')]))).err).toBeNull();
    expect(r.sink.written).toHaveLength(1);
  });

  it('passes rejected spans through as partial_success', async () => {
    const { r, client } = await start();
    const { err, res } = await call(
      client,
      exportProtobuf([
        span('0123456789abcdef'),
        { traceId: TRACE_ID, spanId: '0000000000000000', name: 'bad' },
      ]),
    );
    expect(err).toBeNull();
    expect(decodeResponse(res!).partialSuccess?.rejectedSpans).toBe('1');
    expect(r.sink.written.map((w) => w.event.span_id)).toEqual(['0123456789abcdef']);
  });

  it('answers RESOURCE_EXHAUSTED to a message over limits.maxMessageBytes, compressed or not', async () => {
    const big = exportProtobuf(
      Array.from({ length: 200 }, (_, i) => span(`${i.toString(16).padStart(16, '1')}`)),
    );
    expect(big.length).toBeGreaterThan(4096);
    for (const gzip of [false, true]) {
      const { r, client } = await start({ limits: { maxMessageBytes: 4096 } }, gzip);
      expect((await call(client, big)).err?.code).toBe(status.RESOURCE_EXHAUSTED);
      expect(r.sink.written).toEqual([]);
      await r.receiver.close();
    }
  });

  it('answers RESOURCE_EXHAUSTED with a RetryInfo detail while the write path is saturated, and counts it', async () => {
    const { r, client } = await start({ throttle: { retryAfterS: 3 } });
    r.emission.capacityBytes = 1000;
    r.emission.unshippedBytes = 900;
    const { err } = await call(client, exportProtobuf([span('0123456789abcdef')]));
    expect(err?.code).toBe(status.RESOURCE_EXHAUSTED);
    const details = err?.metadata.get('grpc-status-details-bin')[0] as Buffer;
    expect(decodeStatus(details)).toMatchObject({ code: status.RESOURCE_EXHAUSTED, retryDelayS: 3 });
    expect(r.sink.written).toEqual([]);
    const metrics = (await r.receiver.admin.app.inject({ method: 'GET', url: '/metrics' })).body;
    expect(metrics).toContain('tapwire_otlp_throttled_total{transport="grpc",reason="backlog"} 1');
    expect(metrics).toContain('tapwire_otlp_requests_total{transport="grpc",outcome="throttled"} 1');
  });

  it('answers UNAVAILABLE when the local log fails the write', async () => {
    const { r, client } = await start();
    r.sink.failing = true;
    expect((await call(client, exportProtobuf([span('0123456789abcdef')]))).err?.code).toBe(
      status.UNAVAILABLE,
    );
  });

  it('is ready on /readyz once it listens, and says so while it throttles', async () => {
    under = buildReceiver();
    const r = under;
    const readyz = async () => {
      const res = await r.receiver.admin.app.inject({ method: 'GET', url: '/readyz' });
      return [res.statusCode, res.json()];
    };
    expect(await readyz()).toEqual([503, { ready: false, status: 'not ready' }]);
    await r.receiver.start();
    expect(await readyz()).toEqual([200, { ready: true, status: 'ready' }]);
    r.emission.capacityBytes = 1000;
    r.emission.unshippedBytes = 1000;
    r.clock.now += 1000;
    expect(await readyz()).toEqual([200, { ready: true, throttling: 'backlog', status: 'ready' }]);
  });
});
