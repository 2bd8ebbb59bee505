import { z } from 'zod';
import { envelopeShape } from './envelope.js';
import { boundedString, LIMITS, nonEmptyBoundedString } from './primitives.js';

/** dlqV1Schema validates a dead-letter record: the raw bytes of a rejected message and why. */
export const dlqV1Schema = z.object({
  ...envelopeShape,
  v: z.literal(1),
  raw_base64: z.string().regex(/^[A-Za-z0-9+/]*={0,2}$/, 'must be base64'),
  source_topic: nonEmptyBoundedString(249),
  source_partition: z.number().int().nonnegative(),
  source_offset: z.string().regex(/^\d{1,20}$/, 'must be a decimal Kafka offset'),
  // The event's index within a batched record (@tapwire/stream event-batch.ts); absent when the
  // whole record was rejected. Optional, so earlier dead letters and earlier readers stay valid.
  source_index: z.number().int().nonnegative().max(999_999_999).optional(),
  reason: nonEmptyBoundedString(LIMITS.reasonChars),
  consumer_group: boundedString(LIMITS.serviceChars),
});

/** DlqEvent is one message a consumer could not accept, kept with its source position and reason. */
export type DlqEvent = z.infer<typeof dlqV1Schema>;
