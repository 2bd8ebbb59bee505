import { randomBytes } from 'node:crypto';
import { ROOT_CONTEXT, SpanKind, SpanStatusCode, trace } from '@opentelemetry/api';
import { ProtobufTraceSerializer } from '@opentelemetry/otlp-transformer';
import { resourceFromAttributes } from '@opentelemetry/resources';
import {
  BasicTracerProvider,
  InMemorySpanExporter,
  SimpleSpanProcessor,
} from '@opentelemetry/sdk-trace-base';

/**
 * Template is one pre-encoded ExportTraceServiceRequest (official ProtobufTraceSerializer) whose
 * trace ids can be made unique per send: `stamp(seq)` copies it and writes `seq` into the last
 * four bytes of every trace id, so a span's id (trace id + span id) never repeats across sends.
 */
export interface Template {
  readonly spans: number;
  readonly bytes: number;
  stamp(seq: number): Buffer;
}

const SERVICES = ['checkout', 'payments', 'inventory', 'search'];
const ROUTES = ['/api/orders/:id', '/api/cart', '/api/search', '/api/users/:id/profile'];

/**
 * makeTemplates builds `count` request bodies of `tracesPerBody` traces of 10 spans each, like a
 * web service's: SERVER → 3 INTERNAL handlers, 4 DB CLIENT calls, 2 HTTP CLIENT calls; 10–14
 * attributes per span (semantic-convention names and realistic values), an exception event on
 * one span in ten, one resource per body with the SDK's usual attributes.
 */
export function makeTemplates(count: number, tracesPerBody: number): Template[] {
  return Array.from({ length: count }, (_, t) => makeTemplate(t, tracesPerBody));
}

