import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { gzipSync } from 'node:zlib';
import { credentials, Client as GrpcClient, Metadata, type ServiceError } from '@grpc/grpc-js';
import { createClickHouse, identifier, migrate, sql } from '@tapwire/clickhouse';
import { hashToken, telemetryConfigSchema } from '@tapwire/config';
import { buildIngest, clickhouseWarehouse, type Ingest, ingestConfigSchema } from '@tapwire/ingest';
import {
  createKafkaClient,
  createKafkaEventSink,
  ensureTopics,
  kafkaSource,
  topicSpecs,
} from '@tapwire/kafka';
import { otlpConfigSchema, type RunningOtlpService, runOtlpService } from '@tapwire/otlp-service';
import { TOPICS } from '@tapwire/schema';
import { createLogger } from '@tapwire/telemetry';
import protobuf from 'protobufjs';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import {
  deletePrefixedTopics,
  silentLogger,
  testClickHouseConfig,
  testKafkaConfig,
  uniqueName,
} from '../support/infra.js';

/**
 * Issue #22's bad input, against the real receiver on real Kafka and ClickHouse (ingest running):
 * each malformed, mistyped, oversize or unauthenticated export gets the OTLP specification's
 * answer (https://opentelemetry.io/docs/specs/otlp/#failures: HTTP status + google.rpc.Status body;
 * gRPC status code), and a request with one invalid span stores its valid spans, exactly once.
 */

const PROTO_DIR = fileURLToPath(new URL('../../packages/otlp/proto', import.meta.url));
const MIGRATIONS = fileURLToPath(new URL('../../migrations', import.meta.url));
const MAX_MESSAGE_BYTES = 64 * 1024;
const TENANT = 'bad-input';
const token = `otlp-${randomBytes(12).toString('hex')}`;
const database = uniqueName('tapwire_otlp_bad');
const prefix = `${uniqueName('otlpbad')}.`;
const groupId = uniqueName('otlp-bad-ingest');
const dir = mkdtempSync(join(tmpdir(), 'tapwire-otlp-bad-'));
const logger = createLogger({ name: 'otlp-bad-input', level: 'warn' });
const RPC = { INVALID_ARGUMENT: 3, RESOURCE_EXHAUSTED: 8, UNAUTHENTICATED: 16 } as const;

let service: RunningOtlpService;
let ingest: Ingest;
let dlqClose: () => Promise<void>;
let grpc: GrpcClient;
let Request: protobuf.Type;
let Response: protobuf.Type;
let Status: protobuf.Type;
const ch = createClickHouse(testClickHouseConfig(database));
const kafka = createKafkaClient(testKafkaConfig(), silentLogger, 'otlp-bad-input');
/** The spans this file's accepted exports carried that must be stored: span id → trace id. */
const mustStore = new Map<string, string>();

beforeAll(async () => {
  const root = new protobuf.Root();
  root.resolvePath = (_origin, target) =>
    target.startsWith('google/protobuf/') ? target : join(PROTO_DIR, target);
  await root.load(['opentelemetry/proto/collector/trace/v1/trace_service.proto', 'google/rpc/status.proto'], {
    keepCase: false,
  });
  Request = root.lookupType('opentelemetry.proto.collector.trace.v1.ExportTraceServiceRequest');
  Response = root.lookupType('opentelemetry.proto.collector.trace.v1.ExportTraceServiceResponse');
  Status = root.lookupType('google.rpc.Status');

  await migrate(testClickHouseConfig(database), { dir: MIGRATIONS, lockSettleMs: 100 });
  await ensureTopics(
    kafka,
    topicSpecs(
      { partitions: 3, replicationFactor: 1, retentionMs: 3_600_000, dlqRetentionMs: 3_600_000 },
      prefix,
    ),
  );
  service = await runOtlpService({
    otlp: otlpConfigSchema.parse({
      grpc: { host: '127.0.0.1', port: 0 },
      http: { host: '127.0.0.1', port: 0 },
      admin: { host: '127.0.0.1', port: 0 },
      tokens: [{ name: 'bad-input', sha256: hashToken(token), tenant: TENANT }],
      limits: { maxMessageBytes: MAX_MESSAGE_BYTES },
      emit: { topicPrefix: prefix, logDir: join(dir, 'otlp-log') },
      shutdownGraceMs: 2000,
    }),
    kafka: testKafkaConfig(),
    telemetry: telemetryConfigSchema.parse({ logLevel: 'warn' }),
  });
  const dlq = createKafkaEventSink(
    { kafka, logger: silentLogger },
    { lingerMs: 10, maxBatchEvents: 100, maxBufferedEvents: 1000, retryBackoffMs: 100, topicPrefix: prefix },
  );
  dlqClose = () => dlq.close(5000);
  ingest = buildIngest(
    {
      source: kafkaSource({ kafka, logger: silentLogger }),
      warehouse: clickhouseWarehouse(ch),
      dlq,
      logger,
    },
    ingestConfigSchema.parse({
      groupId,
      topicPrefix: prefix,
      flushIntervalMs: 200,
      admin: { port: 0 },
      retention: { enabled: false },
    }),
  );
  await ingest.start();
  grpc = new GrpcClient(new URL(service.grpcUrl).host, credentials.createInsecure());
}, 120_000);

