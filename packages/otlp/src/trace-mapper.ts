import { LIMITS } from '@tapwire/schema';
import { OtlpRequestError } from './errors.js';
import { parseJsonExportRequest } from './json-request.js';
import { otlpProtos } from './protos.js';
import { createAttributeRedactor, type OtlpRedaction } from './redaction.js';
import type { OtlpSpanEvent, OtlpSpanEventEvent, OtlpSpanLink } from './span-event.js';
import { anyValueText, cutText, type Nanos, splitNanos } from './values.js';
import type { WireExportRequest, WireKeyValue, WireResourceSpans, WireSpan } from './wire.js';

/** OtlpFormat is the encoding of an OTLP/HTTP body: binary protobuf or OTLP/JSON. */
export type OtlpFormat = 'protobuf' | 'json';

/** OtlpLimits bound what one export request and one span may carry. */
export interface OtlpLimits {
  /** More spans than this in one request refuse the whole request. */
  maxSpansPerRequest: number;
  /** A span (or its resource, one of its events or links) with more attributes than this is rejected. */
  maxAttributesPerSpan: number;
  /** Longer attribute values are cut and marked. */
  maxAttributeValueChars: number;
  /** Events past this many are dropped and counted in otel.dropped_events_count. */
  maxEventsPerSpan: number;
  /** Links past this many are dropped and counted in otel.dropped_links_count. */
  maxLinksPerSpan: number;
}

/** MappedExport is what one export request maps to. */
export interface MappedExport {
  /** The mapped spans; those of one resource share one `resource` object, so treat them as read-only. */
  spans: OtlpSpanEvent[];
  /** Spans of the request that were not mapped. */
  rejected: number;
  /** '' when none were rejected; otherwise names the first few rejected spans and why. */
  errorMessage: string;
}

/** TraceMapper decodes and maps OTLP export requests of one tenant at a time. */
export interface TraceMapper {
  /** map decodes one request body; throws OtlpRequestError for an undecodable body or too many spans. */
  map(body: Uint8Array, format: OtlpFormat, tenant: string): MappedExport;
}

/** UNKNOWN_SERVICE is the service of spans whose resource names none (OTel resource semantic conventions). */
export const UNKNOWN_SERVICE = 'unknown_service';

/** UNNAMED_SPAN names a span sent with an empty name, which OTLP defines as an unknown name. */
export const UNNAMED_SPAN = '(unnamed)';

const SPAN_KIND_BY_NUMBER = ['INTERNAL', 'INTERNAL', 'SERVER', 'CLIENT', 'PRODUCER', 'CONSUMER'] as const;
const SPAN_KIND_BY_NAME: Record<string, OtlpSpanEvent['kind']> = {
  SPAN_KIND_UNSPECIFIED: 'INTERNAL',
  SPAN_KIND_INTERNAL: 'INTERNAL',
  SPAN_KIND_SERVER: 'SERVER',
  SPAN_KIND_CLIENT: 'CLIENT',
  SPAN_KIND_PRODUCER: 'PRODUCER',
  SPAN_KIND_CONSUMER: 'CONSUMER',
};
const STATUS_BY_NUMBER = ['UNSET', 'OK', 'ERROR'] as const;
const STATUS_BY_NAME: Record<string, OtlpSpanEvent['status']> = {
  STATUS_CODE_UNSET: 'UNSET',
  STATUS_CODE_OK: 'OK',
  STATUS_CODE_ERROR: 'ERROR',
};

const ZERO_TRACE_ID = '0'.repeat(32);
const ZERO_SPAN_ID = '0'.repeat(16);
const HEX = /^[0-9a-fA-F]*$/;
const MESSAGES_SHOWN = 3;
const DROPPED_ATTRIBUTES = 'otel.dropped_attributes_count';
const DROPPED_EVENTS = 'otel.dropped_events_count';
const DROPPED_LINKS = 'otel.dropped_links_count';

