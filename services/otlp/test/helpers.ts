import { fileURLToPath } from 'node:url';
import { hashToken } from '@tapwire/config';
import type { EmissionStats } from '@tapwire/emission';
import { buildOtlpReceiver, type OtlpReceiver, otlpConfigSchema } from '@tapwire/otlp-service';
import type { TopicName } from '@tapwire/schema';
import { type EventSink, emptySinkStats, type SinkStats } from '@tapwire/stream';
import { createLogger, type Logger } from '@tapwire/telemetry';
import protobuf from 'protobufjs';

/** TOKEN is the token of tenant acme in every receiver built here. */
export const TOKEN = 'tw_acme-exporter-token';

/** FakeLogSink is a write-first EventSink in memory: emit queues, flush appends; `failing` makes appends fail. */
export interface FakeLogSink extends EventSink {
  /** Events appended to the "log", in order. */
  readonly written: { topic: TopicName; event: Record<string, unknown> }[];
  failing: boolean;
}

/** createFakeLogSink builds a FakeLogSink. */
export function createFakeLogSink(): FakeLogSink {
  const stats: SinkStats = emptySinkStats();
  let queued: { topic: TopicName; event: Record<string, unknown> }[] = [];
  const sink: FakeLogSink = {
    written: [],
    failing: false,
    emit(topic, event) {
      queued.push({ topic, event: event as unknown as Record<string, unknown> });
      stats.accepted++;
      return true;
    },
    async flush() {
      const batch = queued;
      queued = [];
      if (sink.failing) {
        stats.dropped += batch.length;
        stats.sendErrors++;
      } else {
        sink.written.push(...batch);
        stats.delivered += batch.length;
      }
    },
    close: async () => {},
    stats: () => ({ ...stats }),
  };
  return sink;
}

/** ReceiverUnderTest is a built receiver on a fake sink, its clock and emission stats under the test's control. */
export interface ReceiverUnderTest {
  receiver: OtlpReceiver;
  sink: FakeLogSink;
  emission: { unshippedBytes: number; capacityBytes: number };
  clock: { now: number };
}

/** buildReceiver builds a receiver (not listening) on loopback ports 0 from a partial otlp config. */
export function buildReceiver(config: Record<string, unknown> = {}, logger?: Logger): ReceiverUnderTest {
  const sink = createFakeLogSink();
  const emission = { unshippedBytes: 0, capacityBytes: 0 };
  const clock = { now: 1_000_000 };
  const stats = (): EmissionStats => {
    const s = sink.stats();
    return {
      written: s.delivered,
      invalid: 0,
      writeDropped: s.dropped,
      writeErrors: s.sendErrors,
      delivered: s.delivered,
      shippedBatches: 0,
      unshippedEvents: 0,
      unshippedBytes: emission.unshippedBytes,
      capacityBytes: emission.capacityBytes,
      lagSeconds: 0,
      capacityDropped: 0,
      shipErrors: 0,
    };
  };
  const parsed = otlpConfigSchema.parse({
    grpc: { host: '127.0.0.1', port: 0 },
    http: { host: '127.0.0.1', port: 0 },
    admin: { host: '127.0.0.1', port: 0 },
    tokens: [{ name: 'acme-app', sha256: hashToken(TOKEN), tenant: 'acme' }],
    shutdownGraceMs: 1000,
    ...config,
  });
  const receiver = buildOtlpReceiver(
    {
      sink,
      logger: logger ?? createLogger({ name: 'test', level: 'silent' }),
      emission: stats,
      now: () => clock.now,
    },
    parsed,
  );
  return { receiver, sink, emission, clock };
}

const root = protobuf.loadSync(
  fileURLToPath(new URL('../../../test/support/otlp-trace.proto', import.meta.url)),
);
root.add(
  protobuf.parse(`
syntax = "proto3";
package google.rpc;
message Any { string type_url = 1; bytes value = 2; }
message Status { int32 code = 1; string message = 2; repeated Any details = 3; }
message Duration { int64 seconds = 1; int32 nanos = 2; }
message RetryInfo { Duration retry_delay = 1; }
`).root,
);
const Request = root.lookupType('opentelemetry.proto.collector.trace.v1.ExportTraceServiceRequest');
const Response = root.lookupType('opentelemetry.proto.collector.trace.v1.ExportTraceServiceResponse');
const Status = root.lookupType('google.rpc.Status');
const RetryInfo = root.lookupType('google.rpc.RetryInfo');

/** TestSpan is a span of a test export: ids in hex. */
export interface TestSpan {
  traceId: string;
  spanId: string;
  name: string;
}

/** TRACE_ID and the span ids below are what the tests export. */
export const TRACE_ID = '5b8efff798038103d269b633813fc60c';

/** span makes a TestSpan of TRACE_ID. */
export function span(spanId: string, name = 'GET /users/:id'): TestSpan {
  return { traceId: TRACE_ID, spanId, name };
}

/** exportProtobuf encodes an ExportTraceServiceRequest of one service's spans. */
export function exportProtobuf(spans: TestSpan[], service = 'checkout'): Buffer {
  const msg = Request.fromObject({
    resourceSpans: [
      {
        resource: { attributes: [{ key: 'service.name', value: { stringValue: service } }] },
        scopeSpans: [
          {
            spans: spans.map((s) => ({
              traceId: Buffer.from(s.traceId, 'hex'),
              spanId: Buffer.from(s.spanId, 'hex'),
              name: s.name,
              kind: 2,
              startTimeUnixNano: '1765000000000000000',
              endTimeUnixNano: '1765000000012345678',
            })),
          },
        ],
      },
    ],
  });
  return Buffer.from(Request.encode(msg).finish());
}

/** exportJson encodes the same request in OTLP/JSON (ids hex, 64-bit integers as strings). */
export function exportJson(spans: TestSpan[], service = 'checkout'): string {
  return JSON.stringify({
    resourceSpans: [
      {
        resource: { attributes: [{ key: 'service.name', value: { stringValue: service } }] },
        scopeSpans: [
          {
            spans: spans.map((s) => ({
              traceId: s.traceId,
              spanId: s.spanId,
              name: s.name,
              kind: 2,
              startTimeUnixNano: '1765000000000000000',
              endTimeUnixNano: '1765000000012345678',
            })),
          },
        ],
      },
    ],
  });
}

/** decodeResponse decodes a protobuf ExportTraceServiceResponse. */
export function decodeResponse(body: Uint8Array): {
  partialSuccess?: { rejectedSpans?: string; errorMessage?: string };
} {
  return Response.toObject(Response.decode(body), { longs: String, defaults: false }) as {
    partialSuccess?: { rejectedSpans?: string; errorMessage?: string };
  };
}

/** decodeStatus decodes a protobuf google.rpc.Status, with the retry delay of a RetryInfo detail in seconds. */
export function decodeStatus(body: Uint8Array): { code: number; message: string; retryDelayS?: number } {
  const s = Status.toObject(Status.decode(body), { longs: Number, defaults: true }) as {
    code: number;
    message: string;
    details: { typeUrl: string; value: Uint8Array }[];
  };
  const retry = s.details.find((d) => d.typeUrl === 'type.googleapis.com/google.rpc.RetryInfo');
  const delay = retry
    ? (RetryInfo.toObject(RetryInfo.decode(retry.value), { longs: Number }) as {
        retryDelay?: { seconds?: number };
      })
    : undefined;
  return {
    code: s.code,
    message: s.message,
    ...(delay ? { retryDelayS: delay.retryDelay?.seconds ?? 0 } : {}),
  };
}