afterAll(async () => {
  grpc?.close();
  await service?.stop();
  await ingest?.close();
  await dlqClose?.();
  const admin = createClickHouse(testClickHouseConfig('default'));
  await admin.command(sql`DROP DATABASE IF EXISTS ${identifier(database)}`);
  await admin.close();
  await ch.close();
  await deletePrefixedTopics(prefix);
  rmSync(dir, { recursive: true, force: true });
});

const hex = (n: number) => randomBytes(n).toString('hex');

interface SpanSpec {
  traceId: Buffer;
  spanId: Buffer;
  name: string;
}

/** exportRequest encodes an ExportTraceServiceRequest with one resource, one scope and these spans. */
function exportRequest(spans: SpanSpec[]): Buffer {
  const nowNs = BigInt(Date.now()) * 1_000_000n;
  const message = Request.fromObject({
    resourceSpans: [
      {
        resource: { attributes: [{ key: 'service.name', value: { stringValue: 'bad-input-app' } }] },
        scopeSpans: [
          {
            scope: { name: 'bad-input', version: '1.0.0' },
            spans: spans.map((s) => ({
              traceId: s.traceId,
              spanId: s.spanId,
              name: s.name,
              kind: 2,
              startTimeUnixNano: String(nowNs),
              endTimeUnixNano: String(nowNs + 5_000_000n),
              attributes: [{ key: 'http.route', value: { stringValue: '/orders/:id' } }],
            })),
          },
        ],
      },
    ],
  });
  return Buffer.from(Request.encode(message).finish());
}

function validSpan(name: string): SpanSpec {
  return { traceId: Buffer.from(hex(16), 'hex'), spanId: Buffer.from(hex(8), 'hex'), name };
}

/** A length-delimited field 1 that declares 2^31 bytes and carries one: not a protobuf message. */
const MALFORMED = Buffer.from([0x0a, 0xff, 0xff, 0xff, 0xff, 0x07, 0x01]);

async function post(body: Buffer | string, headers: Record<string, string>) {
  const res = await fetch(`${service.httpUrl}/v1/traces`, { method: 'POST', headers, body });
  return {
    status: res.status,
    contentType: res.headers.get('content-type') ?? '',
    body: Buffer.from(await res.arrayBuffer()),
  };
}

const auth = { authorization: `Bearer ${token}` };
const PROTOBUF = { ...auth, 'content-type': 'application/x-protobuf' };

function statusOf(body: Buffer): { code: number; message: string } {
  const s = Status.toObject(Status.decode(body), { defaults: true }) as { code: number; message: string };
  return { code: s.code, message: s.message };
}

/** exportGrpc calls TraceService/Export with raw bytes, as any OTLP/gRPC exporter does. */
function exportGrpc(
  body: Buffer,
  metadata: Record<string, string> = auth,
): Promise<{ error?: ServiceError; response?: Buffer }> {
  const md = new Metadata();
  for (const [k, v] of Object.entries(metadata)) md.set(k, v);
  return new Promise((resolve) => {
    grpc.makeUnaryRequest(
      '/opentelemetry.proto.collector.trace.v1.TraceService/Export',
      (b: Buffer) => b,
      (b: Buffer) => b,
      body,
      md,
      (error, response) => resolve(error ? { error } : { response: response as Buffer }),
    );
  });
}

/** storedSpans waits until ingest has read every record of the spans topic and the receiver shipped all it wrote, then reads the rows. */
async function storedSpans(): Promise<{ span_id: string; trace_id: string; n: number }[]> {
  const admin = kafka.admin();
  await admin.connect();
  try {
    await vi.waitFor(
      async () => {
        const emission = service.stats().emission;
        expect(emission.unshippedEvents).toBe(0);
        const topic = prefix + TOPICS.spans;
        const high = await admin.fetchTopicOffsets(topic);
        const [committed] = await admin.fetchOffsets({ groupId, topics: [topic] });
        // Every partition that holds records has them all committed by ingest.
        const behind = high.filter(
          (p) =>
            Number(p.high) > 0 &&
            Number(committed?.partitions.find((c) => c.partition === p.partition)?.offset ?? -1) !==
              Number(p.high),
        );
        expect(behind).toEqual([]);
      },
      { timeout: 60_000, interval: 250 },
    );
  } finally {
    await admin.disconnect();
  }
  return ch.query<{ span_id: string; trace_id: string; n: number }>(
    sql`SELECT span_id, any(trace_id) AS trace_id, toUInt32(count()) AS n FROM spans WHERE tenant = ${TENANT} GROUP BY span_id ORDER BY span_id`,
  );
}