function makeTemplate(index: number, traces: number): Template {
  const service = SERVICES[index % SERVICES.length]!;
  const exporter = new InMemorySpanExporter();
  let nextTraceId = '';
  const provider = new BasicTracerProvider({
    resource: resourceFromAttributes({
      'service.name': service,
      'service.version': '2.31.0',
      'service.instance.id': randomBytes(8).toString('hex'),
      'deployment.environment.name': 'production',
      'host.name': `ip-10-0-${index}-17.ec2.internal`,
      'host.arch': 'amd64',
      'os.type': 'linux',
      'process.pid': 4242 + index,
      'process.runtime.name': 'nodejs',
      'process.runtime.version': '20.19.0',
      'telemetry.sdk.language': 'nodejs',
      'telemetry.sdk.name': 'opentelemetry',
      'telemetry.sdk.version': '2.12.0',
    }),
    idGenerator: {
      generateTraceId: () => nextTraceId,
      generateSpanId: () => randomBytes(8).toString('hex'),
    },
    spanProcessors: [new SimpleSpanProcessor(exporter)],
  });
  const tracer = provider.getTracer(`@acme/${service}-handlers`, '2.31.0');
  // Marker trace ids: 8 bytes 0xab, the template and trace index, 4 bytes stamped per send.
  const traceIds: string[] = [];
  const now = Date.now();
  for (let i = 0; i < traces; i++) {
    nextTraceId = `abababababababab${index.toString(16).padStart(4, '0')}${i.toString(16).padStart(4, '0')}00000000`;
    traceIds.push(nextTraceId);
    const route = ROUTES[i % ROUTES.length]!;
    const t0 = now - 60_000 + i * 37;
    const at = (ms: number) => new Date(t0 + ms);
    const root = tracer.startSpan(
      `GET ${route}`,
      {
        kind: SpanKind.SERVER,
        startTime: at(0),
        attributes: {
          'http.request.method': 'GET',
          'http.route': route,
          'url.path': route.replace(':id', String(1000 + i)),
          'url.scheme': 'https',
          'server.address': `${service}.internal`,
          'server.port': 8443,
          'client.address': `10.1.${i % 250}.${(i * 7) % 250}`,
          'user_agent.original': 'Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko)',
          'network.protocol.version': '1.1',
          'http.response.status_code': i % 25 === 0 ? 500 : 200,
          'http.request.header.x-request-id': [randomBytes(16).toString('hex')],
        },
      },
      ROOT_CONTEXT,
    );
    const inRoot = trace.setSpan(ROOT_CONTEXT, root);
    for (let h = 0; h < 3; h++) {
      const handler = tracer.startSpan(
        ['authorize', 'load', 'render'][h]!,
        {
          kind: SpanKind.INTERNAL,
          startTime: at(1 + h * 10),
          attributes: {
            'code.function': ['authorize', 'loadOrder', 'renderJson'][h]!,
            'code.filepath': `/srv/${service}/src/handlers/${route.split('/')[2]}.ts`,
            'code.lineno': 40 + h * 17,
            'app.tenant': `tenant-${i % 13}`,
            'app.cache_hit': h % 2 === 0,
            'app.items': i % 9,
            'thread.name': 'main',
            'app.feature_flags': ['new-checkout', 'fast-search'],
            'enduser.id': `user-${(i * 31) % 10_000}`,
            'app.region': 'eu-west-1',
          },
        },
        inRoot,
      );
      const inHandler = trace.setSpan(ROOT_CONTEXT, handler);
      if (h === 1) {
        for (let q = 0; q < 4; q++) {
          const db = tracer.startSpan(
            `SELECT orders.${['orders', 'order_items', 'customers', 'shipments'][q]}`,
            {
              kind: SpanKind.CLIENT,
              startTime: at(12 + q * 2),
              attributes: {
                'db.system.name': 'postgresql',
                'db.namespace': 'orders',
                'db.collection.name': ['orders', 'order_items', 'customers', 'shipments'][q]!,
                'db.operation.name': 'SELECT',
                'db.query.text': `SELECT id, status, total, currency, created_at FROM ${['orders', 'order_items', 'customers', 'shipments'][q]} WHERE tenant_id = $1 AND id = $2 LIMIT 1`,
                'server.address': 'orders-db.internal',
                'server.port': 5432,
                'network.peer.address': '10.0.4.12',
                'db.response.returned_rows': q + 1,
                'db.client.connection.pool.name': 'primary',
              },
            },
            inHandler,
          );
          if ((i + q) % 10 === 0)
            db.addEvent(
              'exception',
              {
                'exception.type': 'QueryTimeoutError',
                'exception.message': 'canceling statement due to statement timeout',
                'exception.stacktrace':
                  'QueryTimeoutError: canceling statement due to statement timeout\n    at Pool.query (/srv/node_modules/pg-pool/index.js:45:11)\n    at loadOrder (/srv/src/handlers/orders.ts:57:19)',
              },
              at(13 + q * 2),
            );
          db.end(at(13 + q * 2));
        }
      }
      if (h === 2) {
        for (let c = 0; c < 2; c++) {
          const call = tracer.startSpan(
            'GET',
            {
              kind: SpanKind.CLIENT,
              startTime: at(22 + c * 3),
              attributes: {
                'http.request.method': 'GET',
                'url.full': `http://pricing.internal:8080/v2/prices/${1000 + i}?currency=eur&fields=net,gross`,
                'server.address': 'pricing.internal',
                'server.port': 8080,
                'http.response.status_code': 200,
                'network.protocol.version': '1.1',
                'network.peer.address': '10.0.7.3',
                'http.request.resend_count': 0,
              },
            },
            inHandler,
          );
          call.end(at(24 + c * 3));
        }
      }
      if (h === 0 && i % 25 === 0)
        handler.setStatus({ code: SpanStatusCode.ERROR, message: 'upstream failed' });
      handler.end(at(10 + h * 10));
    }
    if (i % 25 === 0) root.setStatus({ code: SpanStatusCode.ERROR });
    root.end(at(31));
  }
  const spans = exporter.getFinishedSpans();
  const encoded = ProtobufTraceSerializer.serializeRequest(spans);
  if (!encoded) throw new Error('ProtobufTraceSerializer encoded nothing');
  const template = Buffer.from(encoded);
  // Where each trace id sits in the encoded body (every span carries its own copy).
  const offsets: number[] = [];
  for (const id of traceIds) {
    const needle = Buffer.from(id, 'hex');
    for (let at = template.indexOf(needle); at !== -1; at = template.indexOf(needle, at + 16))
      offsets.push(at);
  }
  if (offsets.length !== spans.length)
    throw new Error(`found ${offsets.length} trace ids in the body for ${spans.length} spans`);
  return {
    spans: spans.length,
    bytes: template.length,
    stamp(seq) {
      const body = Buffer.from(template);
      for (const at of offsets) body.writeUInt32BE(seq >>> 0, at + 12);
      return body;
    },
  };
}
