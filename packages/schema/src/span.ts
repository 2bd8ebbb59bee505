import { z } from 'zod';
import { envelopeShape } from './envelope.js';
import {
  attributesSchema,
  boundedString,
  durationMicrosSchema,
  epochMicrosSchema,
  LIMITS,
  nonEmptyBoundedString,
  spanAttributesSchema,
  spanIdSchema,
  traceIdSchema,
} from './primitives.js';

/** SPAN_KINDS are the OpenTelemetry span kinds. */
export const SPAN_KINDS = ['INTERNAL', 'SERVER', 'CLIENT', 'PRODUCER', 'CONSUMER'] as const;

/** SPAN_STATUSES are the OpenTelemetry span status codes. */
export const SPAN_STATUSES = ['UNSET', 'OK', 'ERROR'] as const;

const spanV1Shape = {
  ...envelopeShape,
  trace_id: traceIdSchema,
  span_id: spanIdSchema,
  parent_span_id: z.union([spanIdSchema, z.literal('')]),
  name: nonEmptyBoundedString(LIMITS.nameChars),
  kind: z.enum(SPAN_KINDS),
  service: nonEmptyBoundedString(LIMITS.serviceChars),
  start: epochMicrosSchema,
  duration: durationMicrosSchema,
  status: z.enum(SPAN_STATUSES),
  status_message: boundedString(LIMITS.reasonChars).default(''),
};

/** spanV1Schema validates a span event, version 1; `start` equals the envelope's `ts`. */
export const spanV1Schema = z
  .object({ ...spanV1Shape, v: z.literal(1), attributes: attributesSchema.default({}) })
  .refine((s) => s.start === s.ts, { message: 'must equal ts', path: ['start'] });

/** SpanEventV1 is a span at version 1: what the proxy writes (ingest upgrades it to SpanEvent). */
export type SpanEventV1 = z.infer<typeof spanV1Schema>;

/** spanEventSchema validates one timed event inside a span (OTLP Span.Event); `time` is epoch µs. */
export const spanEventSchema = z.object({
  time: epochMicrosSchema,
  name: boundedString(LIMITS.nameChars),
  attributes: spanAttributesSchema.default({}),
});

/** spanLinkSchema validates one link from a span to another span (OTLP Span.Link). */
export const spanLinkSchema = z.object({
  trace_id: traceIdSchema,
  span_id: spanIdSchema,
  attributes: spanAttributesSchema.default({}),
});

/**
 * spanV2Schema validates a span event, version 2: version 1 plus the span's resource attributes
 * (other than service.name, which is `service`), its instrumentation scope, its events and its
 * links, as OTLP carries them. Attribute maps hold at most LIMITS.spanAttributeKeys keys.
 */
export const spanV2Schema = z
  .object({
    ...spanV1Shape,
    v: z.literal(2),
    attributes: spanAttributesSchema.default({}),
    resource: spanAttributesSchema.default({}),
    scope_name: boundedString(LIMITS.nameChars).default(''),
    scope_version: boundedString(LIMITS.nameChars).default(''),
    events: z
      .array(spanEventSchema)
      .max(LIMITS.spanEvents, `must have at most ${LIMITS.spanEvents} items`)
      .default([]),
    links: z
      .array(spanLinkSchema)
      .max(LIMITS.spanLinks, `must have at most ${LIMITS.spanLinks} items`)
      .default([]),
  })
  .refine((s) => s.start === s.ts, { message: 'must equal ts', path: ['start'] });

/** SpanEvent is one span (version 2): a proxy's SERVER or CLIENT span, or an app's span sent over OTLP. */
export type SpanEvent = z.infer<typeof spanV2Schema>;

/** SpanTimedEvent is one event inside a span. */
export type SpanTimedEvent = z.infer<typeof spanEventSchema>;

/** SpanLink is one link of a span. */
export type SpanLink = z.infer<typeof spanLinkSchema>;

/** upgradeSpanV1 upgrades a version-1 span to version 2: empty resource, scope, events and links. */
export function upgradeSpanV1(event: Record<string, unknown>): Record<string, unknown> {
  return { ...event, v: 2, resource: {}, scope_name: '', scope_version: '', events: [], links: [] };
}
