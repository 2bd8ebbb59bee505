import { z } from 'zod';
import { envelopeShape } from './envelope.js';
import {
  attributesSchema,
  boundedString,
  durationMicrosSchema,
  epochMicrosSchema,
  LIMITS,
  nonEmptyBoundedString,
  spanIdSchema,
  traceIdSchema,
} from './primitives.js';

/** SPAN_KINDS are the OpenTelemetry span kinds. */
export const SPAN_KINDS = ['INTERNAL', 'SERVER', 'CLIENT', 'PRODUCER', 'CONSUMER'] as const;

/** SPAN_STATUSES are the OpenTelemetry span status codes. */
export const SPAN_STATUSES = ['UNSET', 'OK', 'ERROR'] as const;

/** spanV1Schema validates a span event, version 1; `start` equals the envelope's `ts`. */
export const spanV1Schema = z
  .object({
    ...envelopeShape,
    v: z.literal(1),
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
    attributes: attributesSchema.default({}),
  })
  .refine((s) => s.start === s.ts, { message: 'must equal ts', path: ['start'] });

/** SpanEvent is one span: a SERVER span for an inbound request, a CLIENT span for an upstream call. */
export type SpanEvent = z.infer<typeof spanV1Schema>;