/** A span the mapper refuses; `reason` says why. Internal: map() turns it into partial success. */
class SpanRejection extends Error {
  constructor(readonly reason: string) {
    super(reason);
    this.name = 'SpanRejection';
  }
}

function rejectionReason(err: unknown): string {
  // Anything other than a SpanRejection is input this code cannot read (e.g. absurd nesting).
  return err instanceof SpanRejection ? err.reason : `cannot be mapped: ${(err as Error).message}`;
}

/** idHex renders an id as lower hex: '' when absent, null when not `bytes` long. */
function idHex(v: Uint8Array | string | null | undefined, bytes: number): string | null {
  if (v == null || v.length === 0) return '';
  if (typeof v === 'string') {
    return v.length === bytes * 2 && HEX.test(v) ? v.toLowerCase() : null;
  }
  if (v.length !== bytes) return null;
  return (Buffer.isBuffer(v) ? v : Buffer.from(v.buffer, v.byteOffset, v.byteLength)).toString('hex');
}

function setOwn(into: Record<string, string>, key: string, value: string): void {
  if (key === '__proto__') {
    Object.defineProperty(into, key, { value, enumerable: true, writable: true, configurable: true });
  } else {
    into[key] = value;
  }
}

function kindOf(kind: number | string | null | undefined): OtlpSpanEvent['kind'] {
  if (typeof kind === 'number') return SPAN_KIND_BY_NUMBER[kind] ?? 'INTERNAL';
  if (kind == null) return 'INTERNAL';
  // OTLP/JSON senders write enum numbers; proto3 JSON parsers also take names and quoted numbers.
  return SPAN_KIND_BY_NAME[kind] ?? SPAN_KIND_BY_NUMBER[Number(kind)] ?? 'INTERNAL';
}

function statusOf(code: number | string | null | undefined): OtlpSpanEvent['status'] {
  if (typeof code === 'number') return STATUS_BY_NUMBER[code] ?? 'UNSET';
  if (code == null) return 'UNSET';
  return STATUS_BY_NAME[code] ?? STATUS_BY_NUMBER[Number(code)] ?? 'UNSET';
}

function countSpans(request: WireExportRequest): number {
  let n = 0;
  for (const rs of request.resourceSpans ?? []) {
    for (const ss of rs.scopeSpans ?? []) n += ss.spans?.length ?? 0;
  }
  return n;
}

function spanLabel(resourceIndex: number, spanIndex: number, name: string): string {
  return `span ${spanIndex} of resource ${resourceIndex} (name ${JSON.stringify(cutText(name, 100))})`;
}