describe('OTLP/HTTP answers bad input as the specification says', () => {
  it('a malformed protobuf body: 400 with a google.rpc.Status (INVALID_ARGUMENT) in protobuf', async () => {
    const r = await post(MALFORMED, PROTOBUF);
    expect(r.status).toBe(400);
    expect(r.contentType).toBe('application/x-protobuf');
    const s = statusOf(r.body);
    expect(s.code).toBe(RPC.INVALID_ARGUMENT);
    expect(s.message.length).toBeGreaterThan(0);
  });

  it('a malformed OTLP/JSON body: 400 with a google.rpc.Status in JSON', async () => {
    const r = await post('{"resourceSpans": [', { ...auth, 'content-type': 'application/json' });
    expect(r.status).toBe(400);
    expect(r.contentType).toMatch(/^application\/json\b/);
    const s = JSON.parse(r.body.toString('utf8')) as { code: number; message: string };
    expect(s.code).toBe(RPC.INVALID_ARGUMENT);
    expect(s.message.length).toBeGreaterThan(0);
  });

  it('a body that is not valid gzip: 400', async () => {
    const r = await post(exportRequest([validSpan('x')]), { ...PROTOBUF, 'content-encoding': 'gzip' });
    expect(r.status).toBe(400);
    expect(statusOf(r.body).code).toBe(RPC.INVALID_ARGUMENT);
  });

  it('a content type other than protobuf or JSON: 415', async () => {
    const r = await post(exportRequest([validSpan('x')]), { ...auth, 'content-type': 'text/plain' });
    expect(r.status).toBe(415);
    const s = JSON.parse(r.body.toString('utf8')) as { code: number; message: string };
    expect(s.message).toContain('Content-Type');
  });

  it('a message over otlp.limits.maxMessageBytes: 413, also when it is only that large once decompressed', async () => {
    const big = exportRequest(
      Array.from({ length: 1000 }, (_, i) => validSpan(`span-${i}-${'n'.repeat(60)}`)),
    );
    expect(big.length).toBeGreaterThan(MAX_MESSAGE_BYTES);
    const plain = await post(big, PROTOBUF);
    expect(plain.status).toBe(413);
    expect(statusOf(plain.body).code).toBe(RPC.RESOURCE_EXHAUSTED);
    const zipped = gzipSync(big);
    expect(zipped.length).toBeLessThan(MAX_MESSAGE_BYTES);
    const inflated = await post(zipped, { ...PROTOBUF, 'content-encoding': 'gzip' });
    expect(inflated.status).toBe(413);
    expect(statusOf(inflated.body).code).toBe(RPC.RESOURCE_EXHAUSTED);
  });

  it('no token or an unknown one: 401 with UNAUTHENTICATED', async () => {
    for (const headers of <Record<string, string>[]>[
      { 'content-type': 'application/x-protobuf' },
      { 'content-type': 'application/x-protobuf', authorization: 'Bearer not-a-token' },
      { 'content-type': 'application/x-protobuf', 'x-tapwire-token': 'not-a-token' },
    ]) {
      const r = await post(exportRequest([validSpan('x')]), headers);
      expect(r.status).toBe(401);
      expect(statusOf(r.body).code).toBe(RPC.UNAUTHENTICATED);
    }
  });
});

describe('OTLP/gRPC answers bad input as the specification says', () => {
  it('a malformed protobuf message: INVALID_ARGUMENT', async () => {
    const r = await exportGrpc(MALFORMED);
    expect(r.error?.code).toBe(RPC.INVALID_ARGUMENT);
    expect(r.error?.details.length).toBeGreaterThan(0);
  });

  it('a message over otlp.limits.maxMessageBytes: RESOURCE_EXHAUSTED', async () => {
    const big = exportRequest(
      Array.from({ length: 1000 }, (_, i) => validSpan(`span-${i}-${'n'.repeat(60)}`)),
    );
    const r = await exportGrpc(big);
    expect(r.error?.code).toBe(RPC.RESOURCE_EXHAUSTED);
  });

  it('no token or an unknown one: UNAUTHENTICATED', async () => {
    expect((await exportGrpc(exportRequest([validSpan('x')]), {})).error?.code).toBe(RPC.UNAUTHENTICATED);
    expect(
      (await exportGrpc(exportRequest([validSpan('x')]), { authorization: 'Bearer nope' })).error?.code,
    ).toBe(RPC.UNAUTHENTICATED);
  });
});

