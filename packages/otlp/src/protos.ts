import protobuf from 'protobufjs';
import { OTLP_DESCRIPTOR } from './descriptor.js';

/** OtlpProtos are the message types this package decodes and encodes. */
export interface OtlpProtos {
  readonly exportRequest: protobuf.Type;
  readonly exportResponse: protobuf.Type;
  readonly status: protobuf.Type;
}

let loaded: OtlpProtos | undefined;

/** otlpProtos builds the message types on first use and returns the same ones afterwards. */
export function otlpProtos(): OtlpProtos {
  if (loaded === undefined) {
    const root = protobuf.Root.fromJSON(OTLP_DESCRIPTOR as protobuf.INamespace);
    loaded = {
      exportRequest: root.lookupType('opentelemetry.proto.collector.trace.v1.ExportTraceServiceRequest'),
      exportResponse: root.lookupType('opentelemetry.proto.collector.trace.v1.ExportTraceServiceResponse'),
      status: root.lookupType('google.rpc.Status'),
    };
  }
  return loaded;
}