/** createTraceMapper precomputes redaction and limits once; map() decodes and maps one request body. */
export function createTraceMapper(config: { limits: OtlpLimits; redaction: OtlpRedaction }): TraceMapper {
  const { limits } = config;
  const redact = createAttributeRedactor(config.redaction);
  const { exportRequest } = otlpProtos();
  const start: Nanos = { micros: 0, nanos: 0 };
  const end: Nanos = { micros: 0, nanos: 0 };
  const eventTime: Nanos = { micros: 0, nanos: 0 };

  /** Fills `into` with the attributes; returns how many were dropped for an empty or too long key. */
  const addAttributes = (kvs: WireKeyValue[] | null | undefined, into: Record<string, string>): number => {
    if (kvs == null) return 0;
    let dropped = 0;
    for (let i = 0; i < kvs.length; i++) {
      const kv = kvs[i]!;
      const key = kv.key ?? '';
      if (key.length === 0 || key.length > LIMITS.attributeKeyChars) {
        dropped++;
        continue;
      }
      setOwn(into, key, cutText(redact(key, anyValueText(kv.value)), limits.maxAttributeValueChars));
    }
    return dropped;
  };

  /** Builds one attribute map with its dropped count; throws SpanRejection over the count limit. */
  const attributeMap = (
    kvs: WireKeyValue[] | null | undefined,
    droppedBefore: number | null | undefined,
    what: string,
  ): Record<string, string> => {
    const into: Record<string, string> = {};
    const dropped = (droppedBefore ?? 0) + addAttributes(kvs, into);
    if (dropped > 0) into[DROPPED_ATTRIBUTES] = String(dropped);
    checkCount(into, (kvs?.length ?? 0) + 1, what);
    return into;
  };

  const checkCount = (into: Record<string, string>, atMost: number, what: string): void => {
    if (atMost <= limits.maxAttributesPerSpan) return;
    const count = Object.keys(into).length;
    if (count > limits.maxAttributesPerSpan) {
      throw new SpanRejection(
        `${what} has ${count} attributes, more than maxAttributesPerSpan ${limits.maxAttributesPerSpan}`,
      );
    }
  };

  interface MappedResource {
    service: string;
    attributes: Record<string, string>;
    rejection: string;
  }

  const mapResource = (rs: WireResourceSpans): MappedResource => {
    const kvs = rs.resource?.attributes ?? [];
    let service = '';
    const others: WireKeyValue[] = [];
    for (const kv of kvs) {
      if (kv.key === 'service.name') service = anyValueText(kv.value);
      else others.push(kv);
    }
    if (service === '') service = UNKNOWN_SERVICE;
    try {
      const attributes = attributeMap(others, rs.resource?.droppedAttributesCount, 'its resource');
      return { service: cutText(service, LIMITS.serviceChars), attributes, rejection: '' };
    } catch (err) {
      return { service, attributes: {}, rejection: rejectionReason(err) };
    }
  };

  const mapSpan = (
    span: WireSpan,
    resource: MappedResource,
    scopeName: string,
    scopeVersion: string,
    tenant: string,
  ): OtlpSpanEvent => {
    if (resource.rejection !== '') throw new SpanRejection(resource.rejection);
    const traceId = idHex(span.traceId, 16);
    if (traceId === null || traceId === '' || traceId === ZERO_TRACE_ID) {
      throw new SpanRejection('trace_id must be 16 bytes, not all zero');
    }
    const spanId = idHex(span.spanId, 8);
    if (spanId === null || spanId === '' || spanId === ZERO_SPAN_ID) {
      throw new SpanRejection('span_id must be 8 bytes, not all zero');
    }
    let parent = idHex(span.parentSpanId, 8);
    if (parent === null) throw new SpanRejection('parent_span_id must be empty or 8 bytes');
    // Some SDKs send an all-zero parent for a root span.
    if (parent === ZERO_SPAN_ID) parent = '';

    splitNanos(span.startTimeUnixNano, start);
    splitNanos(span.endTimeUnixNano, end);
    if (start.micros === 0 && start.nanos === 0) throw new SpanRejection('start_time_unix_nano must be set');
    if (start.micros > Number.MAX_SAFE_INTEGER)
      throw new SpanRejection('start_time_unix_nano is out of range');
    let duration = end.micros - start.micros - (end.nanos < start.nanos ? 1 : 0);
    if (!(duration >= 0)) duration = 0;

    const attributes: Record<string, string> = {};
    const droppedAttributes = (span.droppedAttributesCount ?? 0) + addAttributes(span.attributes, attributes);

    const wireEvents = span.events ?? [];
    const keptEvents = Math.min(wireEvents.length, limits.maxEventsPerSpan);
    const events: OtlpSpanEventEvent[] = new Array(keptEvents);
    for (let i = 0; i < keptEvents; i++) {
      const e = wireEvents[i]!;
      events[i] = {
        time: splitNanos(e.timeUnixNano, eventTime).micros,
        name: cutText(e.name ?? '', LIMITS.nameChars),
        attributes: attributeMap(e.attributes, e.droppedAttributesCount, `its event ${i}`),
      };
    }
    const droppedEvents = (span.droppedEventsCount ?? 0) + wireEvents.length - keptEvents;

    const wireLinks = span.links ?? [];
    const links: OtlpSpanLink[] = [];
    let droppedLinks = span.droppedLinksCount ?? 0;
    for (let i = 0; i < wireLinks.length; i++) {
      const l = wireLinks[i]!;
      const linkTrace = idHex(l.traceId, 16);
      const linkSpan = idHex(l.spanId, 8);
      if (
        links.length >= limits.maxLinksPerSpan ||
        linkTrace === null ||
        linkTrace === '' ||
        linkTrace === ZERO_TRACE_ID ||
        linkSpan === null ||
        linkSpan === '' ||
        linkSpan === ZERO_SPAN_ID
      ) {
        droppedLinks++;
        continue;
      }
      links.push({
        trace_id: linkTrace,
        span_id: linkSpan,
        attributes: attributeMap(l.attributes, l.droppedAttributesCount, `its link ${i}`),
      });
    }

    if (droppedAttributes > 0) attributes[DROPPED_ATTRIBUTES] = String(droppedAttributes);
    if (droppedEvents > 0) attributes[DROPPED_EVENTS] = String(droppedEvents);
    if (droppedLinks > 0) attributes[DROPPED_LINKS] = String(droppedLinks);
    checkCount(attributes, (span.attributes?.length ?? 0) + 3, 'it');

    const name = span.name ?? '';
    const status = span.status;
    const startMicros = start.micros;
    return {
      v: 2,
      id: traceId + spanId,
      ts: startMicros,
      tenant,
      trace_id: traceId,
      span_id: spanId,
      parent_span_id: parent,
      name: name === '' ? UNNAMED_SPAN : cutText(name, LIMITS.nameChars),
      kind: kindOf(span.kind),
      service: resource.service,
      start: startMicros,
      duration,
      status: statusOf(status?.code),
      status_message: cutText(status?.message ?? '', LIMITS.reasonChars),
      attributes,
      resource: resource.attributes,
      scope_name: scopeName,
      scope_version: scopeVersion,
      events,
      links,
    };
  };

  const decode = (body: Uint8Array, format: OtlpFormat): WireExportRequest => {
    if (body.length === 0) return {};
    if (format === 'json') {
      return parseJsonExportRequest(
        Buffer.from(body.buffer, body.byteOffset, body.byteLength).toString('utf8'),
      );
    }
    try {
      // A Buffer makes protobufjs hand out bytes fields as Buffers, which render hex natively.
      const buffer = Buffer.isBuffer(body)
        ? body
        : Buffer.from(body.buffer, body.byteOffset, body.byteLength);
      return exportRequest.decode(buffer) as WireExportRequest;
    } catch (err) {
      throw new OtlpRequestError(`invalid OTLP protobuf request: ${(err as Error).message}`, { cause: err });
    }
  };

  return {
    map(body, format, tenant) {
      const request = decode(body, format);
      const total = countSpans(request);
      if (total > limits.maxSpansPerRequest) {
        throw new OtlpRequestError(
          `the request holds ${total} spans, more than maxSpansPerRequest ${limits.maxSpansPerRequest}`,
        );
      }
      const spans: OtlpSpanEvent[] = [];
      const messages: string[] = [];
      let rejected = 0;
      const resourceSpans = request.resourceSpans ?? [];
      for (let r = 0; r < resourceSpans.length; r++) {
        const rs = resourceSpans[r]!;
        const resource = mapResource(rs);
        let spanIndex = 0;
        for (const ss of rs.scopeSpans ?? []) {
          const scopeName = cutText(ss.scope?.name ?? '', LIMITS.nameChars);
          const scopeVersion = cutText(ss.scope?.version ?? '', LIMITS.nameChars);
          for (const span of ss.spans ?? []) {
            try {
              spans.push(mapSpan(span, resource, scopeName, scopeVersion, tenant));
            } catch (err) {
              rejected++;
              if (messages.length < MESSAGES_SHOWN) {
                messages.push(`${spanLabel(r, spanIndex, span.name ?? '')}: ${rejectionReason(err)}`);
              }
            }
            spanIndex++;
          }
        }
      }
      let errorMessage = messages.join('; ');
      if (rejected > messages.length) errorMessage += `; … and ${rejected - messages.length} more`;
      return { spans, rejected, errorMessage };
    },
  };
}
