import { JsonTraceSerializer, ProtobufTraceSerializer } from '@opentelemetry/otlp-transformer';
import { describe, expect, it } from 'vitest';
import { encodeStatus, encodeTraceResponse, TRACE_EXPORT_PATH } from '../src/index.js';
import { loadVendoredProtos } from './support/vendored-protos.js';

const root = loadVendoredProtos();
const Response = root.lookupType('opentelemetry.proto.collector.trace.v1.ExportTraceServiceResponse');
const Status = root.lookupType('google.rpc.Status');
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

describe('TRACE_EXPORT_PATH', () => {
  it('is the gRPC path of the vendored TraceService.Export', () => {
    const service = root.lookupService('opentelemetry.proto.collector.trace.v1.TraceService');
    expect(TRACE_EXPORT_PATH).toBe(`/${service.fullName.slice(1)}/${service.methods.Export?.name}`);
  });
});