describe('a span with an invalid trace id among valid ones', () => {
  const invalidIds: [string, Buffer][] = [
    ['8 bytes', Buffer.from(hex(8), 'hex')],
    ['all zero', Buffer.alloc(16)],
  ];

  it.each(invalidIds)(
    'over HTTP (%s): 200 with partial_success rejected_spans=1; the valid spans are stored',
    async (_label, badTraceId) => {
      const valid = [validSpan('first'), validSpan('second')];
      const body = exportRequest([
        valid[0]!,
        { traceId: badTraceId, spanId: Buffer.from(hex(8), 'hex'), name: 'bad' },
        valid[1]!,
      ]);
      const r = await post(body, PROTOBUF);
      expect(r.status).toBe(200);
      expect(r.contentType).toBe('application/x-protobuf');
      const res = Response.toObject(Response.decode(r.body), { defaults: true, longs: Number }) as {
        partialSuccess?: { rejectedSpans: number; errorMessage: string };
      };
      expect(res.partialSuccess?.rejectedSpans).toBe(1);
      // The message names the span and why.
      expect(res.partialSuccess?.errorMessage).toMatch(/\bbad\b.*trace[_ ]/);
      for (const s of valid) mustStore.set(s.spanId.toString('hex'), s.traceId.toString('hex'));
    },
  );

  it('over OTLP/JSON (all-zero hex): 200 with partialSuccess.rejectedSpans 1; the valid spans are stored', async () => {
    const valid = [validSpan('first'), validSpan('second')];
    const nowNs = BigInt(Date.now()) * 1_000_000n;
    const json = (s: SpanSpec) => ({
      traceId: s.traceId.toString('hex'),
      spanId: s.spanId.toString('hex'),
      name: s.name,
      kind: 2,
      startTimeUnixNano: String(nowNs),
      endTimeUnixNano: String(nowNs + 5_000_000n),
    });
    const body = {
      resourceSpans: [
        {
          resource: { attributes: [{ key: 'service.name', value: { stringValue: 'bad-input-app' } }] },
          scopeSpans: [
            {
              spans: [
                json(valid[0]!),
                json({ traceId: Buffer.alloc(16), spanId: Buffer.from(hex(8), 'hex'), name: 'bad' }),
                json(valid[1]!),
              ],
            },
          ],
        },
      ],
    };
    const r = await post(JSON.stringify(body), { ...auth, 'content-type': 'application/json' });
    expect(r.status).toBe(200);
    expect(r.contentType).toMatch(/^application\/json\b/);
    // proto3 JSON: an int64 may be a string or a number.
    const res = JSON.parse(r.body.toString('utf8')) as {
      partialSuccess?: { rejectedSpans: string | number };
    };
    expect(Number(res.partialSuccess?.rejectedSpans)).toBe(1);
    for (const s of valid) mustStore.set(s.spanId.toString('hex'), s.traceId.toString('hex'));
  });

  it('over gRPC: partial_success rejected_spans=1; the valid spans are stored', async () => {
    const valid = [validSpan('first'), validSpan('second')];
    const r = await exportGrpc(
      exportRequest([
        { traceId: Buffer.alloc(16), spanId: Buffer.from(hex(8), 'hex'), name: 'bad' },
        ...valid,
      ]),
    );
    expect(r.error).toBeUndefined();
    const res = Response.toObject(Response.decode(r.response!), { defaults: true, longs: Number }) as {
      partialSuccess?: { rejectedSpans: number; errorMessage: string };
    };
    expect(res.partialSuccess?.rejectedSpans).toBe(1);
    for (const s of valid) mustStore.set(s.spanId.toString('hex'), s.traceId.toString('hex'));
  });

  it('a fully valid export: 200 with no partial_success', async () => {
    const valid = [validSpan('only')];
    const r = await post(exportRequest(valid), PROTOBUF);
    expect(r.status).toBe(200);
    const res = Response.toObject(Response.decode(r.body), { longs: Number }) as { partialSuccess?: unknown };
    expect(res.partialSuccess).toBeUndefined();
    for (const s of valid) mustStore.set(s.spanId.toString('hex'), s.traceId.toString('hex'));
  });

  it('the store holds exactly the valid spans of the accepted exports, each once; nothing from refused ones', async () => {
    expect(mustStore.size).toBe(9);
    await vi.waitFor(async () => expect((await storedSpans()).length).toBe(mustStore.size), {
      timeout: 60_000,
      interval: 500,
    });
    const rows = await storedSpans();
    expect(rows).toEqual(
      [...mustStore]
        .map(([span_id, trace_id]) => ({ span_id, trace_id, n: 1 }))
        .sort((a, b) => a.span_id.localeCompare(b.span_id)),
    );
  });
});
