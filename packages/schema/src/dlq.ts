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
  reason: nonEmptyBoundedString(LIMITS.reasonChars),
  consumer_group: boundedString(LIMITS.serviceChars),
});

/** DlqEvent is one message a consumer could not accept, kept with its source position and reason. */
export type DlqEvent = z.infer<typeof dlqV1Schema>;
