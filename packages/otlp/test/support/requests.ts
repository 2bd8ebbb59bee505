import { JsonTraceSerializer, ProtobufTraceSerializer } from '@opentelemetry/otlp-transformer';
import type { ReadableSpan } from '@opentelemetry/sdk-trace-base';
import type { OtlpFormat } from '../../src/index.js';
import { loadVendoredProtos } from './vendored-protos.js';

const root = loadVendoredProtos();
const ExportRequest = root.lookupType('opentelemetry.proto.collector.trace.v1.ExportTraceServiceRequest');

/** officialBody serializes SDK spans with the official OTLP serializer of the given format. */
export function officialBody(spans: ReadableSpan[], format: OtlpFormat): Uint8Array {
  const body =
    format === 'protobuf'
      ? ProtobufTraceSerializer.serializeRequest(spans)
      : JsonTraceSerializer.serializeRequest(spans);
  if (body === undefined) throw new Error('the serializer produced no body');
  return body;
}

/** protobufBody encodes a hand-written ExportTraceServiceRequest (protobufjs object form: camelCase, bytes as Buffer). */
export function protobufBody(request: object): Uint8Array {
  return ExportRequest.encode(ExportRequest.fromObject(request)).finish();
}

/** jsonBody encodes a hand-written OTLP/JSON request. */
export function jsonBody(request: unknown): Uint8Array {
  return new TextEncoder().encode(JSON.stringify(request));
}

/** TRACE_ID and SPAN_ID are valid ids for hand-written requests. */
export const TRACE_ID = '5b8efff798038103d269b633813fc60c';
export const SPAN_ID = 'eee19b7ec3c1b174';

/** handSpan is a minimal valid span in protobufjs object form; `over` replaces fields. */
export function handSpan(over: Record<string, unknown> = {}): Record<string, unknown> {
  return {
    traceId: Buffer.from(TRACE_ID, 'hex'),
    spanId: Buffer.from(SPAN_ID, 'hex'),
    name: 'GET /orders',
    kind: 2,
    startTimeUnixNano: '1700000000000000000',
    endTimeUnixNano: '1700000000250000000',
    ...over,
  };
}

/** handRequest wraps spans in one resource (service "orders") and one scope. */
export function handRequest(spans: object[], resourceAttributes: object[] = []): object {
  return {
    resourceSpans: [
      {
        resource: {
          attributes: [{ key: 'service.name', value: { stringValue: 'orders' } }, ...resourceAttributes],
        },
        scopeSpans: [{ scope: { name: 'manual', version: '1' }, spans }],
      },
    ],
  };
}
