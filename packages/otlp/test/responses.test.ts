import { JsonTraceSerializer, ProtobufTraceSerializer } from '@opentelemetry/otlp-transformer';
import { describe, expect, it } from 'vitest';
import {
  encodeRetryStatus,
  encodeStatus,
  encodeTraceResponse,
  RETRY_INFO_TYPE_URL,
  TRACE_EXPORT_PATH,
} from '../src/index.js';
import { loadVendoredProtos } from './support/vendored-protos.js';

const root = loadVendoredProtos();
const Response = root.lookupType('opentelemetry.proto.collector.trace.v1.ExportTraceServiceResponse');
const Status = root.lookupType('google.rpc.Status');
const RetryInfo = root.lookupType('google.rpc.RetryInfo');
const asObject = (type: typeof Response, bytes: Uint8Array) =>
  type.toObject(type.decode(bytes), { longs: Number, defaults: false });

describe('encodeTraceResponse', () => {
  it('encodes full success as an empty response', () => {
    const bytes = encodeTraceResponse({ rejectedSpans: 0, errorMessage: '' }, 'protobuf') as Uint8Array;
    expect(bytes).toHaveLength(0);
    expect(asObject(Response, bytes)).toEqual({});
    expect(encodeTraceResponse({ rejectedSpans: 0, errorMessage: '' }, 'json')).toBe('{}');
  });

  it('encodes partial success that the official serializers read back', () => {
    const r = {
      rejectedSpans: 3,
      errorMessage: 'span 1 of resource 0 (name "x"): trace_id must be 16 bytes, not all zero',
    };
    const bytes = encodeTraceResponse(r, 'protobuf') as Uint8Array;
    expect(asObject(Response, bytes)).toEqual({ partialSuccess: r });
    const official = ProtobufTraceSerializer.deserializeResponse(bytes);
    expect(Number(official.partialSuccess?.rejectedSpans)).toBe(3);
    expect(official.partialSuccess?.errorMessage).toBe(r.errorMessage);

    const json = encodeTraceResponse(r, 'json') as string;
    expect(JSON.parse(json)).toEqual({
      partialSuccess: { rejectedSpans: '3', errorMessage: r.errorMessage },
    });
    expect(JsonTraceSerializer.deserializeResponse(new TextEncoder().encode(json))).toEqual({
      partialSuccess: { rejectedSpans: '3', errorMessage: r.errorMessage },
    });
  });

  it('sends a warning with nothing rejected as partial success with rejected_spans 0', () => {
    const bytes = encodeTraceResponse(
      { rejectedSpans: 0, errorMessage: 'values were cut' },
      'protobuf',
    ) as Uint8Array;
    expect(asObject(Response, bytes)).toEqual({
      partialSuccess: { rejectedSpans: 0, errorMessage: 'values were cut' },
    });
  });
});

describe('encodeStatus', () => {
  it('encodes a google.rpc.Status in protobuf and JSON', () => {
    const s = { code: 3, message: 'invalid OTLP protobuf request: index out of range' };
    expect(asObject(Status, encodeStatus(s, 'protobuf') as Uint8Array)).toEqual(s);
    expect(JSON.parse(encodeStatus(s, 'json') as string)).toEqual(s);
  });
});

describe('encodeRetryStatus', () => {
  it('encodes a Status whose one detail is a RetryInfo with the delay, read back by the vendored protos', () => {
    const bytes = encodeRetryStatus(
      { code: 8, message: 'the receiver is saturated (backlog); retry after 7 s', retryAfterS: 7 },
      'protobuf',
    ) as Uint8Array;
    const status = Status.toObject(Status.decode(bytes), { longs: Number }) as {
      code: number;
      message: string;
      details: { type_url: string; value: Uint8Array }[];
    };
    expect(status.code).toBe(8);
    expect(status.message).toBe('the receiver is saturated (backlog); retry after 7 s');
    expect(status.details.map((d) => d.type_url)).toEqual([RETRY_INFO_TYPE_URL]);
    expect(RetryInfo.toObject(RetryInfo.decode(status.details[0]!.value), { longs: Number })).toEqual({
      retryDelay: { seconds: 7 },
    });
  });

  it('encodes the same in OTLP/JSON: the Any with @type, the Duration as "7s"', () => {
    expect(
      JSON.parse(encodeRetryStatus({ code: 8, message: 'slow down', retryAfterS: 7 }, 'json') as string),
    ).toEqual({
      code: 8,
      message: 'slow down',
      details: [{ '@type': 'type.googleapis.com/google.rpc.RetryInfo', retryDelay: '7s' }],
    });
  });
});

describe('TRACE_EXPORT_PATH', () => {
  it('is the gRPC path of the vendored TraceService.Export', () => {
    const service = root.lookupService('opentelemetry.proto.collector.trace.v1.TraceService');
    expect(TRACE_EXPORT_PATH).toBe(`/${service.fullName.slice(1)}/${service.methods.Export?.name}`);
  });
});
