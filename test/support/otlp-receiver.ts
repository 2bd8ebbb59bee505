import { fileURLToPath } from 'node:url';
import { type Metadata, Server, ServerCredentials, type ServiceDefinition } from '@grpc/grpc-js';
import protobuf from 'protobufjs';

/** ReceivedSpan is one span as a real OTLP gRPC receiver decoded it. */
export interface ReceivedSpan {
  traceId: string;
  spanId: string;
  name: string;
  serviceName: string | undefined;
  attributes: Record<string, unknown>;
}

/** OtlpReceiver is a real gRPC server implementing OTLP TraceService/Export on loopback. */
export interface OtlpReceiver {
  readonly endpoint: string;
  readonly spans: ReceivedSpan[];
  readonly metadata: Metadata[];
  close(): Promise<void>;
}

type KV = { key: string; value?: Record<string, unknown> };

function attrs(kvs: KV[] | undefined): Record<string, unknown> {
  return Object.fromEntries(
    (kvs ?? []).map((kv) => [kv.key, kv.value ? Object.values(kv.value)[0] : undefined]),
  );
}

/** startOtlpReceiver starts an OTLP gRPC trace receiver on a free loopback port. */
export async function startOtlpReceiver(): Promise<OtlpReceiver> {
  const root = await protobuf.load(fileURLToPath(new URL('./otlp-trace.proto', import.meta.url)));
  const Request = root.lookupType('opentelemetry.proto.collector.trace.v1.ExportTraceServiceRequest');
  const Response = root.lookupType('opentelemetry.proto.collector.trace.v1.ExportTraceServiceResponse');
  const spans: ReceivedSpan[] = [];
  const metadata: Metadata[] = [];
  const service: ServiceDefinition = {
    Export: {
      path: '/opentelemetry.proto.collector.trace.v1.TraceService/Export',
      requestStream: false,
      responseStream: false,
      requestSerialize: (v: object) => Buffer.from(Request.encode(v).finish()),
      requestDeserialize: (b: Buffer) =>
        Request.toObject(Request.decode(b), { bytes: String, longs: String }),
      responseSerialize: (v: object) => Buffer.from(Response.encode(v).finish()),
      responseDeserialize: (b: Buffer) => Response.decode(b),
    },
  };
  const server = new Server();
  server.addService(service, {
    Export: (
      call: { request: { resourceSpans?: unknown[] }; metadata: Metadata },
      callback: (err: null, res: object) => void,
    ) => {
      metadata.push(call.metadata);
      for (const rs of (call.request.resourceSpans ?? []) as {
        resource?: { attributes?: KV[] };
        scopeSpans?: { spans?: { traceId: string; spanId: string; name: string; attributes?: KV[] }[] }[];
      }[]) {
        const serviceName = attrs(rs.resource?.attributes)['service.name'] as string | undefined;
        for (const ss of rs.scopeSpans ?? []) {
          for (const s of ss.spans ?? []) {
            spans.push({
              traceId: Buffer.from(s.traceId, 'base64').toString('hex'),
              spanId: Buffer.from(s.spanId, 'base64').toString('hex'),
              name: s.name,
              serviceName,
              attributes: attrs(s.attributes),
            });
          }
        }
      }
      callback(null, {});
    },
  });
  const port = await new Promise<number>((resolve, reject) =>
    server.bindAsync('127.0.0.1:0', ServerCredentials.createInsecure(), (err, p) =>
      err ? reject(err) : resolve(p),
    ),
  );
  return {
    endpoint: `http://127.0.0.1:${port}`,
    spans,
    metadata,
    close: () => new Promise((resolve) => server.tryShutdown(() => resolve())),
  };
}
